"""Command statuses and the gateway's Redis side stores.

Kept in Redis, shared by the gateway processes and idempotent when several write the same
record (the feed of each process writes every record; ``gateway.feed``):

- the latest status of each command (``hs:gw:cmd:<id>``, 24 h), for
  ``GET .../commands/{id}`` and ``"wait": true``; a status never goes back (PENDING < SENT
  < ACKNOWLEDGED < COMPLETED | FAILED | TIMEOUT). The routes write a command's PENDING
  and a group command's parent themselves (``gateway/routes/common.py``, ``groups.py``);
- the latest 500 notifications per home (``hs:gw:notif:<home>``, used when the history
  schema is not there);
- the latest 100 runs per automation (``hs:gw:arun:<home>:<automation>``).

:class:`CommandStatuses` is this process's side: the latest statuses it saw, callers
waiting for a final one, and listeners of every status.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from domain.lifecycle import FINAL, FINAL_RANK, rank

log = logging.getLogger("homestream.gateway.fanout")

COMMAND_TTL_MS = 24 * 3600 * 1000
NOTIFICATIONS_KEPT = 500
RUNS_KEPT = 100


# -- the command log (Redis, or memory for tests) ------------------------------------------
class CommandLog(Protocol):
    def record(self, status: Mapping[str, Any]) -> bool: ...
    def get(self, command_id: str) -> dict[str, Any] | None: ...


# Merge a status into the stored one unless the stored one is further along (or final).
_RECORD_LUA = """
local cur = redis.call('GET', KEYS[1])
local new = cjson.decode(ARGV[1])
local r = tonumber(ARGV[2])
if cur then
  local c = cjson.decode(cur)
  local cr = tonumber(c['rank'] or 0)
  if cr > r or cr == 4 then return 0 end
  for k, v in pairs(new) do
    if v ~= cjson.null then c[k] = v end
  end
  new = c
