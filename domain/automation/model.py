"""An automation as typed, validated structures (``domain.automation.parse`` builds them).

Every item keeps ``path``, where it stands in the document (``triggers[1]``,
``actions[2].wait_for_trigger[0]``), so traces and errors point at what the user wrote.
Items disabled with ``enabled: false`` are left out by the parser, as Home Assistant does.

Trigger, condition and action kinds are closed unions: the matching, evaluating and
running modules handle each kind, and mypy checks they handle them all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

SunEvent = Literal["sunrise", "sunset"]
# The home's modes (``PUT .../mode``, CONTRACT.md section 5), which a mode condition reads.
HOME_MODES: tuple[str, ...] = ("home", "away", "night")
Mode = Literal["single", "restart", "queued", "parallel"]
MODES: tuple[Mode, ...] = ("single", "restart", "queued", "parallel")
DEFAULT_MAX_RUNS = 10  # queued and parallel, as in Home Assistant


# -- triggers ------------------------------------------------------------------------------
@dataclass(frozen=True)
class StateTrigger:
    """A device's attribute changes (any attribute when ``attribute`` is None).
    ``from_values``/``to_values`` None means any value; ``for_ms`` means the new value must
    hold that long before the trigger fires."""

    path: str
    id: str
    device_ids: tuple[str, ...]
    attribute: str | None = None
    from_values: tuple[Any, ...] | None = None
    to_values: tuple[Any, ...] | None = None
    not_from: tuple[Any, ...] = ()
    not_to: tuple[Any, ...] = ()
    for_ms: int | None = None


@dataclass(frozen=True)
class NumericStateTrigger:
    """A numeric attribute enters ``above < value < below`` (either bound may be absent).
    It fires once per entry: the value must leave the range before it can fire again."""

    path: str
    id: str
    device_ids: tuple[str, ...]
    attribute: str
    above: float | None = None
    below: float | None = None
    for_ms: int | None = None


@dataclass(frozen=True)
class TimeTrigger:
    """Local times of day, as seconds after midnight (sorted, distinct)."""

    path: str
    id: str
    at: tuple[int, ...]


@dataclass(frozen=True)
class TimePatternTrigger:
    """Every local time whose hour, minute and second are in these sets."""

    path: str
    id: str
    hours: tuple[int, ...]
    minutes: tuple[int, ...]
    seconds: tuple[int, ...]


@dataclass(frozen=True)
class SunTrigger:
    path: str
    id: str
    event: SunEvent
    offset_ms: int = 0


@dataclass(frozen=True)
class EventTrigger:
    """A device's momentary event (any device when ``device_ids`` is None) whose data
    contains ``data`` (each given key with an equal value)."""

    path: str
    id: str
    events: tuple[str, ...]
    device_ids: tuple[str, ...] | None = None
    data: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class HubTrigger:
    """The hub goes online or offline (either, when ``to`` is None)."""

    path: str
    id: str
    hub_id: str | None = None
    to: Literal["online", "offline"] | None = None


Trigger = (
    StateTrigger
    | NumericStateTrigger
    | TimeTrigger
    | TimePatternTrigger
    | SunTrigger
    | EventTrigger
    | HubTrigger
)
ScheduledTrigger = TimeTrigger | TimePatternTrigger | SunTrigger


# -- conditions ----------------------------------------------------------------------------
@dataclass(frozen=True)
class StateCondition:
    """Every device's attribute equals one of ``states``."""

    path: str
    device_ids: tuple[str, ...]
    attribute: str
    states: tuple[Any, ...]


@dataclass(frozen=True)
class NumericStateCondition:
    path: str
    device_ids: tuple[str, ...]
    attribute: str
    above: float | None = None
    below: float | None = None


@dataclass(frozen=True)
class TimeCondition:
    """Local time in [after, before) (wrapping midnight when after > before), on one of
    ``weekdays`` (Monday 0) when given."""

    path: str
    after: int | None = None
    before: int | None = None
    weekdays: tuple[int, ...] | None = None


@dataclass(frozen=True)
class SunCondition:
    path: str
    after: SunEvent | None = None
    after_offset_ms: int = 0
    before: SunEvent | None = None
    before_offset_ms: int = 0


@dataclass(frozen=True)
class ModeCondition:
    """The home's mode is one of ``modes`` ("front door opened while we are away")."""

    path: str
    modes: tuple[str, ...]


@dataclass(frozen=True)
class LogicCondition:
    """``and``: all true; ``or``: any true; ``not``: none true (Home Assistant's not)."""

    path: str
    kind: Literal["and", "or", "not"]
    conditions: tuple[Condition, ...]


Condition = (
    StateCondition
    | NumericStateCondition
    | TimeCondition
    | SunCondition
    | ModeCondition
    | LogicCondition
)


