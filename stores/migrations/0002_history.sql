-- History for analysts (issue #5, docs/history.md): the history sink's tables, its
-- staging and merge functions, and the analyst views.
--
-- This file is the ONE place that knows about the two storage engines. The DO block below
-- checks whether the TimescaleDB extension can be created here:
--   * yes -> hypertables (1-day chunks), compression after 7 days, 90-day retention
--            policies and continuous aggregates at 1 minute and 1 hour;
--   * no  -> native declarative range partitioning by day (+ a DEFAULT partition), BRIN
--            indexes on time, and roll-up tables the sink maintains in each batch.
-- Either way analysts get the same views in schema `history` (state_history,
-- state_rollup_1m, state_rollup_1h, command_outcomes, device_uptime, device_events,
-- notifications, devices). history.meta('engine') says which engine was chosen.

CREATE SCHEMA history;

CREATE TABLE history.meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- The device registry (compacted topic homestream.device.registry), latest entry per
-- device, for joins on room / name / type. Small: a plain table on both engines.
CREATE TABLE history.device_registry (
    home_id       text NOT NULL,
    device_id     text NOT NULL,
    name          text NOT NULL,
    type          text NOT NULL,
    room          text,
    protocol      text,
    manufacturer  text,
    model         text,
    capabilities  text[] NOT NULL DEFAULT '{}',
    endpoint      text,
    registered_at timestamptz,
    updated_at    timestamptz NOT NULL,
    removed_at    timestamptz,
    PRIMARY KEY (home_id, device_id)
);

DO $history$
DECLARE
    timescale boolean := false;
    part      text;
    tbl       text;
BEGIN
    -- A database may be told to stay native although the server has TimescaleDB
    -- (ALTER DATABASE ... SET homestream.history_engine = 'native': the tests' second path).
    IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')
       AND coalesce(current_setting('shared_preload_libraries', true), '') LIKE '%timescaledb%'
       AND coalesce(current_setting('homestream.history_engine', true), '') <> 'native'
    THEN
        BEGIN
            CREATE EXTENSION IF NOT EXISTS timescaledb;
            timescale := true;
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'timescaledb is installed but cannot be created here (%): '
                          'using native partitioning', SQLERRM;
        END;
    END IF;
    INSERT INTO history.meta VALUES
        ('engine', CASE WHEN timescale THEN 'timescaledb' ELSE 'native' END),
        ('retention_days', '90');
    part := CASE WHEN timescale THEN '' ELSE ' PARTITION BY RANGE (time)' END;

    -- One row per changed attribute of one accepted shadow version. kind 'reported'
    -- comes from StateChange.changed, 'desired' from desired_changed. time is the
    -- event's ts, so a replay yields the same key and ON CONFLICT skips it.
    EXECUTE 'CREATE TABLE history.state_changes (
        time        timestamptz NOT NULL,
        home_id     text        NOT NULL,
        device_id   text        NOT NULL,
        kind        text        NOT NULL CHECK (kind IN (''reported'', ''desired'')),
        attribute   text        NOT NULL,
        value       jsonb,
        value_num   double precision,
        value_text  text,
        version     bigint      NOT NULL,
        source      text        NOT NULL,
        command_id  text,
        accepted_at timestamptz NOT NULL,
        event_id    uuid        NOT NULL,
        ingested_at timestamptz NOT NULL DEFAULT now(),
        UNIQUE (home_id, device_id, time, version, kind, attribute)
    )' || part;

    EXECUTE 'CREATE TABLE history.device_event_log (
        time        timestamptz NOT NULL,
        event_id    uuid        NOT NULL,
        home_id     text        NOT NULL,
        device_id   text        NOT NULL,
        event       text        NOT NULL,
        data        jsonb,
        received_at timestamptz NOT NULL,
        source      text        NOT NULL,
        ingested_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (event_id, time)
    )' || part;

    EXECUTE 'CREATE TABLE history.command_status (
        time              timestamptz NOT NULL,
        event_id          uuid        NOT NULL,
        home_id           text        NOT NULL,
        command_id        text        NOT NULL,
        status            text        NOT NULL,
        reason            text,
        device_id         text,
        group_id          text,
        capability        text,
        command           text,
        request_id        text,
        parent_command_id text,
        ingested_at       timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (event_id, time)
    )' || part;

    EXECUTE 'CREATE TABLE history.notification_log (
        time          timestamptz NOT NULL,
        event_id      uuid        NOT NULL,
        home_id       text        NOT NULL,
        kind          text        NOT NULL,
        severity      text        NOT NULL,
        title         text,
        message       text        NOT NULL,
        device_id     text,
        automation_id text,
        data          jsonb,
        ingested_at   timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (event_id, time)
    )' || part;

    EXECUTE 'CREATE TABLE history.availability (
        time        timestamptz NOT NULL,
        event_id    uuid        NOT NULL,
        home_id     text        NOT NULL,
        device_id   text        NOT NULL,
        online      boolean     NOT NULL,
        source      text        NOT NULL,
        ingested_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (event_id, time)
    )' || part;

    CREATE INDEX command_status_by_command ON history.command_status (home_id, command_id, time);
    CREATE INDEX device_event_log_by_device ON history.device_event_log (home_id, device_id, time);
    CREATE INDEX notification_log_by_home ON history.notification_log (home_id, time);
    CREATE INDEX availability_by_device ON history.availability (home_id, device_id, time);

    IF timescale THEN
        FOREACH tbl IN ARRAY ARRAY['state_changes', 'device_event_log', 'command_status',
                                   'notification_log', 'availability'] LOOP
            PERFORM create_hypertable(format('history.%I', tbl)::regclass, 'time',
                                      chunk_time_interval => interval '1 day');
            PERFORM add_retention_policy(format('history.%I', tbl)::regclass,
                                         interval '90 days');
        END LOOP;
        ALTER TABLE history.state_changes SET (
            timescaledb.compress,
            timescaledb.compress_segmentby = 'home_id, device_id',
            timescaledb.compress_orderby = 'time, version'
        );
        PERFORM add_compression_policy('history.state_changes', interval '7 days');

        -- Numeric reported values only; booleans count as 0/1 (docs/history.md).
        CREATE MATERIALIZED VIEW history.rollup_1m
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT time_bucket(interval '1 minute', time) AS bucket, home_id, device_id, attribute,
               count(*) AS samples, sum(value_num) AS sum_value,
               min(value_num) AS min_value, max(value_num) AS max_value
        FROM history.state_changes
        WHERE kind = 'reported' AND value_num IS NOT NULL
        GROUP BY 1, 2, 3, 4
        WITH NO DATA;
        CREATE MATERIALIZED VIEW history.rollup_1h
        WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
        SELECT time_bucket(interval '1 hour', time) AS bucket, home_id, device_id, attribute,
               count(*) AS samples, sum(value_num) AS sum_value,
               min(value_num) AS min_value, max(value_num) AS max_value
        FROM history.state_changes
        WHERE kind = 'reported' AND value_num IS NOT NULL
        GROUP BY 1, 2, 3, 4
        WITH NO DATA;
        PERFORM add_continuous_aggregate_policy('history.rollup_1m',
            start_offset => interval '3 days', end_offset => interval '1 minute',
            schedule_interval => interval '1 minute');
        PERFORM add_continuous_aggregate_policy('history.rollup_1h',
            start_offset => interval '7 days', end_offset => interval '1 hour',
            schedule_interval => interval '15 minutes');
    ELSE
        FOREACH tbl IN ARRAY ARRAY['state_changes', 'device_event_log', 'command_status',
                                   'notification_log', 'availability'] LOOP
            -- Rows with a time no daily partition covers (a hub clock far off) land here.
            EXECUTE format('CREATE TABLE history.%I PARTITION OF history.%I DEFAULT',
                           tbl || '_default', tbl);
            EXECUTE format('CREATE INDEX %I ON history.%I USING brin (time)',
                           tbl || '_time_brin', tbl);
        END LOOP;
        -- Maintained by the sink in the same transaction as the rows it inserts
        -- (history.merge_stage): only newly inserted rows are added, so a replay never
        -- counts twice.
        CREATE TABLE history.rollup_1m (
            bucket    timestamptz NOT NULL,
            home_id   text NOT NULL,
            device_id text NOT NULL,
            attribute text NOT NULL,
            samples   bigint NOT NULL,
            sum_value double precision NOT NULL,
            min_value double precision NOT NULL,
            max_value double precision NOT NULL,
            PRIMARY KEY (home_id, device_id, attribute, bucket)
        );
        CREATE TABLE history.rollup_1h (LIKE history.rollup_1m INCLUDING ALL);
        CREATE INDEX rollup_1m_bucket_brin ON history.rollup_1m USING brin (bucket);
        CREATE INDEX rollup_1h_bucket_brin ON history.rollup_1h USING brin (bucket);
    END IF;
