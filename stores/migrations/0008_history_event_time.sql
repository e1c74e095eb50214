-- (Numbered 0008: 0006 and 0007 went to issue #20 first.) Event time (issue #17, docs/history.md): a state row's time is the hub's ts, a device
-- event's too. A ts far in the future or older than the retention is clamped by the sink
-- (sinks/history_rows.event_time) to the time the cloud received it; clamped_from keeps
-- what the hub sent, so such rows are flagged and nothing is lost.
--
-- Late rows (a hub replaying its outbox after hours offline) land in buckets the
-- continuous aggregates may have materialised already: their refresh policies now cover
-- 80 days back (within the 90-day retention, so dropped chunks never empty the roll-ups),
-- so the next run folds them in; refreshing only re-reads invalidated buckets, so the
-- wider window costs nothing when nothing came late. The native roll-ups were always
-- maintained per inserted row.

ALTER TABLE history.state_changes ADD COLUMN IF NOT EXISTS clamped_from timestamptz;
ALTER TABLE history.device_event_log ADD COLUMN IF NOT EXISTS clamped_from timestamptz;

DO $event_time$
BEGIN
    IF (SELECT value FROM history.meta WHERE key = 'engine') = 'timescaledb' THEN
        PERFORM remove_continuous_aggregate_policy('history.rollup_1m');
        PERFORM remove_continuous_aggregate_policy('history.rollup_1h');
        PERFORM add_continuous_aggregate_policy('history.rollup_1m',
            start_offset => interval '80 days', end_offset => interval '1 minute',
            schedule_interval => interval '1 minute');
        PERFORM add_continuous_aggregate_policy('history.rollup_1h',
            start_offset => interval '80 days', end_offset => interval '1 hour',
            schedule_interval => interval '15 minutes');
    END IF;
END
$event_time$;

-- The staging tables gain clamped_ms (epoch ms the hub sent, when clamped). Dropped and
-- made again so a connection that staged before this migration gets the new shape.
CREATE OR REPLACE FUNCTION history.open_stage() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    DROP TABLE IF EXISTS pg_temp.stage_state, pg_temp.stage_events;
    CREATE TEMP TABLE stage_state (
        time_ms bigint, home_id text, device_id text, kind text, attribute text,
        value text, value_num double precision, value_text text, version bigint,
        source text, command_id text, accepted_ms bigint, event_id uuid, clamped_ms bigint
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE stage_events (
        time_ms bigint, event_id uuid, home_id text, device_id text, event text,
        data text, received_ms bigint, source text, clamped_ms bigint
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_commands (
        time_ms bigint, event_id uuid, home_id text, command_id text, status text,
        reason text, device_id text, group_id text, capability text, command text,
        request_id text, parent_command_id text
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_notifications (
        time_ms bigint, event_id uuid, home_id text, kind text, severity text, title text,
        message text, device_id text, automation_id text, data text
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_availability (
        time_ms bigint, event_id uuid, home_id text, device_id text, online boolean,
        source text
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_devices (
        seq bigint, time_ms bigint, home_id text, device_id text, removed boolean,
        name text, type text, room text, protocol text, manufacturer text, model text,
        capabilities text[], endpoint text, registered_ms bigint
    ) ON COMMIT DELETE ROWS;
END
$$;

-- The state and event parts of history.merge_stage() with clamped_from; the rest as in
-- 0002, which this supersedes.
CREATE OR REPLACE FUNCTION history.merge_stage()
RETURNS TABLE (tbl text, staged bigint, inserted bigint)
LANGUAGE plpgsql AS $$
DECLARE
    native boolean := (SELECT value FROM history.meta WHERE key = 'engine') = 'native';
    n_staged bigint;
    n_inserted bigint;
BEGIN
    SELECT count(*) INTO n_staged FROM stage_state;
    IF n_staged > 0 AND native THEN
        WITH ins AS (
            INSERT INTO history.state_changes (time, home_id, device_id, kind, attribute,
                value, value_num, value_text, version, source, command_id, accepted_at,
                event_id, ingested_at, clamped_from)
            SELECT history.ms(time_ms), home_id, device_id, kind, attribute, value::jsonb,
                value_num, value_text, version, source, command_id, history.ms(accepted_ms),
                event_id, clock_timestamp(), history.ms(clamped_ms)
            FROM stage_state
            ON CONFLICT DO NOTHING
            RETURNING time, home_id, device_id, kind, attribute, value_num
        ), num AS (
            SELECT * FROM ins WHERE kind = 'reported' AND value_num IS NOT NULL
        ), r1m AS (
            INSERT INTO history.rollup_1m AS r
            SELECT date_trunc('minute', time, 'UTC'), home_id, device_id, attribute, count(*),
                   sum(value_num), min(value_num), max(value_num)
            FROM num GROUP BY 1, 2, 3, 4
            ON CONFLICT (home_id, device_id, attribute, bucket) DO UPDATE SET
                samples = r.samples + excluded.samples,
                sum_value = r.sum_value + excluded.sum_value,
                min_value = least(r.min_value, excluded.min_value),
                max_value = greatest(r.max_value, excluded.max_value)
        ), r1h AS (
            INSERT INTO history.rollup_1h AS r
            SELECT date_trunc('hour', time, 'UTC'), home_id, device_id, attribute, count(*),
                   sum(value_num), min(value_num), max(value_num)
            FROM num GROUP BY 1, 2, 3, 4
            ON CONFLICT (home_id, device_id, attribute, bucket) DO UPDATE SET
                samples = r.samples + excluded.samples,
                sum_value = r.sum_value + excluded.sum_value,
                min_value = least(r.min_value, excluded.min_value),
                max_value = greatest(r.max_value, excluded.max_value)
        )
        SELECT count(*) INTO n_inserted FROM ins;
    ELSIF n_staged > 0 THEN
        INSERT INTO history.state_changes (time, home_id, device_id, kind, attribute,
            value, value_num, value_text, version, source, command_id, accepted_at,
            event_id, ingested_at, clamped_from)
        SELECT history.ms(time_ms), home_id, device_id, kind, attribute, value::jsonb,
            value_num, value_text, version, source, command_id, history.ms(accepted_ms),
            event_id, clock_timestamp(), history.ms(clamped_ms)
        FROM stage_state
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS n_inserted = ROW_COUNT;
    ELSE
        n_inserted := 0;
    END IF;
    tbl := 'state_changes'; staged := n_staged; inserted := n_inserted; RETURN NEXT;

    SELECT count(*) INTO n_staged FROM stage_events;
    INSERT INTO history.device_event_log (time, event_id, home_id, device_id, event, data,
        received_at, source, clamped_from)
    SELECT history.ms(time_ms), event_id, home_id, device_id, event, data::jsonb,
        history.ms(received_ms), source, history.ms(clamped_ms)
    FROM stage_events
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_inserted = ROW_COUNT;
    tbl := 'device_event_log'; staged := n_staged; inserted := n_inserted; RETURN NEXT;

    SELECT count(*) INTO n_staged FROM stage_commands;
    INSERT INTO history.command_status (time, event_id, home_id, command_id, status, reason,
        device_id, group_id, capability, command, request_id, parent_command_id)
    SELECT history.ms(time_ms), event_id, home_id, command_id, status, reason, device_id,
        group_id, capability, command, request_id, parent_command_id
    FROM stage_commands
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_inserted = ROW_COUNT;
    tbl := 'command_status'; staged := n_staged; inserted := n_inserted; RETURN NEXT;

    SELECT count(*) INTO n_staged FROM stage_notifications;
    INSERT INTO history.notification_log (time, event_id, home_id, kind, severity, title,
        message, device_id, automation_id, data)
    SELECT history.ms(time_ms), event_id, home_id, kind, severity, title, message, device_id,
        automation_id, data::jsonb
    FROM stage_notifications
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_inserted = ROW_COUNT;
    tbl := 'notification_log'; staged := n_staged; inserted := n_inserted; RETURN NEXT;

    SELECT count(*) INTO n_staged FROM stage_availability;
    INSERT INTO history.availability (time, event_id, home_id, device_id, online, source)
    SELECT history.ms(time_ms), event_id, home_id, device_id, online, source
    FROM stage_availability
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_inserted = ROW_COUNT;
    tbl := 'availability'; staged := n_staged; inserted := n_inserted; RETURN NEXT;

    SELECT count(*) INTO n_staged FROM stage_devices;
    INSERT INTO history.device_registry AS d (home_id, device_id, name, type, room, protocol,
        manufacturer, model, capabilities, endpoint, registered_at, updated_at, removed_at)
    SELECT DISTINCT ON (home_id, device_id) home_id, device_id, name, type, room, protocol,
        manufacturer, model, coalesce(capabilities, '{}'), endpoint, history.ms(registered_ms),
        history.ms(time_ms), NULL
    FROM stage_devices WHERE NOT removed
    ORDER BY home_id, device_id, time_ms DESC, seq DESC
    ON CONFLICT (home_id, device_id) DO UPDATE SET
        name = excluded.name, type = excluded.type, room = excluded.room,
        protocol = excluded.protocol, manufacturer = excluded.manufacturer,
        model = excluded.model, capabilities = excluded.capabilities,
        endpoint = excluded.endpoint, registered_at = excluded.registered_at,
        updated_at = excluded.updated_at, removed_at = NULL
    WHERE d.updated_at <= excluded.updated_at;
    GET DIAGNOSTICS n_inserted = ROW_COUNT;
    UPDATE history.device_registry AS d
    SET removed_at = history.ms(s.time_ms), updated_at = history.ms(s.time_ms)
    FROM (SELECT home_id, device_id, max(time_ms) AS time_ms
          FROM stage_devices WHERE removed GROUP BY 1, 2) s
    WHERE d.home_id = s.home_id AND d.device_id = s.device_id
      AND d.updated_at <= history.ms(s.time_ms);
    tbl := 'device_registry'; staged := n_staged; inserted := n_inserted; RETURN NEXT;
END
$$;

-- The views gain clamped_from (added at the end: CREATE OR REPLACE keeps the columns).
CREATE OR REPLACE VIEW history.state_history AS
SELECT s.time, s.home_id, s.device_id, s.attribute, s.kind, s.value, s.value_num,
       s.value_text, s.version, s.source, s.command_id, s.accepted_at, s.event_id,
       s.ingested_at, d.room, d.name AS device_name, d.type AS device_type, s.clamped_from
FROM history.state_changes s
LEFT JOIN history.device_registry d ON d.home_id = s.home_id AND d.device_id = s.device_id;

CREATE OR REPLACE VIEW history.device_events AS
SELECT e.time, e.home_id, e.device_id, e.event, e.data, e.received_at, e.source, e.event_id,
       d.room, d.name AS device_name, d.type AS device_type, e.clamped_from
FROM history.device_event_log e
LEFT JOIN history.device_registry d ON d.home_id = e.home_id AND d.device_id = e.device_id;
