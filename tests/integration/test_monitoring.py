"""Alerts and metrics: `promtool test rules` on compose/prometheus/alerts.yml, and
`homestream up --monitoring`: a real Prometheus scraping a worker and a bridge while a
command goes to a hub and back, the dashboard's every query valid on it."""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
import uuid
from pathlib import Path

import pytest

from compose.install import REQUIREMENTS, install_debian_packages
from compose.stack import Stack
from hub.bridge import forget_session
from runtime.config import REPO_ROOT, Settings
from runtime.secrets import load_secrets
from tests.integration.bridge_support import Hub
from tests.integration.streams_support import CODEC
from tests.integration.test_bridge import DESCRIPTOR
from tests.integration.test_supervisor import _wait
from topics import catalogue as t
from topics.producer import EventProducer

pytestmark = pytest.mark.integration

PROM_DIR = REPO_ROOT / "compose" / "prometheus"
DASHBOARD = REPO_ROOT / "compose" / "grafana" / "homestream.json"


def _promtool() -> str:
    missing = [r for r in REQUIREMENTS if r.package == "prometheus" and not r.present()]
    if missing:  # a clean CI machine: Debian's package, as `up` installs it
        install_debian_packages(missing, print)
    return "promtool"


def test_alert_rules_pass_their_promtool_tests():
    promtool = _promtool()
    check = subprocess.run(
        [promtool, "check", "rules", str(PROM_DIR / "alerts.yml")], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "SUCCESS: 7 rules found" in check.stdout
    run = subprocess.run(
        [promtool, "test", "rules", "alerts_test.yml"],
        cwd=PROM_DIR,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SUCCESS" in run.stdout


def _query(base: str, expr: str) -> dict:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as resp:
        return json.loads(resp.read())


def _value(base: str, expr: str) -> float | None:
    result = _query(base, expr)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


@pytest.fixture
def monitored(stack_env):
    _promtool()
    env = {**stack_env, "HOMESTREAM_STREAM_WORKERS": "1", "HOMESTREAM_BRIDGES": "1"}
    settings = Settings.from_env(env)
    stack = Stack(settings, say=lambda line: None)
    stack.up(install=False, demo=False, monitoring=True)
    try:
        yield settings, stack
    finally:
        stack.supervisor.shutdown()
        for svc in stack._monitoring(load_secrets(settings)):
            svc.stop()
        forget_session(settings, "bridge-1")


def test_up_monitoring_scrapes_the_processes_and_the_brief_metrics(monitored, run_cli):
    settings, stack = monitored
    base = f"http://{settings.host}:{settings.ports.prometheus}"
    assert {r.name for r in stack.status()} >= {"prometheus", "streams-1", "bridge-1"}

    home = f"mon-{uuid.uuid4().hex[:6]}"
    run_cli("users", "add", "--username", f"owner-{home}", "--password", "correct-horse-1")
    run_cli("homes", "add", "--home", home, "--owner", f"owner-{home}")
    creds = json.loads(run_cli("hubs", "add", "--home", home).stdout)
    hub = Hub(settings, creds["username"], creds["password"], home)
    try:
        hub.subscribe("command/+")
        hub.publish("status", "online", retain=True)
        hub.publish("discovery/lamp-1", DESCRIPTOR)
        hub.publish("state/lamp-1", {"state": {"powerState": "OFF", "brightness": 10}})
        feed = EventProducer(settings.kafka_bootstrap, settings.partitions, CODEC)
        time.sleep(2)  # the worker registers the lamp first
        feed.send(
            t.COMMANDS_REQUESTED,
            "CommandRequested",
            home,
            command_id="mon-1",
            device_id="lamp-1",
            capability="BRIGHTNESS",
            command="setBrightness",
            parameters={"brightness": 55},
            requested_by="test",
            issued_at=int(time.time() * 1000),
        )
        feed.flush()
        _wait(lambda: any(tp.endswith("/command/lamp-1") for tp, _p in hub.received), 60, "cmd")
        hub.publish("ack/lamp-1", {"command_id": "mon-1", "status": "COMPLETED"})
        hub.wait_acked(4)

        # Prometheus scrapes both processes, with the rules loaded.
        def targets_up():
            with urllib.request.urlopen(f"{base}/api/v1/targets", timeout=10) as resp:
                active = json.loads(resp.read())["data"]["activeTargets"]
            jobs = {a["labels"]["job"]: a["health"] for a in active}
            return jobs if jobs.get("streams") == "up" and jobs.get("bridge") == "up" else None

        jobs = _wait(targets_up, 60, "both targets up")
        assert set(jobs) == {"streams", "bridge"}
        with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=10) as resp:
            groups = json.loads(resp.read())["data"]["groups"]
        assert len(groups[0]["rules"]) == 7

        # The brief's metrics, as Prometheus sees them.
        assert _wait(
            lambda: _value(base, "sum(homestream_command_latency_seconds_count)"), 60, "latency"
        ) == pytest.approx(1)
        assert _wait(lambda: _value(base, "sum(homestream_hubs_connected)"), 30, "hubs") >= 1
        assert _wait(
            lambda: _value(base, 'sum(homestream_streams_events_total{outcome="applied"})'),
            30,
            "applied",
        )
        assert _wait(
            lambda: _query(base, 'homestream_consumer_lag{group="homestream-streams"}')["data"][
                "result"
            ],
            60,
            "the worker's consumer lag",
        )
        assert _value(base, "sum(homestream_scene_execution_seconds_count)") == 0
    finally:
        hub.close()

    # Every query of the Grafana dashboard is valid PromQL on this Prometheus.
    exprs = [tg["expr"] for p in json.loads(DASHBOARD.read_text())["panels"] for tg in p["targets"]]
    assert len(exprs) >= 13
    for expr in exprs:
        assert _query(base, expr)["status"] == "success", expr


def test_dashboard_is_grafana_json():
    doc = json.loads(Path(DASHBOARD).read_text())
    assert doc["uid"] == "homestream" and doc["panels"]
    assert all(p["datasource"]["uid"] == "${datasource}" for p in doc["panels"])
