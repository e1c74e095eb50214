"""Settings from the environment: defaults match the contract, bad values are named."""

import pytest

from runtime.config import ConfigError, Settings


def test_defaults_are_the_contract_endpoints(tmp_path):
    s = Settings.from_env({"HOMESTREAM_STATE_DIR": str(tmp_path)})
    p = s.ports
    assert (p.mqtt, p.gateway, p.kafka, p.postgres, p.redis) == (1883, 8080, 9092, 5432, 6379)
    assert s.host == "127.0.0.1"
    assert s.pg_database == "homestream"
    assert s.kafka_bootstrap == "127.0.0.1:9092"
    assert s.state_dir == tmp_path.resolve()


def test_every_port_is_overridable(tmp_path):
    env = {
        "HOMESTREAM_STATE_DIR": str(tmp_path),
        "HOMESTREAM_MQTT_PORT": "11883",
        "HOMESTREAM_KAFKA_PORT": "19092",
        "HOMESTREAM_PG_PORT": "15432",
        "HOMESTREAM_REDIS_PORT": "16379",
        "HOMESTREAM_GATEWAY_PORT": "18080",
    }
    s = Settings.from_env(env)
    assert (s.ports.mqtt, s.ports.kafka, s.ports.postgres, s.ports.redis, s.ports.gateway) == (
        11883,
        19092,
        15432,
        16379,
        18080,
    )
    assert s.kafka_bootstrap == "127.0.0.1:19092"


@pytest.mark.parametrize(
    ("var", "value", "words"),
    [
        ("HOMESTREAM_KAFKA_PORT", "ninety", "not a whole number"),
        ("HOMESTREAM_PG_PORT", "70000", "out of range"),
        ("HOMESTREAM_PARTITIONS", "0", "out of range"),
    ],
)
def test_bad_values_name_the_variable(tmp_path, var, value, words):
    with pytest.raises(ConfigError, match=var) as err:
        Settings.from_env({"HOMESTREAM_STATE_DIR": str(tmp_path), var: value})
    assert words in str(err.value)


def test_overrides_for_external_servers(tmp_path):
    s = Settings.from_env(
        {
            "HOMESTREAM_STATE_DIR": str(tmp_path),
            "HOMESTREAM_KAFKA_BOOTSTRAP": "kafka:9092",
            "HOMESTREAM_PG_DSN": "postgresql://u:p@db/homestream",
            "HOMESTREAM_REDIS_URL": "redis://redis:6379/0",
        }
    )
    assert s.kafka_bootstrap == "kafka:9092"
    assert s.pg_dsn() == "postgresql://u:p@db/homestream"
    assert s.redis_url() == "redis://redis:6379/0"


def test_every_variable_the_code_names_is_one_declared_setting():
    """One settings object reads every HOMESTREAM_* variable (topics/, the bottom layer,
    keeps its own HOMESTREAM_AVRO_DIR: it cannot import runtime/)."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    declared = {var for _name, var, _info in Settings.variables()}
    named: dict[str, set[str]] = {}
    for pkg in (
        "domain",
        "topics",
        "runtime",
        "stores",
        "streams",
        "hub",
        "sinks",
        "gateway",
        "compose",
        "bench",
        "homestream",
    ):
        for path in (root / pkg).rglob("*.py"):
            for var in re.findall(r"HOMESTREAM_[A-Z_]+[A-Z]", path.read_text()):
                named.setdefault(var, set()).add(str(path.relative_to(root)))
    undeclared = {v: p for v, p in named.items() if v not in declared | {"HOMESTREAM_AVRO_DIR"}}
    assert not undeclared


def test_nothing_else_reads_the_environment_for_settings():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    readers = []
    for path in root.glob("[a-z]*/**/*.py"):
        rel = str(path.relative_to(root))
        if rel.startswith(("tests/", ".venv/", "spikes/")) or rel in (
            "runtime/config.py",
            "topics/schemas.py",
        ):
            continue
        if re.search(r"environ(\.get)?[\[(]\s*[\"']HOMESTREAM_", path.read_text()):
            readers.append(rel)
    assert not readers


@pytest.mark.parametrize(
    ("var", "value"),
    [
        ("HOMESTREAM_GATEWAY_RATE_LIMIT", "lots"),
        ("HOMESTREAM_GATEWAY_LOGIN_LIMIT", "0/60"),
        ("HOMESTREAM_LOG_FORMAT", "xml"),
        ("HOMESTREAM_SINKS", "2"),
        ("HOMESTREAM_COMMAND_TIMEOUT_MS", "-5"),
    ],
)
def test_every_kind_of_bad_value_is_a_config_error(var, value):
    with pytest.raises(ConfigError, match=var):
        Settings.from_env({var: value})


def test_config_shows_values_and_masks_secrets(tmp_path):
    env = {
        "HOMESTREAM_STATE_DIR": str(tmp_path),
        "HOMESTREAM_PARTITIONS": "3",
        "HOMESTREAM_PG_DSN": "postgresql://u:hunter2@db/x",
        "HOMESTREAM_TOKEN_SECRET": "s3cret-s3cret",
    }
    rows = {r["variable"]: r for r in Settings.from_env(env).effective(env)}
    assert rows["HOMESTREAM_PARTITIONS"] == {
        "variable": "HOMESTREAM_PARTITIONS",
        "value": 3,
        "source": "environment",
        "description": "partitions per topic",
    }
    assert rows["HOMESTREAM_PG_DSN"]["value"] == "********"
    assert rows["HOMESTREAM_TOKEN_SECRET"]["value"] == "********"
    assert rows["HOMESTREAM_KAFKA_PORT"]["source"] == "default"
    assert "hunter2" not in repr(rows)


def test_an_empty_variable_counts_as_unset(tmp_path):
    s = Settings.from_env({"HOMESTREAM_STATE_DIR": str(tmp_path), "HOMESTREAM_KAFKA_PORT": ""})
    assert s.ports.kafka == 9092


def test_a_three_broker_cluster_is_every_client_s_bootstrap_and_replicates_three_times(
    tmp_path,
):
    env = {
        "HOMESTREAM_STATE_DIR": str(tmp_path),
        "HOMESTREAM_KAFKA_PORT": "19092",
        "HOMESTREAM_KAFKA_CONTROLLER_PORT": "19093",
    }
    one = Settings.from_env(env)
    assert one.kafka_bootstrap == "127.0.0.1:19092"
    assert one.kafka_replication == (1, 1)
    three = Settings.from_env({**env, "HOMESTREAM_KAFKA_BROKERS": "3"})
    assert three.kafka_bootstrap == "127.0.0.1:19092,127.0.0.1:19102,127.0.0.1:19112"
    assert three.kafka_node_ports(3) == (19112, 19113)
    assert three.kafka_replication == (3, 2)


def test_the_broker_count_up_recorded_holds_for_later_commands(tmp_path):
    env = {"HOMESTREAM_STATE_DIR": str(tmp_path)}
    assert Settings.from_env(env).with_recorded_cluster().kafka_brokers == 1
    Settings.from_env(env).cluster_file.write_text("3\n")
    assert Settings.from_env(env).with_recorded_cluster().kafka_brokers == 3
