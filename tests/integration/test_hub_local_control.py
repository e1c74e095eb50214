"""The hub process on its own, the cloud broker unreachable: `HubRuntime` with the Zigbee
adapter (unpatched zigpy-znp against the ZNP simulator), the home's automation synced as the
cloud syncs it, motion -> the light turns on with no cloud; the LAN API (the hub's own
login) lists the registry and sends a command that reaches the device; everything the
hub did waits in the outbox, each report naming the automations it ran."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from compose.process import free_port
from hub.adapters.recorder import until
from hub.adapters.zigbee import device_id_for
from hub.hubrun import HubRuntime, load_config
from hub.znpsim.devices import ieee_for, ieee_text
from hub.znpsim.server import ZnpSimulator

ON_OFF, OCCUPANCY = 0x0006, 0x0406


def dev(name: str) -> str:
    return device_id_for(ieee_text(ieee_for(name)))


def motion_light(pir: str, light: str) -> dict[str, Any]:
    return {
        "alias": "Hall light on motion",
        "triggers": [{"trigger": "state", "device_id": pir, "attribute": "motion", "to": True}],
        "actions": [{"device_id": light, "capability": "ON_OFF", "command": "turnOn"}],
    }


def hub_toml(home: str, password: str, sim_port: int) -> str:
    """A hub of ``home`` whose cloud is unreachable (nothing listens on its port), with
    Zigbee on the simulator and the LAN API on a free port; [local] comes last."""
    return f"""
[cloud]
home = "{home}"
username = "hub-{home}"
password = "{password}"
host = "127.0.0.1"
port = {free_port()}

[hub]
state_dir = "state"

[zigbee]
port = "socket://127.0.0.1:{sim_port}"

