"""`homestream users|homes|hubs ...`: manage what you create (CONTRACT.md section 1).

Listing prints a table (``--json`` for scripts); every change prints one JSON line. Hub
login changes (add, rotate, revoke, a removed home) re-render Mosquitto's password file
and ACL and make the broker reload them at once: a revoked or rotated login is
disconnected by the broker on that reload.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from runtime.cli import CliError, Commands, out
from runtime.config import Settings


def _conn(settings: Settings):
    from compose.stack import require_running
    from stores import db

    require_running(settings)
    return db.connect(settings)


def _sync_broker(settings: Settings) -> None:
    from compose.stack import Stack

    Stack(settings, lambda _t: None).sync_mqtt_logins()


def _table(rows: list[dict[str, Any]], columns: list[str], as_json: bool, empty: str) -> None:
    if as_json:
        out(json.dumps(rows, indent=2))
        return
    if not rows:
        out(empty)
        return
    cells = [[_cell(r[c]) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    out("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        out("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return (
            ",".join(
                f"{v['home_id']}:{v['role']}" if isinstance(v, dict) else str(v) for v in value
            )
            or "-"
        )
    if value is None:
        return "-"
    return str(value)[:19] if isinstance(value, str) and value[:2] == "20" else str(value)


def _password(args: argparse.Namespace) -> str:
    """--password, else a prompt on the terminal, else one line on standard input."""
    if args.password:
        return str(args.password)
    if not sys.stdin.isatty():
        line = sys.stdin.readline().rstrip("\n")
        if not line:
            raise CliError(
                "no password: give --password P, or run it in a terminal to be asked, or "
                "pipe the password on standard input"
            )
        return line
    try:
        return getpass.getpass(f"password for {args.username}: ")
    except EOFError:
        raise CliError("no password given: give --password P") from None


# -- users -------------------------------------------------------------------------------
def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    from stores import accounts

    accounts.validate_username(args.username)
    password = _password(args)
    with _conn(settings) as conn:
        accounts.add_user(conn, args.username, password)
    out(json.dumps({"username": args.username, "created": True}))
    return 0


def cmd_users_list(args: argparse.Namespace, settings: Settings) -> int:
    from stores import accounts

    with _conn(settings) as conn:
        rows = accounts.list_users(conn)
    _table(rows, ["username", "disabled", "homes", "created_at"], args.json, "no users yet")
    return 0


def cmd_users_disable(args: argparse.Namespace, settings: Settings) -> int:
    from stores import accounts

    with _conn(settings) as conn:
        accounts.set_disabled(conn, args.username, not args.enable)
    out(json.dumps({"username": args.username, "disabled": not args.enable}))
    return 0


def cmd_users_passwd(args: argparse.Namespace, settings: Settings) -> int:
    from stores import accounts

    password = _password(args)
    with _conn(settings) as conn:
        accounts.set_password(conn, args.username, password)
    out(json.dumps({"username": args.username, "password_changed": True}))
    return 0


def cmd_users_remove(args: argparse.Namespace, settings: Settings) -> int:
    from stores import accounts

    with _conn(settings) as conn:
        accounts.remove_user(conn, args.username)
    out(json.dumps({"username": args.username, "removed": True}))
    return 0


# -- homes -------------------------------------------------------------------------------
def cmd_homes_add(args: argparse.Namespace, settings: Settings) -> int:
    from stores import accounts

    with _conn(settings) as conn:
        accounts.add_home(conn, args.home, args.owner, name=args.name)
    out(json.dumps({"home_id": args.home, "owner": args.owner, "created": True}))
    return 0


def cmd_homes_list(args: argparse.Namespace, settings: Settings) -> int:
    from stores import accounts

    with _conn(settings) as conn:
        rows = accounts.list_homes(conn)
    columns = ["home_id", "name", "owners", "members", "hub_logins", "created_at"]
    _table(rows, columns, args.json, "no homes yet")
    return 0


def cmd_homes_remove(args: argparse.Namespace, settings: Settings) -> int:
    from runtime.cli import require_kafka
    from stores import accounts
    from stores.home_removal import remove_home
    from topics.producer import EventProducer

    with _conn(settings) as conn:
        accounts.home_must_exist(conn, args.home)
    if not args.yes:
        raise CliError(
            f"removing {args.home} deletes its devices, state, documents and hub logins: "
            "add --yes to do it"
        )
    require_kafka(settings)
    producer = EventProducer(settings.kafka_bootstrap, settings.partitions)
    with _conn(settings) as conn:
        removal = remove_home(
            conn,
            producer,
            settings.kafka_bootstrap,
            args.home,
            by="cli",
            say=lambda line: print(line, file=sys.stderr, flush=True),
        )
    _sync_broker(settings)
    out(json.dumps(removal.summary()))
    return 0


# -- hubs --------------------------------------------------------------------------------
def _hub_json(settings: Settings, username: str, password: str, home_id: str) -> str:
    s = settings
    return json.dumps(
        {
            "username": username,
            "password": password,
            "home_id": home_id,
            "mqtt_host": s.host,
            "mqtt_port": s.ports.mqtt,
            "mqtt_tls_port": s.ports.mqtt_tls,
            "ca_file": str(s.mqtt_ca_file),
            "topic_prefix": f"hub/{home_id}/",
        }
    )


def cmd_hubs_add(args: argparse.Namespace, settings: Settings) -> int:
    from stores import accounts

    if args.cert:
        return _add_cert_hub(args, settings)
    with _conn(settings) as conn:
        creds = accounts.add_hub(conn, args.home)
    _sync_broker(settings)
    out(_hub_json(settings, creds.username, creds.password, creds.home_id))
    return 0


def _add_cert_hub(args: argparse.Namespace, settings: Settings) -> int:
    """A hub with an X.509 certificate of the stack's CA (CN = its login); the key is
    printed once, like a password, and kept nowhere."""
    from compose.tls import hub_certificate
    from stores import accounts

    issued: dict[str, bytes] = {}

    def make(username: str) -> int:
        serial, cert, key = hub_certificate(settings.mqtt_ca_file.parent, username)
        issued.update(cert=cert, key=key)
        return serial

    with _conn(settings) as conn:
        creds = accounts.add_hub(conn, args.home, issue=make)
    _sync_broker(settings)
    doc = json.loads(_hub_json(settings, creds.username, "", creds.home_id))
    del doc["password"]
    doc |= {
        "mqtt_cert_port": settings.ports.mqtt_cert,
        "certificate_pem": issued["cert"].decode(),
        "private_key_pem": issued["key"].decode(),
        "ca_pem": settings.mqtt_ca_file.read_text(),
    }
    out(json.dumps(doc))
    return 0


def cmd_hubs_list(args: argparse.Namespace, settings: Settings) -> int:
    from stores import accounts

    with _conn(settings) as conn:
        rows = accounts.list_hubs(conn, args.home)
    columns = ["username", "home_id", "revoked", "created_at", "revoked_at"]
    _table(rows, columns, args.json, "no hub logins yet")
    return 0


def cmd_hubs_rotate(args: argparse.Namespace, settings: Settings) -> int:
    from stores import accounts

    with _conn(settings) as conn:
        creds = accounts.rotate_hub(conn, args.username)
    _sync_broker(settings)
    out(_hub_json(settings, creds.username, creds.password, creds.home_id))
    return 0


def cmd_hubs_revoke(args: argparse.Namespace, settings: Settings) -> int:
    from stores import accounts

    with _conn(settings) as conn:
        home = accounts.revoke_hub(conn, args.username)
    _sync_broker(settings)
    out(json.dumps({"username": args.username, "home_id": home, "revoked": True}))
    return 0


def register(commands: Commands) -> None:
    users = commands.group("users", "manage logins: add, list, disable, passwd, remove")
    p = users.add("add", cmd_users_add, "create a login (password hashed with argon2id)")
    p.add_argument(
        "--username", required=True, help="the login name: 3-64 letters, digits, _ . @ or -"
    )
    p.add_argument(
        "--password",
        help="at least 8 characters (asked for on a terminal, else read from standard input)",
    )
    p = users.add("list", cmd_users_list, "list logins with their homes and roles")
    p.add_argument("--json", action="store_true", help="print them as JSON")
    p = users.add(
        "disable",
        cmd_users_disable,
        "stop a login from signing in; its unexpired tokens open nothing either",
    )
    p.add_argument("--username", required=True, help="the login to disable")
    p.add_argument("--enable", action="store_true", help="enable it again instead")
    p = users.add("passwd", cmd_users_passwd, "set a new password for a login")
    p.add_argument("--username", required=True, help="the login whose password changes")
    p.add_argument(
        "--password",
        help="the new password, at least 8 characters (asked for when omitted)",
    )
    p = users.add(
        "remove",
        cmd_users_remove,
        "delete a login and its memberships (refused while it is a home's only owner)",
    )
    p.add_argument("--username", required=True, help="the login to delete")

    homes = commands.group("homes", "manage homes: add, list, remove")
    p = homes.add("add", cmd_homes_add, "create a home owned by a user")
    p.add_argument("--home", required=True, help="home id: 1-64 letters, digits, _ or -")
    p.add_argument("--owner", required=True, help="username of the owner")
    p.add_argument("--name", help="display name [the home id]")
    p = homes.add("list", cmd_homes_list, "list homes with owners, member and hub login counts")
    p.add_argument("--json", action="store_true", help="print them as JSON")
    p = homes.add(
        "remove",
        cmd_homes_remove,
        "delete a home: its devices and state (tombstones on the compacted topics), "
        "documents, members and hub logins; other homes are not touched",
    )
    p.add_argument("--home", required=True, help="the home to delete")
    p.add_argument("--yes", action="store_true", help="really do it (there is no undo)")

    hubs = commands.group("hubs", "manage hub MQTT logins: add, list, rotate, revoke")
    p = hubs.add(
        "add", cmd_hubs_add, "create MQTT credentials for the hub of a home; prints them as JSON"
    )
    p.add_argument("--home", required=True, help="the home whose hub gets the login")
    p.add_argument(
        "--cert",
        action="store_true",
        help="an X.509 client certificate signed by the stack's CA instead of a password "
        "(its key is printed once); the hub connects to HOMESTREAM_MQTT_CERT_PORT with it",
    )
    p = hubs.add("list", cmd_hubs_list, "list hub logins (never their passwords)")
    p.add_argument("--home", help="only this home's")
    p.add_argument("--json", action="store_true", help="print them as JSON")
    p = hubs.add(
        "rotate",
        cmd_hubs_rotate,
        "give a hub login a new password (printed once, as JSON); the broker disconnects "
        "the hub until it uses the new one",
    )
    p.add_argument("--username", required=True, help="the hub login, e.g. hub-home1-a1b2c3")
    p = hubs.add(
        "revoke",
        cmd_hubs_revoke,
        "revoke a hub login: the broker disconnects the hub at once and refuses it from then on",
    )
    p.add_argument("--username", required=True, help="the hub login, e.g. hub-home1-a1b2c3")
