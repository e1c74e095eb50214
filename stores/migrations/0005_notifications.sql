-- Notifications that leave the app (issue #13, docs/notifications.md): where each member
-- wants a home's notifications, and the outbox of their deliveries.

-- A member's channels for one home (PUT .../notifications/channels). The URL is an apprise
-- URL and a secret (tokens, passwords): only its owner reads it back. A member who leaves
-- the home takes their channels along.
CREATE TABLE notification_channels (
    home_id    text NOT NULL,
    username   text NOT NULL,
    channel_id text NOT NULL,            -- domain.notify.channel_id(username, url)
    position   integer NOT NULL,         -- its place in the member's list
    url        text NOT NULL,
    kinds      text[],                   -- NULL: every kind
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (home_id, username, channel_id),
    FOREIGN KEY (home_id, username) REFERENCES home_members ON DELETE CASCADE
);

-- One row per notification and channel, written as 'pending' before the notify service
-- commits its Kafka offset: a crash loses none, a replay doubles none (the primary key).
-- A sender claims a due row by raising attempts and pushing next_at a lease ahead; it then
-- settles it: delivered, or next_at = the backoff's next try, or failed.
CREATE TABLE notification_deliveries (
    event_id    uuid NOT NULL,
    channel_id  text NOT NULL,
    home_id     text NOT NULL REFERENCES homes ON DELETE CASCADE,
    username    text NOT NULL,
    channel     text NOT NULL,           -- domain.notify.mask_url: what statuses may show
    kind        text NOT NULL,
    severity    text,
    title       text NOT NULL,
    body        text NOT NULL,
    event_ts    timestamptz NOT NULL,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    next_at     timestamptz NOT NULL DEFAULT now(),
    last_error  text,                    -- masked: never a channel's URL
    created_at  timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz,
    PRIMARY KEY (event_id, channel_id)
);
CREATE INDEX notification_deliveries_due
    ON notification_deliveries (next_at) WHERE status = 'pending';
CREATE INDEX notification_deliveries_of_member
    ON notification_deliveries (home_id, username, event_id);
CREATE INDEX notification_deliveries_finished
    ON notification_deliveries (finished_at) WHERE status <> 'pending';
