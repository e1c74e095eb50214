"""Record keys: ``home_id`` for streams, ``home_id/device_id`` for per-device compacted topics.

Ids never contain "/" (they are MQTT topic levels), so the first "/" splits a key.
"""

from __future__ import annotations

SEP = "/"


def _check(value: str, what: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be str, got {type(value).__name__}")
    if SEP in value:
        raise ValueError(f"{what} {value!r} must not contain {SEP!r}")
    if not value and not allow_empty:
        raise ValueError(f"{what} must not be empty")
    return value


def home_key(home_id: str) -> str:
    """Key of a home-keyed record. The empty string is allowed for dead letters whose home
    cannot be told."""
    return _check(home_id, "home_id", allow_empty=True)


def device_key(home_id: str, device_id: str) -> str:
    """Key of a per-device record on a compacted topic: ``home_id/device_id``."""
    return f"{_check(home_id, 'home_id')}{SEP}{_check(device_id, 'device_id')}"


def _text(key: str | bytes) -> str:
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key).decode("utf-8")
    return key


def parse_key(key: str | bytes) -> tuple[str, str | None]:
    """``(home_id, device_id)`` of a key; device_id is None for a home key."""
    text = _text(key)
    home, sep, device = text.partition(SEP)
    if not sep:
        return home, None
    if not home or not device or SEP in device:
        raise ValueError(f"malformed key {text!r}: expected home_id or home_id/device_id")
    return home, device


def home_of(key: str | bytes) -> str:
    """The home part of any key; what partitioning hashes."""
    return _text(key).partition(SEP)[0]
