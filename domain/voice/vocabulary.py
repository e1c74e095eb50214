"""A home's words: the slot lists of the grammar, built from its registry.

Devices are ``{name}`` values with their Home Assistant domain as context (a light, a lock, a
cover ...), under their name, their ``extra.aliases`` and two short forms: the name without
its room ("Living Room Lamp" -> "lamp") and without its type word ("Front Door Lock" ->
"front door"). Groups are names too (their members' domain), scenes are names of domain
``scene``, rooms are ``{area}``. A short form shared by several devices names all of them; the
resolver narrows them by the room said or by the domain.

A :class:`Vocabulary` is built from plain registry dicts and keyed by :func:`fingerprint`, so a
caller keeps one per home and builds a new one when the registry changes.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from hassil.intents import SlotList, TextSlotList, TextSlotValue

# Our device types -> Home Assistant's domain (what its sentences ask for in context).
TYPE_DOMAINS: Mapping[str, str] = {
    "light.switch": "light",
    "light.dimmer": "light",
    "light.color": "light",
    "switch.plug": "switch",
    "thermostat": "climate",
    "lock": "lock",
    "blinds": "cover",
    "sensor.motion": "binary_sensor",
    "sensor.contact": "binary_sensor",
    "sensor.temperature": "sensor",
    "sensor.climate": "sensor",
    "camera": "camera",
    "doorbell": "event",
    "button": "button",
}
# Home Assistant's device classes, for "open the bedroom blinds" / "is the kitchen window open".
TYPE_CLASSES: Mapping[str, str] = {
    "blinds": "blind",
    "sensor.motion": "motion",
    "sensor.contact": "window",
}
# Words a device's name may end with that only say what it is: dropped for a short form.
TYPE_WORDS = (
    "lights",
    "light",
    "lamp",
    "lock",
    "plug",
    "thermostat",
    "blinds",
    "blind",
    "sensor",
    "contact",
)
# Short forms too vague to name one device ("Kitchen Window" is not "window").
GENERIC = frozenset(
    {*TYPE_WORDS, "motion", "climate", "temperature", "camera", "window", "door", "bell", "button"}
)
# Close-enough types of a cover: blinds are shades and curtains too.
COVER_CLASSES = frozenset({"blind", "shade", "curtain", "awning", "shutter"})


def norm(text: str) -> str:
    """Lower case, words only: how names are compared."""
    return " ".join(re.findall(r"[a-z0-9']+", text.lower()))


def domain_of(device_type: str | None) -> str:
    """The Home Assistant domain of one of our device types ("other" when unknown)."""
    if device_type is None:
        return "other"
    return TYPE_DOMAINS.get(device_type) or TYPE_DOMAINS.get(device_type.split(".")[0], "other")


@dataclass(frozen=True)
class Device:
    """What voice needs of a registry entry (its current state included)."""

    device_id: str
    name: str
    room: str | None
    type: str | None
    capabilities: frozenset[str]
    state: Mapping[str, Any]
    aliases: tuple[str, ...] = ()

    @property
    def domain(self) -> str:
        return domain_of(self.type)

    @property
    def device_class(self) -> str | None:
        return TYPE_CLASSES.get(self.type or "")

    @classmethod
    def of(cls, entry: Mapping[str, Any]) -> Device:
        extra = entry.get("extra")
        aliases: list[str] = []
        if isinstance(extra, Mapping):
            raw = extra.get("aliases")
            if isinstance(raw, list):
                aliases = [a for a in raw if isinstance(a, str) and a.strip()]
        state = entry.get("state")
        return cls(
            device_id=str(entry["device_id"]),
            name=str(entry.get("name") or entry["device_id"]),
            room=entry.get("room") or None,
            type=entry.get("type"),
            capabilities=frozenset(entry.get("capabilities") or ()),
            state=dict(state) if isinstance(state, Mapping) else {},
            aliases=tuple(aliases),
        )


@dataclass(frozen=True)
class Target:
    """What a ``{name}`` value stands for: devices, or a scene."""

    key: str
    label: str
    devices: tuple[str, ...] = ()
    scene_id: str | None = None


def short_forms(device: Device) -> list[str]:
    """The device's name without its room, and without its type word (each when left)."""
    name = norm(device.name)
    out = []
    if device.room:
        room = norm(device.room)
        if name.startswith(room + " "):
            out.append(name[len(room) + 1 :])
    for word in TYPE_WORDS:
        if name.endswith(" " + word):
            out.append(name[: -len(word) - 1])
            break
    rooms = {norm(device.room)} if device.room else set()
    return [s for s in out if s and s != name and s not in GENERIC and s not in rooms]


