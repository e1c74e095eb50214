"""Current device state in Redis: the key layout, the compare-and-set writers, the reader.

The Redis sink (``sinks/redis_sink.py``) folds three compacted topics into Redis:

- ``homestream.device.registry``: DeviceRegistered / DeviceRemoved (+ tombstones);
- ``homestream.shadow.documents``: the full ShadowDocument after each accepted change;
- ``homestream.device.availability``: Availability (online / offline).

The gateway reads it with :class:`RedisState`. Every write is a Lua script that compares
before it sets, so applying a record twice, or an older record after a newer one, changes
nothing: replays and rebuilds are idempotent (docs/redis.md).

Key layout (``P`` is the prefix, ``hs`` by default; ``G`` a generation number)::

    P:gen                    current generation, read by every reader and writer
    P:genseq                 generation counter (INCR) for rebuilds
    P:building               generation being rebuilt; live writers write to it as well
    P:gG:dev:{home}/{device} hash: registry entry, shadow, availability of one device
    P:gG:home:{home}         set of the home's registered device ids (the device index)
    P:gG:gone:{home}         hash device id -> "registry offset, removal ts" of removed devices

Device hash fields: ``reg`` (registry entry, JSON), ``reg_off`` (its registry offset),
``registered_at`` (ms); ``shadow`` (JSON: desired, reported, metadata, version, timestamp),
``version``, ``shadow_ts`` (the ShadowDocument's ``ts``, ms); ``online`` ("1"/"0"),
``avail_off`` (availability offset), ``avail_ts`` (ms); ``pend``, ``pend_version``,
``pend_ts``: a document held aside (an older version with a later time, see SHADOW_LUA).

The scripts compute key names from the prefix, so this layout needs a single Redis server
(not Redis Cluster).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from domain.shadow import Shadow
from topics import catalogue as t
from topics.descriptor import TEXT_FIELDS
from topics.keys import parse_key

DEFAULT_PREFIX = "hs"

# The registry entry fields kept from DeviceRegistered.
REGISTRY_FIELDS = (
    *TEXT_FIELDS,
    "capabilities",
    "extra",
    "source",
    "registered_at",
)


# -- key layout -------------------------------------------------------------------------
@dataclass(frozen=True)
class Keys:
    """Key names of one prefix; ``gen`` is a generation number (as text)."""

    prefix: str = DEFAULT_PREFIX

    def __post_init__(self) -> None:
        if not self.prefix or any(c in self.prefix for c in " *?[]"):
            raise ValueError(f"bad Redis key prefix {self.prefix!r}")

    @property
    def gen(self) -> str:
        return f"{self.prefix}:gen"

    @property
    def genseq(self) -> str:
        return f"{self.prefix}:genseq"

    @property
    def building(self) -> str:
        return f"{self.prefix}:building"

    def space(self, gen: str | int) -> str:
        """Prefix of every data key of generation ``gen``."""
        return f"{self.prefix}:g{gen}:"

    def device(self, gen: str | int, home: str, device: str) -> str:
        return f"{self.space(gen)}dev:{home}/{device}"

    def home(self, gen: str | int, home: str) -> str:
        return f"{self.space(gen)}home:{home}"

    def gone(self, gen: str | int, home: str) -> str:
        return f"{self.space(gen)}gone:{home}"


# -- record -> script arguments (pure) ---------------------------------------------------
def registry_entry(record: Mapping[str, Any]) -> dict[str, Any]:
    """The registry entry kept for a DeviceRegistered record."""
    entry = {k: record.get(k) for k in REGISTRY_FIELDS}
    entry["capabilities"] = list(entry.get("capabilities") or [])
    entry["registered_at"] = int(record.get("registered_at") or record.get("ts") or 0)
    return entry


def _json_object(text: str | None, what: str) -> dict[str, Any]:
    if text is None or text == "":
        return {}
    value = json.loads(text)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"ShadowDocument.{what} is not a JSON object")
    return value


def shadow_entry(record: Mapping[str, Any]) -> dict[str, Any]:
    """What is kept of a ShadowDocument: desired, reported, metadata, version, timestamp.

    Raises ValueError when a section is not JSON object text (the sink dead-letters it).
    ``delta`` is not kept: it is derived from desired and reported when read.
    """
    metadata = _json_object(record.get("metadata"), "metadata")
    return {
        "desired": _json_object(record.get("desired"), "desired"),
        "reported": _json_object(record.get("reported"), "reported"),
        "metadata": {
            "desired": metadata.get("desired") or {},
            "reported": metadata.get("reported") or {},
        },
        "version": int(record["version"]),
        "timestamp": int(record.get("timestamp") or 0),
    }


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True)
class Op:
    """One compare-and-set write: which script, for which device, with what arguments."""

    script: str  # "register" | "remove" | "shadow" | "availability"
    home: str
    device: str
    args: tuple[str | int, ...]


def op_for(topic: str, offset: int, name: str, record: Mapping[str, Any]) -> Op | None:
    """The write a decoded record asks for; None for a record the sink does not keep.

    Raises ValueError for a record it cannot use (the sink dead-letters it).
    """
    home, device = str(record.get("home_id") or ""), str(record.get("device_id") or "")
    if not home or not device:
        raise ValueError(f"{name} without home_id/device_id")
    ts = int(record.get("ts") or 0)
    if topic == t.DEVICE_REGISTRY and name == "DeviceRegistered":
        entry = registry_entry(record)
        return Op("register", home, device, (offset, dumps(entry), entry["registered_at"]))
    if topic == t.DEVICE_REGISTRY and name == "DeviceRemoved":
        return Op("remove", home, device, (offset, ts))
    if topic == t.SHADOW_DOCUMENTS and name == "ShadowDocument":
        entry = shadow_entry(record)
        return Op("shadow", home, device, (entry["version"], ts, dumps(entry)))
    if topic == t.DEVICE_AVAILABILITY and name == "Availability":
        return Op("availability", home, device, (offset, ts, "1" if record["online"] else "0"))
    return None


def tombstone_op(topic: str, offset: int, key: bytes | str | None) -> Op | None:
    """A null value: on the registry a removal (after its DeviceRemoved, so normally a
    no-op); elsewhere nothing is kept (the registry decides what exists). A tombstone has
    no event time, so its removal time is 0: "some time before", which keeps the time of
    the DeviceRemoved before it and never hides records of the device's next life."""
    if topic != t.DEVICE_REGISTRY:
        return None
    home, device = parse_key(key or b"")
    if device is None:
        raise ValueError(f"tombstone with key {key!r}: expected home_id/device_id")
    return Op("remove", home, device, (offset, 0))


