"""Settings for every homestream process, read from HOMESTREAM_* environment variables.

One place for ports, paths and connection strings, so the launcher, the CLI, the
workers and the tests agree on them. Secrets (database and broker passwords, the
token signing key) are never here: they live in ``<state dir>/secrets.json``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# (env variable, default, what it is). The README's table is generated from this.
PORT_VARS: dict[str, tuple[str, int, str]] = {
    "mqtt": ("HOMESTREAM_MQTT_PORT", 1883, "Mosquitto, plain MQTT on loopback"),
    "mqtt_tls": ("HOMESTREAM_MQTT_TLS_PORT", 8883, "Mosquitto, MQTT over TLS"),
    "gateway": ("HOMESTREAM_GATEWAY_PORT", 8080, "Starlette gateway (REST, WebSocket, dashboard)"),
    "kafka": ("HOMESTREAM_KAFKA_PORT", 9092, "Kafka broker listener"),
    "kafka_controller": ("HOMESTREAM_KAFKA_CONTROLLER_PORT", 9093, "Kafka KRaft controller"),
    "postgres": ("HOMESTREAM_PG_PORT", 5432, "PostgreSQL 15"),
    "redis": ("HOMESTREAM_REDIS_PORT", 6379, "Redis"),
    "streams_metrics": (
        "HOMESTREAM_STREAMS_METRICS_PORT",
        9401,
        "first stream worker's Prometheus /metrics (worker n: +n-1)",
    ),
    "bridge_metrics": (
        "HOMESTREAM_BRIDGE_METRICS_PORT",
        9411,
        "first MQTT bridge's Prometheus /metrics (bridge n: +n-1)",
    ),
    "sink_metrics": (
        "HOMESTREAM_SINK_METRICS_PORT",
        9421,
        "history sink's Prometheus /metrics",
    ),
    "redis_sink_metrics": (
        "HOMESTREAM_REDIS_SINK_METRICS_PORT",
        9431,
        "Redis sink's Prometheus /metrics",
    ),
}

KAFKA_VERSION = "3.9.1"


class ConfigError(ValueError):
    """A setting has a value homestream cannot use; the message names the variable."""


@dataclass(frozen=True)
class Ports:
    mqtt: int = 1883
    mqtt_tls: int = 8883
    gateway: int = 8080
    kafka: int = 9092
    kafka_controller: int = 9093
    postgres: int = 5432
    redis: int = 6379
    streams_metrics: int = 9401
    bridge_metrics: int = 9411
    sink_metrics: int = 9421
    redis_sink_metrics: int = 9431


@dataclass(frozen=True)
class Settings:
    state_dir: Path
    cache_dir: Path
    host: str = "127.0.0.1"
    ports: Ports = field(default_factory=Ports)
    # Address the TLS MQTT listener binds; 0.0.0.0 lets hubs on the LAN connect.
    mqtt_tls_bind: str = "127.0.0.1"
    mqtt_tls_sans: tuple[str, ...] = ()
    partitions: int = 6
    stream_workers: int = 1
    bridges: int = 1
    sinks: bool = True  # the history and Redis sinks
    gateway: bool = True
    pg_database: str = "homestream"
    pg_user: str = "homestream"
    kafka_heap: str = "768m"
    schema_registry_url: str | None = None
    # Set these to use servers the launcher does not run (e.g. docker compose).
    kafka_bootstrap_override: str | None = None
    pg_dsn_override: str | None = None
    redis_url_override: str | None = None
    log_format: str = "json"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        ports = Ports(
            **{key: _port(env, var, default) for key, (var, default, _) in PORT_VARS.items()}
        )
        state = Path(env.get("HOMESTREAM_STATE_DIR") or REPO_ROOT / ".state").expanduser()
        cache = Path(
            env.get("HOMESTREAM_CACHE_DIR") or Path.home() / ".cache" / "homestream"
        ).expanduser()
        sans = tuple(
            s.strip() for s in env.get("HOMESTREAM_MQTT_TLS_SANS", "").split(",") if s.strip()
        )
        return cls(
            state_dir=state.resolve(),
            cache_dir=cache.resolve(),
            host=env.get("HOMESTREAM_HOST", "127.0.0.1"),
            ports=ports,
            mqtt_tls_bind=env.get("HOMESTREAM_MQTT_TLS_BIND", "127.0.0.1"),
            mqtt_tls_sans=sans,
            partitions=_int(env, "HOMESTREAM_PARTITIONS", 6, low=1, high=256),
            stream_workers=_int(env, "HOMESTREAM_STREAM_WORKERS", 1, low=0, high=64),
            bridges=_int(env, "HOMESTREAM_BRIDGES", 1, low=0, high=64),
            sinks=_int(env, "HOMESTREAM_SINKS", 1, low=0, high=1) == 1,
            gateway=_int(env, "HOMESTREAM_GATEWAY", 1, low=0, high=1) == 1,
            pg_database=env.get("HOMESTREAM_PG_DATABASE", "homestream"),
            kafka_heap=env.get("HOMESTREAM_KAFKA_HEAP", "768m"),
            schema_registry_url=env.get("HOMESTREAM_SCHEMA_REGISTRY_URL") or None,
            kafka_bootstrap_override=env.get("HOMESTREAM_KAFKA_BOOTSTRAP") or None,
            pg_dsn_override=env.get("HOMESTREAM_PG_DSN") or None,
            redis_url_override=env.get("HOMESTREAM_REDIS_URL") or None,
            log_format=env.get("HOMESTREAM_LOG_FORMAT", "json"),
        )

    def with_ports(self, **ports: int) -> Settings:
        return replace(self, ports=replace(self.ports, **ports))

    # Paths inside the state directory: one sub-directory per service.
    def service_dir(self, name: str) -> Path:
        return self.state_dir / name

    @property
    def run_dir(self) -> Path:
        return self.state_dir / "run"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    @property
    def secrets_file(self) -> Path:
        return self.state_dir / "secrets.json"

    @property
    def mqtt_ca_file(self) -> Path:
        return self.state_dir / "tls" / "ca.crt"

    @property
    def kafka_libs(self) -> Path:
        return self.cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"

    # Connection strings. The launcher's servers unless an override is set.
    @property
    def kafka_bootstrap(self) -> str:
        return self.kafka_bootstrap_override or f"{self.host}:{self.ports.kafka}"

    def pg_dsn(self, database: str | None = None) -> str:
        if self.pg_dsn_override and database is None:
            return self.pg_dsn_override
        from runtime.secrets import load_secrets

        password = load_secrets(self).pg_password
        db = database or self.pg_database
        return (
            f"host={self.host} port={self.ports.postgres} dbname={db} "
            f"user={self.pg_user} password={password} connect_timeout=3"
        )

    def redis_url(self) -> str:
        if self.redis_url_override:
            return self.redis_url_override
        from runtime.secrets import load_secrets

        return f"redis://:{load_secrets(self).redis_password}@{self.host}:{self.ports.redis}/0"


def _int(env: Mapping[str, str], var: str, default: int, *, low: int, high: int) -> int:
    raw = env.get(var)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{var}={raw!r} is not a whole number") from None
    if not low <= value <= high:
        raise ConfigError(f"{var}={value} is out of range ({low}..{high})")
    return value


def _port(env: Mapping[str, str], var: str, default: int) -> int:
    return _int(env, var, default, low=1, high=65535)
