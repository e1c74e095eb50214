"""The fold's settings (``HOMESTREAM_*``, read by each worker at start)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from runtime.config import ConfigError


@dataclass(frozen=True)
class ProcessorConfig:
    park_max_per_home: int = 500  # reports from not-yet-discovered devices kept per home
    park_ttl_ms: int = 5 * 60_000  # then dead-lettered as UNKNOWN_DEVICE
    offline_after_ms: int = 15 * 60_000  # silence that makes a device offline
    low_battery: int = 20  # notify when battery falls to this or below ...
    battery_recovered: int = 30  # ... and again only after it came back above this
    default_timeout_ms: int = 5_000
    # How often a home's devices are checked for silence and its parked reports for age.
    # Ticks come every second for command timeouts; walking every device that often would
    # cost O(devices) per second.
    scan_interval_ms: int = 30_000

    # (field, environment variable, unit multiplier to the field's unit)
    ENV: ClassVar[tuple[tuple[str, str, int], ...]] = (
        ("park_max_per_home", "HOMESTREAM_PARK_MAX_PER_HOME", 1),
        ("park_ttl_ms", "HOMESTREAM_PARK_TTL_S", 1000),
        ("offline_after_ms", "HOMESTREAM_OFFLINE_AFTER_S", 1000),
        ("low_battery", "HOMESTREAM_LOW_BATTERY", 1),
        ("battery_recovered", "HOMESTREAM_BATTERY_RECOVERED", 1),
        ("default_timeout_ms", "HOMESTREAM_COMMAND_TIMEOUT_MS", 1),
        ("scan_interval_ms", "HOMESTREAM_HEALTH_SCAN_S", 1000),
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> ProcessorConfig:
        values: dict[str, int] = {}
        for name, var, unit in cls.ENV:
            raw = env.get(var)
            if raw in (None, ""):
                continue
            try:
                number = int(raw)
            except ValueError:
                raise ConfigError(f"{var}={raw!r} is not a whole number") from None
            if number <= 0:
                raise ConfigError(f"{var}={number} must be positive")
            values[name] = number * unit
        return cls(**values)