# -- hash -> documents (pure) -------------------------------------------------------------
def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode()
    return str(value)


def _int(value: Any) -> int | None:
    text = _text(value)
    return None if text is None else int(text)


def text_hash(raw: Mapping[Any, Any]) -> dict[str, str]:
    """A hash as returned by redis-py (bytes or str) as str -> str."""
    return {str(_text(k)): str(_text(v)) for k, v in raw.items()}


def stored_shadow(h: Mapping[str, str]) -> Shadow | None:
    text = h.get("shadow")
    if not text:
        return None
    s = json.loads(text)
    return Shadow(
        desired=s.get("desired") or {},
        reported=s.get("reported") or {},
        metadata=s.get("metadata") or {"desired": {}, "reported": {}},
        version=int(s.get("version") or 0),
        timestamp=int(s.get("timestamp") or 0),
    )


def shadow_document(h: Mapping[str, str]) -> dict[str, Any] | None:
    """The CONTRACT section 4 document (AWS get shape) of a device hash, or None when the
    device is not registered or has no shadow yet."""
    if "reg" not in h:
        return None
    sh = stored_shadow(h)
    if sh is None or not sh.exists:
        return None
    return sh.to_document()


def device_view(home: str, device: str, h: Mapping[str, str]) -> dict[str, Any] | None:
    """The gateway's device entry: registry + current state, online, lastSeen, battery.

    ``lastSeen`` (epoch ms) is the latest of: registration, last accepted shadow change,
    last "online" availability. ``battery`` is ``reported.battery`` when numeric. ``online``
    is True from registration until an Availability record says otherwise (the stream
    worker's rule).
    """
    if "reg" not in h:
        return None
    entry = json.loads(h["reg"])
    registered_at = int(entry.get("registered_at") or 0)
    sh = stored_shadow(h)
    online = h.get("online", "1") == "1"
    seen = [registered_at]
    if sh is not None and h.get("shadow_ts"):
        seen.append(int(h["shadow_ts"]))
    if online and h.get("avail_ts"):
        seen.append(int(h["avail_ts"]))
    reported = sh.reported if sh else {}
    battery = reported.get("battery")
    if isinstance(battery, bool) or not isinstance(battery, int | float):
        battery = None
    extra = entry.get("extra")
    if isinstance(extra, str):
        with contextlib.suppress(ValueError):
            extra = json.loads(extra)
    return {
        "home_id": home,
        "device_id": device,
        "name": entry.get("name"),
        "type": entry.get("type"),
        "room": entry.get("room"),
        "protocol": entry.get("protocol"),
        "manufacturer": entry.get("manufacturer"),
        "model": entry.get("model"),
        "capabilities": list(entry.get("capabilities") or []),
        "endpoint": entry.get("endpoint"),
        "extra": extra,
        "source": entry.get("source"),
        "registered_at": registered_at,
        "online": online,
        "lastSeen": max(seen),
        "battery": battery,
        "version": sh.version if sh else 0,
        "state": dict(reported),
        "desired": dict(sh.desired) if sh else {},
        "delta": sh.delta if sh else {},
    }