end
new['rank'] = r
redis.call('SET', KEYS[1], cjson.encode(new), 'PX', ARGV[3])
return 1
"""


class RedisCommandLog:
    def __init__(self, client: Any, prefix: str = "hs:gw:cmd", ttl_ms: int = COMMAND_TTL_MS):
        self.client = client
        self.prefix = prefix
        self.ttl_ms = ttl_ms
        self._script = client.register_script(_RECORD_LUA)

    def record(self, status: Mapping[str, Any]) -> bool:
        cid = str(status["command_id"])
        payload = json.dumps({k: v for k, v in status.items() if k != "rank"})
        done = self._script(
            keys=[f"{self.prefix}:{cid}"], args=[payload, rank(status.get("status")), self.ttl_ms]
        )
        return bool(done)

    def get(self, command_id: str) -> dict[str, Any] | None:
        raw = self.client.get(f"{self.prefix}:{command_id}")
        if raw is None:
            return None
        value = json.loads(raw)
        value.pop("rank", None)
        return value if isinstance(value, dict) else None


class MemoryCommandLog:
    def __init__(self, maxsize: int = 10_000) -> None:
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.maxsize = maxsize
        self._lock = threading.Lock()

    def record(self, status: Mapping[str, Any]) -> bool:
        cid = str(status["command_id"])
        r = rank(status.get("status"))
        with self._lock:
            cur = self.items.get(cid)
            if cur is not None:
                cr = cur["_rank"]
                if cr > r or cr == 4:
                    return False
                merged = {**cur, **{k: v for k, v in status.items() if v is not None}}
            else:
                merged = dict(status)
            merged["_rank"] = r
            self.items[cid] = merged
            self.items.move_to_end(cid)
            while len(self.items) > self.maxsize:
                self.items.popitem(last=False)
        return True

    def get(self, command_id: str) -> dict[str, Any] | None:
        with self._lock:
            cur = self.items.get(command_id)
            return None if cur is None else {k: v for k, v in cur.items() if k != "_rank"}


# -- notifications and automation runs (Redis) -------------------------------------------
@dataclass
class FeedSideStores:
    """Where the feed thread keeps what outlives the events (Redis)."""

    client: Any
    prefix: str = "hs:gw"

    def notifications_key(self, home: str) -> str:
        return f"{self.prefix}:notif:{home}"

    def runs_key(self, home: str, automation: str) -> str:
        return f"{self.prefix}:arun:{home}:{automation}"

    def keep_notification(self, view: Mapping[str, Any]) -> None:
        key = self.notifications_key(str(view["home_id"]))
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(key, {json.dumps(view, sort_keys=True): int(view.get("ts") or 0)})
        pipe.zremrangebyrank(key, 0, -(NOTIFICATIONS_KEPT + 1))
        pipe.pexpire(key, 30 * 24 * 3600 * 1000)
        pipe.execute()

    def keep_run(self, home: str, view: Mapping[str, Any]) -> None:
        key = self.runs_key(home, str(view.get("automation_id") or ""))
        pipe = self.client.pipeline(transaction=False)
        pipe.zadd(key, {json.dumps(view, sort_keys=True): int(view.get("ts") or 0)})
        pipe.zremrangebyrank(key, 0, -(RUNS_KEPT + 1))
        pipe.pexpire(key, 30 * 24 * 3600 * 1000)
        pipe.execute()

    def notifications(self, home: str, limit: int) -> list[dict[str, Any]]:
        raw = self.client.zrevrange(self.notifications_key(home), 0, limit - 1)
        return [json.loads(r) for r in raw]

    def runs(self, home: str, automation: str, limit: int) -> list[dict[str, Any]]:
        raw = self.client.zrevrange(self.runs_key(home, automation), 0, limit - 1)
        return [json.loads(r) for r in raw]


# -- this process's statuses ---------------------------------------------------------------
class CommandStatuses:
    """The latest statuses this process saw, over the shared command log: wakes
    ``wait_status`` callers and calls the status listeners (loop thread only)."""

    def __init__(self, commands: CommandLog, *, latest_kept: int = 10_000) -> None:
        self.commands = commands
        self._latest: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self._latest_kept = latest_kept
        self._waiters: dict[str, set[asyncio.Event]] = defaultdict(set)
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    def add_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        self._listeners.append(fn)

    def remove_listener(self, fn: Callable[[dict[str, Any]], None]) -> None:
        with contextlib.suppress(ValueError):
            self._listeners.remove(fn)

    def note(self, status: dict[str, Any]) -> None:
        """A status seen here (the feed, or the request itself): wakes waiters."""
        cid = str(status.get("command_id") or "")
        if not cid:
            return
        cur = self._latest.get(cid)
        cur_rank = rank(cur.get("status")) if cur is not None else -1
        if cur is None or (cur_rank != FINAL_RANK and rank(status.get("status")) >= cur_rank):
            merged = {**(cur or {}), **{k: v for k, v in status.items() if v is not None}}
            self._latest[cid] = merged
            self._latest.move_to_end(cid)
            while len(self._latest) > self._latest_kept:
                self._latest.popitem(last=False)
        for ev in self._waiters.get(cid, ()):
            ev.set()
        for fn in list(self._listeners):
            try:
                fn(status)
            except Exception:  # a listener must not break the fan-out
                log.exception("command status listener failed")

    async def status(self, command_id: str) -> dict[str, Any] | None:
        """The latest status known here or in the command log."""
        local = self._latest.get(command_id)
        if local is not None and local.get("status") in FINAL:
            return dict(local)
        stored = await asyncio.to_thread(self.commands.get, command_id)
        if stored is None:
            return dict(local) if local else None
        if local is not None and rank(local.get("status")) > rank(stored.get("status")):
            return {**stored, **local}
        return stored

    async def wait_status(
        self, command_id: str, timeout: float, *, poll: float = 0.5
    ) -> dict[str, Any] | None:
        """Wait up to ``timeout`` seconds for a final status; returns the latest one known
        (final or not), or None when nothing is known about the command."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(0.0, timeout)
        waiter = asyncio.Event()
        self._waiters[command_id].add(waiter)
        try:
            while True:
                current = await self.status(command_id)
                if current is not None and current.get("status") in FINAL:
                    return current
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return current
                waiter.clear()
                # Polls too: another gateway process's feed may have written the status.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waiter.wait(), min(remaining, poll))
        finally:
            waiters = self._waiters.get(command_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[command_id]
