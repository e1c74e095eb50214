-- Issue #20: users can be disabled (not deleted: their memberships and history stay), and
-- rooms become areas with stable ids (Home Assistant's notion). A device is in the area
-- whose name is its room (the hub's descriptor, or the user's override); a stored area
-- keeps its id when renamed, and may have no devices yet.

ALTER TABLE users ADD COLUMN disabled_at timestamptz;

CREATE TABLE areas (
    home_id    text NOT NULL REFERENCES homes ON DELETE CASCADE,
    area_id    text NOT NULL CHECK (area_id ~ '^[a-z0-9][a-z0-9_]{0,63}$'),
    name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (home_id, area_id)
);
CREATE UNIQUE INDEX areas_by_name ON areas (home_id, lower(name));
