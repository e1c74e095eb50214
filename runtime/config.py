"""Settings for every homestream process: every HOMESTREAM_* variable, read once, here.

One object (pydantic-settings) with one default per variable, so the launcher, the CLI,
the services and the tests agree. ``homestream config`` prints the effective values (with
secrets masked) and ``homestream --help`` lists them. Generated secrets (database and broker
passwords, the token signing key) are not settings: they live in
``<state dir>/secrets.json``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
KAFKA_VERSION = "3.9.1"
# TimescaleDB's pinned source release (compose/timescaledb.py builds it): the last line that
# supports PostgreSQL 15, Debian 12's version.
TIMESCALEDB_VERSION = "2.28.3"
TIMESCALEDB_SHA256 = "ec2f7de0ba53a473c01e0a57e09053898c6b1f7487228caff0f1d31c8cb2dedb"
TIMESCALEDB_URL = (
    f"https://github.com/timescale/timescaledb/archive/refs/tags/{TIMESCALEDB_VERSION}.tar.gz"
)


class ConfigError(ValueError):
    """A setting has a value homestream cannot use; the message names the variable."""


def _var(name: str, default: Any, what: str, *, secret: bool = False, **limits: Any) -> Any:
    extra: Any = {"secret": True} if secret else None
    return Field(
        default, validation_alias=name, description=what, json_schema_extra=extra, **limits
    )


def _port(name: str, default: int, what: str) -> Any:
    return _var(name, default, what, ge=1, le=65535)


@dataclass(frozen=True)
class Ports:
    mqtt: int = 1883
    mqtt_tls: int = 8883
    mqtt_cert: int = 8884
    gateway: int = 8080
    kafka: int = 9092
    kafka_controller: int = 9093
    postgres: int = 5432
    redis: int = 6379
    streams_metrics: int = 9401
    bridge_metrics: int = 9411
    sink_metrics: int = 9421
    redis_sink_metrics: int = 9431
    notify_metrics: int = 9441
    demo_webhook: int = 8090
    prometheus: int = 9090


# Which settings source a Settings() reads: os.environ, or the mapping from_env was given.
_GIVEN_ENV: ContextVar[Mapping[str, str] | None] = ContextVar("homestream_env", default=None)


class _MappingSource(EnvSettingsSource):
    """The environment source over a given mapping; an empty value counts as unset."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        self._given = env
        super().__init__(settings_cls, case_sensitive=True)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return {k: v for k, v in self._given.items() if k.startswith("HOMESTREAM_") and v != ""}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        frozen=True, extra="ignore", populate_by_name=True, case_sensitive=True
    )

    # -- where things are ------------------------------------------------------------------
    state_dir: Path = _var(
        "HOMESTREAM_STATE_DIR", REPO_ROOT / ".state", "data, logs, pid files, secrets"
    )
    cache_dir: Path = _var(
        "HOMESTREAM_CACHE_DIR",
        Path.home() / ".cache" / "homestream",
        "Kafka jars, the TimescaleDB build, the Z-Wave test peer's npm packages",
    )
    host: str = _var("HOMESTREAM_HOST", "127.0.0.1", "address every server listens on")
    # -- ports -----------------------------------------------------------------------------
    mqtt_port: int = _port("HOMESTREAM_MQTT_PORT", 1883, "Mosquitto, plain MQTT on loopback")
    mqtt_tls_port: int = _port("HOMESTREAM_MQTT_TLS_PORT", 8883, "Mosquitto, MQTT over TLS")
    mqtt_cert_port: int = _port(
        "HOMESTREAM_MQTT_CERT_PORT",
        8884,
        "Mosquitto, MQTT over TLS for hubs with a client certificate (`hubs add --cert`)",
    )
    gateway_port: int = _port(
        "HOMESTREAM_GATEWAY_PORT", 8080, "Starlette gateway (REST, WebSocket, dashboard)"
    )
    kafka_port: int = _port("HOMESTREAM_KAFKA_PORT", 9092, "Kafka broker listener")
    kafka_controller_port: int = _port(
        "HOMESTREAM_KAFKA_CONTROLLER_PORT", 9093, "Kafka KRaft controller"
    )
    postgres_port: int = _port("HOMESTREAM_PG_PORT", 5432, "PostgreSQL 15")
    redis_port: int = _port("HOMESTREAM_REDIS_PORT", 6379, "Redis")
    streams_metrics_port: int = _port(
        "HOMESTREAM_STREAMS_METRICS_PORT",
        9401,
        "first stream worker's Prometheus /metrics (worker n: +n-1)",
    )
    bridge_metrics_port: int = _port(
        "HOMESTREAM_BRIDGE_METRICS_PORT",
        9411,
        "first MQTT bridge's Prometheus /metrics (bridge n: +n-1)",
    )
    sink_metrics_port: int = _port(
        "HOMESTREAM_SINK_METRICS_PORT", 9421, "history sink's Prometheus /metrics"
    )
    redis_sink_metrics_port: int = _port(
        "HOMESTREAM_REDIS_SINK_METRICS_PORT", 9431, "Redis sink's Prometheus /metrics"
    )
    notify_metrics_port: int = _port(
        "HOMESTREAM_NOTIFY_METRICS_PORT", 9441, "notification delivery's Prometheus /metrics"
    )
    demo_webhook_port: int = _port(
        "HOMESTREAM_DEMO_WEBHOOK_PORT", 8090, "the demo's webhook receiver (notifications)"
    )
    prometheus_port: int = _port(
        "HOMESTREAM_PROMETHEUS_PORT", 9090, "Prometheus of `up --monitoring` (web UI and API)"
    )
    # -- the stack -------------------------------------------------------------------------
    mqtt_tls_bind: str = _var(
        "HOMESTREAM_MQTT_TLS_BIND", "127.0.0.1", "address of the TLS listener (0.0.0.0: LAN)"
    )
    mqtt_tls_sans: Annotated[tuple[str, ...], NoDecode] = _var(
        "HOMESTREAM_MQTT_TLS_SANS", (), "extra names for the broker certificate (comma list)"
    )
    partitions: int = _var("HOMESTREAM_PARTITIONS", 6, "partitions per topic", ge=1, le=256)
    stream_workers: int = _var(
        "HOMESTREAM_STREAM_WORKERS", 1, "stream worker processes `up` starts", ge=0, le=64
    )
    bridges: int = _var("HOMESTREAM_BRIDGES", 1, "MQTT bridge processes `up` starts", ge=0, le=64)
    sinks: bool = _var("HOMESTREAM_SINKS", True, "0: `up` starts no sinks (history, Redis, notify)")
    gateway: bool = _var("HOMESTREAM_GATEWAY", True, "0: `up` starts no gateway")
    pg_database: str = _var("HOMESTREAM_PG_DATABASE", "homestream", "PostgreSQL database")
    timescaledb: bool = _var(
        "HOMESTREAM_TIMESCALEDB", True, "off: history on native partitioning, not TimescaleDB"
    )
    timescaledb_source: str = _var(
        "HOMESTREAM_TIMESCALEDB_SOURCE",
        TIMESCALEDB_URL,
        f"TimescaleDB {TIMESCALEDB_VERSION} source tarball (URL or file), SHA-256 checked",
    )
    kafka_heap: str = _var("HOMESTREAM_KAFKA_HEAP", "768m", "Kafka's JVM heap")
    kafka_brokers: int = _var(
        "HOMESTREAM_KAFKA_BROKERS",
        1,
        "Kafka brokers `up` runs (3: a KRaft cluster, replication 3, min ISR 2; broker n "
        "listens on HOMESTREAM_KAFKA_PORT+10(n-1), its controller likewise)",
        ge=1,
        le=9,
    )
    kafka_partition_check: Literal["auto", "on", "off"] = _var(
        "HOMESTREAM_KAFKA_PARTITION_CHECK",
        "auto",
        "KIP-890's transactional partition check (auto: off on one broker, on on a cluster)",
    )
    schema_registry_url: str | None = _var(
        "HOMESTREAM_SCHEMA_REGISTRY_URL", None, "use Confluent's wire format with this registry"
    )
    # Servers the launcher does not run (e.g. docker compose); `up` then skips that server.
    kafka_bootstrap_override: str | None = _var(
        "HOMESTREAM_KAFKA_BOOTSTRAP", None, "Kafka the launcher does not run"
    )
    pg_dsn_override: str | None = _var(
        "HOMESTREAM_PG_DSN", None, "PostgreSQL the launcher does not run", secret=True
    )
    redis_url_override: str | None = _var(
        "HOMESTREAM_REDIS_URL", None, "Redis the launcher does not run", secret=True
    )
    log_format: Literal["json", "text"] = _var(
        "HOMESTREAM_LOG_FORMAT", "json", "json: one JSON object per log line; text: for people"
    )
    # -- stream workers --------------------------------------------------------------------
    park_max_per_home: int = _var(
        "HOMESTREAM_PARK_MAX_PER_HOME", 500, "reports of unknown devices kept per home", ge=1
    )
    park_ttl_s: int = _var(
        "HOMESTREAM_PARK_TTL_S", 300, "then dead-lettered as UNKNOWN_DEVICE (s)", ge=1
    )
    offline_after_s: int = _var(
        "HOMESTREAM_OFFLINE_AFTER_S", 900, "silence that makes a device offline (s)", ge=1
    )
    low_battery: int = _var(
        "HOMESTREAM_LOW_BATTERY", 20, "notify when a battery falls to this % or below", ge=1
    )
    battery_recovered: int = _var(
        "HOMESTREAM_BATTERY_RECOVERED", 30, "... again only after it rose above this %", ge=1
    )
    command_timeout_ms: int = _var(
        "HOMESTREAM_COMMAND_TIMEOUT_MS", 5000, "a command's default timeout (ms)", ge=1
    )
    health_scan_s: int = _var(
        "HOMESTREAM_HEALTH_SCAN_S", 30, "how often a home's devices are checked (s)", ge=1
    )
    streams_cache_keys: int = _var(
        "HOMESTREAM_STREAMS_CACHE_KEYS", 500_000, "state values a worker keeps decoded", ge=0
    )
    streams_retry_backoff_ms: int = _var(
        "HOMESTREAM_STREAMS_RETRY_BACKOFF_MS", 2, "first transactional retry (ms)", ge=0
    )
    streams_fetch_wait_ms: int = _var(
        "HOMESTREAM_STREAMS_FETCH_WAIT_MS",
        2,
        "longest a worker's fetch waits at the broker for input (ms)",
        ge=0,
    )
    streams_gc_tuning: bool = _var(
        "HOMESTREAM_STREAMS_GC_TUNING", True, "0: leave Python's garbage collector as it is"
    )
    # -- notification delivery (homestream notify) ------------------------------------------
    notify_senders: int = _var(
        "HOMESTREAM_NOTIFY_SENDERS", 8, "deliveries a notify process sends at once", ge=1, le=256
    )
    notify_retry_first_ms: int = _var(
        "HOMESTREAM_NOTIFY_RETRY_FIRST_MS",
        1000,
        "wait before a failed delivery's 2nd try (ms)",
        ge=1,
    )
    notify_retry_max_ms: int = _var(
        "HOMESTREAM_NOTIFY_RETRY_MAX_MS", 300_000, "... doubling up to this wait (ms)", ge=1
    )
    notify_max_attempts: int = _var(
        "HOMESTREAM_NOTIFY_MAX_ATTEMPTS", 300, "a delivery fails after this many tries", ge=1
    )
    notify_max_age_s: int = _var(
        "HOMESTREAM_NOTIFY_MAX_AGE_S", 86_400, "... or once its notification is this old (s)", ge=1
    )
    notify_lease_s: int = _var(
        "HOMESTREAM_NOTIFY_LEASE_S", 60, "a delivery being sent is retried after this (s)", ge=1
    )
    notify_keep_days: int = _var(
        "HOMESTREAM_NOTIFY_KEEP_DAYS", 30, "finished deliveries kept for their status (days)", ge=1
    )
    # -- gateway ---------------------------------------------------------------------------
    token_secret: str | None = _var(
        "HOMESTREAM_TOKEN_SECRET", None, "token signing key [secrets.json's]", secret=True
    )
    token_ttl_s: int = _var("HOMESTREAM_TOKEN_TTL_S", 3600, "access token lifetime (s)", ge=1)
    gateway_rate_limit: str = _var(
        "HOMESTREAM_GATEWAY_RATE_LIMIT", "600/60", "requests per user: <requests>/<seconds>"
    )
    gateway_login_limit: str = _var(
        "HOMESTREAM_GATEWAY_LOGIN_LIMIT", "20/60", "sign-ins per username: <requests>/<seconds>"
    )
    gateway_tls: bool = _var(
        "HOMESTREAM_GATEWAY_TLS",
        False,
        "on: the gateway serves HTTPS (and WSS) with a certificate of the stack's CA",
    )
    gateway_failed_login_limit: str = _var(
        "HOMESTREAM_GATEWAY_FAILED_LOGIN_LIMIT",
        "5/900",
        "failed sign-ins per username before it must wait: <failures>/<seconds>",
    )
    gateway_failed_login_addr_limit: str = _var(
        "HOMESTREAM_GATEWAY_FAILED_LOGIN_ADDR_LIMIT",
        "20/900",
        "failed sign-ins per client address before it must wait: <failures>/<seconds>",
    )
    # -- voice (docs/voice.md) ---------------------------------------------------------------
    voice_model: str = _var(
        "HOMESTREAM_VOICE_MODEL",
        "",
        "Whisper model: a CTranslate2 model directory or a size name; empty: the bundled tiny.en",
    )
    voice_compute_type: str = _var(
        "HOMESTREAM_VOICE_COMPUTE_TYPE", "int8", "CTranslate2 compute type of the model (int8 ...)"
    )
    voice_beam: int = _var(
        "HOMESTREAM_VOICE_BEAM",
        3,
        "speech-to-text beam: readings the grammar chooses among (1: greedy, fastest)",
        ge=1,
        le=10,
    )
    voice_workers: int = _var(
        "HOMESTREAM_VOICE_WORKERS", 1, "speech-to-text processes per gateway or voice server", ge=1
    )
    voice_username: str = _var(
        "HOMESTREAM_VOICE_USERNAME", "", "login `homestream voice serve` acts as (a member)"
    )
    voice_password: str = _var("HOMESTREAM_VOICE_PASSWORD", "", "... and its password", secret=True)
    voice_max_audio_s: int = _var(
        "HOMESTREAM_VOICE_MAX_AUDIO_S", 30, "longest audio a voice request may send (s)", ge=1
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        env = _GIVEN_ENV.get()
        return (init_settings, _MappingSource(settings_cls, os.environ if env is None else env))

    @field_validator("mqtt_tls_sans", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return tuple(s.strip() for s in value.split(",") if s.strip())
        return value

    @field_validator(
        "gateway_rate_limit",
        "gateway_login_limit",
        "gateway_failed_login_limit",
        "gateway_failed_login_addr_limit",
        mode="after",
    )
    @classmethod
    def _rate(cls, value: str) -> str:
        n, _, window = value.partition("/")
        if not (
            n.isdigit() and int(n) >= 1 and (not window or (window.isdigit() and int(window) >= 1))
        ):
            raise ValueError("expected <requests>/<seconds>, both at least 1, e.g. 600/60")
        return value

    @field_validator("state_dir", "cache_dir", mode="after")
    @classmethod
    def _absolute(cls, value: Path) -> Path:
        return value.expanduser().resolve()

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings from ``env`` (default: the process environment) alone; a bad value
        is a ConfigError that names the variable."""
        token = _GIVEN_ENV.set(os.environ if env is None else env)
        try:
            return cls()
        except ValidationError as exc:
            raise ConfigError(_explain(exc)) from None
        finally:
            _GIVEN_ENV.reset(token)

    @classmethod
    def variables(cls) -> Iterator[tuple[str, str, FieldInfo]]:
        """(field name, variable, field) of every setting, in declaration order."""
        for name, info in cls.model_fields.items():
            yield name, str(info.validation_alias), info

    def effective(self, env: Mapping[str, str] | None = None) -> list[dict[str, Any]]:
        """Every variable with its value, whether it was set, and what it is; secrets are
        masked (``homestream config``)."""
        env = os.environ if env is None else env
        rows = []
        for name, var, info in self.variables():
            value = getattr(self, name)
            if isinstance(value, Path):
                value = str(value)
            elif isinstance(value, tuple):
                value = ",".join(value)
            extra = info.json_schema_extra
            if isinstance(extra, dict) and extra.get("secret") and value:
                value = "********"
            rows.append(
                {
                    "variable": var,
                    "value": value,
                    "source": "environment" if env.get(var) else "default",
                    "description": info.description or "",
                }
            )
        return rows

    def with_ports(self, **ports: int) -> Settings:
        return self.model_copy(update={f"{name}_port": port for name, port in ports.items()})

    @property
    def ports(self) -> Ports:
        return Ports(**{name: getattr(self, f"{name}_port") for name in PORT_VARS})

    @property
    def gateway_url(self) -> str:
        scheme = "https" if self.gateway_tls else "http"
        return f"{scheme}://{self.host}:{self.ports.gateway}"

    @property
    def gateway_tls_files(self) -> tuple[Path, Path]:
        """The gateway's certificate and key (`up` issues them from the stack's CA)."""
        tls = self.service_dir("gateway") / "tls"
        return tls / "server.crt", tls / "server.key"

    @property
    def pg_user(self) -> str:
        return "homestream"

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
    def cluster_file(self) -> Path:
        """Where `up` records how many brokers the stack's Kafka has (HOMESTREAM_KAFKA_BROKERS
        or `up --brokers`), so every later command and process finds them all."""
        return self.state_dir / "kafka-brokers"

    def with_recorded_cluster(self) -> Settings:
        """These settings with the broker count `up` recorded, unless more were asked for."""
        try:
            recorded = int(self.cluster_file.read_text().strip())
        except (OSError, ValueError):
            return self
        if recorded <= self.kafka_brokers:
            return self
        return self.model_copy(update={"kafka_brokers": recorded})

    @property
    def mqtt_ca_file(self) -> Path:
        return self.state_dir / "tls" / "ca.crt"

    @property
    def kafka_libs(self) -> Path:
        return self.cache_dir / f"kafka-{KAFKA_VERSION}" / "libs"

    # Connection strings. The launcher's servers unless an override is set.
    @property
    def kafka_bootstrap(self) -> str:
        if self.kafka_bootstrap_override:
            return self.kafka_bootstrap_override
        return ",".join(
            f"{self.host}:{self.kafka_node_ports(n)[0]}" for n in range(1, self.kafka_brokers + 1)
        )

    def kafka_node_ports(self, node: int) -> tuple[int, int]:
        """(listener, controller) port of broker ``node`` (1-based) of the launcher's cluster."""
        step = 10 * (node - 1)
        return self.ports.kafka + step, self.ports.kafka_controller + step

    @property
    def kafka_replication(self) -> tuple[int, int]:
        """(replication factor, min.insync.replicas) of the launcher's topics: 3 and 2 on a
        cluster of three or more, so one broker may be lost without losing a write."""
        rf = min(self.kafka_brokers, 3)
        return rf, max(1, rf - 1)

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