END
$history$;

-- Daily partitions (native engine; a no-op on TimescaleDB, which makes its own chunks).
-- Creates the partition of each given day that does not exist yet, for every history
-- table. Rows already in the DEFAULT partition for such a day are moved into it.
CREATE FUNCTION history.ensure_partitions(days date[]) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    d       date;
    tbl     text;
    pname   text;
    lo      timestamptz;
    hi      timestamptz;
    created integer := 0;
BEGIN
    IF (SELECT value FROM history.meta WHERE key = 'engine') <> 'native' THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('homestream.history.partitions'));
    FOREACH d IN ARRAY days LOOP
        lo := d::timestamp AT TIME ZONE 'UTC';
        hi := (d + 1)::timestamp AT TIME ZONE 'UTC';
        FOREACH tbl IN ARRAY ARRAY['state_changes', 'device_event_log', 'command_status',
                                   'notification_log', 'availability'] LOOP
            pname := tbl || '_' || to_char(d, 'YYYYMMDD');
            CONTINUE WHEN to_regclass(format('history.%I', pname)) IS NOT NULL;
            BEGIN
                EXECUTE format('CREATE TABLE history.%I PARTITION OF history.%I '
                               'FOR VALUES FROM (%L) TO (%L)', pname, tbl, lo, hi);
            EXCEPTION WHEN check_violation THEN
                -- The DEFAULT partition already holds rows of that day: move them.
                EXECUTE format('CREATE TABLE history.%I (LIKE history.%I INCLUDING DEFAULTS)',
                               pname, tbl);
                EXECUTE format('WITH moved AS (DELETE FROM history.%I WHERE time >= %L AND '
                               'time < %L RETURNING *) INSERT INTO history.%I SELECT * FROM moved',
                               tbl || '_default', lo, hi, pname);
                EXECUTE format('ALTER TABLE history.%I ATTACH PARTITION history.%I '
                               'FOR VALUES FROM (%L) TO (%L)', tbl, pname, lo, hi);
            END;
            created := created + 1;
        END LOOP;
    END LOOP;
    RETURN created;