def snapshot_order(entry: Mapping[str, Any]) -> tuple[Any, ...]:
    """Sort key of the snapshot: by room, then name (devices without a room last)."""
    room = entry.get("room")
    name = entry.get("name") or ""
    return (room is None, (room or "").casefold(), name.casefold(), entry.get("device_id") or "")


# -- the Lua scripts ---------------------------------------------------------------------
# ARGV[1] prefix, ARGV[2] target generation ("" = the live ones: current + building),
# ARGV[3] home, ARGV[4] device, then per script. Each returns how many generations it
# changed (0 = stale or duplicate).
_PRELUDE = r"""
local P, TARGET, HOME, DEV = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local function targets()
  if TARGET ~= '' then return {TARGET} end
  local g = redis.call('GET', P .. ':gen')
  if not g then
    g = tostring(redis.call('INCR', P .. ':genseq'))
    redis.call('SET', P .. ':gen', g)
  end
  local out = {g}
  local b = redis.call('GET', P .. ':building')
  if b and b ~= g then out[2] = b end
  return out
end
local function keys(g)
  local s = P .. ':g' .. g .. ':'
  return s .. 'dev:' .. HOME .. '/' .. DEV, s .. 'home:' .. HOME, s .. 'gone:' .. HOME
end
local function gone_of(gone)
  local v = redis.call('HGET', gone, DEV)
  if not v then return nil, nil end
  local off, ts = string.match(v, '^(%-?%d+) (%-?%d+)$')
  return tonumber(off), tonumber(ts)
end
-- Where the device's current life starts: its registration time, or just after its
-- removal. Records with an older ts belong to an earlier life of the device id.
local function boundary(dev, gone)
  local reg_at = redis.call('HGET', dev, 'registered_at')
  if reg_at then return tonumber(reg_at) end
  local _, removed_ts = gone_of(gone)
  if removed_ts then return removed_ts + 1 end
  return nil
end
"""

# ARGV[5] registry offset, ARGV[6] entry JSON, ARGV[7] registered_at
REGISTER_LUA = (
    _PRELUDE
    + r"""
local off, entry, reg_at = tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local changed = 0
for _, g in ipairs(targets()) do
  local dev, home, gone = keys(g)
  local cur = tonumber(redis.call('HGET', dev, 'reg_off'))
  local gone_off = gone_of(gone)
  if (cur == nil or off > cur) and (gone_off == nil or off > gone_off) then
    redis.call('HDEL', gone, DEV)
    redis.call('HSET', dev, 'reg', entry, 'reg_off', off, 'registered_at', reg_at)
    -- what is left from an earlier life of this device id goes
    local sts = tonumber(redis.call('HGET', dev, 'shadow_ts'))
    if sts and sts < reg_at then
      redis.call('HDEL', dev, 'shadow', 'version', 'shadow_ts')
      sts = nil
    end
    local ats = tonumber(redis.call('HGET', dev, 'avail_ts'))
    if ats and ats < reg_at then redis.call('HDEL', dev, 'online', 'avail_off', 'avail_ts') end
    -- a document of this life that came before the old life's removal (see SHADOW_LUA)
    local pts = tonumber(redis.call('HGET', dev, 'pend_ts'))
    if pts and not sts and pts >= reg_at then
      local p = redis.call('HMGET', dev, 'pend', 'pend_version')
      redis.call('HSET', dev, 'shadow', p[1], 'version', p[2], 'shadow_ts', pts)
      redis.call('HDEL', dev, 'pend', 'pend_version', 'pend_ts')
    elseif pts and pts < reg_at then
      redis.call('HDEL', dev, 'pend', 'pend_version', 'pend_ts')
    end
    redis.call('SADD', home, DEV)
    changed = changed + 1
  end
end
return changed
"""
)

