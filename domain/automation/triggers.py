"""Which triggers an event fires, and the little state triggers keep between events.

A caller holds, per automation (and per run waiting in ``wait_for_trigger``), a list of
triggers and their *trigger state*: a JSON dict this module creates with :func:`arm` and
replaces with every :func:`handle`. Events are state changes, device events, hub status
changes, and timers coming due. Time only ever arrives as a ``TimerFired``: every timer a
trigger set wants is listed in its state (``timers(state)``), and each ``Outcome`` says
which to arm and which to cancel, so the caller can keep an index of due times and
rebuild it from the state after a restart.

Semantics (Home Assistant's):

- ``state``: the attribute's value changed (an attribute-less trigger: any attribute
  changed) and matches ``from``/``to``/``not_from``/``not_to``. With ``for``, it fires
  only once the new value has held that long: the timer is cancelled when the value
  changes again (with only ``from`` given: when it goes back to the old value).
- ``numeric_state``: fires when the value *enters* the range (above < value < below),
  not again until it has left it. A trigger starts out ready to fire for every device
  whose current value is outside the range (unknown counts as outside). With ``for``, it
  fires once the value has stayed inside that long; leaving the range cancels it.
- ``time`` / ``time_pattern`` / ``sun``: a timer at the next fire time
  (``domain.automation.schedule``), re-armed each time it fires. A timer that comes due
  more than ``MISFIRE_GRACE_MS`` late (the processor was down) re-arms without firing,
  as Home Assistant does not fire times it missed.
- ``event``: a device event with that name (from that device, when given) whose data
  contains the trigger's ``data``.
- ``hub``: the hub's status changed (to the given one, when ``to`` is set).

Each firing is a plain dict, Home Assistant's ``trigger`` variable: ``platform``, ``id``,
``idx``, ``path``, ``at`` (ms), ``source`` (the input's event id, or the timer key and
time: what run ids derive from) and the platform's details (``device_id``,
``attribute``, ``from``, ``to``, ``for``, ``event``, ``data``...).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from domain.automation.conditions import in_range
from domain.automation.home import HomeView, attribute_value
from domain.automation.model import (
    EventTrigger,
    HubTrigger,
    NumericStateTrigger,
    StateTrigger,
    SunTrigger,
    TimePatternTrigger,
    TimeTrigger,
    Trigger,
)
from domain.automation.schedule import next_fire
from domain.shadow import json_equal
from topics.jsontext import copy as copy_json

# Ticks come every second; a restart or a rebalance can hold them up for a while. Later
# than this, a time trigger's moment has passed and firing it would surprise more than help.
MISFIRE_GRACE_MS: Final = 5 * 60_000


# -- events ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class StateChanged:
    """A device's reported attributes before and after an accepted change."""

    event_id: str
    device_id: str
    old: Mapping[str, Any]
    new: Mapping[str, Any]


@dataclass(frozen=True)
class DeviceEvent:
    event_id: str
    device_id: str
    event: str
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HubStatus:
    """The hub's status now and before (None: not known before)."""

    event_id: str
    online: bool
    was_online: bool | None
    hub_id: str = ""


@dataclass(frozen=True)
class TimerFired:
    """A timer listed in some state came due; ``at`` is the time it was armed for."""

    key: str
    at: int


Event = StateChanged | DeviceEvent | HubStatus | TimerFired


@dataclass(frozen=True)
class Outcome:
    fired: tuple[dict[str, Any], ...]
    state: dict[str, Any]
    # For the caller's index of due timers: drop the ``cancel`` keys (cancelled, or
    # delivered and done), then add ``arm`` (a key can be in both: re-armed).
    arm: tuple[tuple[str, int], ...] = ()  # (timer key, at ms)
    cancel: tuple[str, ...] = ()


# -- the state -------------------------------------------------------------------------------
def empty_state() -> dict[str, Any]:
    # armed: numeric_state trigger index -> device -> may fire on entering the range
    # timers: key -> {"at", "idx", and for a `for:` timer "device", "hold", "fired"}
    return {"armed": {}, "timers": {}}


