# ruff: noqa: F811  (the fixtures sinks and producer, imported from test_history_sink)
"""What makes each history engine what it is, through the real sink (issue #17).

Every test runs once per engine (tests/conftest.py's history_env): the test stack's main
database on TimescaleDB, and a second database on native partitioning.

- Roll-ups agree with the raw rows: on TimescaleDB with real-time aggregation before any
  refresh, after a refresh, and after late rows landed in buckets already materialised
  (the refresh policy's job folds them in); natively, at once.
- TimescaleDB's compression policy job compresses the old chunks, queries over them return
  the same rows, and a replay into compressed chunks doubles nothing.
- Retention drops what is older than the setting (policy job / history.apply_retention).
- A hub time far in the future is clamped to the receive time and flagged.
- The analyst role reads the views (every example query of README and docs/history.md) and
  nothing else; `homestream sql` is psql as that role.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import psycopg
import pytest

from runtime.secrets import load_secrets
from sinks.history_schema import engine
from stores import db
from stores.analyst import ANALYST_VIEWS
from tests.integration.test_history_sink import (  # noqa: F401
    _until,
    count,
    doc_queries,
    producer,
    sinks,
    state_rows,
)
from topics import catalogue as t

pytestmark = pytest.mark.integration

HOUR = 3_600_000
DAY = 24 * HOUR


@pytest.fixture
def settings(history_settings):
    return history_settings


@pytest.fixture
def eng(settings) -> str:
    with db.connect(settings) as conn:
        return engine(conn)


def send(producer, home, device, version, ts, value, accepted=None) -> None:
    producer.send(
        t.STATE_CHANGES,
        "StateChange",
        home,
        ts=ts,
        device_id=device,
        version=version,
        changed={"temperature": value},
        reported={"temperature": value},
        accepted_at=accepted or int(time.time() * 1000),
    )


def autocommit(settings) -> psycopg.Connection:
    return db.connect(settings, autocommit=True)


def run_job(settings, proc: str, relation: str) -> None:
    """Run a TimescaleDB policy's background job now (the job, not just its creation)."""
    with autocommit(settings) as conn:
        row = conn.execute(
            "SELECT j.job_id FROM timescaledb_information.jobs j"
            " LEFT JOIN timescaledb_information.continuous_aggregates c"
            "   ON c.materialization_hypertable_name = j.hypertable_name"
            " WHERE j.proc_name = %s AND (j.hypertable_name = %s OR c.view_name = %s)",
            (proc, relation, relation),
        ).fetchone()
        assert row, f"no {proc} job for {relation}"
        conn.execute("CALL run_job(%s)", (row[0],))


ROLLUP_VS_RAW = """
WITH raw AS (
    SELECT date_trunc(%(unit)s, time, 'UTC') AS bucket, device_id, count(*) AS samples,
           sum(value_num) AS sum_value, min(value_num) AS min_value, max(value_num) AS max_value
    FROM history.state_history
    WHERE home_id = %(home)s AND kind = 'reported' AND value_num IS NOT NULL
    GROUP BY 1, 2
), agg AS (
    SELECT bucket, device_id, samples, sum_value, min_value, max_value
    FROM history.{view} WHERE home_id = %(home)s
)
SELECT count(*) FROM (
    (SELECT * FROM raw EXCEPT SELECT * FROM agg)
    UNION ALL
    (SELECT * FROM agg EXCEPT SELECT * FROM raw)
) diff
"""


def disagreements(settings, home: str) -> tuple[int, int]:
    """Buckets where each roll-up differs from the raw rows (0, 0: they agree)."""
    out = []
    for unit, view in (("minute", "state_rollup_1m"), ("hour", "state_rollup_1h")):
        with db.connect(settings) as conn:
            row = conn.execute(
                ROLLUP_VS_RAW.replace("{view}", view), {"unit": unit, "home": home}
            ).fetchone()
            out.append(int(row[0]) if row else -1)
    return out[0], out[1]


@pytest.fixture
def paused_refresh(settings, eng) -> Iterator[None]:
    """TimescaleDB's refresh policies off during the test, so it decides when they run."""
    if eng != "timescaledb":
        yield
        return
    with autocommit(settings) as conn:
        jobs = [
            r[0]
            for r in conn.execute(
                "SELECT job_id FROM timescaledb_information.jobs"
                " WHERE proc_name = 'policy_refresh_continuous_aggregate'"
            )
        ]
        for job in jobs:
            conn.execute("SELECT alter_job(%s, scheduled => false)", (job,))
    try:
        yield
    finally:
        with autocommit(settings) as conn:
            for job in jobs:
                conn.execute("SELECT alter_job(%s, scheduled => true)", (job,))


