-- Users, homes, who may do what in which home, and the MQTT logins of hubs.

CREATE TABLE users (
    username      text PRIMARY KEY CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{2,63}$'),
    password_hash text NOT NULL,               -- argon2id
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE homes (
    home_id    text PRIMARY KEY CHECK (home_id ~ '^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$'),
    name       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE home_members (
    home_id    text NOT NULL REFERENCES homes ON DELETE CASCADE,
    username   text NOT NULL REFERENCES users ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('owner', 'admin', 'member', 'guest')),
    created_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (home_id, username)
);
CREATE INDEX home_members_by_user ON home_members (username);

-- Mosquitto verifies hub passwords itself, so they are kept in its salted
-- PBKDF2-SHA512 format; the password file and ACL are rendered from this table.
CREATE TABLE hub_credentials (
    username      text PRIMARY KEY,
    home_id       text NOT NULL REFERENCES homes ON DELETE CASCADE,
    password_hash text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);
CREATE INDEX hub_credentials_by_home ON hub_credentials (home_id);
