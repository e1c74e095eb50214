"""Reading the fields of an automation document, each problem noted with its path.

Shared by the readers of triggers, conditions and actions (``read_triggers``,
``read_conditions``, ``read_actions``): every reader takes the raw object, the path it
stands at and the list of problems, and returns the value or None (a problem noted).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Final

from domain.automation.durations import SpellingError, parse_duration
from domain.capabilities import ATTRIBUTE_NAMES, Kind, ValueSpec, attribute_owner
from domain.ids import device_id_problem
from domain.strictjson import join, short
from domain.validate import INVALID, check_value, did_you_mean

MAX_ITEMS: Final = 100  # per list, as the gateway's schema says
MAX_TEXT: Final = 2_000

Problems = list[tuple[str, str]]


def items(
    raw: Any,
    key: str,
    problems: Problems,
    read: Callable[[Any, str, Problems], Any],
    *,
    required: bool = False,
) -> list[Any]:
    """A list of items (a single object counts as a list of one); disabled items left out."""
    if raw is None and not required:
        return []
    if isinstance(raw, dict):
        raw = [raw]
    if not isinstance(raw, list):
        problems.append((key, f"must be a list of objects, got {kind_name(raw)}"))
        return []
    if required and not raw:
        problems.append((key, "needs at least one item"))
    if len(raw) > MAX_ITEMS:
        problems.append((key, f"has {len(raw)} items; at most {MAX_ITEMS}"))
        return []
    out: list[Any] = []
    for i, item in enumerate(raw):
        path = f"{key}[{i}]"
        parsed = read(item, path, problems)
        if parsed is not None and enabled(item, path, problems):
            out.append(parsed)
    return out


def enabled(item: Any, path: str, problems: Problems) -> bool:
    return flag(item, "enabled", path, problems) is not False if isinstance(item, dict) else True


# -- one field --------------------------------------------------------------------------------
def unknown_keys(
    raw: dict[Any, Any], allowed: set[Any], path: str, what: str, problems: Problems
) -> None:
    names = sorted(k for k in allowed if isinstance(k, str))
    for key in raw:
        if key not in allowed:
            hint = did_you_mean(key, names) if isinstance(key, str) else ""
            where = join(path, key) if isinstance(key, str) else f"{path}[{short(key)}]"
            problems.append((where, f"is not a field of {what}{hint}"))


def device_ids(raw: dict[str, Any], path: str, problems: Problems) -> tuple[str, ...] | None:
    value = raw.get("device_id")
    if value is None:
        return None  # required-ness is reported by the caller's NEEDS table
    many = value if isinstance(value, list) else [value]
    if not many or len(many) > MAX_ITEMS:
        problems.append((f"{path}.device_id", f"needs 1 to {MAX_ITEMS} device ids"))
        return None
    ok = True
    for i, device in enumerate(many):
        if (why := device_id_problem(device)) is not None:
            where = f"{path}.device_id[{i}]" if isinstance(value, list) else f"{path}.device_id"
            problems.append((where, why))
            ok = False
    return tuple(dict.fromkeys(many)) if ok else None


def attribute(
    raw: dict[str, Any], path: str, problems: Problems, *, required: bool, numeric: bool = False
) -> tuple[str | None, ValueSpec | None]:
    """The attribute (``color.hue`` names a field) and its spec from the capability table."""
    name = raw.get("attribute")
    if name is None:
        if required and "attribute" in raw:
            problems.append((f"{path}.attribute", "must be an attribute name"))
        return None, None
    where = f"{path}.attribute"
    if not isinstance(name, str) or not name:
        problems.append((where, f"must be an attribute name, got {short(name)}"))
        return None, None
    top, _, field = name.partition(".")
    owner = attribute_owner(top)
    spec = next((a for a in owner.attributes if a.name == top), None) if owner else None
    if spec is None:
        problems.append(
            (
                where,
                f"{short(name)} is not an attribute{did_you_mean(top, sorted(ATTRIBUTE_NAMES))}",
            )
        )
        return None, None
    if field:
        sub = spec.field(field)
        if sub is None:
            names = [f.name for f in spec.fields]
            problems.append(
                (
                    where,
                    f"{top} has no field {short(field)}"
                    + (f" (fields: {', '.join(names)})" if names else ""),
                )
            )
            return None, None
        spec = sub
    if numeric and spec.kind not in (Kind.INTEGER, Kind.NUMBER):
        problems.append(
            (
                where,
                f"{name} is not a number ({spec.shape_text()}); use a state trigger or condition",
            )
        )
        return None, None
    return name, spec


def values(
    raw: dict[str, Any], key: str, spec: ValueSpec | None, path: str, problems: Problems
) -> tuple[Any, ...] | None:
    """One value or a list of values (any of them); absent or null: None (any value)."""
    value = raw.get(key)
    if value is None:
        return None
    many = value if isinstance(value, list) else [value]
    if not many or len(many) > MAX_ITEMS:
        problems.append((f"{path}.{key}", f"needs 1 to {MAX_ITEMS} values"))
        return None
    out: list[Any] = []
    for i, item in enumerate(many):
        where = f"{path}.{key}[{i}]" if isinstance(value, list) else f"{path}.{key}"
        if spec is None:
            out.append(item)
            continue
        checked, errors = check_value(spec, item, str(raw.get("attribute")))
        if checked is INVALID:
            problems.append((where, errors[0].reason))
        else:
            out.append(checked)
    return tuple(out)


def bounds(
    raw: dict[str, Any], path: str, what: str, problems: Problems
) -> tuple[float | None, float | None]:
    bounds: dict[str, float | None] = {}
    for key in ("above", "below"):
        value = raw.get(key)
        bounds[key] = None
        if value is None:
            continue
        if isinstance(value, str):  # Home Assistant reads "25" as 25 too
            value = _number_text(value)
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not math.isfinite(value)
        ):
            problems.append((f"{path}.{key}", f"must be a number, got {short(value)}"))
        else:
            bounds[key] = float(value)
    if raw.get("above") is None and raw.get("below") is None:
        problems.append((path, f"a numeric_state {what} needs above or below"))
    above, below = bounds["above"], bounds["below"]
    if above is not None and below is not None and above >= below:
        problems.append(
            (path, f"above ({above:g}) must be less than below ({below:g}): no value is both")
        )
    return above, below


def duration(
    raw: dict[str, Any], key: str, path: str, problems: Problems, *, signed: bool = False
) -> int | None:
    if raw.get(key) is None:
        return None
    try:
        return parse_duration(raw[key], signed=signed)
    except SpellingError as exc:
        problems.append((f"{path}.{key}", str(exc)))
        return None


def names(value: Any, path: str, what: str, problems: Problems) -> tuple[str, ...] | None:
    many = value if isinstance(value, list) else [value]
    if (
        not many
        or len(many) > MAX_ITEMS
        or not all(isinstance(n, str) and 0 < len(n) <= 200 for n in many)
    ):
        problems.append((path, f"must be {what} or a list of them (text of 1-200 characters)"))
        return None
    return tuple(dict.fromkeys(many))


def text(raw: dict[str, Any], key: str, path: str, problems: Problems, *, limit: int) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > limit:
        problems.append((join(path, key), f"must be text of at most {limit} characters"))
        return None
    return value


def flag(
    raw: dict[str, Any], key: str, path: str, problems: Problems, default: bool | None = None
) -> bool | None:
    value = raw.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        problems.append((join(path, key), f"must be true or false, got {short(value)}"))
        return default
    return value


def _number_text(text: str) -> Any:
    try:
        return float(text) if text.strip() and text.isascii() else text
    except ValueError:
        return text


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def kind_name(value: Any) -> str:
    return {
        dict: "an object",
        list: "a list",
        str: "text",
        type(None): "null",
        bool: "a boolean",
    }.get(type(value), "a number" if isinstance(value, int | float) else type(value).__name__)
