"""The hub's local control (hub/local.py): which automations are the hub's, and the cloud's
engine run by the hub on its devices' reports while the cloud is away."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from domain.automation.parse import parse
from hub.local import LocalControl, not_local

MOTION_LIGHT = {
    "alias": "Hall light on motion",
    "triggers": [{"trigger": "state", "device_id": "pir", "attribute": "motion", "to": True}],
    "actions": [{"device_id": "hall", "capability": "ON_OFF", "command": "turnOn"}],
}
DESCRIPTORS = {
    "pir": {"name": "PIR", "type": "sensor.motion", "capabilities": ["MOTION_SENSOR", "BATTERY"]},
    "hall": {"name": "Hall", "type": "light.switch", "capabilities": ["ON_OFF"]},
}


class Hub:
    """LocalControl with the hub's side recorded: commands, publishes, the cloud link."""

    def __init__(self, path: Path) -> None:
        self.online = False
        self.executed: list[tuple[str, str, str, dict[str, Any]]] = []
        self.published: list[tuple[str, Any]] = []
        self.now = 1_700_000_000.0
        self.local = LocalControl(
            path,
            owns=lambda d: d in DESCRIPTORS,
            execute=self.execute,
            publish=lambda topic, body: self.published.append((topic, body)),
            online=lambda: self.online,
            clock=lambda: self.now,
        )
        for device, desc in DESCRIPTORS.items():
            self.local.on_descriptor(device, desc)

    async def execute(self, device: str, cap: str, cmd: str, params: Any) -> None:
        self.executed.append((device, cap, cmd, dict(params)))

    def config(self, kind: str, doc_id: str, doc: dict[str, Any] | None) -> None:
        self.local.on_config(kind, doc_id, json.dumps(doc).encode() if doc else b"")

    async def report(self, device: str, state: dict[str, Any]) -> list[str]:
        ran = self.local.on_state(device, state)
        self.local.flush()
        await asyncio.sleep(0)  # the commands' tasks
        await asyncio.sleep(0)
        return ran


def test_what_the_hub_can_run_by_itself() -> None:
    owns = DESCRIPTORS.__contains__
    assert not_local(parse(MOTION_LIGHT), owns, {}) is None
    other = {**MOTION_LIGHT, "actions": [{**MOTION_LIGHT["actions"][0], "device_id": "tv"}]}
    assert "not this hub's" in str(not_local(parse(other), owns, {}))
    group = {**MOTION_LIGHT, "actions": [{"group_id": "all", "capability": "ON_OFF",
                                          "command": "turnOn"}]}  # fmt: skip
    assert "groups live in the cloud" in str(not_local(parse(group), owns, {}))
    notify = {**MOTION_LIGHT, "actions": [{"notify": "motion!"}]}
    assert "notifications need the cloud" in str(not_local(parse(notify), owns, {}))
    scene = {**MOTION_LIGHT, "actions": [{"scene": "evening"}]}
    assert "not known to the hub" in str(not_local(parse(scene), owns, {}))
    evening = {"actions": [{"device_id": "hall", "capability": "ON_OFF", "command": "turnOn"}]}
    assert not_local(parse(scene), owns, {"evening": evening}) is None
    elsewhere = {"actions": [{"device_id": "tv", "capability": "ON_OFF", "command": "turnOn"}]}
    assert "not on this hub's devices" in str(not_local(parse(scene), owns, {"evening": elsewhere}))