def timers(state: Mapping[str, Any]) -> dict[str, int]:
    """Every timer the state waits for: key -> due time (ms)."""
    return {key: int(entry["at"]) for key, entry in state.get("timers", {}).items()}


def _for_key(scope: str, idx: int, device: str) -> str:
    return f"{scope}/{idx}/for/{device}"  # device ids have no "/" (domain.ids)


def _time_key(scope: str, idx: int) -> str:
    return f"{scope}/{idx}/at"


def arm(triggers: Sequence[Trigger], scope: str, now: int, home: HomeView) -> Outcome:
    """Start listening at ``now``: numeric triggers ready for every device currently
    outside their range, the first timer of each time-based trigger. ``scope`` prefixes
    every timer key (e.g. ``automation/<id>``); keys must not clash across a home."""
    state = empty_state()
    armed: list[tuple[str, int]] = []
    for idx, trigger in enumerate(triggers):
        if isinstance(trigger, NumericStateTrigger):
            state["armed"][str(idx)] = {
                d: not _inside(trigger, home.value(d, trigger.attribute))
                for d in trigger.device_ids
            }
        elif isinstance(trigger, TimeTrigger | TimePatternTrigger | SunTrigger):
            at = next_fire(trigger, now, home.place)
            if at is not None:
                key = _time_key(scope, idx)
                state["timers"][key] = {"at": at, "idx": idx}
                armed.append((key, at))
    return Outcome(fired=(), state=state, arm=tuple(armed))


def disarm(state: Mapping[str, Any]) -> tuple[str, ...]:
    """The timer keys to cancel when the triggers stop listening."""
    return tuple(timers(state))


def handle(
    triggers: Sequence[Trigger],
    state: Mapping[str, Any],
    event: Event,
    *,
    scope: str,
    now: int,
    home: HomeView,
) -> Outcome:
    """What ``event`` at ``now`` does to the triggers: which fire, the new state, timers."""
    if not _concerns(triggers, state, event):  # most events: no copy, no work
        return Outcome(fired=(), state=_as_dict(state))
    work = _Work(_as_dict(state), scope, now)
    if isinstance(event, TimerFired):
        work.timer(triggers, event, home)
    else:
        for idx, trigger in enumerate(triggers):
            if isinstance(event, StateChanged):
                if isinstance(trigger, StateTrigger):
                    work.state_change(idx, trigger, event)
                elif isinstance(trigger, NumericStateTrigger):
                    work.numeric_change(idx, trigger, event)
            elif isinstance(event, DeviceEvent) and isinstance(trigger, EventTrigger):
                work.device_event(idx, trigger, event)
            elif isinstance(event, HubStatus) and isinstance(trigger, HubTrigger):
                work.hub_status(idx, trigger, event)
    return Outcome(tuple(work.fired), work.state, tuple(work.armed), tuple(work.cancelled))


def _as_dict(state: Mapping[str, Any]) -> dict[str, Any]:
    """The given state as the outcome's (never changed in place: a change copies it)."""
    if not state:
        return empty_state()
    return state if isinstance(state, dict) else dict(state)


