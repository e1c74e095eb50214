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