async def test_offline_the_hub_runs_the_automation_and_says_so(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "local.sqlite")
    hub.config("automation", "hall-light", MOTION_LIGHT)
    hub.config("automation", "tv-too", {**MOTION_LIGHT, "actions": [
        {"device_id": "tv", "capability": "ON_OFF", "command": "turnOn"}]})  # fmt: skip
    assert list(hub.local.automations()) == ["hall-light"]  # tv-too stays in the cloud
    await hub.report("pir", {"motion": False})

    assert await hub.report("pir", {"motion": True}) == ["hall-light"]
    assert hub.executed == [("hall", "ON_OFF", "turnOn", {})]
    topics = [t for t, _ in hub.published]
    assert topics == ["automation/hall-light", "automation/hall-light"]
    started, done = (b for _, b in hub.published)
    assert (started["status"], done["status"]) == ("STARTED", "COMPLETED")
    assert started["run_id"] == done["run_id"] and done["ts"] == int(hub.now * 1000)
    trigger = done["trigger"]
    assert (trigger["device_id"], trigger["from"], trigger["to"]) == ("pir", False, True)
    assert hub.local.counts["runs"] == 1

    # the same state again is no change: nothing runs twice
    assert await hub.report("pir", {"motion": True}) == []
    assert len(hub.executed) == 1


async def test_online_the_cloud_decides_but_the_triggers_follow(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "local.sqlite")
    hub.config("automation", "hall-light", MOTION_LIGHT)
    hub.online = True
    await hub.report("pir", {"motion": False})
    assert await hub.report("pir", {"motion": True}) == []
    assert hub.executed == [] and hub.published == []
    hub.online = False  # the cloud goes away with motion on: no firing until it changes
    await hub.report("pir", {"battery": 50})
    assert hub.executed == []
    await hub.report("pir", {"motion": False})
    assert await hub.report("pir", {"motion": True}) == ["hall-light"]
    assert len(hub.executed) == 1


async def test_delays_run_on_the_hubs_ticks_and_state_survives_a_restart(tmp_path: Path) -> None:
    doc = {**MOTION_LIGHT, "actions": [
        {"device_id": "hall", "capability": "ON_OFF", "command": "turnOn"},
        {"delay": {"seconds": 30}},
        {"device_id": "hall", "capability": "ON_OFF", "command": "turnOff"},
    ]}  # fmt: skip
    hub = Hub(tmp_path / "local.sqlite")
    hub.config("automation", "hall-light", doc)
    await hub.report("pir", {"motion": False})
    await hub.report("pir", {"motion": True})
    assert [c for _, _, c, _ in hub.executed] == ["turnOn"]
    hub.config("automation", "hall-light", doc)  # the retained copy at a reconnect
    assert [b["status"] for _, b in hub.published][-1] == "STARTED"  # not aborted
    await hub.local.close()

    again = Hub(tmp_path / "local.sqlite")  # the hub restarts mid-delay
    again.now = hub.now + 10
    again.local.tick()
    await asyncio.sleep(0)
    assert again.executed == []
    again.online = True  # the cloud is back: a run the hub began, the hub finishes
    again.now = hub.now + 31
    again.local.tick()
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert [c for _, _, c, _ in again.executed] == ["turnOff"]
    assert [b["status"] for _, b in again.published] == ["COMPLETED"]
    again.config("automation", "hall-light", {**doc, "alias": "changed"})
    again.local.flush()
    assert again.local.automations()["hall-light"].alias == "changed"


async def test_a_changed_or_removed_automation_stops(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "local.sqlite")
    hub.config("automation", "hall-light", MOTION_LIGHT)
    hub.config("automation", "hall-light", None)
    await hub.report("pir", {"motion": False})
    assert await hub.report("pir", {"motion": True}) == []
    assert hub.local.automations() == {}
    hub.config("automation", "hall-light", {**MOTION_LIGHT, "enabled": False})
    assert hub.local.automations() == {}


async def test_scenes_run_on_the_hub(tmp_path: Path) -> None:
    hub = Hub(tmp_path / "local.sqlite")
    hub.config("scene", "night", {"name": "Night", "actions": [
        {"device_id": "hall", "capability": "ON_OFF", "command": "turnOff"},
        {"device_id": "hall", "capability": "ON_OFF", "command": "turnOn", "delay_ms": 20},
    ]})  # fmt: skip
    result = await hub.local.run_scene("night")
    assert [c for _, _, c, _ in hub.executed] == ["turnOff", "turnOn"]
    assert (result["status"], result["actions_succeeded"], result["actions_failed"]) == (
        "COMPLETED", 2, 0,
    )  # fmt: skip
    assert result["execution_time_ms"] >= 20
