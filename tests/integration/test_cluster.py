"""`homestream up --brokers 3`: a broker SIGKILLed under simulator load loses nothing.

The stack runs its own three-broker KRaft cluster (replication 3, min.insync.replicas 2,
KIP-890's check on), two stream workers, two bridges, the sinks and two gateways. Simulated
homes report over real MQTT, apps follow them over WebSocket on both gateways, and commands
go in through REST. One broker (the one leading most partitions) is SIGKILLed mid-run and
started again a while later. Then: every report that reached Mosquitto is in Kafka (at
least once, as the bridge promises), every device's state changes are versions 1..N with
no gap and no repeat, the history holds a row for each of them, every command ended once,
the apps saw each device's last version, the pipeline carried on while the broker was away,
and the broker is back in every partition's ISR. Commands sent while it was away may time
out (TIMEOUT, their final status); none is lost or ends twice.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from bench.e2e import AppClients, Commander
from bench.fanout import PASSWORD, _token
from compose.process import free_port
from domain.lifecycle import FINAL
from runtime.config import Settings
from tests.conftest import isolated_env
from tests.integration.streams_support import read_all
from topics import catalogue as t
from topics.state_change import state_of

pytestmark = pytest.mark.integration

HOMES = 4
DEVICES = 8
RATE = 60  # reports/s across the homes


def _cli(env: dict[str, str], *args: str, timeout: float = 600) -> str:
    exe = Path(sys.executable).with_name("homestream")
    proc = subprocess.run(
        [str(exe), *args], env={**os.environ, **env}, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert proc.returncode == 0, f"homestream {args}: {proc.stdout[-2000:]}{proc.stderr[-3000:]}"
    return proc.stdout


def _free_ports(count: int, step: int) -> int:
    """A port p with p, p+step, ... p+(count-1)*step all free (worker n and broker n use the
    base plus an offset)."""
    import socket

    for _ in range(200):
        base = free_port()
        try:
            for i in range(1, count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", base + i * step))
        except OSError:
            continue
        return base
    raise RuntimeError("no run of free ports")


@pytest.fixture(scope="module")
def cluster_env():
    state = Path(tempfile.mkdtemp(prefix="homestream-test-cluster-", dir="/tmp"))
    state.chmod(0o755)
    env = isolated_env(state)
    env.update(
        {
            "HOMESTREAM_KAFKA_BROKERS": "3",
            # Three JVMs beside everything else on two cores: small heaps.
            "HOMESTREAM_KAFKA_HEAP": os.environ.get("HOMESTREAM_CLUSTER_HEAP", "384m"),
            "HOMESTREAM_STREAM_WORKERS": "2",
            "HOMESTREAM_BRIDGES": "2",
            "HOMESTREAM_SINKS": "1",
            "HOMESTREAM_GATEWAY": "1",
            "HOMESTREAM_STREAMS_METRICS_PORT": str(_free_ports(2, 1)),
            "HOMESTREAM_BRIDGE_METRICS_PORT": str(_free_ports(2, 1)),
            "HOMESTREAM_KAFKA_PORT": str(_free_ports(3, 10)),
            "HOMESTREAM_KAFKA_CONTROLLER_PORT": str(_free_ports(3, 10)),
        }
    )
    try:
        _cli(env, "up", "--no-demo", timeout=900)
        yield env
    finally:
        _cli(env, "down", *([] if os.environ.get("HOMESTREAM_TEST_KEEP") == "1" else ["--purge"]))


class ReportWitness:
    """The bridge's login on ``hub/+/state/+`` (not the shared subscription): every state
    report that reached Mosquitto, as (home, device, ts)."""

    def __init__(self, settings: Settings, prefix: str):
        from bench.bridge import _client

        self.seen: set[tuple[str, str, int]] = set()
        self.prefix = prefix
        self.lock = threading.Lock()
        self.client = _client(settings, f"witness-{uuid.uuid4().hex[:6]}")
        self.client.on_message = self._on_message
        self.client.subscribe("hub/+/state/+", qos=1)

    def _on_message(self, _c, _u, msg) -> None:
        _hub, home, _kind, device = msg.topic.split("/", 3)
        if not home.startswith(self.prefix):
            return
        doc = json.loads(msg.payload)
        with self.lock:
            self.seen.add((home, device, int(doc["ts"])))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _ms(value) -> int:
    return int(value.timestamp() * 1000) if isinstance(value, datetime) else int(value)


def _leaders(settings: Settings) -> Counter[int]:
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": settings.kafka_bootstrap}).list_topics(timeout=10)
    return Counter(
        p.leader for name, tp in md.topics.items() if name.startswith("homestream.")
        for p in tp.partitions.values()
    )  # fmt: skip


def _out_of_isr(settings: Settings, node: int) -> list[str]:
    from confluent_kafka.admin import AdminClient

    md = AdminClient({"bootstrap.servers": settings.kafka_bootstrap}).list_topics(timeout=10)
    return [
        f"{name}/{p.id}"
        for name, tp in md.topics.items()
        for p in tp.partitions.values()
        if node not in p.isrs
    ]


def _wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = pred()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"timed out: {what}")


def test_bench_e2e_reports_every_figure(cluster_env, tmp_path):
    """`homestream bench e2e` at a tiny load on the cluster: a smoke test of the report's
    shape (speed is measured by the benchmark itself, never asserted here)."""
    from dataclasses import fields

    from bench.e2e import E2EResult, Step

    out = _cli(
        cluster_env,
        "bench", "e2e", "--homes", "3", "--devices", "5", "--rates", "15", "--seconds", "8",
        "--warmup", "3",
        "--clients", "2", "--command-rate", "1", "--simulators", "1",
        "--mqtt-messages", "500", "--kafka-records", "2000", "--json",
    )  # fmt: skip
    result = json.loads(out)
    assert set(result) == {f.name for f in fields(E2EResult)}
    assert result["brokers"] == 3
    assert result["mqtt_ceiling_msgs_per_s"] > 0
    assert result["kafka_ceiling"]["records_per_s"] > 0
    (step,) = result["steps"]
    assert set(step) == {f.name for f in fields(Step)}
    assert step["reports"] > 0 and step["frames"] > 0 and step["commands"] > 0
    assert step["app_p99_ms"] >= step["app_p50_ms"] > 0
    assert step["command_to_device_p50_ms"] > 0
    assert 0 < step["noop_ratio"] < 1
    assert step["kafka_records_per_s"] > 0
    assert len(step["load_average"]) == 3
    for name in ("kafka", "kafka-2", "kafka-3", "streams-1", "bridge-1", "gateway", "simulate-0"):
        assert set(step["processes"][name]) == {"cpu_pct", "rss_mb"}, name
    assert set(step["fractions"]) == {"mqtt", "kafka"}


def test_a_broker_sigkilled_under_load_loses_nothing_and_rejoins(cluster_env, tmp_path):
    from compose.services.gateway import GatewayService
    from compose.services.kafka import KafkaService
    from gateway.service import gateway_argv
    from runtime.secrets import load_secrets
    from stores.db import connect

    env = cluster_env
    settings = Settings.from_env(env)
    assert settings.kafka_bootstrap.count(",") == 2
    assert settings.kafka_replication == (3, 2)
    secrets = load_secrets(settings)
    run = uuid.uuid4().hex[:4]
    prefix = f"clu{run}"
    user = f"cluster-{run}"
    _cli(env, "users", "add", "--username", user, "--password", PASSWORD)

    # A second gateway beside the launcher's: apps spread over both.
    gw2_port = free_port()
    gw2 = subprocess.Popen(
        gateway_argv(tmp_path / "gateway-2", gw2_port),
        env={**os.environ, **env},
        stdout=open(tmp_path / "gateway-2.log", "ab"),  # noqa: SIM115 - the process owns it
        stderr=subprocess.STDOUT,
    )
    urls = [GatewayService(settings, secrets).endpoint(), f"http://{settings.host}:{gw2_port}"]
    sim = subprocess.Popen(
        [
            sys.executable, "-m", "homestream.cli", "simulate",
            "--homes", str(HOMES), "--prefix", prefix, "--devices", str(DEVICES),
            "--rate", str(RATE), "--no-outages", "--owner", user,
            "--sim-dir", str(tmp_path / "sim"), "--progress", "10",
        ],
        env={**os.environ, **env},
        stdout=open(tmp_path / "sim.log", "ab"),  # noqa: SIM115 - the process owns it
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    witness = ReportWitness(settings, prefix)
    homes = [f"{prefix}-{i:04d}" for i in range(1, HOMES + 1)]
    apps = commander = None
    killed: KafkaService | None = None
    try:
        gw2_service = GatewayService(settings.with_ports(gateway=gw2_port), secrets)
        _wait(gw2_service.healthy, 90, f"gateway 2 ({tmp_path / 'gateway-2.log'})")
        # Homes exist once the simulator has provisioned them; then the apps subscribe.
        _wait(lambda: _homes_exist(settings, homes), 120, "the simulator's homes")
        token = _token(urls[0], user)
        apps = AppClients(urls, token, homes, clients=len(urls))
        apps.start()
        from hub.sim.floorplan import synthetic_home

        lights = [
            (h, s.device_id)
            for h in homes
            for s in synthetic_home(h, DEVICES, 0)
            if s.type.startswith("light.") and "ON_OFF" in s.capabilities
        ]
        assert lights, "the generated homes have lights"
        commander = Commander(urls[1], token, lights, rate=1.0)
        commander.start()
        time.sleep(15)  # steady load on three brokers

        node = _leaders(settings).most_common(1)[0][0]
        killed = KafkaService(settings, secrets, node)
        pid = killed.pid()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        killed_at = time.time() * 1000
        time.sleep(25)  # the cluster and the pipeline without it
        assert _out_of_isr(settings, node), "the killed broker is out of the ISRs"
        assert killed.start()
        killed.wait_healthy(time.monotonic() + 120)
        _wait(lambda: not _out_of_isr(settings, node), 180, "the broker back in every ISR")
        rejoined_at = time.time() * 1000
        time.sleep(10)  # load on the healed cluster
    finally:
        if commander is not None:
            commander.stop()
        sim.send_signal(signal.SIGTERM)  # drains the hubs' outboxes
        sim.wait(60)
        time.sleep(3)
        witness.close()
        if apps is not None:
            time.sleep(5)
            apps.stop()
        gw2.send_signal(signal.SIGTERM)
        gw2.wait(30)

    sent = set(witness.seen)
    assert len(sent) > RATE * 40, f"the simulator's load reached Mosquitto ({len(sent)})"
    homeset = set(homes)

    # Every report that reached Mosquitto is in Kafka, once.
    def reports_in(recs):
        return {(r["home_id"], r["device_id"], _ms(r["ts"])) for _n, r in recs} >= sent

    recs = read_all(settings, [t.DEVICE_REPORTS], homeset, until=reports_in, timeout=120)
    in_kafka = Counter((r["home_id"], r["device_id"], _ms(r["ts"])) for _n, r in recs)
    assert sent - set(in_kafka) == set(), "reports lost"
    # The bridge is at least once (docs/hub.md): a report produced but not yet PUBACKed when
    # the connection or the broker stalled comes again; the worker's fold absorbs it (below:
    # no version twice). A few at most.
    again = [k for k, n in in_kafka.items() if n > 1]
    assert len(again) <= max(5, len(sent) // 100), f"{len(again)} reports produced twice"

    # Every device's state changes: versions 1..N, no gap, no repeat.
    changes = read_all(settings, [t.STATE_CHANGES], homeset, until=lambda _r: False, timeout=20)
    versions: dict[tuple[str, str], list[int]] = defaultdict(list)
    rowed: set[tuple[str, str, int]] = set()  # changes the history has rows for
    last_reported: dict[tuple[str, str], int] = {}  # ... and apps get as device.state
    for _n, r in changes:
        key, version = (r["home_id"], r["device_id"]), int(r["version"])
        versions[key].append(version)
        state = state_of(r)
        if state.changed:
            last_reported[key] = version
        if state.changed or state.desired_changed:
            rowed.add((*key, version))
    assert len(versions) == HOMES * DEVICES
    for key, vs in versions.items():
        assert vs == list(range(1, len(vs) + 1)), f"{key}: versions {vs}"
    after_kill = [r for _n, r in changes if _ms(r["ts"]) > killed_at + 12_000]
    assert after_kill, "state changes while the broker was away"

    # The apps saw every device's last version (the socket drops nothing newer): in a frame,
    # or in a snapshot (a change before the subscription, or a resync of a slow client).
    last_seen: dict[tuple[str, str], int] = dict(apps.snapshot_versions)
    for f in apps.states:
        key = (f.home_id, f.device_id)
        last_seen[key] = max(last_seen.get(key, 0), f.version)
    assert last_seen == last_reported
    assert any(killed_at + 12_000 < f.ts_ms < killed_at + 25_000 for f in apps.states), (
        "apps got state changes while the broker was away"
    )

    # What the loss cost (printed for docs/scaling.md; speed is never asserted).
    during = sorted(f.at_ms - f.ts_ms for f in apps.states if 0 <= f.ts_ms - killed_at <= 25_000)
    print(
        f"\nbroker {node} SIGKILLed: {len(during)} frames while it was away, report -> app "
        f"median {during[len(during) // 2]:.0f} ms, max {during[-1]:.0f} ms; "
        f"{len(again)} reports produced twice"
    )

    # The history holds a row for every state change.
    expected = rowed

    def history_rows():
        with connect(settings) as conn:
            rows = conn.execute(
                "SELECT DISTINCT home_id, device_id, version FROM history.state_changes"
                " WHERE home_id LIKE %s",
                (prefix + "%",),
            ).fetchall()
        return {tuple(r) for r in rows} >= expected and rows

    rows = _wait(history_rows, 90, "the history sink")
    assert {tuple(r) for r in rows} == expected

    # Every command ended exactly once: COMPLETED, or TIMEOUT when the device's answer
    # could not get through in time while the broker was away (a command is never lost).
    assert commander is not None and len(commander.sent) >= 30 and not commander.errors
    sent_at = commander.sent
    statuses = read_all(
        settings,
        [t.COMMANDS_STATUS],
        homeset,
        until=lambda rs: {r["command_id"] for _n, r in rs if r["status"] in FINAL} >= set(sent_at),
        timeout=60,
    )
    finals = Counter((r["command_id"], r["status"]) for _n, r in statuses if r["status"] in FINAL)
    ended = {cid: status for (cid, status) in finals}
    assert set(ended) == set(sent_at), "commands without a final status"
    assert max(Counter(cid for cid, _s in finals).values()) == 1, "a command ended twice"
    print(f"commands: {dict(Counter(ended.values()))}")
    before = [c for c, at in sent_at.items() if at < killed_at - 6_000]
    assert before and all(ended[c] == "COMPLETED" for c in before)
    assert any(ended[c] == "COMPLETED" for c, at in sent_at.items() if at > rejoined_at)


def _homes_exist(settings: Settings, homes: list[str]) -> bool:
    from stores.db import connect

    with connect(settings) as conn:
        row = conn.execute(
            "SELECT count(*) FROM hub_credentials WHERE home_id = ANY(%s) AND revoked_at IS NULL",
            (homes,),
        ).fetchone()
    return bool(row and row[0] == len(homes))
