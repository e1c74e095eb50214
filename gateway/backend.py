"""Everything a request handler may use, in one object (``request.app.state.backend``).

``Backend.connect(settings)`` builds the real one: PostgreSQL (``gateway.store.PgStore``),
Redis (what the Redis sink keeps: device state via ``stores.redis_state.RedisState``, the
command log, recent notifications and automation runs; and the rate limits), Kafka (an
``EventProducer`` and the fan-out consumer). Tests build one from the in-memory
parts of ``gateway.memory``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from gateway.fanout import Fanout
from gateway.metrics import Metrics
from gateway.ratelimit import Limit, RateLimiter
from gateway.store import Store
from gateway.voice import VoiceState
from runtime.config import Settings, default_of
from stores.recent_events import RecentEvents
from stores.redis_state import Entry

T = TypeVar("T")

# The settings' own defaults (one per variable), for backends built without settings.
DEFAULT_RATE_LIMIT = default_of("gateway_rate_limit")
DEFAULT_LOGIN_LIMIT = default_of("gateway_login_limit")


def _transcriber(settings: Settings) -> Any:
    from speech.stt import Transcriber

    return Transcriber(
        settings.voice_model,
        settings.voice_workers,
        settings.voice_compute_type,
        settings.voice_max_audio_s,
        beam=settings.voice_beam,
    )


class DeviceReader(Protocol):
    def device(self, home: str, device: str) -> dict[str, Any] | None: ...
    def devices(self, home: str) -> list[dict[str, Any]]: ...
    def shadow(self, home: str, device: str) -> dict[str, Any] | None: ...
    def version(self, home: str, device: str) -> int: ...
    def entries(self, home: str, ids: list[str] | None = None) -> dict[str, Entry]: ...


class EventSender(Protocol):
    def send(
        self, topic: str, record_name: str, home: str, /, key: str | None = None, **fields: Any
    ) -> dict[str, Any]: ...
    def flush(self, timeout: float = ...) -> None: ...


@dataclass
class Backend:
    store: Store
    devices: DeviceReader
    producer: EventSender
    fanout: Fanout
    limiter: RateLimiter
    token_secret: str
    token_ttl_s: int = default_of("token_ttl_s")
    rate_limit: Limit = field(default_factory=lambda: Limit.parse(DEFAULT_RATE_LIMIT, "limit"))
    login_limit: Limit = field(default_factory=lambda: Limit.parse(DEFAULT_LOGIN_LIMIT, "limit"))
    failed_login_limit: Limit = field(
        default_factory=lambda: Limit.parse(default_of("gateway_failed_login_limit"), "limit")
    )
    failed_login_addr_limit: Limit = field(
        default_factory=lambda: Limit.parse(default_of("gateway_failed_login_addr_limit"), "l")
    )
    recent: RecentEvents | None = None  # None: no Redis (memory backends), empty lists
    command_wait_max_s: float = 10.0
    command_timeout_ms: int = default_of("command_timeout_ms")
    # How long a scene run request waits, beyond the scene's delays, for the stream
    # worker's final SceneRun (its commands time out after command_timeout_ms).
    scene_wait_s: float = 10.0
    max_body_bytes: int = 64 * 1024
    voice: VoiceState = field(default_factory=VoiceState)
    metrics: Metrics = field(default_factory=Metrics)
    closers: list[Callable[[], Any]] = field(default_factory=list)
    # Home removal and hub logins over REST (gateway.account_admin); None: 503.
    admin: Any = None

    def __post_init__(self) -> None:
        self.metrics.watch(self.fanout)

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run blocking I/O (PostgreSQL, Redis, the producer) off the event loop."""
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def start(self) -> None:
        await self.fanout.start()
        await asyncio.to_thread(self.voice.warm)

    async def stop(self) -> None:
        await self.fanout.stop()
        self.voice.close()
        for close in reversed(self.closers):
            with contextlib.suppress(Exception):  # closing is best effort
                close()

    @classmethod
    def connect(
        cls, settings: Settings, *, sync_hub_logins: Callable[[], object] | None = None
    ) -> Backend:
        """The real backend. ``sync_hub_logins`` makes the broker reload its logins (the
        ``homestream gateway`` command passes the launcher's); without it, the routes that
        change hub logins or remove a home answer 503."""
        import redis

        from gateway.account_admin import AccountAdmin
        from gateway.feed import KafkaFeed
        from gateway.ratelimit import RedisRateLimiter
        from gateway.store import PgStore
        from runtime.secrets import load_secrets
        from stores.command_log import RedisCommandLog
        from stores.redis_state import RedisState
        from topics.codec import make_codec
        from topics.producer import EventProducer
        from topics.schemas import SchemaStore

        token_secret = settings.token_secret or load_secrets(settings).token_secret
        store = PgStore(settings.pg_dsn())
        store.open()
        client = redis.Redis.from_url(
            settings.redis_url(), socket_timeout=5, socket_connect_timeout=3
        )
        codec = make_codec(SchemaStore(), settings.schema_registry_url)
        producer = EventProducer(
            settings.kafka_bootstrap,
            settings.partitions,
            codec=codec,
            hop="gateway",
            **{"client.id": "homestream-gateway"},
        )
        feed = KafkaFeed(settings.kafka_bootstrap, codec)
        backend = cls(
            store=store,
            devices=RedisState(client),
            producer=producer,
            fanout=Fanout(RedisCommandLog(client), feed=feed),
            limiter=RedisRateLimiter(client),
            token_secret=token_secret,
            token_ttl_s=settings.token_ttl_s,
            rate_limit=Limit.parse(settings.gateway_rate_limit, "HOMESTREAM_GATEWAY_RATE_LIMIT"),
            login_limit=Limit.parse(settings.gateway_login_limit, "HOMESTREAM_GATEWAY_LOGIN_LIMIT"),
            failed_login_limit=Limit.parse(
                settings.gateway_failed_login_limit, "HOMESTREAM_GATEWAY_FAILED_LOGIN_LIMIT"
            ),
            failed_login_addr_limit=Limit.parse(
                settings.gateway_failed_login_addr_limit,
                "HOMESTREAM_GATEWAY_FAILED_LOGIN_ADDR_LIMIT",
            ),
            recent=RecentEvents(client),
            command_timeout_ms=settings.command_timeout_ms,
            voice=VoiceState(lambda: _transcriber(settings)),
        )
        if sync_hub_logins is not None:
            backend.admin = AccountAdmin(store, producer, settings.kafka_bootstrap, sync_hub_logins)
        backend.closers += [store.close, client.close, lambda: producer.flush(5)]
        return backend
