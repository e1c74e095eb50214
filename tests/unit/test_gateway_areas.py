"""Areas over REST (in-memory backend): list, create, rename, assign, ?area= / ?room=."""

from __future__ import annotations

import httpx
import pytest

from gateway.app import create_app
from gateway.auth import issue_token
from gateway.memory import memory_backend


@pytest.fixture
def backend():
    b = memory_backend()
    b.store.add_user("owner1", "password-1")
    b.store.add_user("guest1", "password-1")
    b.store.add_home("h1", "owner1")
    b.store.roles[("h1", "guest1")] = "guest"
    b.devices.add("h1", "lamp", ["ON_OFF"], room="Living Room")
    b.devices.add("h1", "tv", ["ON_OFF"], room="living room")
    b.devices.add("h1", "kettle", ["ON_OFF"], room="Kitchen")
    b.devices.add("h1", "loose", ["ON_OFF"], room=None)
    return b


async def call(b, method, path, user="owner1", **kw):
    headers = {"Authorization": "Bearer " + issue_token(b.token_secret, user)[0]}
    transport = httpx.ASGITransport(app=create_app(backend=b))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        return await c.request(method, path, headers=headers, **kw)


def ids(resp):
    return sorted(d["device_id"] for d in resp.json()["devices"])


async def test_rooms_are_areas_and_filter_devices(backend):
    areas = (await call(backend, "GET", "/v1/homes/h1/areas")).json()["areas"]
    assert areas == [
        {"area_id": "kitchen", "name": "Kitchen", "devices": ["kettle"]},
        {"area_id": "living_room", "name": "Living Room", "devices": ["lamp", "tv"]},
    ]
    assert ids(await call(backend, "GET", "/v1/homes/h1/devices?area=living_room")) == [
        "lamp",
        "tv",
    ]
    assert ids(await call(backend, "GET", "/v1/homes/h1/devices?room=Kitchen")) == ["kettle"]
    assert ids(await call(backend, "GET", "/v1/homes/h1/devices?area=attic")) == []
    lamp = (await call(backend, "GET", "/v1/homes/h1/devices/lamp")).json()
    assert lamp["area"] == "living_room"


async def test_create_rename_and_assign(backend):
    made = await call(backend, "POST", "/v1/homes/h1/areas", json={"name": "Attic"})
    assert made.status_code == 201 and made.json()["area_id"] == "attic"
    again = await call(backend, "POST", "/v1/homes/h1/areas", json={"name": "attic"})
    assert again.status_code == 409
    moved = await call(backend, "PATCH", "/v1/homes/h1/devices/loose", json={"area": "attic"})
    assert moved.status_code == 200 and moved.json()["room"] == "Attic"
    assert moved.json()["area"] == "attic"
    unknown = await call(backend, "PATCH", "/v1/homes/h1/devices/loose", json={"area": "cellar"})
    assert unknown.status_code == 422 and "GET .../areas" in unknown.text

    renamed = await call(
        backend, "PATCH", "/v1/homes/h1/areas/living_room", json={"name": "Lounge"}
    )
    assert renamed.status_code == 200
    assert renamed.json() == {"area_id": "living_room", "name": "Lounge", "devices": ["lamp", "tv"]}
    # The devices moved with it and the id stayed.
    devices = (await call(backend, "GET", "/v1/homes/h1/devices?area=living_room")).json()
    assert sorted((d["device_id"], d["room"]) for d in devices["devices"]) == [
        ("lamp", "Lounge"),
        ("tv", "Lounge"),
    ]
    assert ids(await call(backend, "GET", "/v1/homes/h1/devices?area=Lounge")) == ["lamp", "tv"]
    clash = await call(backend, "PATCH", "/v1/homes/h1/areas/attic", json={"name": "lounge"})
    assert clash.status_code == 409
    missing = await call(backend, "PATCH", "/v1/homes/h1/areas/cellar", json={"name": "x"})
    assert missing.status_code == 404


async def test_guests_read_areas_but_do_not_change_them(backend):
    assert (await call(backend, "GET", "/v1/homes/h1/areas", "guest1")).status_code == 200
    resp = await call(backend, "POST", "/v1/homes/h1/areas", "guest1", json={"name": "X"})
    assert resp.status_code == 403
