"""The latest notifications per home and the latest runs per automation, in Redis.

Written by the Redis sink from ``homestream.notifications`` (Notification) and
``homestream.automations.runs`` (AutomationFired); read by the gateway for
``GET .../notifications`` (when the history schema is not there) and
``GET .../automations/{a}/runs``. Each list is two keys below the prefix ``P`` (``hs``):

| key | type | what |
|---|---|---|
| ``P:gw:notif-ids:{home}`` | sorted set | event_id -> ts of the home's latest 500 notifications |
| ``P:gw:notif-views:{home}`` | hash | event_id -> the notification as the API shows it (JSON) |
| ``P:gw:arun-ids:{home}:{automation}`` | sorted set | run_id -> ts of the latest 100 runs |
| ``P:gw:arun-views:{home}:{automation}`` | hash | run_id -> the run as the API shows it (JSON) |

An entry is named by its record's id, not by its content, so a replay of the topic (the
sink repeats a batch after a crash, or reads the topic again from the start) finds the entry
there and adds nothing, whatever the view looks like by then. A run's later record (a
STARTED run that completed) replaces the run's entry; an older one never does. Home ids
have no ':', so a home's keys never meet another home's. Both keys of a list expire 30 days
after its last write.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stores.redis_state import DEFAULT_PREFIX

NOTIFICATIONS_KEPT = 500
RUNS_KEPT = 100
LIST_TTL_MS = 30 * 24 * 3600 * 1000

# KEYS[1] the list's sorted set (id -> ts), KEYS[2] its hash (id -> view). ARGV[1] the
# entry's id, ARGV[2] its ts, ARGV[3] its view (JSON), ARGV[4] how many entries are kept,
# ARGV[5] the keys' time to live (ms). Returns 1 when the list changed.
KEEP_LUA = """
local id, ts, view, kept = ARGV[1], tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local cur = redis.call('ZSCORE', KEYS[1], id)
if cur then
  cur = tonumber(cur)
  -- an older record of the entry, or the same one again
  if ts < cur or (ts == cur and redis.call('HGET', KEYS[2], id) == view) then return 0 end
end
redis.call('ZADD', KEYS[1], ts, id)
redis.call('HSET', KEYS[2], id, view)
local over = redis.call('ZCARD', KEYS[1]) - kept
if over > 0 then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, over - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
  redis.call('HDEL', KEYS[2], unpack(oldest))
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
-- a record older than every kept one went out at once
if not redis.call('ZSCORE', KEYS[1], id) then return 0 end
return 1
"""


def notification_keys(home: str) -> tuple[str, str]:
    """The sorted set and the hash of a home's notifications, below the prefix."""
    return f"gw:notif-ids:{home}", f"gw:notif-views:{home}"


def run_keys(home: str, automation: str) -> tuple[str, str]:
    """The sorted set and the hash of an automation's runs, below the prefix."""
    return f"gw:arun-ids:{home}:{automation}", f"gw:arun-views:{home}:{automation}"


def _keep_args(entry_id: Any, view: Mapping[str, Any], kept: int) -> tuple[str, int, str, int, int]:
    if not entry_id:
        raise ValueError("an entry without its id")
    text = json.dumps(view, separators=(",", ":"), sort_keys=True)
    return str(entry_id), int(view.get("ts") or 0), text, kept, LIST_TTL_MS


def notification_write(
    view: Mapping[str, Any],
) -> tuple[tuple[str, str], tuple[str, int, str, int, int]]:
    """KEEP_LUA's keys (below the prefix) and arguments for a notification view.

    Raises ValueError without home_id or event_id (the sink dead-letters the record)."""
    if not view.get("home_id"):
        raise ValueError("a notification without home_id")
    keys = notification_keys(str(view["home_id"]))
    return keys, _keep_args(view.get("event_id"), view, NOTIFICATIONS_KEPT)


def run_write(
    home: str, view: Mapping[str, Any]
) -> tuple[tuple[str, str], tuple[str, int, str, int, int]]:
    """KEEP_LUA's keys (below the prefix) and arguments for an automation run view.

    Raises ValueError without the home, automation_id or run_id."""
    if not home or not view.get("automation_id"):
        raise ValueError("an automation run without home_id or automation_id")
    keys = run_keys(home, str(view["automation_id"]))
    return keys, _keep_args(view.get("run_id"), view, RUNS_KEPT)


class RecentEvents:
    """The gateway's reader of the lists, newest first."""

    def __init__(self, client: Any, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.prefix = prefix

    def _newest(self, keys: tuple[str, str], limit: int) -> list[dict[str, Any]]:
        ids_key, views_key = (f"{self.prefix}:{k}" for k in keys)
        ids = self.client.zrevrange(ids_key, 0, limit - 1)
        if not ids:
            return []
        # an id whose view went meanwhile (trimmed by a write in between) is left out
        return [json.loads(v) for v in self.client.hmget(views_key, ids) if v is not None]

    def notifications(self, home: str, limit: int) -> list[dict[str, Any]]:
        return self._newest(notification_keys(home), limit)

    def runs(self, home: str, automation: str, limit: int) -> list[dict[str, Any]]:
        return self._newest(run_keys(home, automation), limit)