class _Work:
    """One ``handle`` call: the state and what it produces. The given state is read in
    place and copied on the first change (most reports change nothing), so an outcome
    whose state ``is`` the given one changed nothing."""

    def __init__(self, state: dict[str, Any], scope: str, now: int) -> None:
        self.state = state
        self.copied = False
        self.scope = scope
        self.now = now
        self.fired: list[dict[str, Any]] = []
        self.armed: list[tuple[str, int]] = []
        self.cancelled: list[str] = []

    def changing(self) -> dict[str, Any]:
        """The state, copied before its first change. The ``armed`` maps and the timer
        table change in place, a timer's entry never does (set_timer stores a new one),
        so two levels are copied."""
        if not self.copied:
            armed = self.state.get("armed") or {}
            self.state = {
                **self.state,
                "armed": {idx: dict(devices) for idx, devices in armed.items()},
                "timers": dict(self.state.get("timers") or {}),
            }
            self.copied = True
        return self.state

    # -- timers --------------------------------------------------------------------------
    def set_timer(self, key: str, entry: dict[str, Any]) -> None:
        self.changing()["timers"][key] = copy_json(entry)
        self.armed.append((key, int(entry["at"])))

    def drop_timer(self, key: str) -> None:
        if key in (self.state.get("timers") or {}):
            del self.changing()["timers"][key]
            self.cancelled.append(key)

    def fire(
        self, trigger: Trigger, idx: int, source: str, at: int, details: Mapping[str, Any]
    ) -> None:
        self.fired.append(
            {
                "platform": _platform(trigger),
                "id": trigger.id,
                "idx": idx,
                "path": trigger.path,
                "at": at,
                "source": source,
                **copy_json(dict(details)),  # the caller's values stay the caller's
            }
        )

    # -- state and numeric_state ---------------------------------------------------------
    def state_change(self, idx: int, trigger: StateTrigger, event: StateChanged) -> None:
        if event.device_id not in trigger.device_ids:
            return
        key = _for_key(self.scope, idx, event.device_id)
        old, new = _watched(trigger.attribute, event.old), _watched(trigger.attribute, event.new)
        pending = (self.state.get("timers") or {}).get(key)
        if pending is not None and not _holds(pending["hold"], new):
            self.drop_timer(key)
        if json_equal(old, new) or not _state_matches(trigger, old, new):
            return
        details = {
            "device_id": event.device_id,
            "attribute": trigger.attribute,
            "from": old,
            "to": new,
            "for": trigger.for_ms,
        }
        if trigger.for_ms is None:
            self.fire(trigger, idx, event.event_id, self.now, details)
            return
        # Home Assistant: with only `from`, the value must stay away from the old one;
        # otherwise it must stay the new one.
        only_from = trigger.from_values is not None and trigger.to_values is None
        hold = {"not": old} if only_from else {"is": new}
        self.set_timer(
            key,
            {
                "at": self.now + trigger.for_ms,
                "idx": idx,
                "device": event.device_id,
                "hold": hold,
                "fired": details,
            },
        )

    def numeric_change(self, idx: int, trigger: NumericStateTrigger, event: StateChanged) -> None:
        device = event.device_id
        if device not in trigger.device_ids:
            return
        key = _for_key(self.scope, idx, device)
        armed = (self.state.get("armed") or {}).get(str(idx)) or {}
        old = attribute_value(event.old, trigger.attribute)
        new = attribute_value(event.new, trigger.attribute)
        # Unknown readiness (state from before this device was listed): as if armed
        # from the previous value, which is what arming then would have said.
        ready = armed.get(device, not _inside(trigger, old))
        outside = not _inside(trigger, new)  # ready to fire on the next entry
        if armed.get(device) is not outside:
            self.changing()["armed"].setdefault(str(idx), {})[device] = outside
        if outside:
            self.drop_timer(key)
            return
        if not ready:
            return  # still inside since the last entry: no new crossing
        details = {
            "device_id": device,
            "attribute": trigger.attribute,
            "from": old,
            "to": new,
            "above": trigger.above,
            "below": trigger.below,
            "for": trigger.for_ms,
        }
        if trigger.for_ms is None:
            self.fire(trigger, idx, event.event_id, self.now, details)
        else:
            self.set_timer(
                key,
                {
                    "at": self.now + trigger.for_ms,
                    "idx": idx,
                    "device": device,
                    "hold": {"range": True},
                    "fired": details,
                },
            )

    # -- momentary events ----------------------------------------------------------------
    def device_event(self, idx: int, trigger: EventTrigger, event: DeviceEvent) -> None:
        if trigger.device_ids is not None and event.device_id not in trigger.device_ids:
            return
        if event.event not in trigger.events:
            return
        data = event.data if isinstance(event.data, Mapping) else {}
        if not all(k in data and json_equal(data[k], v) for k, v in trigger.data.items()):
            return
        details = {
            "device_id": event.device_id,
            "event": event.event,
            "data": copy_json(dict(data)),
        }
        self.fire(trigger, idx, event.event_id, self.now, details)

    def hub_status(self, idx: int, trigger: HubTrigger, event: HubStatus) -> None:
        if trigger.hub_id is not None and trigger.hub_id != event.hub_id:
            return
        if event.was_online is not None and event.was_online == event.online:
            return  # a repeated status is no change
        to = "online" if event.online else "offline"
        if trigger.to is not None and trigger.to != to:
            return
        was = None if event.was_online is None else ("online" if event.was_online else "offline")
        details = {"hub_id": event.hub_id, "from": was, "to": to}
        self.fire(trigger, idx, event.event_id, self.now, details)

    # -- timers coming due ---------------------------------------------------------------
    def timer(self, triggers: Sequence[Trigger], event: TimerFired, home: HomeView) -> None:
        entry = (self.state.get("timers") or {}).get(event.key)
        if entry is None or int(entry["at"]) != event.at or self.now < event.at:
            return  # cancelled or re-armed since (a stale timer), or not due yet
        idx = int(entry["idx"])
        self.drop_timer(event.key)  # delivered: out of the caller's index too
        if idx >= len(triggers):
            return
        trigger = triggers[idx]
        source = f"{event.key}@{event.at}"
        if "fired" in entry:  # a `for:` that held
            self.fire(trigger, idx, source, event.at, entry["fired"])
            return
        if isinstance(trigger, TimeTrigger | TimePatternTrigger | SunTrigger):
            if self.now - event.at <= MISFIRE_GRACE_MS:
                details: dict[str, Any] = {}
                if isinstance(trigger, SunTrigger):
                    details = {"event": trigger.event, "offset": trigger.offset_ms}
                self.fire(trigger, idx, source, event.at, details)
            at = next_fire(trigger, max(self.now, event.at), home.place)
            if at is not None:
                self.set_timer(event.key, {"at": at, "idx": idx})


