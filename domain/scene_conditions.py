"""Whether a scene's conditions hold: the one call the scene runner makes, over the
automation engine's conditions (``domain.automation``).

The language is the automations' (CONTRACT.md section 5, docs/automations.md): ``state``,
``numeric_state``, ``time``, ``sun``, ``and``, ``or``, ``not``; a list holds when every item
does. Times are the home's (its settings' time zone), the sun needs its location. As in
Home Assistant, a condition that cannot be decided (an unknown device or attribute, a
value that is not a number, no location for the sun) does not hold; the answer says which
condition did not hold and, when the evaluator says, why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from domain.automation.conditions import check
from domain.automation.fields import Problems, items
from domain.automation.home import HomeView
from domain.automation.model import Condition
from domain.automation.read_conditions import read_condition


def read_conditions(raw: Any, path: str = "conditions") -> tuple[list[Condition], Problems]:
    """A document's conditions (None: none), and the problems found, each with its path."""
    problems: Problems = []
    return items(raw, path, problems, read_condition), problems


def conditions_hold(
    raw: Sequence[Any] | None, home: HomeView, now_ms: int, path: str = "conditions"
) -> tuple[bool, str | None]:
    """Whether every condition holds at ``now_ms``; if not, why (naming its path)."""
    conditions, problems = read_conditions(raw, path)
    if problems:  # the gateway refuses these; a document from elsewhere may have them
        where, what = problems[0]
        return False, f"{where}: {what}"
    held, trace = check(conditions, home, now_ms)
    if held:
        return True, None
    failed = next((e for e in reversed(trace) if e.get("result") is False), trace[-1])
    detail = failed.get("message") or _values(failed)
    return False, f"{failed['path']}: {failed['condition']} does not hold{detail}"


def _values(entry: dict[str, Any]) -> str:
    if "values" in entry:
        return f" ({', '.join(f'{d}: {v!r}' for d, v in entry['values'].items())})"
    if "now" in entry:
        return f" (it is {entry['now']}, {entry.get('weekday')}, in the home)"
    return ""
