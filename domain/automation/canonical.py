"""A valid automation document in the contract's spelling, for storing and showing.

``parse`` reads Home Assistant's older spellings too (``trigger`` / ``condition`` /
``action`` for the lists, a single object for a list of one, ``platform`` for a trigger's
kind, ``initial_state`` for ``enabled``), so an entry of automations.yaml pastes in. What
is stored and shown is one spelling (CONTRACT.md section 5): ``triggers``, ``conditions``,
``actions`` as lists, ``trigger`` in each trigger, ``enabled``. Everything else is kept as
written, in the order written; the meaning (and so the parsed automation) is the same.
"""

from __future__ import annotations

from typing import Any, Final

_PLURALS: Final = {"trigger": "triggers", "condition": "conditions", "action": "actions"}


def canonical(doc: dict[str, Any]) -> dict[str, Any]:
    """``doc`` (one ``parse`` accepts) in the contract's spelling; a new dict."""
    out: dict[str, Any] = {}
    for key, value in doc.items():
        if key == "initial_state":
            if "enabled" not in doc:
                out["enabled"] = value
            continue
        name = _PLURALS.get(key, key)
        if name == "triggers":
            out[name] = [_trigger(t) for t in _listed(value)]
        elif name == "actions":
            out[name] = [_action(a) for a in _listed(value)]
        elif name == "conditions":
            out[name] = _listed(value)
        else:
            out[name] = value
    return out


def _listed(value: Any) -> list[Any]:
    if value is None:
        return []
    return [value] if isinstance(value, dict) else list(value)


def _trigger(trigger: Any) -> Any:
    if not isinstance(trigger, dict) or "platform" not in trigger:
        return trigger
    return {("trigger" if k == "platform" else k): v for k, v in trigger.items()}


def _action(action: Any) -> Any:
    """A wait_for_trigger's own triggers get the same spelling."""
    if not isinstance(action, dict):
        return action
    key = "wait_for_trigger" if "wait_for_trigger" in action else None
    if key is None and action.get("action") == "wait_for_trigger" and "triggers" in action:
        key = "triggers"
    if key is None:
        return action
    return {**action, key: [_trigger(t) for t in _listed(action[key])]}
