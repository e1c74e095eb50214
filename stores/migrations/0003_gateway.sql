-- The gateway's own documents (issue #6): groups, scenes and automations as JSON, and
-- the names and rooms users gave devices (PATCH .../devices/{d}).

CREATE TABLE gateway_documents (
    home_id    text NOT NULL REFERENCES homes ON DELETE CASCADE,
    kind       text NOT NULL CHECK (kind IN ('group', 'scene', 'automation')),
    doc_id     text NOT NULL CHECK (doc_id ~ '^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$'),
    document   jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text,
    PRIMARY KEY (home_id, kind, doc_id)
);

-- A user's name/room for a device wins over the hub's descriptor when the gateway shows
-- the device; the change is also sent to the registry as a DeviceDiscovered event.
CREATE TABLE device_overrides (
    home_id    text NOT NULL REFERENCES homes ON DELETE CASCADE,
    device_id  text NOT NULL,
    name       text,
    room       text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text,
    PRIMARY KEY (home_id, device_id)
);