END
$$;

-- Retention on the native engine (TimescaleDB has its policies): drop daily partitions,
-- DEFAULT-partition rows and 1-minute roll-ups older than meta.retention_days. The 1-hour
-- roll-ups are kept. Returns the partitions dropped.
CREATE FUNCTION history.apply_retention() RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    keep    integer := (SELECT value::integer FROM history.meta WHERE key = 'retention_days');
    cutoff  date := current_date - keep;
    r       record;
    tbl     text;
    dropped integer := 0;
BEGIN
    IF (SELECT value FROM history.meta WHERE key = 'engine') <> 'native' THEN
        RETURN 0;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('homestream.history.partitions'));
    FOR r IN
        SELECT c.relname, p.relname AS parent
        FROM pg_inherits i
        JOIN pg_class c ON c.oid = i.inhrelid
        JOIN pg_class p ON p.oid = i.inhparent
        JOIN pg_namespace n ON n.oid = p.relnamespace
        WHERE n.nspname = 'history' AND c.relname ~ '_[0-9]{8}$'
    LOOP
        IF to_date(right(r.relname, 8), 'YYYYMMDD') < cutoff THEN
            EXECUTE format('DROP TABLE history.%I', r.relname);
            dropped := dropped + 1;
        END IF;
    END LOOP;
    FOREACH tbl IN ARRAY ARRAY['state_changes', 'device_event_log', 'command_status',
                                     'notification_log', 'availability'] LOOP
        EXECUTE format('DELETE FROM history.%I WHERE time < %L', tbl || '_default',
                       cutoff::timestamp AT TIME ZONE 'UTC');
    END LOOP;
    DELETE FROM history.rollup_1m WHERE bucket < cutoff::timestamp AT TIME ZONE 'UTC';
    RETURN dropped;
END
$$;

-- The sink's per-connection staging tables: it COPYs a batch into them, then calls
-- history.merge_stage() in the same transaction. Times are epoch ms as in the events.
CREATE FUNCTION history.open_stage() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS stage_state (
        time_ms bigint, home_id text, device_id text, kind text, attribute text,
        value text, value_num double precision, value_text text, version bigint,
        source text, command_id text, accepted_ms bigint, event_id uuid
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_events (
        time_ms bigint, event_id uuid, home_id text, device_id text, event text,
        data text, received_ms bigint, source text
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

CREATE FUNCTION history.ms(bigint) RETURNS timestamptz
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$ SELECT to_timestamp($1::float8 / 1000) $$;

-- Move the staged batch into the history tables: INSERT ... ON CONFLICT DO NOTHING on
-- the natural keys, so rows already stored (a replay) are skipped. On the native engine
-- the roll-ups get exactly the rows inserted now. Returns (tbl, staged, inserted).
CREATE FUNCTION history.merge_stage()
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
                event_id, ingested_at)
            SELECT history.ms(time_ms), home_id, device_id, kind, attribute, value::jsonb,
                value_num, value_text, version, source, command_id, history.ms(accepted_ms),
                event_id, clock_timestamp()
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
            event_id, ingested_at)
        SELECT history.ms(time_ms), home_id, device_id, kind, attribute, value::jsonb,
            value_num, value_text, version, source, command_id, history.ms(accepted_ms),
            event_id, clock_timestamp()
        FROM stage_state
        ON CONFLICT DO NOTHING;
        GET DIAGNOSTICS n_inserted = ROW_COUNT;
    ELSE
        n_inserted := 0;
    END IF;
    tbl := 'state_changes'; staged := n_staged; inserted := n_inserted; RETURN NEXT;

    SELECT count(*) INTO n_staged FROM stage_events;
    INSERT INTO history.device_event_log (time, event_id, home_id, device_id, event, data,
        received_at, source)
    SELECT history.ms(time_ms), event_id, home_id, device_id, event, data::jsonb,
        history.ms(received_ms), source
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

    -- Registry: the latest registration per device wins (older ones never overwrite),
    -- then removals newer than the entry mark it removed.
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

