"""The Python side of the history schema (stores/migrations/0002_history.sql).

The migration holds all DDL, for both engines (TimescaleDB or native partitioning), and
the functions the sink calls: ``history.open_stage()`` (per-connection TEMP staging
tables), ``history.merge_stage()`` (staging -> history tables with ON CONFLICT DO NOTHING,
plus the native roll-ups), ``history.ensure_partitions(days)`` and
``history.apply_retention()``; migration 0007_logbook.sql adds ``_logbook`` twins of
open_stage, merge_stage and apply_retention for the logbook's tables. This module only
names the staging columns for COPY and wraps those calls.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import psycopg

from sinks.history_rows import STAGES

# The COPY statement of each staging table (columns and their order: history_rows.STAGES).
_COPY_SQL = {
    stage: f"COPY {stage} ({', '.join(cols)}) FROM STDIN" for stage, cols in STAGES.items()
}


class SchemaMissing(RuntimeError):
    """The history migration has not been applied to this database."""


def engine(conn: psycopg.Connection) -> str:
    """'timescaledb' or 'native', as the migration chose."""
    try:
        row = conn.execute("SELECT value FROM history.meta WHERE key = 'engine'").fetchone()
    except psycopg.errors.UndefinedTable:
        conn.rollback()
        raise SchemaMissing(
            "the history tables do not exist: apply the migrations (`homestream up` or "
            "`homestream init`)"
        ) from None
    conn.commit()
    return str(row[0]) if row else "native"


def open_stage(conn: psycopg.Connection) -> None:
    conn.execute("SET client_min_messages = warning")
    conn.execute("SELECT history.open_stage()")
    conn.execute("SELECT history.open_stage_logbook()")
    conn.commit()


def ensure_partitions(conn: psycopg.Connection, days: Iterable[dt.date]) -> int:
    """Create the daily partitions of these days (native engine); own transaction."""
    wanted = sorted(set(days))
    if not wanted:
        return 0
    row = conn.execute("SELECT history.ensure_partitions(%s::date[])", (wanted,)).fetchone()
    conn.commit()
    return int(row[0]) if row else 0


def apply_retention(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT history.apply_retention()").fetchone()
    conn.execute("SELECT history.apply_retention_logbook()")
    conn.commit()
    return int(row[0]) if row else 0


def copy_and_merge(
    conn: psycopg.Connection, staged: Mapping[str, Sequence[tuple[Any, ...]]]
) -> dict[str, tuple[int, int]]:
    """COPY the rows into the staging tables and merge them, in the current transaction
    (the caller commits). Returns {table: (staged, inserted)}."""
    with conn.cursor() as cur:
        for stage, rows in staged.items():
            if not rows:
                continue
            with cur.copy(_COPY_SQL[stage]) as copy:
                for row in rows:
                    copy.write_row(row)
        cur.execute(
            "SELECT tbl, staged, inserted FROM history.merge_stage()"
            " UNION ALL SELECT tbl, staged, inserted FROM history.merge_stage_logbook()"
        )
        return {tbl: (int(s), int(i)) for tbl, s, i in cur.fetchall()}