def test_rollups_agree_with_the_raw_rows_and_fold_in_late_ones(
    settings, sinks, producer, eng, paused_refresh
):
    home = f"eng-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    sinks(f"test-engines-{uuid.uuid4().hex[:6]}", "e1")
    # 1. Readings of the last seconds (a hub clock a little ahead): newer than any refresh,
    #    so TimescaleDB shows them by real-time aggregation.
    for i in range(12):
        send(producer, home, "thermo", i + 1, now + 5_000 + i * 10_000, 18.0 + i % 5)
    producer.flush()
    assert _until(lambda: state_rows(settings, home) == 12, 60)
    assert disagreements(settings, home) == (0, 0)

    # 2. Six hours of history, then a refresh (as the policies do) materialises them.
    for i in range(36):
        send(producer, home, "thermo", 100 + i, now - 6 * HOUR + i * 600_000, 18.0 + i % 7)
    producer.flush()
    assert _until(lambda: state_rows(settings, home) == 48, 60)
    if eng == "timescaledb":
        with autocommit(settings) as conn:
            for view in ("history.rollup_1m", "history.rollup_1h"):
                conn.execute("CALL refresh_continuous_aggregate(%s, NULL, NULL)", (view,))
            (mat,) = conn.execute(
                "SELECT format('%I.%I', materialization_hypertable_schema,"
                " materialization_hypertable_name)"
                " FROM timescaledb_information.continuous_aggregates WHERE view_name = 'rollup_1h'"
            ).fetchone()
            materialised = conn.execute(
                f"SELECT count(*) FROM {mat} WHERE home_id = %s", (home,)
            ).fetchone()
        assert materialised and materialised[0] >= 5  # the refresh really materialised
    assert disagreements(settings, home) == (0, 0)

    # 3. Late reports (a hub's outbox, hours later) into buckets already materialised:
    #    stale until the refresh policy's job runs, which folds them in.
    for i in range(6):
        send(producer, home, "thermo", 200 + i, now - 5 * HOUR + i * 60_000 + 7, 30.0 + i)
    producer.flush()
    assert _until(lambda: state_rows(settings, home) == 54, 60)
    if eng == "timescaledb":
        assert disagreements(settings, home) != (0, 0)
        run_job(settings, "policy_refresh_continuous_aggregate", "rollup_1m")
        run_job(settings, "policy_refresh_continuous_aggregate", "rollup_1h")
    assert disagreements(settings, home) == (0, 0)


def test_compression_job_compresses_old_chunks_and_a_replay_doubles_nothing(
    settings,
    sinks,
    producer,
    eng,
):
    if eng != "timescaledb":
        pytest.skip("compression is TimescaleDB's")
    home = f"eng-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    sinks(f"test-engines-{uuid.uuid4().hex[:6]}", "c1")
    for i in range(50):
        send(producer, home, f"d{i % 5}", i + 1, now - 10 * DAY + i * 1000, float(i))
    producer.flush()
    assert _until(lambda: state_rows(settings, home) == 50, 60)
    query = (
        "SELECT device_id, version, time, value_num, accepted_at FROM history.state_history"
        " WHERE home_id = %s ORDER BY device_id, version"
    )
    with db.connect(settings) as conn:
        before = conn.execute(query, (home,)).fetchall()

    run_job(settings, "policy_compression", "state_changes")
    with db.connect(settings) as conn:
        (compressed,) = conn.execute(
            "SELECT bool_and(c.is_compressed) FROM timescaledb_information.chunks c"
            " WHERE c.hypertable_schema = 'history' AND c.hypertable_name = 'state_changes'"
            "   AND c.range_start <= to_timestamp(%s / 1000.0)"
            "   AND c.range_end > to_timestamp(%s / 1000.0)",
            (now - 10 * DAY, now - 10 * DAY),
        ).fetchone()
        assert compressed is True
        assert conn.execute(query, (home,)).fetchall() == before

    # A second sink group re-reads the whole topic: its rows in compressed chunks are skipped.
    other = sinks(f"test-engines-{uuid.uuid4().hex[:6]}", "c2")
    assert _until(lambda: other.metrics().get("duplicates_state_changes", 0) >= 50, 90), (
        other.tail()
    )
    with db.connect(settings) as conn:
        assert conn.execute(query, (home,)).fetchall() == before