# -- actions -------------------------------------------------------------------------------
@dataclass(frozen=True)
class CommandAction:
    """A command to one device or to a group (exactly one of the two ids is set)."""

    path: str
    capability: str
    command: str
    device_id: str | None = None
    group_id: str | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    alias: str | None = None


@dataclass(frozen=True)
class SceneAction:
    path: str
    scene_id: str
    alias: str | None = None


@dataclass(frozen=True)
class DelayAction:
    path: str
    ms: int
    alias: str | None = None


@dataclass(frozen=True)
class NotifyAction:
    path: str
    message: str
    title: str | None = None
    alias: str | None = None


@dataclass(frozen=True)
class WaitAction:
    """Wait for one of ``triggers``; after ``timeout_ms`` go on (or stop the run when
    ``continue_on_timeout`` is false). No timeout: wait as long as it takes."""

    path: str
    triggers: tuple[Trigger, ...]
    timeout_ms: int | None = None
    continue_on_timeout: bool = True
    alias: str | None = None


@dataclass(frozen=True)
class ConditionAction:
    """Go on only if the condition holds; otherwise the run stops here (not an error)."""

    path: str
    condition: Condition
    alias: str | None = None


Action = CommandAction | SceneAction | DelayAction | NotifyAction | WaitAction | ConditionAction


# -- the automation ------------------------------------------------------------------------
@dataclass(frozen=True)
class Automation:
    """``revision`` is a digest of the normalised document: a run started under one
    revision is stopped, not continued, when the automation changes under it."""

    alias: str | None
    triggers: tuple[Trigger, ...]
    conditions: tuple[Condition, ...]
    actions: tuple[Action, ...]
    revision: str
    mode: Mode = "single"
    max_runs: int = DEFAULT_MAX_RUNS
    warn_when_exceeded: bool = True  # Home Assistant's max_exceeded: silent turns it off
    enabled: bool = True
    description: str | None = None


@dataclass(frozen=True)
class Reference:
    """A device, group or scene the automation names, and where."""

    path: str
    kind: Literal["device", "group", "scene"]
    id: str


def references(automation: Automation) -> list[Reference]:
    """Every device, group and scene id the automation names, in document order, so a
    caller can refuse one that does not exist (a 422 naming the path)."""
    out: list[Reference] = []
    for trigger in automation.triggers:
        out += _trigger_refs(trigger)
    for condition in automation.conditions:
        out += _condition_refs(condition)
    for action in automation.actions:
        if isinstance(action, CommandAction):
            if action.device_id is not None:
                out.append(Reference(f"{action.path}.device_id", "device", action.device_id))
            if action.group_id is not None:
                out.append(Reference(f"{action.path}.group_id", "group", action.group_id))
        elif isinstance(action, SceneAction):
            out.append(Reference(f"{action.path}.scene_id", "scene", action.scene_id))
        elif isinstance(action, WaitAction):
            for trigger in action.triggers:
                out += _trigger_refs(trigger)
        elif isinstance(action, ConditionAction):
            out += _condition_refs(action.condition)
    return out


def _device_refs(path: str, device_ids: tuple[str, ...] | None) -> list[Reference]:
    if device_ids is None:
        return []
    if len(device_ids) == 1:
        return [Reference(f"{path}.device_id", "device", device_ids[0])]
    return [Reference(f"{path}.device_id[{i}]", "device", d) for i, d in enumerate(device_ids)]


def _trigger_refs(trigger: Trigger) -> list[Reference]:
    if isinstance(trigger, StateTrigger | NumericStateTrigger | EventTrigger):
        return _device_refs(trigger.path, trigger.device_ids)
    return []


def _condition_refs(condition: Condition) -> list[Reference]:
    if isinstance(condition, LogicCondition):
        return [r for c in condition.conditions for r in _condition_refs(c)]
    if isinstance(condition, StateCondition | NumericStateCondition):
        return _device_refs(condition.path, condition.device_ids)
    return []


def watched_devices(automation: Automation) -> frozenset[str] | None:
    """The devices whose state changes and events can matter to the automation's triggers
    or its waits; None when any device's can (an event trigger naming no device). A
    processor hands a device's events only to the automations watching it: most events
    concern few of a home's automations."""
    found: set[str] = set()
    triggers = list(automation.triggers)
    for action in automation.actions:
        if isinstance(action, WaitAction):
            triggers += action.triggers
    for trigger in triggers:
        if isinstance(trigger, StateTrigger | NumericStateTrigger):
            found.update(trigger.device_ids)
        elif isinstance(trigger, EventTrigger):
            if trigger.device_ids is None:
                return None
            found.update(trigger.device_ids)
    return frozenset(found)
