"""`homestream bench history-engines`: the history's two storage engines side by side.

For each engine (TimescaleDB when the server has it, and native partitioning) a database of
its own is made on the running stack's PostgreSQL (``homestream_bench_<engine>``, the
history migrations applied, dropped afterwards unless ``keep``), then:

1. rows/s into it from one history sink process (``bench.sink_writes``: a Kafka backlog of
   StateChanges, timed from the sink's own counters);
2. ``rows`` state rows spread over ``days`` days (``homes`` x ``devices`` thermometers, one
   reading every few minutes each) go through the sink's own merge
   (``history.merge_stage()``, in transactions of 1M rows; the native roll-ups are
   maintained by it); on TimescaleDB the continuous aggregates are refreshed (timed);
3. the on-disk size of ``history.state_changes`` (tables, indexes, TOAST), and on
   TimescaleDB the size after compressing every chunk (timed);
4. the 30-day hourly roll-up of one home (``history.state_rollup_1h``, per device and hour:
   the README's query shape), and the same computed from the raw rows, each run ``repeat``
   times (after ANALYZE): median and max of the server computing it in full (the rows are
   counted and summed, not sent: the client's decoding is not the engine's time).
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from runtime.config import Settings

Say = Callable[[str], None]
STEP = 1_000_000  # rows per fill transaction

ROLLUP_QUERY = """
SELECT bucket, device_id, sum(samples) AS samples, sum(sum_value) / sum(samples) AS avg,
       min(min_value) AS min, max(max_value) AS max
FROM history.state_rollup_1h
WHERE home_id = %(home)s AND attribute = 'temperature'
  AND bucket >= %(start)s AND bucket < %(end)s
GROUP BY 1, 2 ORDER BY 1, 2
"""

RAW_QUERY = """
SELECT date_trunc('hour', time, 'UTC') AS bucket, device_id, count(*) AS samples,
       avg(value_num) AS avg, min(value_num) AS min, max(value_num) AS max
FROM history.state_history
WHERE home_id = %(home)s AND attribute = 'temperature' AND kind = 'reported'
  AND time >= %(start)s AND time < %(end)s
