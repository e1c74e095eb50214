"""What a state report really changes: equality and per-attribute deadbands.

A report that changes nothing is a no-op (CONTRACT.md section 4): no new shadow version, no
history row, no push. ``changes`` returns the part of a report that is a real change; ``merge``
applies it to the reported state. Both follow shadow semantics for ``null``: a null leaf deletes
that value, and deleting what is not there is no change. Objects whose last field is deleted
disappear.

Equality (``same``) is JSON equality: 1 == 1.0, but a boolean is never equal to a number, and
objects are compared field by field. Deadbands apply only in ``changes``: a numeric change smaller
than the attribute's deadband, measured from the last accepted value in ``reported``, is dropped,
so slow drift still gets through once it adds up to the band.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from typing import Any

from domain.capabilities import Attribute, attributes_of
from domain.shadow import json_equal

# Float noise tolerance for deadband comparisons: 21.3 - 20.8 must count as a full 0.5.
_EPSILON = 1e-9


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


# JSON equality and merging are the shadow's: one definition of "the same value".
same = json_equal


def _within_band(old: Any, new: Any, band: float) -> bool:
    if band <= 0 or not (_is_number(old) and _is_number(new)):
        return False
    try:
        diff = abs(new - old)
    except OverflowError:
        return False
    return bool(diff < band - _EPSILON)


def changes(
    reported: Mapping[str, Any],
    incoming: Mapping[str, Any],
    capabilities: Iterable[str] = (),
    *,
    deadbands: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """The subset of ``incoming`` that changes ``reported``; ``{}`` means the report is a no-op.

    - an attribute missing from ``reported`` is always a change (unless incoming is null);
    - equal values (``same``) are no change; objects are compared field by field and only the
      changed fields are returned;
    - a numeric change smaller than the deadband is dropped. Deadbands come from the capability
      table; ``deadbands`` overrides them per path ("temperature", "color.hue").
    """
    base = reported if isinstance(reported, Mapping) else {}
    if not isinstance(incoming, Mapping):
        return {}
    specs = attributes_of(capabilities)
    return _diff(base, incoming, specs, deadbands or {}, "")


def _diff(
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    specs: Mapping[str, Attribute],
    overrides: Mapping[str, float],
    prefix: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in new.items():
        current = old.get(key)
        if value is None:
            if current is not None:
                out[key] = None  # delete what is there
            continue
        spec = specs.get(key) if isinstance(key, str) else None
        if isinstance(value, Mapping):
            fields = {f.name: f for f in spec.fields} if spec is not None else {}
            base = current if isinstance(current, Mapping) else {}
            sub = _diff(base, value, fields, overrides, f"{prefix}{key}.")
            if sub:
                out[key] = sub
            continue
        if current is None:
            out[key] = copy.deepcopy(value)
            continue
        if same(current, value):
            continue
        band = overrides.get(f"{prefix}{key}")
        if band is None:
            band = spec.deadband if spec is not None else 0.0
        if _within_band(current, value, band):
            continue
        out[key] = copy.deepcopy(value)
    return out


def covers(reported: Mapping[str, Any], desired: Mapping[str, Any]) -> bool:
    """True when every leaf of ``desired`` is matched by ``reported`` (``same``, no deadband).

    A null leaf in ``desired`` is matched by an absent (or null) value.
    """
    base = reported if isinstance(reported, Mapping) else {}
    for key, want in desired.items():
        have = base.get(key)
        if want is None:
            if have is not None:
                return False
        elif isinstance(want, Mapping):
            if not covers(have if isinstance(have, Mapping) else {}, want):
                return False
        elif have is None or not same(have, want):
            return False
    return True