def fingerprint(
    devices: Iterable[Mapping[str, Any]],
    groups: Iterable[Mapping[str, Any]] = (),
    scenes: Iterable[Mapping[str, Any]] = (),
) -> str:
    """What the vocabulary depends on (names, rooms, types, capabilities, groups, scenes),
    hashed: equal fingerprints, equal vocabularies. State is not part of it."""
    words = {
        "d": sorted(
            (
                str(d.get("device_id")),
                str(d.get("name")),
                str(d.get("room")),
                str(d.get("type")),
                sorted(d.get("capabilities") or ()),
                json.dumps(d.get("extra"), sort_keys=True, default=str),
            )
            for d in devices
        ),
        "g": sorted(
            (str(g.get("group_id")), str(g.get("name")), sorted(g.get("devices") or ()))
            for g in groups
        ),
        "s": sorted((str(s.get("scene_id")), str(s.get("name"))) for s in scenes),
    }
    return hashlib.sha256(json.dumps(words).encode()).hexdigest()[:16]


@dataclass
class Vocabulary:
    """A home's devices, rooms, groups and scenes, and the grammar's slot lists of them."""

    devices: dict[str, Device]
    rooms: dict[str, str]  # normalised room -> room as registered
    targets: dict[str, Target]
    slot_lists: dict[str, SlotList]
    phrases: dict[str, str] = field(default_factory=dict)  # spoken form -> canonical text

    @classmethod
    def build(
        cls,
        devices: Iterable[Mapping[str, Any]],
        groups: Iterable[Mapping[str, Any]] = (),
        scenes: Iterable[Mapping[str, Any]] = (),
    ) -> Vocabulary:
        devs = {d.device_id: d for d in (Device.of(e) for e in devices)}
        rooms = {norm(d.room): d.room for d in devs.values() if d.room and norm(d.room)}
        names: dict[str, list[str]] = {}  # spoken form -> device ids
        for d in devs.values():
            for form in (norm(d.name), *(norm(a) for a in d.aliases), *short_forms(d)):
                if form and d.device_id not in names.setdefault(form, []):
                    names[form].append(d.device_id)
        targets: dict[str, Target] = {}
        values: list[TextSlotValue] = []

        def add(form: str, target: Target, domain: str) -> None:
            targets[target.key] = target
            values.append(TextSlotValue.from_tuple((form, target.key, {"domain": domain}), False))

        for form, ids in names.items():
            for domain in sorted({devs[i].domain for i in ids}):
                members = tuple(i for i in ids if devs[i].domain == domain)
                label = devs[members[0]].name if len(members) == 1 else form
                add(form, Target(f"d:{domain}:{form}", label, members), domain)
        for g in groups:
            members = tuple(i for i in g.get("devices") or () if i in devs)
            form = norm(str(g.get("name") or ""))
            if not form or not members:
                continue
            domains = sorted({devs[i].domain for i in members})
            domain = max(domains, key=lambda x: sum(devs[i].domain == x for i in members))
            add(form, Target(f"g:{g.get('group_id')}", str(g["name"]), members), domain)
        for s in scenes:
            form = norm(str(s.get("name") or ""))
            if form:
                sid = str(s.get("scene_id"))
                add(form, Target(f"s:{sid}", str(s["name"]), scene_id=sid), "scene")
        areas = TextSlotList.from_tuples(
            [(form, room) for form, room in rooms.items()], allow_template=False
        )
        slot_lists: dict[str, SlotList] = {
            "name": TextSlotList(name="name", values=values),
            "area": areas,
            "floor": TextSlotList(name="floor", values=[]),
        }
        phrases = {form: form for form in names}
        phrases |= {form: form for form in rooms}
        phrases |= {norm(str(s.get("name") or "")): norm(str(s.get("name") or "")) for s in scenes}
        phrases |= {norm(str(g.get("name") or "")): norm(str(g.get("name") or "")) for g in groups}
        phrases.pop("", None)
        return cls(devs, rooms, targets, slot_lists, phrases)

    def in_room(self, room: str | None) -> list[Device]:
        return [d for d in self.devices.values() if room is None or d.room == room]

    def of_domain(self, domain: str, room: str | None = None) -> list[Device]:
        return [d for d in self.in_room(room) if d.domain == domain]

    def ordered(self, ids: Sequence[str]) -> list[Device]:
        return [self.devices[i] for i in ids if i in self.devices]
