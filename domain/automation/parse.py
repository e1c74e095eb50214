"""An automation document -> ``model.Automation``, or every problem with its path.

The document is Home Assistant's automation model in JSON (CONTRACT.md section 5):
``{"alias", "mode"?, "max"?, "enabled"?, "triggers": [...], "conditions"?: [...],
"actions": [...]}``. Home Assistant's older spellings are read too: ``trigger`` /
``condition`` / ``action`` for the lists (a single object counts as a list of one),
``platform`` for a trigger's kind, ``initial_state`` for ``enabled``.

:func:`parse` raises :class:`AutomationInvalid` and nothing else, whatever it is given;
its ``problems`` are ``(path, message)`` pairs such as ``("triggers[1].attribute", "is
required for a numeric_state trigger")``. Every problem is collected, not just the first,
so an editor can mark them all.

Checks beyond the shape: times of day exist ("25:00" does not), durations are readable,
attributes are ones the capability table defines (numeric ones for ``numeric_state``),
``from``/``to``/``state`` values are ones the attribute can take ("on" is not a
``powerState``), and a command's capability, command and parameters fit the table.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from domain.automation import fields as f
from domain.automation import model as m
from domain.automation.fields import MAX_ITEMS, MAX_TEXT, Problems
from domain.automation.read_actions import ACTIONS, read_action
from domain.automation.read_conditions import CONDITIONS, read_condition
from domain.automation.read_triggers import TRIGGERS, read_trigger
from domain.strictjson import short

__all__ = [
    "ACTIONS",
    "CONDITIONS",
    "TRIGGERS",
    "AutomationInvalid",
    "parse",
    "revision",
    "validate",
]

_TOP_FIELDS: Final = (
    "alias",
    "description",
    "enabled",
    "initial_state",
    "mode",
    "max",
    "max_exceeded",
    # ids a store or Home Assistant's automations.yaml puts beside the document
    "id",
    "automation_id",
    "updated_at",
)
_LISTS: Final = (("triggers", "trigger"), ("conditions", "condition"), ("actions", "action"))
LOG_LEVELS: Final = ("silent", "critical", "error", "warning", "info", "debug", "notset")


class AutomationInvalid(ValueError):
    """The document is not a usable automation; ``problems`` are (path, message)."""

    def __init__(self, problems: Problems) -> None:
        super().__init__("; ".join(f"{p}: {msg}" if p else msg for p, msg in problems))
        self.problems = problems


def validate(doc: Any) -> Problems:
    """Every problem of the document (empty: it is a valid automation)."""
    try:
        parse(doc)
    except AutomationInvalid as exc:
        return exc.problems
    return []


def parse(doc: Any) -> m.Automation:
    """The automation the document describes, or AutomationInvalid with every problem."""
    problems: Problems = []
    try:
        automation = _automation(doc, problems)
    except RecursionError:  # a Python caller's self-referencing or absurdly deep value
        problems.append(("", "nests too deep"))
        automation = None
    if problems or automation is None:
        raise AutomationInvalid(problems or [("", "is not an automation")])
    return automation


def revision(doc: dict[str, Any]) -> str:
    """A digest of what the document says (not of where it is stored or when)."""
    content = {k: v for k, v in doc.items() if k not in ("automation_id", "updated_at")}
    try:
        text = json.dumps(content, sort_keys=True, separators=(",", ":"), default=repr)
    except (TypeError, ValueError):  # keys of mixed types from a Python caller
        text = repr(content)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:32]


# -- the document --------------------------------------------------------------------------
def _automation(doc: Any, problems: Problems) -> m.Automation | None:
    if not isinstance(doc, dict):
        problems.append(
            ("", f"an automation is an object (alias, triggers, actions), got {f.kind_name(doc)}")
        )
        return None
    lists: dict[str, tuple[str, Any]] = {}
    for plural, singular in _LISTS:
        if plural in doc and singular in doc:
            problems.append((singular, f"give {plural} or {singular}, not both"))
        key = plural if plural in doc or singular not in doc else singular
        lists[plural] = (key, doc.get(key))
    known = set(_TOP_FIELDS) | {k for pair in _LISTS for k in pair}
    f.unknown_keys(doc, known, "", "an automation", problems)

    alias = f.text(doc, "alias", "", problems, limit=200)
    description = f.text(doc, "description", "", problems, limit=MAX_TEXT)
    enabled = f.flag(
        doc, "enabled", "", problems, default=f.flag(doc, "initial_state", "", problems)
    )
    mode = doc.get("mode", "single")
    if mode not in m.MODES:
        problems.append(("mode", f"must be one of {', '.join(m.MODES)}, got {short(mode)}"))
    max_runs = doc.get("max", m.DEFAULT_MAX_RUNS)
    if not f.is_int(max_runs) or not 1 <= max_runs <= MAX_ITEMS:
        problems.append(("max", f"must be a whole number from 1 to {MAX_ITEMS}"))
    exceeded = doc.get("max_exceeded", "warning")
    if not isinstance(exceeded, str) or exceeded.lower() not in LOG_LEVELS:
        problems.append(("max_exceeded", f"must be one of {', '.join(LOG_LEVELS)}"))

    key, raw = lists["triggers"]
    triggers: list[m.Trigger] = f.items(raw, key, problems, read_trigger, required=True)
    key, raw = lists["conditions"]
    conditions: list[m.Condition] = f.items(raw, key, problems, read_condition)
    key, raw = lists["actions"]
    actions: list[m.Action] = f.items(raw, key, problems, read_action, required=True)
    if problems:
        return None
    return m.Automation(
        alias=alias,
        description=description,
        enabled=True if enabled is None else enabled,
        mode=mode,
        max_runs=max_runs,
        warn_when_exceeded=str(exceeded).lower() != "silent",
        triggers=tuple(triggers),
        conditions=tuple(conditions),
        actions=tuple(actions),
        revision=revision(doc),
    )