def _concerns(triggers: Sequence[Trigger], state: Mapping[str, Any], event: Event) -> bool:
    """Whether any trigger could react to the event at all."""
    if isinstance(event, TimerFired):
        return bool(state) and event.key in state.get("timers", {})
    if isinstance(event, StateChanged):
        return any(
            isinstance(t, StateTrigger | NumericStateTrigger) and event.device_id in t.device_ids
            for t in triggers
        )
    if isinstance(event, DeviceEvent):
        return any(isinstance(t, EventTrigger) for t in triggers)
    return any(isinstance(t, HubTrigger) for t in triggers)


def _watched(attribute: str | None, attributes: Mapping[str, Any]) -> Any:
    """What a state trigger compares: one attribute, or all of them."""
    if attribute is None:
        return dict(attributes) if isinstance(attributes, Mapping) else {}
    return attribute_value(attributes, attribute)


def _holds(hold: Mapping[str, Any], value: Any) -> bool:
    if "is" in hold:
        return json_equal(value, hold["is"])
    return not json_equal(value, hold["not"])


def _any_of(value: Any, options: tuple[Any, ...]) -> bool:
    return any(json_equal(value, option) for option in options)


def _state_matches(trigger: StateTrigger, old: Any, new: Any) -> bool:
    if trigger.from_values is not None and not _any_of(old, trigger.from_values):
        return False
    if trigger.to_values is not None and not _any_of(new, trigger.to_values):
        return False
    return not (_any_of(old, trigger.not_from) or _any_of(new, trigger.not_to))


def _inside(trigger: NumericStateTrigger, value: Any) -> bool:
    return in_range(value, trigger.above, trigger.below)


_PLATFORMS: Final = {
    StateTrigger: "state",
    NumericStateTrigger: "numeric_state",
    TimeTrigger: "time",
    TimePatternTrigger: "time_pattern",
    SunTrigger: "sun",
    EventTrigger: "event",
    HubTrigger: "hub",
}


def _platform(trigger: Trigger) -> str:
    return _PLATFORMS[type(trigger)]
