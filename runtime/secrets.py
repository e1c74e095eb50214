"""Generated secrets of a local stack, kept in ``<state dir>/secrets.json`` (mode 0600).

Created once on the first ``homestream up``; never written to the repo or to logs.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import MISSING, asdict, dataclass, fields, replace
from pathlib import Path
from typing import Protocol

BRIDGE_MQTT_USER = "homestream-bridge"
DEMO_USER = "demo"


@dataclass(frozen=True)
class Secrets:
    pg_password: str
    redis_password: str
    bridge_mqtt_password: str
    token_secret: str
    demo_password: str
    kafka_cluster_id: str
    # Added later than the others: a secrets file from before it gets one on the next
    # `homestream up` / `init` (ensure_secrets).
    analyst_password: str = ""

    def __repr__(self) -> str:  # keep secrets out of tracebacks and logs
        return "Secrets(<redacted>)"


class StateDir(Protocol):
    """Where the secrets live (``runtime.config.Settings`` is one); a protocol, so this
    module does not import the settings that import it."""

    @property
    def state_dir(self) -> Path: ...

    @property
    def secrets_file(self) -> Path: ...


class SecretsMissing(RuntimeError):
    pass


def _kafka_cluster_id() -> str:
    # KRaft wants a base64url UUID without padding (22 characters).
    import base64
    import uuid

    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def generate() -> Secrets:
    return Secrets(
        pg_password=secrets.token_urlsafe(24),
        redis_password=secrets.token_urlsafe(24),
        bridge_mqtt_password=secrets.token_urlsafe(24),
        token_secret=secrets.token_urlsafe(48),
        demo_password=secrets.token_urlsafe(9),
        kafka_cluster_id=_kafka_cluster_id(),
        analyst_password=secrets.token_urlsafe(18),
    )


def load_secrets(settings: StateDir) -> Secrets:
    path = settings.secrets_file
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise SecretsMissing(
            f"{path} does not exist: the local stack was never started here. "
            "Run `homestream up` (or `make up`) first, or set HOMESTREAM_STATE_DIR."
        ) from None
    except (OSError, ValueError) as exc:
        raise SecretsMissing(
            f"{path} is unreadable or corrupt ({exc}). Remove the state directory with "
            "`homestream down --purge` and run `homestream up` again."
        ) from None
    names = {f.name for f in fields(Secrets)}
    required = {f.name for f in fields(Secrets) if f.default is MISSING}
    if not required <= data.keys():
        raise SecretsMissing(f"{path} lacks {sorted(required - data.keys())}: state dir is corrupt")
    return Secrets(**{k: data[k] for k in names if k in data})


def _write(path: Path, created: Secrets, *, replace: bool) -> None:
    tmp = path.with_name(path.name + ".new") if replace else path
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(asdict(created), fh, indent=2)
    if replace:
        os.replace(tmp, path)


def ensure_secrets(settings: StateDir) -> Secrets:
    """Load the stack's secrets, creating them on the first run (and the ones added
    since, in an older file)."""
    if settings.secrets_file.exists():
        found = load_secrets(settings)
        if found.analyst_password:
            return found
        fresh = replace(found, analyst_password=generate().analyst_password)
        _write(settings.secrets_file, fresh, replace=True)
        return fresh
    created = generate()
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    _write(settings.secrets_file, created, replace=False)
    return created
