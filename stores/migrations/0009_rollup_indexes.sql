-- TimescaleDB's continuous aggregates get the native roll-ups' key as an index (issue #17):
-- a home's (or a device's) buckets over a time range. With only the aggregates' own
-- per-column indexes the planner read every bucket of an attribute and filtered the home
-- (BENCHMARKS.md, the 30-day hourly roll-up). Native roll-up tables have it as their key.
DO $rollup_indexes$
BEGIN
    IF (SELECT value FROM history.meta WHERE key = 'engine') = 'timescaledb' THEN
        CREATE INDEX IF NOT EXISTS rollup_1m_by_series
            ON history.rollup_1m (home_id, device_id, attribute, bucket);
        CREATE INDEX IF NOT EXISTS rollup_1h_by_series
            ON history.rollup_1h (home_id, device_id, attribute, bucket);
    END IF;
END
$rollup_indexes$;
