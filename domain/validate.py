"""Validation of state reports, device descriptors and event names against the capability table.

Nothing here raises on bad input: every problem becomes an ``AttributeError_`` with the path
of the offending value, a sentence a person understands and a machine ``code``. The ingest path
forwards what passed and sends the rest, with its reasons, to the dead-letter topic.

``null`` is accepted for any attribute (and any field of an object attribute): it clears that
value, with the same meaning as a ``null`` leaf in a shadow update (CONTRACT.md section 4).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from domain.capabilities import (
    CAPABILITIES,
    DEVICE_TYPES,
    Attribute,
    Kind,
    ValueSpec,
    attribute_owner,
    format_value,
    json_type,
    known_capabilities,
    quote_list,
)
from topics.descriptor import OPTIONAL_TEXT_FIELDS


class ErrorCode(StrEnum):
    """Machine codes for validation errors and rejected commands (compare with plain strings)."""

    UNKNOWN_ATTRIBUTE = "unknown_attribute"  # not an attribute (or field) of the device
    WRONG_TYPE = "wrong_type"  # right name, wrong JSON type (or 40.5 for a whole number)
    OUT_OF_RANGE = "out_of_range"  # a number outside min..max, a string that is too long
    NOT_ALLOWED = "not_allowed"  # a string outside its allowed set, a duplicate
    MISSING = "missing"  # a required descriptor field or command parameter is absent
    UNKNOWN_CAPABILITY = "unknown_capability"  # no capability has this name
    UNSUPPORTED_CAPABILITY = "unsupported_capability"  # a real capability the device lacks
    UNKNOWN_COMMAND = "unknown_command"  # the capability has no such command
    UNKNOWN_PARAMETER = "unknown_parameter"  # the command takes no such parameter


@dataclass(frozen=True)
class AttributeError_:  # trailing underscore: not the builtin AttributeError
    path: str  # "brightness", "color.hue", "capabilities[2]"; "" for the document itself
    reason: str
    code: ErrorCode

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "reason": self.reason, "code": self.code.value}


@dataclass
class Validation:
    valid: dict[str, Any] = field(default_factory=dict)  # what passed, normalised
    errors: list[AttributeError_] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class _Invalid:
    pass


INVALID: Any = _Invalid()  # returned by check_value when the value is rejected


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """The hint "; did you mean X?" for the closest candidate (or a case-only match), or ""."""
    names = list(candidates)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.75)
    if not close:
        lowered = {c.lower(): c for c in names}
        hit = lowered.get(name.lower())
        close = [hit] if hit else []
    return f"; did you mean {close[0]}?" if close else ""


def _suggest_or_list(name: str, known: Iterable[str]) -> str:
    """A "did you mean" hint when a known name is close, else the list of known names."""
    names = list(known)
    return did_you_mean(name, names) or f"; known: {', '.join(names)}"


def check_value(spec: ValueSpec, value: Any, path: str) -> tuple[Any, list[AttributeError_]]:
    """Check one non-null value against ``spec``; returns (normalised value or INVALID, errors).

    OBJECT values may be partial; the returned object holds the fields that passed (nulls kept).
    """
    kind = spec.kind
    if kind is Kind.ENUM:
        if not isinstance(value, str):
            return INVALID, [
                _err(
                    path,
                    ErrorCode.WRONG_TYPE,
                    f"{path} must be one of {quote_list(spec.values)}, got {received(value)}",
                )
            ]
        if value not in spec.values:
            hint = did_you_mean(value, spec.values)
            return INVALID, [
                _err(
                    path,
                    ErrorCode.NOT_ALLOWED,
                    f"{path} {format_value(value)} is not one of {quote_list(spec.values)}{hint}",
                )
            ]
        return value, []

    if kind is Kind.BOOLEAN:
        if not isinstance(value, bool):
            return INVALID, [
                _err(
                    path,
                    ErrorCode.WRONG_TYPE,
                    f"{path} must be true or false, got {received(value)}",
                )
            ]
        return value, []

    if kind in (Kind.INTEGER, Kind.NUMBER):
        return _check_number(spec, value, path)

    if kind is Kind.OBJECT and isinstance(spec, Attribute):
        return _check_object(spec, value, path)

    return INVALID, [_err(path, ErrorCode.WRONG_TYPE, f"{path} has an unsupported kind {kind}")]


def _check_number(spec: ValueSpec, value: Any, path: str) -> tuple[Any, list[AttributeError_]]:
    integer = spec.kind is Kind.INTEGER
    word = "a whole number" if integer else "a number"
    rng = spec.range_text()
    expected = f"{word} {rng}" if rng else word
    if isinstance(value, bool) or not isinstance(value, int | float):
        return INVALID, [
            _err(path, ErrorCode.WRONG_TYPE, f"{path} must be {expected}, got {received(value)}")
        ]
    if isinstance(value, float) and not math.isfinite(value):
        return INVALID, [
            _err(path, ErrorCode.WRONG_TYPE, f"{path} must be a finite number, got {value!r}")
        ]
    if integer and isinstance(value, float):
        if not value.is_integer():
            return INVALID, [
                _err(
                    path,
                    ErrorCode.WRONG_TYPE,
                    f"{path} {format_value(value)} is not a whole number"
                    + (f" ({rng})" if rng else ""),
                )
            ]
        value = int(value)
    lo, hi = spec.minimum, spec.maximum
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        return INVALID, [
            _err(
                path,
                ErrorCode.OUT_OF_RANGE,
                f"{path} {format_value(value)} is out of range {rng}",
            )
        ]
    if not integer:
        try:
            value = float(value)
        except OverflowError:  # an unbounded number too big for a float
            return INVALID, [_err(path, ErrorCode.OUT_OF_RANGE, f"{path} is too large")]
    return value, []


def _check_object(spec: Attribute, value: Any, path: str) -> tuple[Any, list[AttributeError_]]:
    names = [f.name for f in spec.fields]
    if not isinstance(value, Mapping):
        return INVALID, [
            _err(
                path,
                ErrorCode.WRONG_TYPE,
                f"{path} must be an object with fields {', '.join(names)}, got {received(value)}",
            )
        ]
    out: dict[str, Any] = {}
    errors: list[AttributeError_] = []
    for key, sub in value.items():
        sub_path = f"{path}.{key}"
        f = spec.field(key) if isinstance(key, str) else None
        if f is None:
            hint = did_you_mean(key, names) if isinstance(key, str) else ""
            errors.append(
                _err(
                    sub_path,
                    ErrorCode.UNKNOWN_ATTRIBUTE,
                    f"{sub_path} is not a field of {path} (fields: {', '.join(names)}){hint}",
                )
            )
            continue
        if sub is None:
            out[key] = None
            continue
        checked, errs = check_value(f, sub, sub_path)
        errors += errs
        if checked is not INVALID:
            out[key] = checked
    if errors and not out:
        return INVALID, errors
    return out, errors


def received(value: Any) -> str:
    """``string 'on'``, ``integer 5``, ``array``: what a message says it received."""
    kind = json_type(value)
    if value is None or isinstance(value, Mapping | list | tuple):
        return kind
    if not isinstance(value, str | int | float):
        return kind
    return f"{kind} {format_value(value)}"


def _err(path: str, code: ErrorCode, reason: str) -> AttributeError_:
    return AttributeError_(path=path, reason=reason, code=code)


def validate_state(capabilities: Iterable[str], state: Mapping[str, Any]) -> Validation:
    """Check a (partial) state report against the attributes of ``capabilities``.

    ``valid`` holds every attribute that passed, normalised (integers as int, numbers as float,
    objects with the fields that passed); ``errors`` says what did not. Never raises.
    Unknown capability names contribute no attributes (``validate_descriptor`` flags them).
    """
    caps = known_capabilities(capabilities)
    attrs = {a.name: a for c in caps for a in c.attributes}
    cap_names = ", ".join(c.name for c in caps) or "none"
    result = Validation()
    if not isinstance(state, Mapping):
        result.errors.append(
            _err(
                "",
                ErrorCode.WRONG_TYPE,
                f"state must be an object of attribute: value, got {json_type(state)}",
            )
        )
        return result
    for key, value in state.items():
        if not isinstance(key, str):
            result.errors.append(
                _err(
                    str(key),
                    ErrorCode.WRONG_TYPE,
                    f"attribute names are strings, got {received(key)}",
                )
            )
            continue
        spec = attrs.get(key)
        if spec is None:
            reason = (
                f"attribute {format_value(key)} is not part of this device's capabilities "
                f"({cap_names})"
            )
            owner = attribute_owner(key)
            if owner is not None:
                reason += f"; it belongs to {owner.name}"
            else:
                reason += did_you_mean(key, attrs)
            result.errors.append(_err(key, ErrorCode.UNKNOWN_ATTRIBUTE, reason))
            continue
        if value is None:
            result.valid[key] = None
            continue
        checked, errs = check_value(spec, value, key)
        result.errors += errs
        if checked is not INVALID:
            result.valid[key] = checked
    return result


# -- device descriptors ------------------------------------------------------------------------

MAX_NAME = 200
_REQUIRED = ("name", "type", "capabilities")
_OPTIONAL_STRINGS = OPTIONAL_TEXT_FIELDS


def validate_descriptor(descriptor: Mapping[str, Any]) -> list[AttributeError_]:
    """Check a device descriptor (CONTRACT.md section 2); an empty list means it is fine.

    Required: ``name`` (non-empty string), ``type`` (a known device type), ``capabilities``
    (an array of known capability names, no duplicates, may be empty). Optional strings (or
    null): room, protocol, manufacturer, model, endpoint. Other fields are allowed.
    """
    if not isinstance(descriptor, Mapping):
        return [
            _err(
                "",
                ErrorCode.WRONG_TYPE,
                f"a device descriptor must be an object, got {json_type(descriptor)}",
            )
        ]
    errors: list[AttributeError_] = []
    for key in _REQUIRED:
        if descriptor.get(key) is None:
            errors.append(_err(key, ErrorCode.MISSING, f"the descriptor needs '{key}'"))

    name = descriptor.get("name")
    if name is not None:
        if not isinstance(name, str):
            errors.append(
                _err("name", ErrorCode.WRONG_TYPE, f"name must be a string, got {received(name)}")
            )
        elif not name.strip():
            errors.append(_err("name", ErrorCode.OUT_OF_RANGE, "name must not be empty"))
        elif len(name) > MAX_NAME:
            errors.append(
                _err(
                    "name",
                    ErrorCode.OUT_OF_RANGE,
                    f"name is {len(name)} characters long; at most {MAX_NAME} are allowed",
                )
            )

    dtype = descriptor.get("type")
    if dtype is not None:
        if not isinstance(dtype, str):
            errors.append(
                _err(
                    "type",
                    ErrorCode.WRONG_TYPE,
                    f"type must be a string such as 'light.dimmer', got {received(dtype)}",
                )
            )
        elif dtype not in DEVICE_TYPES:
            errors.append(
                _err(
                    "type",
                    ErrorCode.NOT_ALLOWED,
                    f"type '{dtype}' is not a known device type"
                    + _suggest_or_list(dtype, DEVICE_TYPES),
                )
            )

    caps = descriptor.get("capabilities")
    if caps is not None:
        if not isinstance(caps, list | tuple):
            errors.append(
                _err(
                    "capabilities",
                    ErrorCode.WRONG_TYPE,
                    "capabilities must be an array of capability names such as "
                    f'["ON_OFF"], got {received(caps)}',
                )
            )
        else:
            seen: set[str] = set()
            for i, cap in enumerate(caps):
                path = f"capabilities[{i}]"
                if not isinstance(cap, str):
                    errors.append(
                        _err(
                            path,
                            ErrorCode.WRONG_TYPE,
                            f"{path} must be a capability name, got {received(cap)}",
                        )
                    )
                elif cap not in CAPABILITIES:
                    errors.append(
                        _err(
                            path,
                            ErrorCode.UNKNOWN_CAPABILITY,
                            f"capability '{cap}' is unknown" + _suggest_or_list(cap, CAPABILITIES),
                        )
                    )
                elif cap in seen:
                    errors.append(
                        _err(path, ErrorCode.NOT_ALLOWED, f"capability '{cap}' is listed twice")
                    )
                else:
                    seen.add(cap)

    for key in _OPTIONAL_STRINGS:
        value = descriptor.get(key)
        if value is not None and not isinstance(value, str):
            errors.append(
                _err(
                    key,
                    ErrorCode.WRONG_TYPE,
                    f"{key} must be a string, got {received(value)}",
                )
            )
    return errors


# -- events ------------------------------------------------------------------------------------


def validate_event(device_type: str, event: Any) -> list[AttributeError_]:
    """Check a momentary event name against what ``device_type`` sends (empty list: fine)."""
    if not isinstance(event, str) or not event:
        return [
            _err(
                "event",
                ErrorCode.WRONG_TYPE,
                f"event must be a non-empty string, got {received(event)}",
            )
        ]
    dtype = DEVICE_TYPES.get(device_type) if isinstance(device_type, str) else None
    if dtype is None:
        return [
            _err(
                "event",
                ErrorCode.NOT_ALLOWED,
                f"event '{event}' cannot be checked: device type {format_value(device_type)} "
                "is not known",
            )
        ]
    if event not in dtype.events:
        if not dtype.events:
            reason = f"{dtype.name} devices send no events; they report state"
        else:
            reason = (
                f"event '{event}' is not one a {dtype.name} sends "
                f"({quote_list(dtype.events)}){did_you_mean(event, dtype.events)}"
            )
        return [_err("event", ErrorCode.NOT_ALLOWED, reason)]
    return []