[local]
api_host = "127.0.0.1"
api_port = 0
"""


@pytest.fixture
async def offline_hub(tmp_path: Path) -> AsyncIterator[tuple[HubRuntime, ZnpSimulator]]:
    sim = ZnpSimulator(tmp_path / "sim")
    await sim.start()
    (tmp_path / "hub.toml").write_text(hub_toml("local-home", "hub-secret-1", sim.port))
    runtime = HubRuntime(load_config(tmp_path / "hub.toml"))
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    try:
        await until(lambda: runtime.lan_port, 30, "the LAN API")
        sim.add_device("pir", "motion")
        sim.add_device("hall", "bulb")
        zigbee = runtime.adapters[0]
        await asyncio.wait_for(zigbee.connected.wait(), 30)  # type: ignore[attr-defined]
        await zigbee.permit(60)
        await until(
            lambda: {dev("pir"), dev("hall")} <= set(runtime.local.devices()), 60, "both paired"
        )
        yield runtime, sim
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await sim.stop()


def _outbox(runtime: HubRuntime) -> list[tuple[str, Any]]:
    items = runtime.client._outbox.peek(10_000)
    # status and availability are plain text; the rest is JSON
    return [
        (i.topic.split("/", 2)[2], json.loads(i.payload) if i.payload[:1] == b"{" else i.payload)
        for i in items
    ]


async def test_motion_turns_the_light_on_without_the_cloud(offline_hub) -> None:
    runtime, sim = offline_hub
    pir, hall = dev("pir"), dev("hall")
    assert not runtime.client.connected
    # the cloud synced it while it was reachable (hub/{home}/config/automation/{id})
    runtime.local.on_config(
        "automation", "hall-light", json.dumps(motion_light(pir, hall)).encode()
    )
    assert list(runtime.local.automations()) == ["hall-light"]

    sim.set_attribute("pir", OCCUPANCY, 0, 1)
    await until(lambda: sim.device("hall").clusters[ON_OFF][0].value, 15, "the light on")
    await until(
        lambda: runtime.local.devices()[hall][1].get("powerState") == "ON", 10, "light reported"
    )

    sent = _outbox(runtime)
    motion = [b for t, b in sent if t == f"state/{pir}" and b["state"].get("motion") is True]
    # the first names the run; a repeat of the same state (the sensor reports twice) none
    assert motion[0]["local_runs"] == ["hall-light"]
    assert all("local_runs" not in m for m in motion[1:])
    runs = [(t, b) for t, b in sent if t.startswith("automation/")]
    assert [(t, b["status"]) for t, b in runs] == [
        ("automation/hall-light", "STARTED"),
        ("automation/hall-light", "COMPLETED"),
    ]
    assert len({b["run_id"] for _t, b in runs}) == 1
    order = [t for t, b in sent if t.startswith("automation/") or b is motion[0]]
    assert order[0] == f"state/{pir}"  # the report first, then the run it started
    light = [b for t, b in sent if t == f"state/{hall}" and b["state"].get("powerState") == "ON"]
    assert light and "local_runs" not in light[0]


async def test_the_lan_api_with_the_hubs_login(offline_hub) -> None:
    runtime, sim = offline_hub
    hall = dev("hall")
    base = f"http://127.0.0.1:{runtime.lan_port}"
    good = "Basic " + base64.b64encode(b"hub-local-home:hub-secret-1").decode()
    bad = "Basic " + base64.b64encode(b"hub-local-home:nope").decode()
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        for auth in ({}, {"Authorization": bad}, {"Authorization": "Bearer x"}):
            r = await http.get("/v1/devices", headers=auth)
            assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
        auth = {"Authorization": good}
        status = (await http.get("/v1/status", headers=auth)).json()
        assert status["cloud"] == "offline" and status["home_id"] == "local-home"
        listed = {d["device_id"]: d for d in (await http.get("/v1/devices", headers=auth)).json()}
        assert listed[hall]["descriptor"]["type"] == "light.switch"
        assert listed[hall]["name"] == listed[hall]["descriptor"]["name"]
        # the user's name and room from the cloud (hub/{home}/config/device/{id}) win
        mine = {"name": "Hall ceiling", "room": "Hall", "tags": ["night"]}
        runtime.local.on_config("device", hall, json.dumps(mine).encode())
        listed = {d["device_id"]: d for d in (await http.get("/v1/devices", headers=auth)).json()}
        assert {k: listed[hall][k] for k in ("name", "room", "tags")} == mine
        runtime.local.on_config("device", hall, b"")  # the cloud forgot them
        listed = {d["device_id"]: d for d in (await http.get("/v1/devices", headers=auth)).json()}
        assert listed[hall]["name"] == listed[hall]["descriptor"]["name"]
        assert listed[hall]["tags"] == []

        on = {"device_id": hall, "capability": "ON_OFF", "command": "turnOn"}
        r = await http.post("/v1/commands", json=on, headers=auth)
        assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text
        await until(lambda: sim.device("hall").clusters[ON_OFF][0].value, 10, "light on")
        r = await http.post("/v1/commands", json={**on, "command": "turnOff"}, headers=auth)
        assert r.status_code == 200
        await until(lambda: not sim.device("hall").clusters[ON_OFF][0].value, 10, "light off")

        bad_cmd = await http.post("/v1/commands", json={**on, "command": "fly"}, headers=auth)
        assert bad_cmd.status_code == 422 and "fly" in bad_cmd.json()["error"]["message"]
        missing = await http.post("/v1/commands", json={**on, "device_id": "x"}, headers=auth)
        assert missing.status_code == 404
        garbage = await http.post("/v1/commands", content=b"{", headers=auth)
        assert garbage.status_code == 400

        scene = {"name": "Night", "actions": [
            {"device_id": hall, "capability": "ON_OFF", "command": "turnOn"}]}  # fmt: skip
        runtime.local.on_config("scene", "night", json.dumps(scene).encode())
        r = await http.post("/v1/scenes/night/run", headers=auth)
        assert r.status_code == 200 and r.json()["status"] == "COMPLETED", r.text
        await until(lambda: sim.device("hall").clusters[ON_OFF][0].value, 10, "scene ran")
        assert (await http.post("/v1/scenes/none/run", headers=auth)).status_code == 404


async def test_the_lan_api_over_https_with_the_hubs_certificate(tmp_path: Path) -> None:
    """`hubs add --cert`'s certificate serves the LAN API too: an app that trusts the
    stack's CA checks the hub's login as the name, whatever address it reaches it at; plain
    HTTP gets no answer."""
    import ssl

    from compose.tls import ensure_certificates, hub_certificate
    from hub.hubrun import ConfigError

    ca = ensure_certificates(tmp_path / "ca", tmp_path / "server")["ca.crt"]
    _serial, cert, key = hub_certificate(tmp_path / "ca", "hub-tls-home")
    (tmp_path / "hub.crt").write_bytes(cert)
    (tmp_path / "hub.key").write_bytes(key)
    sim = ZnpSimulator(tmp_path / "sim")
    await sim.start()
    toml = hub_toml("tls-home", "hub-secret-2", sim.port) + 'tls_cert = "hub.crt"\n'
    (tmp_path / "hub.toml").write_text(toml)
    with pytest.raises(ConfigError, match="tls_cert and tls_key go together"):
        load_config(tmp_path / "hub.toml")
    (tmp_path / "hub.toml").write_text(toml + 'tls_key = "hub.key"\n')
    runtime = HubRuntime(load_config(tmp_path / "hub.toml"))
    stop = asyncio.Event()
    task = asyncio.create_task(runtime.run(stop))
    try:
        await until(lambda: runtime.lan_port, 30, "the LAN API")
        base = f"https://127.0.0.1:{runtime.lan_port}"
        auth = {"Authorization": "Basic " + base64.b64encode(b"hub-tls-home:hub-secret-2").decode()}
        trusted = ssl.create_default_context(cafile=str(ca))
        async with httpx.AsyncClient(base_url=base, verify=trusted, timeout=10) as http:
            named = {"sni_hostname": "hub-tls-home"}
            r = await http.get("/v1/status", headers=auth, extensions=named)
            assert r.status_code == 200 and r.json()["home_id"] == "tls-home"
        async with httpx.AsyncClient(base_url=base, verify=trusted, timeout=10) as http:
            with pytest.raises(httpx.ConnectError, match=r"certificate|hostname"):
                await http.get("/v1/status", headers=auth, extensions={"sni_hostname": "other"})
        async with httpx.AsyncClient(timeout=10) as plain:
            with pytest.raises(httpx.HTTPError):
                await plain.get(f"http://127.0.0.1:{runtime.lan_port}/v1/status", headers=auth)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
        await sim.stop()
