"""Homes and hub logins for simulated hubs, created once and reused.

For every simulated home: the home (owned by an existing user, the demo user by default) and
one hub MQTT login (``stores.accounts.add_hub``). Passwords are shown only once, so they are
kept in ``<state dir>/sim/credentials.json`` (mode 0600) and reused while the login is active;
a login that was revoked, or a file from another database, gets a fresh one. New logins are
rendered into Mosquitto's password file (``Stack.sync_mqtt_logins``) before the hubs connect.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from runtime.config import Settings

Say = Callable[[str], None]
CREDENTIALS_FILE = "credentials.json"


class ProvisionError(RuntimeError):
    """Something the user has to fix first; the message says how."""


@dataclass(frozen=True)
class HubLogin:
    home_id: str
    username: str
    password: str


def sim_dir(settings: Settings) -> Path:
    """Where the simulator keeps its credentials, outboxes and device lists."""
    return settings.state_dir / "sim"


def credentials_path(settings: Settings) -> Path:
    return sim_dir(settings) / CREDENTIALS_FILE


def load_credentials(path: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ProvisionError(
            f"{path} is unreadable ({exc}); delete it and run `homestream simulate` again "
            "(new hub logins are created)"
        ) from None
    if not isinstance(data, dict):
        return {}
    return {
        home: {"username": c["username"], "password": c["password"]}
        for home, c in data.items()
        if isinstance(c, dict)
        and isinstance(c.get("username"), str)
        and isinstance(c.get("password"), str)
    }


def save_credentials(path: Path, creds: dict[str, dict[str, str]]) -> None:
    """Write atomically, readable by the owner only (the file holds MQTT passwords)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(creds, fh, indent=2, sort_keys=True)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


class Launcher(Protocol):
    """What provisioning needs of the stack's launcher (``compose.stack``); the CLI passes
    it in, so the hub package imports nothing of compose/."""

    def require_running(self) -> None: ...

    def sync_mqtt_logins(self) -> object: ...


def provision(
    settings: Settings,
    home_ids: Sequence[str],
    owner: str,
    *,
    launcher: Launcher,
    say: Say = print,
    home_names: dict[str, str] | None = None,
) -> list[HubLogin]:
    """Make sure every home exists and has an active hub login; returns the logins in order.

    Idempotent: a second run creates nothing. Raises ``ProvisionError`` (a one-line fix) when
    the owner does not exist; ``LauncherError`` / ``DatabaseUnavailable`` when the stack is not
    running.
    """
    from stores import accounts, db

    launcher.require_running()
    for home in home_ids:
        accounts.validate_home_id(home)
    path = credentials_path(settings)
    stored = load_credentials(path)
    homes_created = logins_created = 0
    out: list[HubLogin] = []
    with db.connect(settings) as conn:
        if conn.execute("SELECT 1 FROM users WHERE username = %s", (owner,)).fetchone() is None:
            raise ProvisionError(
                f"user {owner!r} does not exist: create it with `homestream users add "
                f"--username {owner} --password ...`, or pass --owner with an existing user"
            )
        rows = conn.execute(
            "SELECT username, home_id FROM hub_credentials "
            "WHERE revoked_at IS NULL AND home_id = ANY(%s)",
            (list(home_ids),),
        ).fetchall()
        active: dict[str, Any] = {username: home for username, home in rows}
        existing = {
            r[0]
            for r in conn.execute(
                "SELECT home_id FROM homes WHERE home_id = ANY(%s)", (list(home_ids),)
            ).fetchall()
        }
        conn.commit()
        for home in home_ids:
            if home not in existing:
                name = (home_names or {}).get(home) or f"Simulated home {home}"
                accounts.add_home(conn, home, owner, name=name)
                homes_created += 1
            cred = stored.get(home)
            if cred is None or active.get(cred["username"]) != home:
                hub = accounts.add_hub(conn, home)
                cred = {"username": hub.username, "password": hub.password}
                conn.commit()  # the login exists before its password is written down
                stored[home] = cred
                save_credentials(path, stored)
                logins_created += 1
            else:
                conn.commit()
            out.append(HubLogin(home, cred["username"], cred["password"]))
    if logins_created:
        launcher.sync_mqtt_logins()
        time.sleep(1.0)  # Mosquitto reloads its password file on SIGHUP, asynchronously
    if homes_created or logins_created:
        made = [f"{homes_created} home(s) owned by {owner!r}"] if homes_created else []
        made += [f"{logins_created} hub login(s) (kept in {path})"] if logins_created else []
        say("provisioned " + " and ".join(made))
    return out
