"""The read-only PostgreSQL role ``analyst``: the history views and nothing else.

Created (or its password set again) by ``homestream up`` / ``init`` with the password from
the secrets file; ``homestream sql`` opens psql as it. The views read the tables with their
owner's rights, so the role needs no grant on any table (docs/history.md).
"""

from __future__ import annotations

import psycopg
from psycopg import sql

ANALYST_ROLE = "analyst"

# The documented analyst views (docs/history.md), on both engines; a test checks this is
# every view of the schema but TimescaleDB's continuous aggregates themselves.
ANALYST_VIEWS = (
    "state_history",
    "state_rollup_1m",
    "state_rollup_1h",
    "command_outcomes",
    "device_uptime",
    "device_events",
    "notifications",
    "devices",
    "commands_sent",
)


def ensure_analyst(conn: psycopg.Connection, password: str) -> None:
    """The role exists, logs in with ``password`` and may SELECT the views (commits)."""
    role = sql.Identifier(ANALYST_ROLE)
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (ANALYST_ROLE,)).fetchone()
    verb = "ALTER" if exists else "CREATE"
    # A password cannot be a bind parameter in DDL: quoted as a literal instead.
    conn.execute(
        sql.SQL("{} ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}").format(
            sql.SQL(verb), role, sql.Literal(password)
        )
    )
    conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(role))
    conn.execute(
        sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(sql.Identifier(conn.info.dbname), role)
    )
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA history TO {}").format(role))
    views = sql.SQL(", ").join(sql.Identifier("history", v) for v in ANALYST_VIEWS)
    conn.execute(sql.SQL("GRANT SELECT ON {} TO {}").format(views, role))
    conn.commit()