GROUP BY 1, 2 ORDER BY 1, 2
"""


@dataclass
class EngineResult:
    engine: str
    database: str
    sink_rows_per_s: float | None
    rows: int
    days: int
    fill_seconds: float
    fill_rows_per_s: float
    bytes_before: int
    bytes_after_compression: int | None
    compress_seconds: float | None
    refresh_seconds: float | None
    rollup_rows: int
    rollup_ms_median: float
    rollup_ms_max: float
    raw_rollup_ms_median: float
    raw_rollup_ms_max: float
    notes: list[str] = field(default_factory=list)


def run_bench(
    settings: Settings,
    *,
    rows: int = 10_000_000,
    days: int = 35,
    homes: int = 100,
    devices: int = 20,
    repeat: int = 15,
    sink_changes: int = 100_000,
    engines: tuple[str, ...] = ("timescaledb", "native"),
    keep: bool = False,
    say: Say = print,
) -> list[EngineResult]:
    out = []
    for engine in engines:
        database = f"homestream_bench_{engine}"
        found = _make_database(settings, database, engine, say)
        if found != engine:
            say(f"{database}: the server gives {found}, not {engine}: skipped")
            _drop_database(settings, database)
            continue
        try:
            out.append(
                _bench_engine(
                    settings,
                    database,
                    engine,
                    rows=rows,
                    days=days,
                    homes=homes,
                    devices=devices,
                    repeat=repeat,
                    sink_changes=sink_changes,
                    say=say,
                )
            )
        finally:
            if not keep:
                _drop_database(settings, database)
    return out


def _admin(settings: Settings) -> Any:
    import psycopg

    return psycopg.connect(settings.pg_dsn("postgres"), autocommit=True)


def _make_database(settings: Settings, database: str, engine: str, say: Say) -> str:
    """A fresh database with the migrations applied; the engine the migration chose."""
    from sinks.history_schema import engine as engine_of
    from stores import db

    _drop_database(settings, database)
    with _admin(settings) as conn:
        conn.execute(f'CREATE DATABASE "{database}"')
        if engine == "native":
            conn.execute(f"ALTER DATABASE \"{database}\" SET homestream.history_engine = 'native'")
    with db.connect(settings.model_copy(update={"pg_database": database})) as conn:
        db.migrate(conn)
        found = engine_of(conn)
    say(f"{database}: created, history on {found}")
    return found


def _drop_database(settings: Settings, database: str) -> None:
    with _admin(settings) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _bench_engine(
    settings: Settings,
    database: str,
    engine: str,
    *,
    rows: int,
    days: int,
    homes: int,
    devices: int,
    repeat: int,
    sink_changes: int,
    say: Say,
) -> EngineResult:
    import datetime as dt

    from stores import db

    target = settings.model_copy(update={"pg_database": database})
    notes: list[str] = []
    sink_rate: float | None = None
    if sink_changes:
        from bench.sink_writes import run_bench as sink_bench

        say(f"[{engine}] one sink process: {sink_changes:,} changes x 3 attributes")
        sink = sink_bench(
            settings,
            changes=sink_changes,
            attributes=3,
            rate=1_000,
            seconds=3.0,
            say=lambda line: say(f"  {line}"),
            database=database,
        )
        sink_rate = sink.rows_per_s

    end = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    start = end - dt.timedelta(days=days)
    series = homes * devices
    per_series = max(1, rows // series)
    step_ms = int(days * 86_400_000 / per_series)
    say(
        f"[{engine}] filling {rows:,} rows: {homes} homes x {devices} devices, one reading "
        f"every {step_ms / 60_000:.1f} min over {days} days"
    )
    t0 = time.monotonic()
    with db.connect(target) as conn:
        conn.execute("SET client_min_messages = warning")
        if engine == "native":
            conn.execute(
                "SELECT history.ensure_partitions(array(SELECT generate_series(%s::date,"
                " %s::date, '1 day')::date))",
                (start.date(), end.date()),
            )
            conn.commit()
        conn.execute("SELECT history.open_stage()")
        conn.commit()
        for lo in range(0, rows, STEP):
            hi = min(rows, lo + STEP)
            conn.execute(
                """
                INSERT INTO stage_state (time_ms, home_id, device_id, kind, attribute, value,
                    value_num, value_text, version, source, command_id, accepted_ms,
                    event_id, clamped_ms)
                SELECT t, 'bench-home-' || (i %% %(series)s) / %(devices)s,
                       'thermo-' || (i %% %(series)s) %% %(devices)s, 'reported',
                       'temperature', v::text, v, NULL, i / %(series)s + 1, 'report', NULL,
                       t, md5(i::text)::uuid, NULL
                FROM generate_series(%(lo)s::bigint, %(hi)s::bigint - 1) i,
                     LATERAL (SELECT %(start)s::bigint + (i / %(series)s) * %(step)s
                                     + (i %% %(series)s) * 7 AS t,
                                     round((18 + 6 * sin(i / 5000.0)
                                            + (i %% 13) / 10.0)::numeric, 2)::float8 AS v) x
                """,
                {
                    "series": series,
                    "devices": devices,
                    "lo": lo,
                    "hi": hi,
                    "start": int(start.timestamp() * 1000),
                    "step": step_ms,
                },
            )
            conn.execute("SELECT * FROM history.merge_stage()").fetchall()
            conn.commit()
            say(f"  {hi:,} rows ({hi / (time.monotonic() - t0):,.0f} rows/s)")
    fill = time.monotonic() - t0

    refresh: float | None = None
    compress: float | None = None
    after: int | None = None
    with db.connect(target, autocommit=True) as conn:
        conn.execute("SET client_min_messages = warning")
        if engine == "timescaledb":
            t0 = time.monotonic()
            for view in ("history.rollup_1h", "history.rollup_1m"):
                conn.execute("CALL refresh_continuous_aggregate(%s, NULL, NULL)", (view,))
            refresh = time.monotonic() - t0
            say(f"  continuous aggregates refreshed in {refresh:.1f} s")
        conn.execute("VACUUM ANALYZE history.state_changes")
        before = _size(conn, engine)
        say(f"  state_changes on disk: {before / 1e6:,.0f} MB")
        if engine == "timescaledb":
            t0 = time.monotonic()
            chunks = conn.execute(
                "SELECT count(compress_chunk(c, if_not_compressed => true))"
                " FROM show_chunks('history.state_changes') c"
            ).fetchone()
            compress = time.monotonic() - t0
            conn.execute("VACUUM ANALYZE history.state_changes")
            after = _size(conn, engine)
            say(
                f"  compressed {chunks[0] if chunks else 0} chunks in {compress:.1f} s: "
                f"{after / 1e6:,.0f} MB"
            )
        params = {"home": "bench-home-7", "start": end - dt.timedelta(days=30), "end": end}
        conn.execute("ANALYZE")  # as autovacuum would have by then
        rollup_rows, rollup = _timed(conn, ROLLUP_QUERY, params, repeat)
        raw_rows, raw = _timed(conn, RAW_QUERY, params, repeat)
        if raw_rows != rollup_rows:
            notes.append(f"raw query gave {raw_rows} rows, roll-up {rollup_rows}")
    say(
        f"  30-day hourly roll-up of one home: {rollup_rows:,} rows, median "
        f"{statistics.median(rollup):.1f} ms (from raw rows {statistics.median(raw):.1f} ms)"
    )
    return EngineResult(
        engine=engine,
        database=database,
        sink_rows_per_s=sink_rate,
        rows=rows,
        days=days,
        fill_seconds=round(fill, 1),
        fill_rows_per_s=round(rows / fill),
        bytes_before=before,
        bytes_after_compression=after,
        compress_seconds=None if compress is None else round(compress, 1),
        refresh_seconds=None if refresh is None else round(refresh, 1),
        rollup_rows=rollup_rows,
        rollup_ms_median=round(statistics.median(rollup), 2),
        rollup_ms_max=round(max(rollup), 2),
        raw_rollup_ms_median=round(statistics.median(raw), 2),
        raw_rollup_ms_max=round(max(raw), 2),
        notes=notes,
    )


def _size(conn: Any, engine: str) -> int:
    """Bytes of history.state_changes: heap, indexes and TOAST of every chunk/partition
    (compressed chunks included)."""
    if engine == "timescaledb":
        row = conn.execute("SELECT hypertable_size('history.state_changes')").fetchone()
    else:
        row = conn.execute(
            "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits"
            " WHERE inhparent = 'history.state_changes'::regclass"
        ).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _timed(conn: Any, sql: str, params: dict[str, Any], repeat: int) -> tuple[int, list[float]]:
    """Rows and times (ms) of the query, computed in full by the server but returned as one
    row: the engine's time, not the client's decoding of thousands of rows."""
    wrapped = f"SELECT count(*), sum(avg) FROM ({sql}) q"
    n, times = 0, []
    for _ in range(repeat + 1):  # the first run warms the cache and is not counted
        t0 = time.perf_counter()
        row = conn.execute(wrapped, params).fetchone()
        times.append((time.perf_counter() - t0) * 1000)
        n = int(row[0]) if row else 0
    return n, times[1:]


def print_results(results: list[EngineResult], as_json: bool = False) -> None:
    if as_json:
        print(json.dumps([asdict(r) for r in results], indent=2))
        return
    for r in results:
        print(f"history on {r.engine} ({r.database})")
        if r.sink_rows_per_s is not None:
            print(f"  one sink process: {r.sink_rows_per_s:,.0f} rows/s")
        print(
            f"  {r.rows:,} rows over {r.days} days through history.merge_stage(): "
            f"{r.fill_seconds:.0f} s ({r.fill_rows_per_s:,.0f} rows/s)"
        )
        size = f"  state_changes on disk: {r.bytes_before / 1e6:,.0f} MB"
        if r.bytes_after_compression is not None:
            ratio = r.bytes_before / max(1, r.bytes_after_compression)
            size += (
                f", compressed {r.bytes_after_compression / 1e6:,.0f} MB ({ratio:.1f}x, "
                f"{r.compress_seconds:.0f} s)"
            )
        print(size)
        if r.refresh_seconds is not None:
            print(f"  continuous aggregates refreshed in {r.refresh_seconds:.0f} s")
        print(
            f"  30-day hourly roll-up of one home ({r.rollup_rows:,} rows): median "
            f"{r.rollup_ms_median:.1f} ms, max {r.rollup_ms_max:.1f} ms; from raw rows "
            f"{r.raw_rollup_ms_median:.1f} ms, max {r.raw_rollup_ms_max:.1f} ms"
        )
        for note in r.notes:
            print(f"  note: {note}")
