"""`homestream up` runs the stream worker and the bridge under supervisord: each SIGKILLed in
the middle of a stream of reports is back within 5 s, and every report's state change is
there exactly once."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pytest

from compose.stack import Stack
from hub.bridge import forget_session
from runtime.config import Settings
from tests.integration.bridge_support import Hub
from tests.integration.streams_support import read_all
from tests.integration.test_bridge import DESCRIPTOR
from topics import catalogue as t
from topics.state_change import state_of

pytestmark = pytest.mark.integration

LAMPS, STEPS = 6, 100  # brightness 1..100 on each lamp, in order


@pytest.fixture
def supervised(stack_env):
    env = {**stack_env, "HOMESTREAM_STREAM_WORKERS": "1", "HOMESTREAM_BRIDGES": "1"}
    settings = Settings.from_env(env)
    stack = Stack(settings, say=lambda line: None)
    stack.up(install=False, demo=False)
    try:
        yield env, settings, stack
    finally:
        stack.supervisor.shutdown()  # the test stack's servers stay up
        forget_session(settings, "bridge-1")


def _status(stack: Stack, name: str):
    [row] = [r for r in stack.status() if r.name == name]
    return row


def _kill_and_see_it_back(stack: Stack, name: str) -> float:
    before = _status(stack, name).pid
    assert before is not None
    os.kill(before, signal.SIGKILL)
    killed = time.monotonic()
    while time.monotonic() - killed < 5:
        info = stack.supervisor.info(name)
        if info is not None and info.pid not in (None, before):
            return time.monotonic() - killed
        time.sleep(0.05)
    raise AssertionError(f"{name} not back within 5 s: {stack.supervisor.info(name)}")


def _publish(hub: Hub, steps: range) -> None:
    for step in steps:
        for lamp in range(LAMPS):
            hub.publish(
                f"state/lamp-{lamp}",
                {"state": {"brightness": step}, "ts": 1_700_000_000_000 + step},
            )


def test_killed_worker_and_bridge_come_back_and_nothing_is_lost_or_doubled(supervised, run_cli):
    _env, settings, stack = supervised
    home = f"sv-{uuid.uuid4().hex[:6]}"
    run_cli("users", "add", "--username", f"owner-{home}", "--password", "correct-horse-1")
    run_cli("homes", "add", "--home", home, "--owner", f"owner-{home}")
    creds = json.loads(run_cli("hubs", "add", "--home", home).stdout)
    # Counted as started once it has run STARTSECS: from then on a death is restarted at once.
    deadline = time.monotonic() + 30
    while {r.name: r.state for r in stack.status()}["streams-1"] != "RUNNING":
        assert time.monotonic() < deadline, stack.status()
        time.sleep(0.5)

    hub = Hub(settings, creds["username"], creds["password"], home)
    try:
        for lamp in range(LAMPS):
            hub.publish(f"discovery/lamp-{lamp}", {**DESCRIPTOR, "name": f"Lamp {lamp}"})
        _publish(hub, range(1, 35))
        back = {"streams-1": _kill_and_see_it_back(stack, "streams-1")}
        _publish(hub, range(35, 70))
        back["bridge-1"] = _kill_and_see_it_back(stack, "bridge-1")
        _publish(hub, range(70, STEPS + 1))
        hub.wait_acked(LAMPS * (STEPS + 1))
    finally:
        hub.close()
    print(f"back after SIGKILL (s): {back}")

    def complete(recs):
        got = {(r["device_id"], state_of(r).reported.get("brightness")) for _n, r in recs}
        return all((f"lamp-{i}", STEPS) in got for i in range(LAMPS))

    recs = read_all(settings, [t.STATE_CHANGES], {home}, until=complete, timeout=120)
    for lamp in range(LAMPS):
        changes = [state_of(r).changed for _n, r in recs if r["device_id"] == f"lamp-{lamp}"]
        seen = [c["brightness"] for c in changes if "brightness" in c]
        assert seen == list(range(1, STEPS + 1)), f"lamp-{lamp}: {seen}"
    rows = {r.name: r for r in stack.status()}
    assert rows["streams-1"].healthy and rows["bridge-1"].healthy
