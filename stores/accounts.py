"""Users, homes, memberships and hub MQTT credentials (CONTRACT.md section 1)."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from domain import ids
from stores.mosquitto_auth import HubLogin, hash_password

ROLES = ("owner", "admin", "member", "guest")
MIN_PASSWORD = 8

_hasher = PasswordHasher()


class AccountError(ValueError):
    """Bad input or a conflict; the message says what to change."""


@dataclass(frozen=True)
class HubCredentials:
    username: str
    password: str
    home_id: str


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def validate_username(username: str) -> str:
    if ids.username_problem(username) is not None:
        raise AccountError(
            f"username {username!r} is not allowed: 3-64 characters, letters, digits and "
            "_ . @ -, starting with a letter or digit"
        )
    return username


def validate_home_id(home_id: str) -> str:
    if ids.home_id_problem(home_id) is not None:
        raise AccountError(
            f"home id {home_id!r} is not allowed: 1-64 characters, letters, digits, _ and -, "
            "starting with a letter or digit (it becomes an MQTT topic level)"
        )
    return home_id


def validate_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise AccountError(f"password too short: at least {MIN_PASSWORD} characters")
    return password


def hash_user_password(password: str) -> str:
    return _hasher.hash(password)


def check_user_password(password: str, password_hash: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def add_user(conn: psycopg.Connection, username: str, password: str) -> None:
    validate_username(username)
    validate_password(password)
    with conn.transaction():
        cur = conn.execute(
            "INSERT INTO users (username, password_hash) VALUES (%s, %s) "
            "ON CONFLICT (username) DO NOTHING",
            (username, hash_user_password(password)),
        )
        if cur.rowcount == 0:
            raise AccountError(f"user {username!r} exists already")


def authenticate(conn: psycopg.Connection, username: str, password: str) -> bool:
    """A disabled login never signs in (the same argon2 work is done either way)."""
    row = conn.execute(
        "SELECT password_hash FROM users WHERE username = %s AND disabled_at IS NULL",
        (username,),
    ).fetchone()
    if row is None:
        _hasher.hash(password)  # same work either way: no user-existence timing oracle
        return False
    return check_user_password(password, row[0])


def add_home(conn: psycopg.Connection, home_id: str, owner: str, name: str | None = None) -> None:
    validate_home_id(home_id)
    with conn.transaction():
        if conn.execute("SELECT 1 FROM users WHERE username = %s", (owner,)).fetchone() is None:
            raise AccountError(
                f"owner {owner!r} does not exist: create it first with "
                f"`homestream users add --username {owner} --password ...`"
            )
        cur = conn.execute(
            "INSERT INTO homes (home_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (home_id, name or home_id),
        )
        if cur.rowcount == 0:
            raise AccountError(f"home {home_id!r} exists already")
        conn.execute(
            "INSERT INTO home_members (home_id, username, role) VALUES (%s, %s, 'owner')",
            (home_id, owner),
        )


def set_member(conn: psycopg.Connection, home_id: str, username: str, role: str) -> None:
    if role not in ROLES:
        raise AccountError(f"role {role!r} is not one of {', '.join(ROLES)}")
    with conn.transaction():
        conn.execute(
            "INSERT INTO home_members (home_id, username, role) VALUES (%s, %s, %s) "
            "ON CONFLICT (home_id, username) DO UPDATE SET role = EXCLUDED.role",
            (home_id, username, role),
        )


def role_of(conn: psycopg.Connection, home_id: str, username: str) -> str | None:
    """The member's role; None for a disabled login too, so its unexpired tokens open
    nothing."""
    row = conn.execute(
        "SELECT m.role FROM home_members m JOIN users u USING (username)"
        " WHERE m.home_id = %s AND m.username = %s AND u.disabled_at IS NULL",
        (home_id, username),
    ).fetchone()
    return row[0] if row else None


def _user_must_exist(conn: psycopg.Connection, username: str) -> None:
    if conn.execute("SELECT 1 FROM users WHERE username = %s", (username,)).fetchone() is None:
        raise AccountError(f"user {username!r} not found: `homestream users list` shows them")


def list_users(conn: psycopg.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT u.username, u.created_at, u.disabled_at,"
        " coalesce(json_agg(json_build_object('home_id', m.home_id, 'role', m.role)"
        "   ORDER BY m.home_id) FILTER (WHERE m.home_id IS NOT NULL), '[]')"
        " FROM users u LEFT JOIN home_members m USING (username)"
        " GROUP BY u.username ORDER BY u.username"
    ).fetchall()
    return [
        {"username": u, "created_at": _iso(c), "disabled": d is not None, "homes": homes}
        for u, c, d, homes in rows
    ]


def set_disabled(conn: psycopg.Connection, username: str, disabled: bool) -> None:
    """Disable (sign-in refused, tokens open nothing) or enable a login again."""
    with conn.transaction():
        _user_must_exist(conn, username)
        conn.execute(
            "UPDATE users SET disabled_at = CASE WHEN %s THEN coalesce(disabled_at, now()) END"
            " WHERE username = %s",
            (disabled, username),
        )


def set_password(conn: psycopg.Connection, username: str, password: str) -> None:
    validate_password(password)
    with conn.transaction():
        _user_must_exist(conn, username)
        conn.execute(
            "UPDATE users SET password_hash = %s WHERE username = %s",
            (hash_user_password(password), username),
        )


def sole_owned_homes(conn: psycopg.Connection, username: str) -> list[str]:
    """Homes whose only owner is ``username``."""
    rows = conn.execute(
        "SELECT home_id FROM home_members WHERE username = %s AND role = 'owner'"
        " AND home_id NOT IN (SELECT home_id FROM home_members"
        "   WHERE role = 'owner' AND username <> %s) ORDER BY home_id",
        (username, username),
    ).fetchall()
    return [r[0] for r in rows]


def remove_user(conn: psycopg.Connection, username: str) -> None:
    """Delete a login and its memberships; refused while it is the only owner of a home."""
    with conn.transaction():
        _user_must_exist(conn, username)
        owned = sole_owned_homes(conn, username)
        if owned:
            raise AccountError(
                f"user {username!r} is the only owner of {', '.join(owned)}: give the home "
                "another owner (PUT /v1/homes/<home>/members/<user> with role owner) or remove it "
                f"(`homestream homes remove --home {owned[0]}`) first"
            )
        conn.execute("DELETE FROM users WHERE username = %s", (username,))


def list_homes(conn: psycopg.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT h.home_id, h.name, h.created_at,"
        " (SELECT coalesce(array_agg(username ORDER BY username), '{}') FROM home_members"
        "   WHERE home_id = h.home_id AND role = 'owner'),"
        " (SELECT count(*) FROM home_members WHERE home_id = h.home_id),"
        " (SELECT count(*) FROM hub_credentials WHERE home_id = h.home_id"
        "   AND revoked_at IS NULL)"
        " FROM homes h ORDER BY h.home_id"
    ).fetchall()
    return [
        {
            "home_id": h,
            "name": n,
            "created_at": _iso(c),
            "owners": list(owners),
            "members": members,
            "hub_logins": hubs,
        }
        for h, n, c, owners, members, hubs in rows
    ]


def home_must_exist(conn: psycopg.Connection, home_id: str) -> None:
    validate_home_id(home_id)
    if conn.execute("SELECT 1 FROM homes WHERE home_id = %s", (home_id,)).fetchone() is None:
        raise AccountError(f"home {home_id!r} not found: `homestream homes list` shows them")


def delete_home(conn: psycopg.Connection, home_id: str) -> None:
    """The home's rows: members, hub logins, documents, overrides, areas, channels go with
    it (ON DELETE CASCADE). Its history stays for analysts (docs/operations.md)."""
    with conn.transaction():
        home_must_exist(conn, home_id)
        conn.execute("DELETE FROM homes WHERE home_id = %s", (home_id,))


def add_hub(
    conn: psycopg.Connection, home_id: str, issue: Callable[[str], int] | None = None
) -> HubCredentials:
    """New MQTT login for a hub of ``home_id``. The password is shown once, stored hashed.
    With ``issue``, a certificate hub instead: ``issue(username)`` makes its certificate
    (CN = the username) and returns its serial; it has no password (returned empty)."""
    validate_home_id(home_id)
    with conn.transaction():
        if conn.execute("SELECT 1 FROM homes WHERE home_id = %s", (home_id,)).fetchone() is None:
            raise AccountError(
                f"home {home_id!r} does not exist: create it first with "
                f"`homestream homes add --home {home_id} --owner <user>`"
            )
        username = f"hub-{home_id}-{secrets.token_hex(3)}"
        if issue is not None:
            conn.execute(
                "INSERT INTO hub_credentials (username, home_id, cert_serial) VALUES (%s, %s, %s)",
                (username, home_id, issue(username)),
            )
            return HubCredentials(username=username, password="", home_id=home_id)
        password = secrets.token_urlsafe(24)
        conn.execute(
            "INSERT INTO hub_credentials (username, home_id, password_hash) VALUES (%s, %s, %s)",
            (username, home_id, hash_password(password)),
        )
    return HubCredentials(username=username, password=password, home_id=home_id)


def list_hubs(conn: psycopg.Connection, home_id: str | None = None) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT username, home_id, created_at, revoked_at FROM hub_credentials"
        " WHERE %s::text IS NULL OR home_id = %s ORDER BY home_id, created_at",
        (home_id, home_id),
    ).fetchall()
    return [
        {
            "username": u,
            "home_id": h,
            "created_at": _iso(c),
            "revoked": r is not None,
            "revoked_at": _iso(r),
        }
        for u, h, c, r in rows
    ]


def _hub_home(conn: psycopg.Connection, username: str, home_id: str | None) -> str:
    row = conn.execute(
        "SELECT home_id, revoked_at FROM hub_credentials WHERE username = %s FOR UPDATE",
        (username,),
    ).fetchone()
    if row is None or (home_id is not None and row[0] != home_id):
        raise AccountError(f"hub login {username!r} not found: `homestream hubs list` shows them")
    if row[1] is not None:
        raise AccountError(
            f"hub login {username!r} is revoked: create a new one with "
            f"`homestream hubs add --home {row[0]}`"
        )
    return str(row[0])


def rotate_hub(
    conn: psycopg.Connection, username: str, home_id: str | None = None
) -> HubCredentials:
    """A new password for a hub login; the old one stops working at the next broker sync."""
    password = secrets.token_urlsafe(24)
    with conn.transaction():
        home = _hub_home(conn, username, home_id)
        cert = conn.execute(
            "SELECT cert_serial FROM hub_credentials WHERE username = %s", (username,)
        ).fetchone()
        if cert is not None and cert[0] is not None:
            raise AccountError(
                f"hub login {username!r} signs in with a certificate, not a password: issue a "
                f"new one with `homestream hubs add --home {home} --cert`, then revoke this one"
            )
        conn.execute(
            "UPDATE hub_credentials SET password_hash = %s WHERE username = %s",
            (hash_password(password), username),
        )
    return HubCredentials(username=username, password=password, home_id=home)


def revoke_hub(conn: psycopg.Connection, username: str, home_id: str | None = None) -> str:
    """Revoke a hub login (kept, marked revoked); returns its home."""
    with conn.transaction():
        home = _hub_home(conn, username, home_id)
        conn.execute(
            "UPDATE hub_credentials SET revoked_at = now() WHERE username = %s", (username,)
        )
    return home


def revoked_certificates(conn: psycopg.Connection) -> list[int]:
    """Serials of the revoked certificate hubs: the broker's CRL."""
    rows = conn.execute(
        "SELECT cert_serial FROM hub_credentials"
        " WHERE cert_serial IS NOT NULL AND revoked_at IS NOT NULL ORDER BY cert_serial"
    ).fetchall()
    return [int(r[0]) for r in rows]


def active_hub_logins(conn: psycopg.Connection) -> list[HubLogin]:
    rows = conn.execute(
        "SELECT username, home_id, password_hash FROM hub_credentials "
        "WHERE revoked_at IS NULL ORDER BY username"
    ).fetchall()
    return [HubLogin(username=u, home_id=h, password_hash=p) for u, h, p in rows]
