"""Everything the stream worker does with one home's events, as a deterministic fold.

``HomeProcessor.handle(record_name, record)`` reads and writes state through a
``Store`` and returns the events to emit. No clock, no I/O: times come from the
events themselves (a report's ``received_at``, a tick's ``ts``) and output event ids
are derived from the input's id. So replaying the same input over the same state
gives the same state and the same outputs, which makes shadows rebuilt from the
topics equal to the live ones and lets downstream consumers drop replayed
duplicates by event id.

State lives in two kinds of entries, both plain JSON-able dicts:
- per device (key ``home/device``): descriptor, shadow, health;
- per home (key ``home``): device ids, parked reports, in-flight commands.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from domain.commands import CommandRejected, desired_satisfied, plan_command
from domain.dedupe import changes
from domain.lifecycle import FINAL
from domain.shadow import (
    MAX_DOCUMENT_BYTES,
    MSG_TOO_LARGE,
    Shadow,
    ShadowError,
    apply_report,
    apply_update,
    get_document,
)
from domain.validate import validate_descriptor, validate_state
from runtime.config import ConfigError
from streams.due import scan_due, ticked_key
from topics import catalogue as t
from topics.descriptor import TEXT_FIELDS
from topics.keys import device_key

_NS = uuid.UUID("6f1d3c2a-8a53-4f0e-9d55-3f0b1e6a7c11")


@dataclass(frozen=True)
class ProcessorConfig:
    park_max_per_home: int = 500  # reports from not-yet-discovered devices kept per home
    park_ttl_ms: int = 5 * 60_000  # then dead-lettered as UNKNOWN_DEVICE
    offline_after_ms: int = 15 * 60_000  # silence that makes a device offline
    low_battery: int = 20  # notify when battery falls to this or below ...
    battery_recovered: int = 30  # ... and again only after it came back above this
    default_timeout_ms: int = 5_000
    # How often a home's devices are checked for silence and its parked reports for age.
    # Ticks come every second for command timeouts; walking every device that often would
    # cost O(devices) per second.
    scan_interval_ms: int = 30_000

    # (field, environment variable, unit multiplier to the field's unit)
    ENV: ClassVar[tuple[tuple[str, str, int], ...]] = (
        ("park_max_per_home", "HOMESTREAM_PARK_MAX_PER_HOME", 1),
        ("park_ttl_ms", "HOMESTREAM_PARK_TTL_S", 1000),
        ("offline_after_ms", "HOMESTREAM_OFFLINE_AFTER_S", 1000),
        ("low_battery", "HOMESTREAM_LOW_BATTERY", 1),
        ("battery_recovered", "HOMESTREAM_BATTERY_RECOVERED", 1),
        ("default_timeout_ms", "HOMESTREAM_COMMAND_TIMEOUT_MS", 1),
        ("scan_interval_ms", "HOMESTREAM_HEALTH_SCAN_S", 1000),
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProcessorConfig:
        values: dict[str, int] = {}
        for name, var, unit in cls.ENV:
            raw = env.get(var)
            if raw in (None, ""):
                continue
            try:
                number = int(raw)
            except ValueError:
                raise ConfigError(f"{var}={raw!r} is not a whole number") from None
            if number <= 0:
                raise ConfigError(f"{var}={number} must be positive")
            values[name] = number * unit
        return cls(**values)


@dataclass(frozen=True)
class Emit:
    topic: str
    key: str
    record_name: str  # TOMBSTONE: a null value (deletes the key on a compacted topic)
    record: dict[str, Any]


TOMBSTONE = ""


class Store(Protocol):
    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, value: dict[str, Any] | None) -> None: ...

    def homes(self) -> Iterable[str]: ...

    def due_homes(self, last_tick: int, now: int) -> Iterable[str]:
        """A superset of the homes a tick at ``now`` has work for (the one before it was at
        ``last_tick``)."""
        ...


class DictStore:
    """A Store over a dict: for tests and for the reference fold."""

    def __init__(self, data: dict[str, dict[str, Any]] | None = None) -> None:
        self.data: dict[str, dict[str, Any]] = {} if data is None else data

    def get(self, key: str) -> dict[str, Any] | None:
        return self.data.get(key)

    def put(self, key: str, value: dict[str, Any] | None) -> None:
        if value is None:
            self.data.pop(key, None)
        else:
            self.data[key] = value

    def homes(self) -> Iterator[str]:
        return (k for k in list(self.data) if "/" not in k)

    def due_homes(self, last_tick: int, now: int) -> Iterable[str]:
        """Homes a tick at ``now`` may have work for: here all of them (see
        ``streams.due.DueIndex``)."""
        return self.homes()


@dataclass
class _Ctx:
    """One input event being handled: collects outputs with derived event ids."""

    source_id: str
    home: str
    now: int
    out: list[Emit] = field(default_factory=list)

    def tombstone(self, topic: str, key: str) -> None:
        self.out.append(Emit(topic, key, TOMBSTONE, {}))

    def emit(self, topic: str, key: str, name: str, record: dict[str, Any]) -> None:
        eid = str(uuid.uuid5(_NS, f"{self.source_id}:{len(self.out)}"))
        self.out.append(
            Emit(
                topic, key, name, {"event_id": eid, "home_id": self.home, "ts": self.now, **record}
            )
        )


class HomeProcessor:
    def __init__(self, store: Store, config: ProcessorConfig | None = None):
        self.store = store
        self.config = config or ProcessorConfig()
        self.counters: Counter[str] = Counter()

    # -- entry point -------------------------------------------------------------------
    def handle(self, name: str, record: dict[str, Any]) -> list[Emit]:
        handler = _HANDLERS.get(name)
        now = int(record.get("received_at") or record.get("ts") or 0)
        ctx = _Ctx(str(record.get("event_id", "")), str(record.get("home_id", "")), now)
        if handler is None:
            self.counters["ignored"] += 1
            return []
        handler(self, ctx, record)
        return ctx.out

    # -- state access ------------------------------------------------------------------
    def _home(self, home: str) -> dict[str, Any]:
        return self.store.get(home) or {"devices": [], "parked": {}, "pending": {}}

    def _device(self, home: str, device: str) -> dict[str, Any] | None:
        return self.store.get(device_key(home, device))

    # -- registry ----------------------------------------------------------------------
    def on_discovered(self, ctx: _Ctx, rec: dict[str, Any]) -> None:
        home, dev = rec["home_id"], rec["device_id"]
        descriptor = {k: rec.get(k) for k in TEXT_FIELDS}
        descriptor["capabilities"] = list(rec.get("capabilities") or [])
        errors = validate_descriptor(descriptor)
        if errors:
            self._dead_letter(ctx, rec, "DeviceDiscovered", "SCHEMA_VIOLATION", errors)
            return
        existing = self._device(home, dev)
        if existing is not None and existing["descriptor"] == descriptor:
            self.counters["discovery_unchanged"] += 1
            return
        state = existing or {
            "shadow": None,
            "online": True,
            "last_seen": ctx.now,
            "battery": None,
            "low_battery": False,
            "registered_at": ctx.now,
        }
        state = {**state, "descriptor": descriptor}
        self.store.put(device_key(home, dev), state)
        h = self._home(home)
        if dev not in h["devices"]:
            h = {**h, "devices": [*h["devices"], dev]}
        parked = h["parked"].get(dev, [])
        h = {**h, "parked": {k: v for k, v in h["parked"].items() if k != dev}}
        self.store.put(home, h)
        ctx.emit(
            t.DEVICE_REGISTRY,
            device_key(home, dev),
            "DeviceRegistered",
            {
                "device_id": dev,
                **descriptor,
                "extra": rec.get("extra"),
                "source": "discovery",
                "registered_at": state["registered_at"],
            },
        )
        self.counters["registered"] += 1
        for report in parked:  # reports that arrived before the discovery
            self.counters["unparked"] += 1
            self.on_report(ctx, report)

    def on_removed(self, ctx: _Ctx, rec: dict[str, Any]) -> None:
        home, dev = rec["home_id"], rec["device_id"]
        if self._device(home, dev) is None:
            return
        self.store.put(device_key(home, dev), None)
        h = self._home(home)
        pending = {c: p for c, p in h["pending"].items() if p["device_id"] != dev}
        self.store.put(
            home, {**h, "devices": [d for d in h["devices"] if d != dev], "pending": pending}
        )
        ctx.emit(
            t.DEVICE_REGISTRY,
            device_key(home, dev),
            "DeviceRemoved",
            {
                "device_id": dev,
                "source": rec.get("source", "hub"),
                "removed_by": rec.get("removed_by"),
            },
        )
        # Then the tombstone: compaction drops the device from the registry for good
        # (docs/topics.md); readers of the whole history still see DeviceRemoved first.
        ctx.tombstone(t.DEVICE_REGISTRY, device_key(home, dev))
        self.counters["removed"] += 1

    # -- reports -----------------------------------------------------------------------
    def on_report(self, ctx: _Ctx, rec: dict[str, Any]) -> None:
        home, dev = rec["home_id"], rec["device_id"]
        self.counters["reports"] += 1
        device = self._device(home, dev)
        if device is None:
            self._park(ctx, rec)
            return
        caps = device["descriptor"]["capabilities"]
        checked = validate_state(caps, rec.get("state") or {})
        if checked.errors:
            self._dead_letter(ctx, rec, "DeviceReport", _reason(checked.errors), checked.errors)
        device = self._seen(ctx, home, dev, device)
        shadow = _shadow(device)
        changed = changes(shadow.reported, checked.valid, caps) if checked.valid else {}
        if not changed:
            self.counters["noop"] += 1
            self.store.put(device_key(home, dev), device)
            return
        result = apply_report(shadow, changed, ctx.now // 1000)
        if not result.accepted:  # e.g. the shadow would exceed 8 KB
            self.store.put(device_key(home, dev), device)
            why = result.error.message if result.error else "rejected by the shadow"
            self._dead_letter(ctx, rec, "DeviceReport", "PAYLOAD_TOO_LARGE", [why])
            return
        device = {**device, "shadow": _shadow_dict(result.shadow)}
        device = self._battery(ctx, home, dev, device, result.shadow.reported)
        self.store.put(device_key(home, dev), device)
        self.counters["applied"] += 1
        self._state_change(ctx, dev, result, source="report")
        self._complete_matching_commands(ctx, home, dev, result.shadow.reported)

    def _park(self, ctx: _Ctx, rec: dict[str, Any]) -> None:
        home, dev = rec["home_id"], rec["device_id"]
        h = self._home(home)
        parked = {k: list(v) for k, v in h["parked"].items()}
        parked.setdefault(dev, []).append(rec)
        total = sum(len(v) for v in parked.values())
        if total > self.config.park_max_per_home:  # drop the oldest, with its reason
            oldest_dev = min(parked, key=lambda d: parked[d][0].get("received_at", 0))
            old = parked[oldest_dev].pop(0)
            if not parked[oldest_dev]:
                del parked[oldest_dev]
            self._dead_letter(
                ctx,
                old,
                "DeviceReport",
                "UNKNOWN_DEVICE",
                [
                    f"device {old['device_id']!r} is not discovered and the parking space of "
                    f"home {home!r} ({self.config.park_max_per_home} reports) is full"
                ],
            )
        self.store.put(home, {**h, "parked": parked})
        self.counters["parked"] += 1

    # -- health ------------------------------------------------------------------------
    def _seen(self, ctx: _Ctx, home: str, dev: str, device: dict[str, Any]) -> dict[str, Any]:
        device = {**device, "last_seen": max(device.get("last_seen") or 0, ctx.now)}
        if not device.get("online"):
            device = {**device, "online": True}
            self._availability(ctx, dev, True, FROM_REPORT)
        return device

    def on_availability(self, ctx: _Ctx, rec: dict[str, Any]) -> None:
        if rec.get("source") in DERIVED_AVAILABILITY:
            return  # our own output, read back from the topic: already in the state
        home, dev = rec["home_id"], rec["device_id"]
        device = self._device(home, dev)
        if device is None or bool(device.get("online")) == bool(rec["online"]):
            return
        device = {**device, "online": bool(rec["online"])}
        if rec["online"]:
            device["last_seen"] = max(device.get("last_seen") or 0, ctx.now)
        self.store.put(device_key(home, dev), device)
        self._availability(ctx, dev, bool(rec["online"]), rec.get("source", "mqtt"))
        if not rec["online"]:
            self._offline_notice(ctx, dev, device, "the hub reported it offline")

    def _availability(self, ctx: _Ctx, dev: str, online: bool, source: str) -> None:
        ctx.emit(
            t.DEVICE_AVAILABILITY,
            device_key(ctx.home, dev),
            "Availability",
            {"device_id": dev, "online": online, "source": source},
        )

    def _offline_notice(self, ctx: _Ctx, dev: str, device: dict[str, Any], why: str) -> None:
        name = device["descriptor"].get("name") or dev
        ctx.emit(
            t.NOTIFICATIONS,
            ctx.home,
            "Notification",
            {
                "kind": "DEVICE_OFFLINE",
                "severity": "WARNING",
                "title": f"{name} is offline",
                "message": f"{name} is offline: {why}.",
                "device_id": dev,
            },
        )

    def _battery(
        self, ctx: _Ctx, home: str, dev: str, device: dict[str, Any], reported: dict[str, Any]
    ) -> dict[str, Any]:
        level = reported.get("battery")
        if not isinstance(level, int | float) or isinstance(level, bool):
            return device
        device = {**device, "battery": level}
        cfg = self.config
        if level <= cfg.low_battery and not device.get("low_battery"):
            name = device["descriptor"].get("name") or dev
            ctx.emit(
                t.NOTIFICATIONS,
                home,
                "Notification",
                {
                    "kind": "LOW_BATTERY",
                    "severity": "WARNING",
                    "title": f"{name}: battery low",
                    "message": f"{name} is at {level:g}% battery; replace or charge it soon.",
                    "device_id": dev,
                },
            )
            device["low_battery"] = True
        elif level > cfg.battery_recovered and device.get("low_battery"):
            device["low_battery"] = False
        return device

    # -- commands ----------------------------------------------------------------------
    def on_command(self, ctx: _Ctx, rec: dict[str, Any]) -> None:
        home, dev, cid = rec["home_id"], rec.get("device_id"), rec["command_id"]
        h = self._home(home)
        if cid in h["pending"]:
            return  # a replayed request: already handled
        ctx.now = int(rec.get("issued_at") or ctx.now)
        self.counters["commands"] += 1
        base = {k: rec.get(k) for k in ("command_id", "capability", "command", "request_id")}
        base["device_id"] = dev
        device = self._device(home, dev) if dev else None
        if dev is None or device is None:
            why = "no device id given" if not dev else f"device {dev!r} does not exist in this home"
            self._status(ctx, base, "FAILED", why)
            return
        reported = _shadow(device).reported
        try:
            desired = plan_command(
                device["descriptor"]["capabilities"],
                rec["capability"],
                rec["command"],
                rec.get("parameters") or {},
                reported,
            )
        except CommandRejected as exc:
            self._status(ctx, base, "FAILED", exc.reason)
            return
        self._status(ctx, base, "PENDING", None)
        result = apply_update(_shadow(device), {"state": {"desired": desired}}, ctx.now // 1000)
        if result.accepted and result.changed:
            device = {**device, "shadow": _shadow_dict(result.shadow)}
            self.store.put(device_key(home, dev), device)
            self._state_change(ctx, dev, result, source="command", command_id=cid)
        ctx.emit(
            t.COMMANDS_DISPATCHED,
            home,
            "CommandDispatched",
            {
                "device_id": dev,
                "command_id": cid,
                "capability": rec["capability"],
                "command": rec["command"],
                "parameters": rec.get("parameters") or {},
                "desired": desired,
                "issued_at": ctx.now,
            },
        )
        self._status(ctx, base, "SENT", None)
        timeout = int(rec.get("timeout_ms") or self.config.default_timeout_ms)
        h = self._home(home)
        entry = {
            **base,
            "desired": desired,
            "deadline": ctx.now + timeout,
            "timeout_ms": timeout,
            "status": "SENT",
        }
        self.store.put(home, {**h, "pending": {**h["pending"], cid: entry}})

    def on_ack(self, ctx: _Ctx, rec: dict[str, Any]) -> None:
        home, cid = rec["home_id"], rec["command_id"]
        h = self._home(home)
        entry = h["pending"].get(cid)
        if entry is None or entry["status"] in FINAL:
            self.counters["ack_unknown_or_late"] += 1
            return
        status = rec["status"]
        if status not in ("ACKNOWLEDGED", "COMPLETED", "FAILED"):
            return
        if status == "ACKNOWLEDGED" and entry["status"] == "ACKNOWLEDGED":
            return
        self._status(ctx, entry, status, rec.get("error") if status == "FAILED" else None)
        self._set_pending(home, cid, status)

    def _complete_matching_commands(
        self, ctx: _Ctx, home: str, dev: str, reported: dict[str, Any]
    ) -> None:
        h = self._home(home)
        for cid, entry in list(h["pending"].items()):
            if entry["device_id"] != dev or entry["status"] in FINAL:
                continue
            if desired_satisfied(entry["desired"], reported):
                self._status(ctx, entry, "COMPLETED", "the device reports the desired state")
                self._set_pending(home, cid, "COMPLETED")

    def _set_pending(self, home: str, cid: str, status: str) -> None:
        h = self._home(home)
        pending = dict(h["pending"])
        if status in FINAL:
            pending.pop(cid, None)  # over: nothing to time out any more
        else:
            pending[cid] = {**pending[cid], "status": status}
        self.store.put(home, {**h, "pending": pending})

    def _status(self, ctx: _Ctx, entry: dict[str, Any], status: str, reason: str | None) -> None:
        self.counters[f"command_{status.lower()}"] += 1
        ctx.emit(
            t.COMMANDS_STATUS,
            ctx.home,
            "CommandStatus",
            {
                "command_id": entry["command_id"],
                "status": status,
                "reason": reason,
                "device_id": entry.get("device_id"),
                "capability": entry.get("capability"),
                "command": entry.get("command"),
                "request_id": entry.get("request_id"),
            },
        )

    # -- time --------------------------------------------------------------------------
    def on_tick(self, ctx: _Ctx, rec: dict[str, Any]) -> None:
        """Time passes: command timeouts, silent devices, expired parked reports.

        One tick covers the homes of the tick's partition, so tick traffic does not grow
        with the number of homes; the store yields only those a tick may have work for
        (``streams.due.DueIndex``), so its cost need not either. The time of the last tick
        is state (one record, not one per home scanned), so a replay scans at the same ticks.
        """
        key = ticked_key(int(rec.get("partition") or 0))
        last = int((self.store.get(key) or {}).get("at", 0))
        for home in sorted(self.store.due_homes(last, ctx.now)):
            ctx.home = home
            self._tick_home(ctx, home, last)
        if ctx.now > last:
            self.store.put(key, {"at": ctx.now})

    def _tick_home(self, ctx: _Ctx, home: str, last_tick: int) -> None:
        h = self._home(home)
        for cid, entry in sorted(h["pending"].items()):
            if entry["status"] not in FINAL and entry["deadline"] <= ctx.now:
                reason = f"no completion within {entry['timeout_ms']} ms"
                self._status(ctx, entry, "TIMEOUT", reason)
                self._set_pending(home, cid, "TIMEOUT")
        if not scan_due(home, last_tick, ctx.now, self.config.scan_interval_ms):
            return
        h = self._home(home)
        for dev in h["devices"]:
            device = self._device(home, dev)
            if (
                device
                and device.get("online")
                and (ctx.now - (device.get("last_seen") or 0) >= self.config.offline_after_ms)
            ):
                device = {**device, "online": False}
                self.store.put(device_key(home, dev), device)
                self._availability(ctx, dev, False, FROM_SILENCE)
                minutes = self.config.offline_after_ms // 60_000
                self._offline_notice(ctx, dev, device, f"no report for {minutes} minutes")
        expired = [
            (dev, r)
            for dev, reports in h["parked"].items()
            for r in reports
            if ctx.now - int(r.get("received_at") or 0) >= self.config.park_ttl_ms
        ]
        if expired:
            parked = {
                dev: [r for r in reports if (dev, r) not in expired]
                for dev, reports in h["parked"].items()
            }
            self.store.put(home, {**h, "parked": {d: rs for d, rs in parked.items() if rs}})
            for dev, r in expired:
                self._dead_letter(
                    ctx,
                    r,
                    "DeviceReport",
                    "UNKNOWN_DEVICE",
                    [
                        f"device {dev!r} was never discovered in home {home!r} within "
                        f"{self.config.park_ttl_ms // 1000}s of its report"
                    ],
                )

    # -- the AWS shadow API (MQTT hub/{h}/shadow/{d}/..., the gateway) ------------------
    def on_shadow_request(self, ctx: _Ctx, rec: dict[str, Any]) -> None:
        home, dev = rec["home_id"], rec["device_id"]
        op = rec.get("operation") or "UNKNOWN"
        token = rec.get("client_token")
        self.counters[f"shadow_{op.lower()}"] += 1
        now_s = ctx.now // 1000
        device = self._device(home, dev)
        if device is None:
            err = ShadowError(404, f"No shadow exists with name: '{dev}' (device not discovered)")
            self._shadow_reply(ctx, rec, "REJECTED", err.payload(now_s, token), err)
            return
        if op == "GET":
            doc = get_document(_shadow(device), token, now=now_s, name=dev)
            if "code" in doc:
                err = ShadowError(int(doc["code"]), str(doc["message"]))
                self._shadow_reply(ctx, rec, "REJECTED", doc, err)
            else:
                self._shadow_reply(ctx, rec, "ACCEPTED", doc, None)
            return
        request = _shadow_request(rec)
        if isinstance(request, ShadowError):
            self._shadow_reply(ctx, rec, "REJECTED", request.payload(now_s, token), request)
            return
        if op == "UPDATE":
            # Capability attributes hold only valid values, whichever way they arrive.
            caps = device["descriptor"]["capabilities"]
            for section in ("desired", "reported"):
                part = request["state"].get(section)
                if isinstance(part, dict):
                    set_leaves = {k: v for k, v in part.items() if v is not None}
                    errors = validate_state(caps, set_leaves).errors
                    if errors:
                        err = ShadowError(400, f"state.{section}: {_reason_text(errors)}")
                        self._shadow_reply(ctx, rec, "REJECTED", err.payload(now_s, token), err)
                        return
        result = apply_update(_shadow(device), request, now_s)
        if not result.accepted:
            err = result.error or ShadowError(500, "rejected")
            self._shadow_reply(ctx, rec, "REJECTED", result.rejected_response or {}, err)
            return
        if op == "DELETE":
            accepted: dict[str, Any] = {"version": result.shadow.version, "timestamp": now_s}
            if token is not None:
                accepted["clientToken"] = token
        else:
            accepted = result.accepted_response or {}
        if result.changed:
            device = {**device, "shadow": _shadow_dict(result.shadow)}
            self.store.put(device_key(home, dev), device)
            self._state_change(ctx, dev, result, source=f"shadow:{rec.get('source') or 'api'}")
        self._shadow_reply(ctx, rec, "ACCEPTED", accepted, None)
        if result.changed and result.documents_message is not None:
            self._shadow_reply(ctx, rec, "DOCUMENTS", result.documents_message, None)
        if result.changed:
            self._complete_matching_commands(ctx, home, dev, result.shadow.reported)

    def _shadow_reply(
        self,
        ctx: _Ctx,
        rec: dict[str, Any],
        outcome: str,
        payload: dict[str, Any],
        error: ShadowError | None,
    ) -> None:
        ctx.emit(
            t.SHADOW_RESPONSES,
            ctx.home,
            "ShadowResponse",
            {
                "device_id": rec["device_id"],
                "operation": rec.get("operation") or "UNKNOWN",
                "outcome": outcome,
                "payload": json.dumps(payload, separators=(",", ":")),
                "error_code": error.code if error else None,
                "error_message": error.message if error else None,
                "client_token": rec.get("client_token"),
                "version": payload.get("version") if error is None else None,
                "request_id": rec.get("request_id"),
            },
        )

    # -- outputs -----------------------------------------------------------------------
    def _state_change(self, ctx: _Ctx, dev: str, result, *, source: str, command_id=None) -> None:
        sh: Shadow = result.shadow
        flat = _flat_enough(sh.reported) and _flat_enough(sh.desired)
        ctx.emit(
            t.STATE_CHANGES,
            ctx.home,
            "StateChange",
            {
                "device_id": dev,
                "version": sh.version,
                "changed": result.changed_reported if flat else {},
                "reported": sh.reported if flat else {},
                "desired": sh.desired if flat else {},
                "desired_changed": result.changed_desired if flat else {},
                "delta": result.delta if flat else {},
                "source": source,
                "command_id": command_id,
                "accepted_at": ctx.now,
                "state_json": None
                if flat
                else json.dumps(
                    {
                        "changed": result.changed_reported,
                        "reported": sh.reported,
                        "desired": sh.desired,
                        "desired_changed": result.changed_desired,
                        "delta": result.delta,
                    }
                ),
            },
        )
        doc = sh.to_document()
        ctx.emit(
            t.SHADOW_DOCUMENTS,
            device_key(ctx.home, dev),
            "ShadowDocument",
            {
                "device_id": dev,
                "version": sh.version,
                "timestamp": sh.timestamp,
                "desired": json.dumps(sh.desired),
                "reported": json.dumps(sh.reported),
                "delta": json.dumps(doc["state"].get("delta", {})),
                "metadata": json.dumps(sh.metadata),
            },
        )
        if result.delta_message is not None:
            ctx.emit(
                t.SHADOW_RESPONSES,
                ctx.home,
                "ShadowDelta",
                {
                    "device_id": dev,
                    "version": sh.version,
                    "timestamp": sh.timestamp,
                    "state": json.dumps(result.delta_message["state"]),
                    "metadata": json.dumps(result.delta_message.get("metadata")),
                },
            )

    def _dead_letter(
        self, ctx: _Ctx, rec: dict[str, Any], name: str, reason: str, errors: list
    ) -> None:
        self.counters[f"dead_letter_{reason.lower()}"] += 1
        messages = [getattr(e, "reason", str(e)) for e in errors]
        ctx.emit(
            t.DEADLETTER,
            ctx.home,
            "DeadLetter",
            {
                "reason": reason,
                "message": "; ".join(messages),
                "original": json.dumps({"record": name, "value": rec}, default=str).encode(),
                "source": {"transport": "kafka"},
                "device_id": rec.get("device_id"),
                "first_seen": int(rec.get("received_at") or rec.get("ts") or ctx.now),
                "processor": "streams",
                "error_detail": json.dumps(
                    [e.as_dict() if hasattr(e, "as_dict") else {"message": str(e)} for e in errors]
                ),
            },
        )


def fold(
    events: Iterable[tuple[str, dict[str, Any]]], config: ProcessorConfig | None = None
) -> HomeProcessor:
    """Fold events into a fresh in-memory processor: the reference a worker must match."""
    proc = HomeProcessor(DictStore(), config)
    for name, record in events:
        proc.handle(name, record)
    return proc


def _reason(errors: list) -> str:
    codes = {str(getattr(e, "code", "")) for e in errors}
    for code, reason in (
        ("unknown_attribute", "UNKNOWN_ATTRIBUTE"),
        ("wrong_type", "WRONG_TYPE"),
        ("out_of_range", "OUT_OF_RANGE"),
    ):
        if code in codes:
            return reason
    return "SCHEMA_VIOLATION"


def _shadow_request(rec: dict[str, Any]) -> dict[str, Any] | ShadowError:
    """The AWS update request a ShadowUpdateRequest record stands for (DELETE clears both
    sections), or the error to answer with."""
    if (rec.get("payload_size") or 0) > MAX_DOCUMENT_BYTES:
        return ShadowError(413, MSG_TOO_LARGE)
    if rec.get("operation") == "DELETE":
        request: dict[str, Any] = {"state": {"desired": None, "reported": None}}
    elif rec.get("operation") == "UPDATE":
        state: dict[str, Any] = {}
        for section in ("desired", "reported"):
            text = rec.get(section)
            if text is not None:
                try:
                    state[section] = json.loads(text)
                except ValueError:
                    return ShadowError(400, f"Invalid JSON in state.{section}")
        request = {"state": state}
        if rec.get("version") is not None:
            request["version"] = rec["version"]
    else:
        return ShadowError(400, f"unsupported shadow operation {rec.get('operation')!r}")
    if rec.get("client_token") is not None:
        request["clientToken"] = rec["client_token"]
    return request


def _reason_text(errors: list) -> str:
    return "; ".join(getattr(e, "reason", str(e)) for e in errors)


def _shadow(device: dict[str, Any]) -> Shadow:
    s = device.get("shadow")
    if not s:
        return Shadow.empty()
    return Shadow(
        desired=s["desired"],
        reported=s["reported"],
        metadata=s["metadata"],
        version=s["version"],
        timestamp=s["timestamp"],
    )


def _shadow_dict(sh: Shadow) -> dict[str, Any]:
    return {
        "desired": sh.desired,
        "reported": sh.reported,
        "metadata": sh.metadata,
        "version": sh.version,
        "timestamp": sh.timestamp,
    }


def _flat_enough(state: dict[str, Any]) -> bool:
    """Fits the Avro attribute map: scalars, or objects of scalars (color)."""
    for value in state.values():
        if isinstance(value, list):
            return False
        if isinstance(value, dict) and any(isinstance(v, dict | list) for v in value.values()):
            return False
    return True


# The topics whose records the fold handles (each worker engine consumes these).
INPUT_TOPICS = (
    t.DEVICE_DISCOVERY,
    t.DEVICE_REPORTS,
    t.DEVICE_AVAILABILITY,
    t.COMMANDS_REQUESTED,
    t.COMMANDS_ACKS,
    t.STREAM_TICKS,
    t.SHADOW_REQUESTS,
)


# Availability this worker derives itself. It goes to the same compacted topic as the
# hubs' (the latest word per device, for sinks and apps), which is also an input. Read
# back, it must not be applied again: an old "offline" and a newer "online" of the same
# device would flip it and be re-emitted, bouncing between worker and topic for ever.
FROM_REPORT, FROM_SILENCE = "report", "silence"
DERIVED_AVAILABILITY = frozenset({FROM_REPORT, FROM_SILENCE})


_HANDLERS = {
    "DeviceDiscovered": HomeProcessor.on_discovered,
    "DeviceRemoved": HomeProcessor.on_removed,
    "DeviceReport": HomeProcessor.on_report,
    "Availability": HomeProcessor.on_availability,
    "CommandRequested": HomeProcessor.on_command,
    "HubAck": HomeProcessor.on_ack,
    "StreamTick": HomeProcessor.on_tick,
    "ShadowUpdateRequest": HomeProcessor.on_shadow_request,
}
