"""The fold's knobs: built from the settings (``runtime.config``) by each worker at start."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.config import Settings, default_of


@dataclass(frozen=True)
class ProcessorConfig:
    """The defaults are the settings' own (one default per variable), in the fold's units."""

    # reports from not-yet-discovered devices kept per home ...
    park_max_per_home: int = default_of("park_max_per_home")
    park_ttl_ms: int = default_of("park_ttl_s") * 1000  # ... then dead-lettered
    offline_after_ms: int = default_of("offline_after_s") * 1000  # silence -> offline
    low_battery: int = default_of("low_battery")  # notify at this or below ...
    battery_recovered: int = default_of("battery_recovered")  # ... again only above this
    default_timeout_ms: int = default_of("command_timeout_ms")
    # How often a home's devices are checked for silence and its parked reports for age.
    # Ticks come every second for command timeouts; walking every device that often would
    # cost O(devices) per second.
    scan_interval_ms: int = default_of("health_scan_s") * 1000

    @classmethod
    def from_settings(cls, settings: Settings) -> ProcessorConfig:
        return cls(
            park_max_per_home=settings.park_max_per_home,
            park_ttl_ms=settings.park_ttl_s * 1000,
            offline_after_ms=settings.offline_after_s * 1000,
            low_battery=settings.low_battery,
            battery_recovered=settings.battery_recovered,
            default_timeout_ms=settings.command_timeout_ms,
            scan_interval_ms=settings.health_scan_s * 1000,
        )
