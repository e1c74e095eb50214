"""Per-user rate limits: a fixed window counted in Redis (shared by every gateway process).

``RedisRateLimiter.hit(key)`` counts one request of ``key`` (``user:<name>``, or
``login:<name>`` for sign-in attempts) in the current window and says whether it is allowed
and, when not, how many seconds until the window ends (the ``Retry-After`` header).
Limits come from ``HOMESTREAM_GATEWAY_RATE_LIMIT`` (``requests/seconds``, default
``600/60``) and ``HOMESTREAM_GATEWAY_LOGIN_LIMIT`` (default ``20/60``). When Redis cannot be
reached the limiter fails closed: ``hit`` raises :class:`LimiterUnavailable` and the API
answers 503, because a limiter that lets requests through when its store is down is what a
password guesser would aim for. Keys are made encodable first, so no key can fail.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

log = logging.getLogger("homestream.gateway.ratelimit")


@dataclass(frozen=True)
class Limit:
    requests: int
    window_s: int

    @classmethod
    def parse(cls, text: str, what: str) -> Limit:
        try:
            n, _, w = text.partition("/")
            limit = cls(int(n), int(w or "60"))
        except ValueError:
            raise ValueError(
                f"{what}={text!r}: expected <requests>/<seconds>, e.g. 600/60"
            ) from None
        if limit.requests < 1 or limit.window_s < 1:
            raise ValueError(f"{what}={text!r}: both numbers must be at least 1")
        return limit


@dataclass(frozen=True)
class Decision:
    allowed: bool
    remaining: int
    retry_after: int  # seconds; 0 when allowed


class LimiterUnavailable(RuntimeError):
    """The limiter's store cannot be reached: refuse the request (503), never allow it."""


def key_bytes(key: str) -> bytes:
    """``key`` as bytes for Redis, whatever text it holds: "surrogatepass" encodes even an
    unpaired surrogate, and distinct keys stay distinct."""
    return key.encode("utf-8", "surrogatepass")


class RateLimiter(Protocol):
    def hit(self, key: str, limit: Limit) -> Decision: ...

    def peek(self, key: str, limit: Limit) -> Decision:
        """Whether ``key`` is still under ``limit`` in this window, counting nothing (the
        failed sign-ins of a user or an address, checked before the password is)."""
        ...


_HIT_LUA = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return {n, redis.call('PTTL', KEYS[1])}
"""


class RedisRateLimiter:
    def __init__(self, client: Any, prefix: str = "hs:gw:rl") -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(_HIT_LUA)

    def hit(self, key: str, limit: Limit, now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        window = int(now // limit.window_s)
        rkey = b"%s:%s:%d" % (self.prefix.encode(), key_bytes(key), window)
        try:
            count, _pttl = self._script(keys=[rkey], args=[limit.window_s * 1000 + 1000])
        except Exception as exc:  # fail closed, loudly
            log.warning("rate limiter: Redis unavailable (%s); refusing the request", exc)
            raise LimiterUnavailable(str(exc)) from exc
        count = int(count)
        if count <= limit.requests:
            return Decision(True, limit.requests - count, 0)
        until_window_end = (window + 1) * limit.window_s - now
        return Decision(False, 0, max(1, math.ceil(until_window_end)))

    def peek(self, key: str, limit: Limit, now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        window = int(now // limit.window_s)
        rkey = b"%s:%s:%d" % (self.prefix.encode(), key_bytes(key), window)
        try:
            count = int(self.client.get(rkey) or 0)
        except Exception as exc:  # fail closed, loudly
            log.warning("rate limiter: Redis unavailable (%s); refusing the request", exc)
            raise LimiterUnavailable(str(exc)) from exc
        return _under(count, limit, window, now)


class MemoryRateLimiter:
    """The same fixed window in process memory (tests, single-process use)."""

    def __init__(self) -> None:
        # (key, window length, window number): limits of different lengths share it
        self._counts: dict[tuple[str, int, int], int] = {}
        self._lock = threading.Lock()

    def hit(self, key: str, limit: Limit, now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        window = int(now // limit.window_s)
        with self._lock:
            for k in [k for k in self._counts if k[1] == limit.window_s and k[2] < window]:
                del self._counts[k]
            count = self._counts.get((key, limit.window_s, window), 0) + 1
            self._counts[(key, limit.window_s, window)] = count
        if count <= limit.requests:
            return Decision(True, limit.requests - count, 0)
        return Decision(False, 0, max(1, math.ceil((window + 1) * limit.window_s - now)))

    def peek(self, key: str, limit: Limit, now: float | None = None) -> Decision:
        now = time.time() if now is None else now
        window = int(now // limit.window_s)
        with self._lock:
            count = self._counts.get((key, limit.window_s, window), 0)
        return _under(count, limit, window, now)


def _under(count: int, limit: Limit, window: int, now: float) -> Decision:
    """``count`` hits so far in ``window``: is one more allowed?"""
    if count < limit.requests:
        return Decision(True, limit.requests - count, 0)
    return Decision(False, 0, max(1, math.ceil((window + 1) * limit.window_s - now)))
