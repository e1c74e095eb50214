"""Users, homes, memberships and hub MQTT credentials (CONTRACT.md section 1)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

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
    row = conn.execute(
        "SELECT password_hash FROM users WHERE username = %s", (username,)
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
    row = conn.execute(
        "SELECT role FROM home_members WHERE home_id = %s AND username = %s", (home_id, username)
    ).fetchone()
    return row[0] if row else None


def add_hub(conn: psycopg.Connection, home_id: str) -> HubCredentials:
    """New MQTT login for a hub of ``home_id``. The password is shown once, stored hashed."""
    validate_home_id(home_id)
    with conn.transaction():
        if conn.execute("SELECT 1 FROM homes WHERE home_id = %s", (home_id,)).fetchone() is None:
            raise AccountError(
                f"home {home_id!r} does not exist: create it first with "
                f"`homestream homes add --home {home_id} --owner <user>`"
            )
        username = f"hub-{home_id}-{secrets.token_hex(3)}"
        password = secrets.token_urlsafe(24)
        conn.execute(
            "INSERT INTO hub_credentials (username, home_id, password_hash) VALUES (%s, %s, %s)",
            (username, home_id, hash_password(password)),
        )
    return HubCredentials(username=username, password=password, home_id=home_id)


def active_hub_logins(conn: psycopg.Connection) -> list[HubLogin]:
    rows = conn.execute(
        "SELECT username, home_id, password_hash FROM hub_credentials "
        "WHERE revoked_at IS NULL ORDER BY username"
    ).fetchall()
    return [HubLogin(username=u, home_id=h, password_hash=p) for u, h, p in rows]