# ARGV[5] registry offset, ARGV[6] removal ts
REMOVE_LUA = (
    _PRELUDE
    + r"""
local off, ts = tonumber(ARGV[5]), tonumber(ARGV[6])
local changed = 0
for _, g in ipairs(targets()) do
  local dev, home, gone = keys(g)
  local cur = tonumber(redis.call('HGET', dev, 'reg_off'))
  local gone_off, gone_ts = gone_of(gone)
  if (cur == nil or off > cur) and (gone_off == nil or off > gone_off) then
    if gone_ts and gone_ts > ts then ts = gone_ts end
    -- records newer than the removal belong to the next life: they stay
    local f = redis.call('HMGET', dev, 'shadow', 'version', 'shadow_ts', 'online', 'avail_off',
                         'avail_ts', 'pend', 'pend_version', 'pend_ts')
    redis.call('DEL', dev)
    if f[3] and tonumber(f[3]) > ts then
      redis.call('HSET', dev, 'shadow', f[1], 'version', f[2], 'shadow_ts', f[3])
    end
    if f[6] and tonumber(f[6]) > ts then
      redis.call('HSET', dev, 'online', f[4], 'avail_off', f[5], 'avail_ts', f[6])
    end
    if f[9] and tonumber(f[9]) > ts then
      redis.call('HSET', dev, 'pend', f[7], 'pend_version', f[8], 'pend_ts', f[9])
    end
    redis.call('SREM', home, DEV)
    redis.call('HSET', gone, DEV, string.format('%d %d', off, ts))
    changed = changed + 1
  end
end
return changed
"""
)

# ARGV[5] version, ARGV[6] ts, ARGV[7] shadow JSON
SHADOW_LUA = (
    _PRELUDE
    + r"""
local version, ts, doc = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local changed = 0
for _, g in ipairs(targets()) do
  local dev, home, gone = keys(g)
  local b = boundary(dev, gone)
  local cur = tonumber(redis.call('HGET', dev, 'version'))
  local cur_ts = tonumber(redis.call('HGET', dev, 'shadow_ts'))
  local apply
  if b and ts < b then apply = false                       -- from an earlier life
  elseif cur == nil then apply = true
  elseif b and cur_ts and cur_ts < b then apply = true     -- replaces an earlier life
  else apply = version > cur end                           -- the CAS: newer versions only
  if apply then
    redis.call('HSET', dev, 'shadow', doc, 'version', version, 'shadow_ts', ts)
    changed = changed + 1
  elseif not (b and ts < b) and cur_ts and ts > cur_ts then
    -- an older version but a later time: a stale replay, or the first documents of the
    -- device's next life whose removal has not arrived yet. Kept aside, never shown; a
    -- registration of a new life at or before its time promotes it.
    local pts = tonumber(redis.call('HGET', dev, 'pend_ts'))
    if not pts or ts > pts then
      redis.call('HSET', dev, 'pend', doc, 'pend_version', version, 'pend_ts', ts)
    end
  end
end
return changed
"""
)

# ARGV[5] availability offset, ARGV[6] ts, ARGV[7] "1" online / "0" offline
AVAILABILITY_LUA = (
    _PRELUDE
    + r"""
local off, ts, online = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local changed = 0
for _, g in ipairs(targets()) do
  local dev, home, gone = keys(g)
  local b = boundary(dev, gone)
  local cur = tonumber(redis.call('HGET', dev, 'avail_off'))
  local cur_ts = tonumber(redis.call('HGET', dev, 'avail_ts'))
  local apply
  if b and ts < b then apply = false
  elseif cur == nil then apply = true
  elseif b and cur_ts and cur_ts < b then apply = true
  else apply = off > cur end
  if apply then
    redis.call('HSET', dev, 'online', online, 'avail_off', off, 'avail_ts', ts)
    changed = changed + 1
  end
end
return changed
"""
)