def test_retention_drops_what_is_older_than_the_setting(settings, sinks, producer, eng):
    home = f"eng-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    sinks(f"test-engines-{uuid.uuid4().hex[:6]}", "r1")
    old = now - 100 * DAY  # received then too (a replayed archive): not clamped
    for i in range(5):
        send(producer, home, "thermo", i + 1, old + i * 1000, 20.0, accepted=old + i * 1000)
    send(producer, home, "thermo", 6, now - HOUR, 21.0)
    producer.flush()
    assert _until(lambda: state_rows(settings, home) == 6, 60)

    if eng == "timescaledb":
        run_job(settings, "policy_retention", "state_changes")
    else:
        with db.connect(settings) as conn:
            conn.execute("SELECT history.apply_retention()")
            conn.commit()
    assert state_rows(settings, home) == 1
    assert (
        count(
            settings,
            "SELECT count(*) FROM history.state_history WHERE home_id = %s AND time < now()"
            " - interval '90 days'",
            home,
        )
        == 0
    )


def test_a_hub_time_far_off_is_clamped_to_the_receive_time_and_flagged(
    settings,
    sinks,
    producer,
):
    home = f"eng-{uuid.uuid4().hex[:8]}"
    now = int(time.time() * 1000)
    sinks(f"test-engines-{uuid.uuid4().hex[:6]}", "t1")
    send(producer, home, "thermo", 1, now + 3 * DAY, 20.0, accepted=now)  # a clock days ahead
    send(producer, home, "thermo", 2, now - 20 * 60_000, 21.0, accepted=now)  # 20 min late
    producer.flush()
    assert _until(lambda: state_rows(settings, home) == 2, 60)
    with db.connect(settings) as conn:
        rows = conn.execute(
            "SELECT version, extract(epoch FROM time) * 1000, extract(epoch FROM accepted_at)"
            " * 1000, extract(epoch FROM clamped_from) * 1000 FROM history.state_history"
            " WHERE home_id = %s ORDER BY version",
            (home,),
        ).fetchall()
    got = [(v, round(tm), round(acc), None if c is None else round(c)) for v, tm, acc, c in rows]
    assert got == [(1, now, now, now + 3 * DAY), (2, now - 20 * 60_000, now, None)]


def analyst(settings) -> psycopg.Connection:
    return psycopg.connect(
        host=settings.host,
        port=settings.ports.postgres,
        dbname=settings.pg_database,
        user="analyst",
        password=load_secrets(settings).analyst_password,
        connect_timeout=5,
    )


def test_the_analyst_reads_the_views_and_nothing_else(settings, history_env, run_cli):
    queries = doc_queries()
    with db.connect(settings) as conn:
        views = {
            r[0]
            for r in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'history' AND c.relkind = 'v'"
                " AND c.relname NOT IN ('rollup_1m', 'rollup_1h')"
            )
        }
    assert views == set(ANALYST_VIEWS)  # a new view is granted, or this says so
    with analyst(settings) as conn:
        for view in ANALYST_VIEWS:
            conn.execute(f"SELECT * FROM history.{view} LIMIT 1").fetchall()
        # Every example query of README and docs/history.md, as the analyst.
        for sql in queries:
            conn.execute(sql).fetchall()
        conn.rollback()
        for forbidden in (
            "SELECT * FROM history.state_changes LIMIT 1",
            "SELECT * FROM users LIMIT 1",
            "SELECT * FROM history.device_registry LIMIT 1",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(forbidden)
            conn.rollback()
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TEMP TABLE x (a int)")
        conn.rollback()

    proc = run_cli(
        "sql",
        "--",
        "-X",
        "-A",
        "-t",
        "-c",
        "SELECT current_user, current_database(), count(*) >= 0 FROM history.state_history",
        env=history_env,
    )
    assert proc.stdout.strip() == f"analyst|{settings.pg_database}|t"
    denied = run_cli("sql", "--", "-X", "-c", "SELECT * FROM users", env=history_env, check=False)
    assert denied.returncode != 0 and "permission denied" in denied.stderr
