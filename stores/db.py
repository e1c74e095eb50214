"""PostgreSQL connections and versioned schema migrations.

Migrations are ``stores/migrations/NNNN_name.sql`` files applied in order, each in
its own transaction, and recorded in ``schema_migrations``. An advisory lock keeps two
processes from migrating at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from runtime.config import Settings

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_LOCK_ID = 0x686F6D65  # "home"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class DatabaseUnavailable(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def connect(settings: Settings, **kwargs) -> psycopg.Connection:
    try:
        return psycopg.connect(settings.pg_dsn(), **kwargs)
    except psycopg.OperationalError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnavailable(
            f"PostgreSQL at {settings.host}:{settings.ports.postgres} is not reachable ({first}). "
            "Start the stack with `homestream up`, or point HOMESTREAM_PG_DSN at your server."
        ) from None


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    found = []
    for path in sorted(directory.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise ValueError(f"migration file {path.name} must be named NNNN_name.sql")
        found.append(Migration(int(m.group(1)), m.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version number in {directory}")
    return found


def migrate(conn: psycopg.Connection, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations; returns the ones applied now."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    conn.commit()
    applied: list[Migration] = []
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_ID,))
    try:
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        conn.commit()
        for mig in discover(directory):
            if mig.version in done:
                continue
            with conn.transaction():
                conn.execute(mig.path.read_text())
                conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                    (mig.version, mig.name),
                )
            applied.append(mig)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_ID,))
        conn.commit()
    return applied