-- ---------------------------------------------------------------------------------------
-- Analyst views: the same names and columns on both engines (docs/history.md).

CREATE VIEW history.devices AS
SELECT home_id, device_id, name, type, room, protocol, manufacturer, model, capabilities,
       endpoint, registered_at, updated_at, removed_at
FROM history.device_registry;

-- The LEFT JOIN on the registry's primary key is removed by the planner when a query
-- uses none of room / device_name / device_type.
CREATE VIEW history.state_history AS
SELECT s.time, s.home_id, s.device_id, s.attribute, s.kind, s.value, s.value_num,
       s.value_text, s.version, s.source, s.command_id, s.accepted_at, s.event_id,
       s.ingested_at, d.room, d.name AS device_name, d.type AS device_type
FROM history.state_changes s
LEFT JOIN history.device_registry d ON d.home_id = s.home_id AND d.device_id = s.device_id;

CREATE VIEW history.state_rollup_1m AS
SELECT bucket, home_id, device_id, attribute, samples, min_value, max_value,
       sum_value / nullif(samples, 0) AS avg_value, sum_value
FROM history.rollup_1m;

CREATE VIEW history.state_rollup_1h AS
SELECT bucket, home_id, device_id, attribute, samples, min_value, max_value,
       sum_value / nullif(samples, 0) AS avg_value, sum_value
FROM history.rollup_1h;

CREATE VIEW history.device_events AS
SELECT e.time, e.home_id, e.device_id, e.event, e.data, e.received_at, e.source, e.event_id,
       d.room, d.name AS device_name, d.type AS device_type
FROM history.device_event_log e
LEFT JOIN history.device_registry d ON d.home_id = e.home_id AND d.device_id = e.device_id;

CREATE VIEW history.notifications AS
SELECT time, home_id, kind, severity, title, message, device_id, automation_id, data, event_id
FROM history.notification_log;

-- One row per command: its latest status (a terminal one wins a tie in time).
CREATE VIEW history.command_outcomes AS
SELECT DISTINCT ON (home_id, command_id)
       home_id, command_id,
       coalesce(device_id, max(device_id) OVER c) AS device_id,
       coalesce(group_id, max(group_id) OVER c) AS group_id,
       coalesce(capability, max(capability) OVER c) AS capability,
       coalesce(command, max(command) OVER c) AS command,
       status, reason,
       min(time) OVER c AS requested_at,
       CASE WHEN status IN ('COMPLETED', 'FAILED', 'TIMEOUT') THEN time END AS finished_at,
       CASE WHEN status IN ('COMPLETED', 'FAILED', 'TIMEOUT')
            THEN (extract(epoch FROM time - min(time) OVER c) * 1000)::bigint END
           AS duration_ms,
       count(*) OVER c AS steps,
       parent_command_id, request_id
FROM history.command_status
WINDOW c AS (PARTITION BY home_id, command_id)
ORDER BY home_id, command_id, time DESC,
         (status IN ('COMPLETED', 'FAILED', 'TIMEOUT')) DESC;

-- Online/offline intervals per device: repeated reports of the same state are merged;
-- the last interval of a device is still open (until NULL, duration up to now()).
CREATE VIEW history.device_uptime AS
WITH marked AS (
    SELECT home_id, device_id, time, online, event_id,
           lag(online) OVER (PARTITION BY home_id, device_id ORDER BY time, event_id) AS prev
    FROM history.availability
), changes AS (
    SELECT * FROM marked WHERE prev IS DISTINCT FROM online
)
SELECT home_id, device_id, online,
       time AS since,
       lead(time) OVER w AS until,
       coalesce(lead(time) OVER w, now()) - time AS duration
FROM changes
WINDOW w AS (PARTITION BY home_id, device_id ORDER BY time, event_id);
