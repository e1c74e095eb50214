"""PostgreSQL and Redis round trips on the test stack, and the account commands."""

from __future__ import annotations

import uuid

import psycopg
import pytest
import redis

from stores import accounts, db

pytestmark = pytest.mark.integration


def test_postgres_round_trip_and_migrations(settings):
    with db.connect(settings) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations")]
        assert versions == [m.version for m in db.discover()]
        # Running the migrations again applies nothing.
        assert db.migrate(conn) == []
        conn.execute("CREATE TEMP TABLE t (k text PRIMARY KEY, v jsonb)")
        conn.execute("INSERT INTO t VALUES (%s, %s)", ("a", psycopg.types.json.Jsonb({"x": 1})))
        assert conn.execute("SELECT v FROM t WHERE k = 'a'").fetchone()[0] == {"x": 1}


def test_postgres_refuses_wrong_password(settings):
    dsn = settings.pg_dsn().replace("password=", "password=wrong")
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn)


def test_users_are_stored_hashed_with_argon2(settings, run_cli):
    name = f"u{uuid.uuid4().hex[:8]}"
    out = run_cli("users", "add", "--username", name, "--password", "s3cret-pass")
    assert '"created": true' in out.stdout
    with db.connect(settings) as conn:
        (stored,) = conn.execute(
            "SELECT password_hash FROM users WHERE username = %s", (name,)
        ).fetchone()
        assert stored.startswith("$argon2id$")
        assert "s3cret-pass" not in stored
        assert accounts.authenticate(conn, name, "s3cret-pass")
        assert not accounts.authenticate(conn, name, "wrong-pass")
        assert not accounts.authenticate(conn, "nobody-here", "s3cret-pass")


def test_account_commands_reject_bad_input_clearly(run_cli):
    name = f"u{uuid.uuid4().hex[:8]}"
    run_cli("users", "add", "--username", name, "--password", "long-enough")
    dup = run_cli("users", "add", "--username", name, "--password", "long-enough", check=False)
    assert dup.returncode == 2 and "exists already" in dup.stderr
    assert "Traceback" not in dup.stderr
    short = run_cli("users", "add", "--username", name + "x", "--password", "short", check=False)
    assert short.returncode == 2 and "at least 8" in short.stderr
    home = run_cli("homes", "add", "--home", "bad/home", "--owner", name, check=False)
    assert home.returncode == 2 and "MQTT topic level" in home.stderr
    orphan = run_cli("homes", "add", "--home", "h-" + name, "--owner", "ghost", check=False)
    assert orphan.returncode == 2 and "does not exist" in orphan.stderr
    hub = run_cli("hubs", "add", "--home", "no-such-home", check=False)
    assert hub.returncode == 2 and "does not exist" in hub.stderr


def test_home_owner_membership(settings, run_cli):
    name = f"u{uuid.uuid4().hex[:8]}"
    run_cli("users", "add", "--username", name, "--password", "long-enough")
    run_cli("homes", "add", "--home", f"h-{name}", "--owner", name)
    with db.connect(settings) as conn:
        assert accounts.role_of(conn, f"h-{name}", name) == "owner"
        accounts.set_member(conn, f"h-{name}", name, "guest")
        assert accounts.role_of(conn, f"h-{name}", name) == "guest"
        with pytest.raises(accounts.AccountError):
            accounts.set_member(conn, f"h-{name}", name, "superuser")


def test_redis_round_trip_and_auth(settings):
    client = redis.Redis.from_url(settings.redis_url())
    key = f"test:{uuid.uuid4().hex}"
    client.hset(key, mapping={"powerState": "ON", "brightness": 40})
    assert client.hgetall(key) == {b"powerState": b"ON", b"brightness": b"40"}
    client.delete(key)
    anonymous = redis.Redis(host=settings.host, port=settings.ports.redis)
    with pytest.raises(redis.AuthenticationError):
        anonymous.get(key)


def test_device_choices_are_kept_field_by_field_in_postgres(settings, run_cli):
    """The user's name, room, icon and tags of a device (PATCH .../devices/{d}, GraphQL's
    updateDevice): a field left out keeps what was stored; room null means "no room"."""
    from gateway.store import PgStore

    name = f"u{uuid.uuid4().hex[:8]}"
    home = f"h-{name}"
    run_cli("users", "add", "--username", name, "--password", "long-enough")
    run_cli("homes", "add", "--home", home, "--owner", name)
    store = PgStore(settings.pg_dsn())
    store.open()
    try:
        store.set_override(home, "lamp", {"name": "Desk", "icon": "lightbulb"}, name)
        store.set_override(home, "lamp", {"tags": ["main", "overhead"], "room": None}, name)
        assert store.overrides(home) == {
            "lamp": {
                "name": "Desk",
                "room": None,
                "icon": "lightbulb",
                "tags": ["main", "overhead"],
            }
        }
        store.set_override(home, "lamp", {"tags": []}, name)  # an empty list clears them
        assert store.overrides(home)["lamp"]["tags"] == []
    finally:
        store.close()
