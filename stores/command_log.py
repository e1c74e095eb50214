"""The command log: each command's latest status in Redis, ``P:gw:cmd:<command id>``.

``P`` is the Redis sink's prefix (``hs``). The value is the status as the API shows it
(``stores.event_views.command_view``) plus its ``rank``, as JSON.

Writers:

- the Redis sink, for every CommandStatus on ``homestream.commands.status``
  (``sinks/redis_sink.py``);
- the gateway's routes, ahead of it, for the commands they send: the command's PENDING, and
  a group command's parent status, which no record carries (``gateway/routes``).

Both go through :data:`RECORD_LUA`, which merges a status into the stored one unless the
stored one is further along (PENDING < SENT < ACKNOWLEDGED < COMPLETED | FAILED | TIMEOUT):
a status never goes back, so the writers may come in any order, and a replay of the topic
after a restart changes nothing.

A command is kept for :data:`COMMAND_TTL_MS` after its latest status's own time (``ts``),
not after the write: replaying statuses older than that does not bring their commands back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from domain.lifecycle import FINAL_RANK, rank
from stores.redis_state import DEFAULT_PREFIX

COMMAND_TTL_MS = 24 * 3600 * 1000

# KEYS[1] the command's key. ARGV[1] the status (JSON object), ARGV[2] its rank, ARGV[3]
# when the command expires (epoch ms). Returns 1 when the stored status changed.
RECORD_LUA = f"""
local at = tonumber(ARGV[3])
local now = redis.call('TIME')
if at <= tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) then
  return 0
end
local new = cjson.decode(ARGV[1])
local r = tonumber(ARGV[2])
local cur = redis.call('GET', KEYS[1])
if cur then
  local c = cjson.decode(cur)
  local cr = tonumber(c['rank'] or 0)
  if cr > r or cr == {FINAL_RANK} then return 0 end
  local changed = cr < r
  for k, v in pairs(new) do
    -- a field the status does not know (null) keeps the stored value
    if v ~= cjson.null and c[k] ~= v then
      c[k] = v
      changed = true
    end
  end
  if not changed then return 0 end
  new = c
end
new['rank'] = r
redis.call('SET', KEYS[1], cjson.encode(new), 'PXAT', at)
return 1
"""


def command_key(command_id: str) -> str:
    """The command's key below the prefix."""
    return f"gw:cmd:{command_id}"


def status_write(status: Mapping[str, Any]) -> tuple[tuple[str], tuple[str, int, int]]:
    """RECORD_LUA's keys (below the prefix) and arguments for a status: a command view, or
    a route's own record. Raises ValueError without a command id (the sink dead-letters
    such a record)."""
    command_id = status.get("command_id")
    if not command_id:
        raise ValueError("a command status without command_id")
    view = {k: v for k, v in status.items() if k != "rank"}
    ts = int(status.get("ts") or time.time() * 1000)  # a status without its time: from now
    args = (
        json.dumps(view, separators=(",", ":")),
        rank(status.get("status")),
        ts + COMMAND_TTL_MS,
    )
    return (command_key(str(command_id)),), args


class RedisCommandLog:
    """The gateway's side of the command log: its write-ahead and the reader."""

    def __init__(self, client: Any, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix
        self._script = client.register_script(RECORD_LUA)

    def record(self, status: Mapping[str, Any]) -> bool:
        """Merge ``status`` in; False when the stored one is further along (or expired)."""
        keys, args = status_write(status)
        return bool(self._script(keys=[f"{self.prefix}:{k}" for k in keys], args=list(args)))

    def get(self, command_id: str) -> dict[str, Any] | None:
        raw = self.client.get(f"{self.prefix}:{command_key(command_id)}")
        if raw is None:
            return None
        value = json.loads(raw)
        if not isinstance(value, dict):
            return None
        value.pop("rank", None)
        return value