# ARGV[1] prefix, ARGV[2] the rebuilt generation. Makes it current, ends the rebuild;
# returns the previous generation (or false).
SWAP_LUA = r"""
local P, NEW = ARGV[1], ARGV[2]
local old = redis.call('GET', P .. ':gen')
redis.call('SET', P .. ':gen', NEW)
if redis.call('GET', P .. ':building') == NEW then redis.call('DEL', P .. ':building') end
return old
"""


# -- the reader --------------------------------------------------------------------------
# The device hashes of a home, read in one round trip whatever their number: the
# generation, the home's index (unless ids are given) and every hash, under one script
# so a rebuild's swap is never seen half. ARGV: prefix, home, device ids (none: the index).
# Returns id1, hash1 (flat field/value list), id2, hash2 ...
READ_LUA = r"""
local prefix, home = ARGV[1], ARGV[2]
local gen = redis.call('GET', prefix .. ':gen')
if not gen then return {} end
local space = prefix .. ':g' .. gen .. ':'
local ids = {}
if #ARGV > 2 then
  for i = 3, #ARGV do ids[#ids + 1] = ARGV[i] end
else
  ids = redis.call('SMEMBERS', space .. 'home:' .. home)
end
local out = {}
for _, dev in ipairs(ids) do
  out[#out + 1] = dev
  out[#out + 1] = redis.call('HGETALL', space .. 'dev:' .. home .. '/' .. dev)
end
return out
"""


def _pairs(flat: list[Any]) -> dict[str, str]:
    return {str(_text(flat[i])): str(_text(flat[i + 1])) for i in range(0, len(flat), 2)}


@dataclass(frozen=True)
class Entry:
    """What one device hash gives the gateway: its entry (None: not registered) and its
    shadow document (None: none yet)."""

    device: dict[str, Any] | None
    shadow: dict[str, Any] | None


class RedisState:
    """What the gateway reads: device entries, the home snapshot, shadows, versions.

    ``client`` is a ``redis.Redis`` (``decode_responses`` either way). Each call reads the
    current generation first, so a rebuild's swap is seen at once and never half.
    """

    def __init__(self, client: Any, prefix: str = DEFAULT_PREFIX) -> None:
        self.client = client
        self.keys = Keys(prefix)
        self._read = client.register_script(READ_LUA)

    def generation(self) -> str | None:
        return _text(self.client.get(self.keys.gen))

    def _hash(self, home: str, device: str) -> dict[str, str] | None:
        gen = self.generation()
        if gen is None:
            return None
        raw = self.client.hgetall(self.keys.device(gen, home, device))
        return text_hash(raw) if raw else None

    def entries(self, home: str, ids: list[str] | None = None) -> dict[str, Entry]:
        """Entries of the given devices of a home (None: all of them) in one round trip;
        a device that is not registered is left out."""
        if ids is not None and not ids:
            return {}
        flat = self._read(args=[self.keys.prefix, home, *(ids or [])])
        out = {}
        for i in range(0, len(flat), 2):
            dev, h = str(_text(flat[i])), _pairs(flat[i + 1])
            view = device_view(home, dev, h) if h else None
            if view is not None:
                out[dev] = Entry(view, shadow_document(h))
        return out

    def device(self, home: str, device: str) -> dict[str, Any] | None:
        h = self._hash(home, device)
        return None if h is None else device_view(home, device, h)

    def devices(self, home: str) -> list[dict[str, Any]]:
        """The home's snapshot: every registered device, sorted by room then name."""
        out = [e.device for e in self.entries(home).values() if e.device is not None]
        out.sort(key=snapshot_order)
        return out

    def shadow(self, home: str, device: str) -> dict[str, Any] | None:
        h = self._hash(home, device)
        return None if h is None else shadow_document(h)

    def version(self, home: str, device: str) -> int:
        """The device's shadow version (0: none, or not registered)."""
        gen = self.generation()
        if gen is None:
            return 0
        key = self.keys.device(gen, home, device)
        reg, version = self.client.hmget(key, ["reg", "version"])
        if reg is None or version is None:
            return 0
        return _int(version) or 0
