"""The one JSON reader for input from outside: REST bodies, WebSocket frames, hub payloads.

Python's ``json`` accepts more than JSON and more than our stores can hold. This reader
refuses, with a :class:`JsonRejected` that names the reason and where:

- ``NaN``, ``Infinity`` and numbers that overflow a double (JSON has none; a browser's
  ``JSON.parse`` fails on them if we ever echo one back);
- integers outside 64 bits (an Avro ``long``; PostgreSQL ``bigint``);
- nesting deeper than :data:`MAX_DEPTH` (a ``RecursionError`` in every later walk);
- unpaired surrogate escapes (``"\\ud800"``) and NUL (``"\\u0000"``): neither UTF-8,
  Avro strings, PostgreSQL text nor jsonb can carry them;
- a key that appears twice in one object (which one did the sender mean?).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any, Final

MAX_DEPTH: Final = 64
LONG_MIN: Final = -(2**63)
LONG_MAX: Final = 2**63 - 1
_PLAIN_KEY: Final = re.compile(r"[A-Za-z0-9_-]{1,40}")


class JsonRejected(ValueError):
    """Input the reader refuses. ``reason`` is a DeadLetterReason symbol: MALFORMED_JSON,
    TOO_DEEP, OUT_OF_RANGE, WRONG_TYPE or INVALID_UTF8."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse one JSON value by the rules above, or raise :class:`JsonRejected`."""
    if isinstance(text, bytes | bytearray):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JsonRejected(
                "INVALID_UTF8", f"not UTF-8 text: byte {exc.start} {exc.reason}"
            ) from None
    if not text.strip():
        raise JsonRejected("MALFORMED_JSON", "empty; expected a JSON value")
    try:
        value = json.loads(
            text,
            object_pairs_hook=_object,
            parse_int=_int,
            parse_float=_float,
            parse_constant=_constant,
        )
    except RecursionError:
        raise JsonRejected("TOO_DEEP", f"nests more than {max_depth} levels deep") from None
    except JsonRejected:
        raise
    except ValueError as exc:  # JSONDecodeError says where
        raise JsonRejected("MALFORMED_JSON", f"not JSON: {exc}") from None
    # Only an escape can make a NUL or a surrogate in ASCII text (a raw NUL is not valid
    # JSON), so most input skips the text checks of the walk.
    check_text = "\\u" in text or not text.isascii()
    scan(value, max_depth=max_depth, check_text=check_text)
    return value


def scan(value: Any, *, max_depth: int = MAX_DEPTH, check_text: bool = True) -> None:
    """Check an already decoded value by the same nesting and character rules."""
    stack: list[tuple[Any, str, int]] = [(value, "", 1)]
    while stack:
        item, path, depth = stack.pop()
        if isinstance(item, str):
            if check_text:
                _check_text(item, path, "text")
            continue
        if not isinstance(item, dict | list):
            continue
        if depth > max_depth:
            raise JsonRejected("TOO_DEEP", f"nests more than {max_depth} levels deep")
        if isinstance(item, dict):
            for key, child in item.items():
                if check_text:
                    _check_text(key, path, "key")
                if isinstance(child, dict | list | str):
                    stack.append((child, join(path, key), depth + 1))
        else:
            for i, child in enumerate(item):
                if isinstance(child, dict | list | str):
                    stack.append((child, f"{path}[{i}]", depth + 1))


def text_problem(text: str) -> str | None:
    """Why ``text`` cannot be stored as text (NUL, an unpaired surrogate), else None."""
    if "\x00" in text:
        return "contains a NUL character (U+0000), which text cannot hold"
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return "has an unpaired surrogate (not valid Unicode)"
    return None


def _check_text(text: str, path: str, what: str) -> None:
    problem = text_problem(text)
    if problem is not None:
        where = clip(path, 120) or "value"
        raise JsonRejected("INVALID_UTF8", f"{where}: {what} {short(text)} {problem}")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) < len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRejected(
                    "MALFORMED_JSON", f"key {short(key)} appears twice in one object"
                )
            seen.add(key)
    return out


def _int(text: str) -> int:
    # Length first: Python refuses over 4300 digits, and parsing them is slow.
    if len(text.lstrip("-")) > 19 or not LONG_MIN <= (value := int(text)) <= LONG_MAX:
        raise JsonRejected("OUT_OF_RANGE", f"the integer {clip(text)} is outside 64 bits")
    return value


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e400 parses to inf
        raise JsonRejected("OUT_OF_RANGE", f"the number {clip(text)} is too large for a double")
    return value


def _constant(name: str) -> Any:
    raise JsonRejected("WRONG_TYPE", f"{name} is not a JSON number (JSON has no NaN or Infinity)")


def dumps(value: Any) -> str:
    """Compact JSON text; NaN and Infinity raise ValueError, as JSON has none."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def short(value: Any) -> str:
    """A quoted, bounded rendering of untrusted text: repr escapes control characters and
    unpaired surrogates, so messages stay printable and encodable."""
    return clip(repr(value), 60)


def join(path: str, key: str) -> str:
    """``path.key``, or ``path['odd key']`` for keys that are not plain words."""
    part = f".{key}" if _PLAIN_KEY.fullmatch(key) else f"[{short(key)}]"
    return (path + part).lstrip(".")
