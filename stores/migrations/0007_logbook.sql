-- The logbook (issue #20: GET .../logbook): who sent each command and every automation
-- run, beside the state changes, events, command outcomes, availability and notifications
-- the history already keeps. One row per command and per run step: far fewer than state
-- changes, so plain tables (both engines) with a time index, trimmed by
-- history.apply_retention_logbook() to meta.retention_days like the rest.

CREATE TABLE history.command_requests (
    time         timestamptz NOT NULL,
    event_id     uuid        PRIMARY KEY,
    home_id      text        NOT NULL,
    command_id   text        NOT NULL,
    device_id    text,
    group_id     text,
    capability   text,
    command      text,
    parameters   jsonb,
    requested_by text,
    parent_command_id text,
    ingested_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX command_requests_by_home ON history.command_requests (home_id, time);
CREATE INDEX command_requests_by_command ON history.command_requests (home_id, command_id);

CREATE TABLE history.automation_runs (
    time          timestamptz NOT NULL,
    event_id      uuid        PRIMARY KEY,
    home_id       text        NOT NULL,
    automation_id text        NOT NULL,
    run_id        text        NOT NULL,
    alias         text,
    trigger       text,
    status        text        NOT NULL,
    error         text,
    ingested_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX automation_runs_by_home ON history.automation_runs (home_id, time);

CREATE FUNCTION history.open_stage_logbook() RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS stage_requests (
        time_ms bigint, event_id uuid, home_id text, command_id text, device_id text,
        group_id text, capability text, command text, parameters text, requested_by text,
        parent_command_id text
    ) ON COMMIT DELETE ROWS;
    CREATE TEMP TABLE IF NOT EXISTS stage_runs (
        time_ms bigint, event_id uuid, home_id text, automation_id text, run_id text,
        alias text, trigger text, status text, error text
    ) ON COMMIT DELETE ROWS;
END
$$;

-- Like history.merge_stage(): ON CONFLICT DO NOTHING on the event id, so a replay adds
-- nothing. Returns (tbl, staged, inserted).
CREATE FUNCTION history.merge_stage_logbook()
RETURNS TABLE (tbl text, staged bigint, inserted bigint)
LANGUAGE plpgsql AS $$
DECLARE
    n_staged bigint;
    n_inserted bigint;
BEGIN
    SELECT count(*) INTO n_staged FROM stage_requests;
    INSERT INTO history.command_requests (time, event_id, home_id, command_id, device_id,
        group_id, capability, command, parameters, requested_by, parent_command_id)
    SELECT history.ms(time_ms), event_id, home_id, command_id, device_id, group_id,
        capability, command, parameters::jsonb, requested_by, parent_command_id
    FROM stage_requests
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_inserted = ROW_COUNT;
    tbl := 'command_requests'; staged := n_staged; inserted := n_inserted; RETURN NEXT;

    SELECT count(*) INTO n_staged FROM stage_runs;
    INSERT INTO history.automation_runs (time, event_id, home_id, automation_id, run_id,
        alias, trigger, status, error)
    SELECT history.ms(time_ms), event_id, home_id, automation_id, run_id, alias, trigger,
        status, error
    FROM stage_runs
    ON CONFLICT DO NOTHING;
    GET DIAGNOSTICS n_inserted = ROW_COUNT;
    tbl := 'automation_runs'; staged := n_staged; inserted := n_inserted; RETURN NEXT;
END
$$;

CREATE FUNCTION history.apply_retention_logbook() RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    keep    integer := (SELECT value::integer FROM history.meta WHERE key = 'retention_days');
    cutoff  timestamptz := now() - make_interval(days => keep);
    n       bigint;
    removed bigint := 0;
BEGIN
    DELETE FROM history.command_requests WHERE time < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    removed := removed + n;
    DELETE FROM history.automation_runs WHERE time < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN removed + n;
END
$$;

-- Analyst views, as docs/history.md describes them.
CREATE VIEW history.commands_sent AS
SELECT r.time, r.home_id, r.command_id, r.device_id, r.group_id, r.capability, r.command,
       r.parameters, r.requested_by, o.status, o.reason, o.finished_at
FROM history.command_requests r
LEFT JOIN history.command_outcomes o ON o.home_id = r.home_id AND o.command_id = r.command_id;
