"""Rooms as areas (domain.areas)."""

from __future__ import annotations

from domain.areas import area_id_for, area_of, by_name, list_areas, matches


def test_area_ids_are_slugs_of_names():
    assert area_id_for("Living Room") == "living_room"
    assert area_id_for("  Küche / Essen ") == "kuche_essen"
    assert area_id_for("!!!") == "area"
    assert len(area_id_for("x" * 300)) == 64


def test_a_device_is_in_the_stored_area_named_like_its_room():
    names = by_name([{"area_id": "lounge", "name": "Living Room"}])
    assert area_of("living room", names) == "lounge"
    assert area_of("Kitchen", names) == "kitchen"
    assert area_of(None, names) is None and area_of("  ", names) is None


def test_list_areas_merges_stored_and_implicit_ones():
    stored = [{"area_id": "lounge", "name": "Living Room"}, {"area_id": "attic", "name": "Attic"}]
    devices = [
        {"device_id": "lamp", "room": "Living Room"},
        {"device_id": "tv", "room": "living room"},
        {"device_id": "kettle", "room": "Kitchen"},
        {"device_id": "loose", "room": None},
    ]
    assert list_areas(stored, devices) == [
        {"area_id": "attic", "name": "Attic", "devices": []},
        {"area_id": "kitchen", "name": "Kitchen", "devices": ["kettle"]},
        {"area_id": "lounge", "name": "Living Room", "devices": ["lamp", "tv"]},
    ]


def test_area_filter_takes_an_id_or_a_name():
    names = by_name([{"area_id": "lounge", "name": "Living Room"}])
    assert matches("lounge", "lounge", names)
    assert matches("lounge", "Living Room", names)
    assert matches("kitchen", "Kitchen", names)
    assert not matches("kitchen", "Hall", names)
    assert not matches(None, "Hall", names)
