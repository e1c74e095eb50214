"""Smart-home mDNS services -> discovery descriptors (pure).

A WiFi device announces itself on the LAN as a DNS-SD service instance
(``Living Room._hue._tcp.local.``) with a TXT record. What kind of device it is is a guess
from the service type, refined by TXT keys where a vendor documents them (HomeKit's
``ci`` category, Cast's ``fn`` friendly name and ``md`` model, Shelly's ``app``). These
devices are found, not yet controlled: their descriptors carry no capabilities.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any, Final

# service type -> (protocol name, device type when nothing better is known, manufacturer)
SERVICES: Final[dict[str, tuple[str, str, str | None]]] = {
    "_hue._tcp.local.": ("hue", "bridge", "Signify"),
    "_hap._tcp.local.": ("homekit", "network.device", None),
    "_matter._tcp.local.": ("matter", "network.device", None),
    "_googlecast._tcp.local.": ("googlecast", "media_player", "Google"),
    "_shelly._tcp.local.": ("shelly", "switch.plug", "Shelly"),
    "_esphomelib._tcp.local.": ("esphome", "network.device", None),
}
SERVICE_TYPES: Final = tuple(SERVICES)

# HomeKit Accessory Protocol, "Accessory Category" (TXT ci) -> device type
HOMEKIT_CATEGORIES: Final = {
    2: "bridge",
    5: "light.switch",
    6: "lock",
    7: "switch.plug",
    8: "switch.plug",
    9: "thermostat",
    10: "sensor.temperature",
    14: "blinds",
    15: "button",
    17: "camera",
    18: "doorbell",
}

_SLUG = re.compile(r"[^a-z0-9]+")


def txt(properties: Mapping[Any, Any]) -> dict[str, str]:
    """A TXT record as text keys and values (bytes decoded leniently; a bare key -> "")."""
    out: dict[str, str] = {}
    for k, v in properties.items():
        key = k.decode("utf-8", "replace") if isinstance(k, bytes) else str(k)
        value = v.decode("utf-8", "replace") if isinstance(v, bytes) else (v or "")
        out[key.lower()] = value
    return out


def instance_of(name: str, service_type: str) -> str:
    """``Living Room._hue._tcp.local.`` -> ``Living Room``."""
    suffix = "." + service_type
    return name[: -len(suffix)] if name.endswith(suffix) else name


def device_id_for(name: str, service_type: str) -> str:
    """``mdns-<protocol>-<slug of the instance>-<6 hex of the full name>``: readable, and
    stable and distinct for every service instance (slugs alone could collide)."""
    protocol = SERVICES.get(service_type, ("mdns", "", None))[0]
    slug = _SLUG.sub("-", instance_of(name, service_type).lower()).strip("-")[:40] or "device"
    digest = hashlib.sha1(name.lower().encode()).hexdigest()[:6]
    return f"mdns-{protocol}-{slug}-{digest}"


def device_type(service_type: str, record: Mapping[str, str]) -> str:
    base = SERVICES.get(service_type, ("", "network.device", None))[1]
    if service_type == "_hap._tcp.local.":
        try:
            return HOMEKIT_CATEGORIES.get(int(record.get("ci", "")), base)
        except ValueError:
            return base
    return base


def descriptor(
    name: str,
    service_type: str,
    record: Mapping[str, str],
    addresses: list[str],
    port: int | None,
) -> dict[str, Any]:
    protocol, _t, manufacturer = SERVICES.get(service_type, ("mdns", "", None))
    shown = record.get("fn") or record.get("md") if protocol == "googlecast" else None
    host = addresses[0] if addresses else None
    if host is not None and ":" in host:
        host = f"[{host}]"
    endpoint = f"{protocol}://{host}:{port}" if host and port else None
    return {
        "name": (shown or instance_of(name, service_type))[:100],
        "type": device_type(service_type, record),
        "protocol": protocol,
        "manufacturer": manufacturer or record.get("manufacturer") or None,
        "model": record.get("md") or record.get("modelid") or record.get("app") or None,
        "capabilities": [],
        "endpoint": endpoint,
        "extra": {"service": service_type, "instance": name},
    }