def default_of(name: str) -> Any:
    """The one default of setting ``name`` (for objects built without settings)."""
    return Settings.model_fields[name].default


# (variable, default, what) of each port, by the Ports field it sets.
PORT_VARS: dict[str, tuple[str, int, str]] = {
    name: (
        str(Settings.model_fields[f"{name}_port"].validation_alias),
        int(Settings.model_fields[f"{name}_port"].default),
        Settings.model_fields[f"{name}_port"].description or "",
    )
    for name in Ports.__dataclass_fields__
}


def _explain(exc: ValidationError) -> str:
    """One sentence per bad variable, in the words the old parser used."""
    parts = []
    for err in exc.errors():
        var = str(err["loc"][0]) if err["loc"] else "setting"
        raw = err.get("input")
        kind = err["type"]
        if kind == "int_parsing":
            parts.append(f"{var}={raw!r} is not a whole number")
        elif kind in ("greater_than_equal", "less_than_equal"):
            lo, hi = _bounds(var)
            parts.append(f"{var}={raw} is out of range ({lo}..{hi})")
        elif kind == "bool_parsing":
            parts.append(f"{var}={raw!r} is not 0 or 1")
        else:
            parts.append(f"{var}={raw!r}: {err['msg']}")
    return "; ".join(parts)


def _bounds(var: str) -> tuple[Any, Any]:
    for _name, alias, info in Settings.variables():
        if alias == var:
            lo = next((m.ge for m in info.metadata if hasattr(m, "ge")), "")
            hi = next((m.le for m in info.metadata if hasattr(m, "le")), "")
            return lo, hi
    return "", ""
