"""`homestream bench e2e`: a report from a simulated hub to an app, through everything.

Simulated homes (`homestream simulate` processes, real MQTT QoS 1 through Mosquitto) ->
bridges -> Kafka -> stream workers -> Kafka -> the gateway's WebSocket clients, the history
sink's PostgreSQL rows and the Redis sink, at rising load until a stage saturates. Per step:

- reports/s offered and carried (the simulators' own counts, the frames that reached apps);
- report -> app: a ``device.state`` frame's arrival minus its ``ts``, which is the time the
  simulated device took the reading (the hub's ``ts`` travels with the report);
- command -> device: a REST command posted -> the command arriving on the hub's MQTT topic
  (a witness subscribed with the bridge's login); and -> COMPLETED on the app's socket;
- the no-op ratio (the workers' ``reports`` and ``noop`` counters);
- PostgreSQL: history rows/s written and how far the newest row trails the clock;
- records/s into Kafka (every topic's high watermarks) and CPU and memory of each process;
- the load average: other work on the machine shows in every figure.

In the same run, the ceiling of each real part alone: raw MQTT QoS 1 through the stack's
Mosquitto with paho, and raw Kafka with Kafka's own ``ProducerPerformance`` (the
kafka-producer-perf-test tool) from the launcher's Kafka jars. Each stage's step throughput is
shown as a fraction of its ceiling.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.fanout import PASSWORD, _quantiles, _token
from bench.footprint import _kb, _tree
from hub.sim.cli import MAX_HUBS_PER_PROCESS
from runtime.config import Settings

Say = Callable[[str], None]
CLK_TCK = os.sysconf("SC_CLK_TCK")
MAX_HOMES_PER_SOCKET = 32  # gateway.ws.MAX_HOMES_PER_SOCKET


# -- the parts of a run -------------------------------------------------------------------------


@dataclass
class StateFrame:
    home_id: str
    device_id: str
    version: int
    ts_ms: int  # when the device took the reading
    at_ms: float  # when the frame arrived at the app


class AppClients:
    """WebSocket clients of the gateway(s), each following some of the homes (every home has
    one follower); an asyncio loop in a thread of its own. Records every ``device.state`` and
    ``command.status`` frame, and the versions each ``snapshot`` shows (a device whose last
    change came before the subscription, or during a resync, is seen only there)."""

    def __init__(self, urls: Sequence[str], token: str, homes: Sequence[str], clients: int):
        self.urls = [u.replace("http", "ws", 1) + f"/v1/ws?access_token={token}" for u in urls]
        per = max(1, min(MAX_HOMES_PER_SOCKET, -(-len(homes) // max(clients, 1))))
        self.groups = [list(homes[i : i + per]) for i in range(0, len(homes), per)]
        self.states: list[StateFrame] = []
        self.snapshot_versions: dict[tuple[str, str], int] = {}  # (home, device) -> newest
        self.statuses: dict[str, tuple[str, float]] = {}  # command id -> (last status, at ms)
        self.completed_at: dict[str, float] = {}
        self.errors: list[str] = []
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, daemon=True, name="app-clients")

    def start(self, timeout: float = 60) -> None:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"the WebSocket clients did not connect: {self.errors[-3:]}")
        if self.errors:
            raise RuntimeError(f"WebSocket clients failed: {self.errors[-3:]}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)

    def _main(self) -> None:
        import asyncio

        asyncio.run(self._run())

    async def _run(self) -> None:
        import asyncio

        from websockets.asyncio.client import connect

        sockets = []
        try:
            for i, homes in enumerate(self.groups):
                ws = await connect(self.urls[i % len(self.urls)], max_queue=None, open_timeout=30)
                for home in homes:
                    await ws.send(json.dumps({"type": "subscribe", "home_id": home}))
                sockets.append(ws)
        except Exception as exc:  # reported by start()
            self.errors.append(f"{type(exc).__name__}: {exc}")
            self._ready.set()
            return
        readers = [asyncio.create_task(self._read(ws)) for ws in sockets]
        self._ready.set()
        while not self._stop.is_set():
            await asyncio.sleep(0.2)
        for task in readers:
            task.cancel()
        for ws in sockets:
            await ws.close()

    async def _read(self, ws) -> None:
        from websockets.exceptions import ConnectionClosed

        try:
            async for raw in ws:
                now = time.time() * 1000
                frame = json.loads(raw)
                kind = frame.get("type")
                if kind == "device.state" and frame.get("ts"):
                    self.states.append(
                        StateFrame(
                            frame["home_id"],
                            frame["device_id"],
                            int(frame["version"]),
                            int(frame["ts"]),
                            now,
                        )
                    )
                elif kind == "snapshot":
                    for device in frame.get("devices") or []:
                        if device.get("version") is None:
                            continue
                        key = (frame["home_id"], device["device_id"])
                        seen = self.snapshot_versions.get(key, 0)
                        self.snapshot_versions[key] = max(seen, int(device["version"]))
                elif kind == "command.status" and frame.get("command_id"):
                    self.statuses[frame["command_id"]] = (frame["status"], now)
                    if frame["status"] == "COMPLETED":
                        self.completed_at.setdefault(frame["command_id"], now)
        except ConnectionClosed as exc:
            if not self._stop.is_set():
                self.errors.append(f"socket closed: {exc}")


class CommandWitness:
    """An MQTT client with the bridge's login on ``hub/+/command/+``: when each command
    reaches the device's hub (the broker's copy is the one the hub gets)."""

    def __init__(self, settings: Settings):
        from bench.bridge import _client

        self.arrived: dict[str, float] = {}
        self.client = _client(settings, f"e2e-witness-{uuid.uuid4().hex[:6]}")
        self.client.on_message = self._on_message
        self.client.subscribe("hub/+/command/+", qos=1)

    def _on_message(self, _c, _u, msg) -> None:
        try:
            command_id = json.loads(msg.payload)["command_id"]
        except (ValueError, KeyError, TypeError):
            return
        self.arrived.setdefault(command_id, time.time() * 1000)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class Commander:
    """Posts commands (turnOn/turnOff of lights, round robin) at a steady rate through the
    gateway's REST API; records when each was sent."""

    def __init__(self, base: str, token: str, lights: Sequence[tuple[str, str]], rate: float):
        self.base, self.token, self.lights, self.rate = base, token, list(lights), rate
        self.sent: dict[str, float] = {}
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="commander")

    def start(self) -> None:
        if self.lights and self.rate > 0:
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)

    def send(self, home: str, device: str, command: str) -> str | None:
        body = {"device_id": device, "capability": "ON_OFF", "command": command}
        req = urllib.request.Request(
            f"{self.base}/v1/homes/{home}/commands",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": f"Bearer {self.token}"},
        )
        at = time.time() * 1000
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                command_id = str(json.loads(resp.read())["command_id"])
        except (OSError, ValueError, KeyError) as exc:
            self.errors.append(f"{home}/{device}: {exc}")
            return None
        self.sent[command_id] = at
        return command_id

    def _run(self) -> None:
        n, t0 = 0, time.monotonic()
        while not self._stop.is_set():
            home, device = self.lights[n % len(self.lights)]
            self.send(home, device, "turnOn" if (n // len(self.lights)) % 2 else "turnOff")
            n += 1
            self._stop.wait(max(0.0, t0 + n / self.rate - time.monotonic()))


class Simulators:
    """``shards`` `homestream simulate` processes, each with its share of the homes."""

    LINE = re.compile(r"stopped after ([\d.]+) s: (\d+) reports")

    def __init__(
        self,
        env: dict[str, str],
        run: str,
        homes: int,
        devices: int,
        shards: int,
        owner: str,
        work: Path,
    ):
        self.env, self.run, self.devices, self.owner, self.work = env, run, devices, owner, work
        shards = max(1, min(shards, homes))
        self.shards = [
            (f"e2e{run}s{k}", homes // shards + (k < homes % shards)) for k in range(shards)
        ]
        self.procs: list[subprocess.Popen[str]] = []

    @property
    def homes(self) -> list[str]:
        from hub.sim.floorplan import synthetic_home_ids

        return [h for prefix, n in self.shards for h in synthetic_home_ids(n, prefix)]

    def lights(self) -> list[tuple[str, str]]:
        """(home, device) of every simulated light that obeys ON_OFF."""
        from hub.sim.floorplan import synthetic_home

        return [
            (home, spec.device_id)
            for home in self.homes
            for spec in synthetic_home(home, self.devices, 0)
            if spec.type.startswith("light.") and "ON_OFF" in spec.capabilities
        ]

    def provision(self, seconds: float = 5.0) -> None:
        """One short run per simulator, one after the other (they share the hub logins'
        credentials file): homes, hub logins, discovery and first states."""
        for k in range(len(self.shards)):
            self.start(rate=50, seconds=seconds, only=k)
            self.wait(timeout=300)

    def start(self, rate: float, seconds: float, only: int | None = None) -> None:
        per = rate / len(self.shards)
        for k, (prefix, n) in enumerate(self.shards):
            if only is not None and k != only:
                continue
            argv = [
                sys.executable, "-m", "homestream.cli", "simulate",
                "--homes", str(n), "--prefix", prefix, "--devices", str(self.devices),
                "--rate", f"{per:.3f}", "--duration", f"{seconds:.1f}", "--no-outages",
                "--owner", self.owner, "--progress", "3600",
                "--sim-dir", str(self.work / f"sim-{k}"),
            ]  # fmt: skip
            self.procs.append(
                subprocess.Popen(
                    argv,
                    env={**os.environ, **self.env},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                )
            )

    def pids(self) -> list[int]:
        return [p.pid for p in self.procs if p.poll() is None]

    def wait(self, timeout: float) -> tuple[int, float]:
        """(reports sent, seconds they took) over every shard, once all have exited."""
        reports, elapsed = 0, 0.0
        for proc in self.procs:
            try:
                out, _ = proc.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                out, _ = proc.communicate()
            found = self.LINE.search(out or "")
            if proc.returncode != 0 or not found:
                raise RuntimeError(
                    f"a simulator failed ({proc.returncode}):\n{(out or '')[-1500:]}"
                )
            elapsed = max(elapsed, float(found.group(1)))
            reports += int(found.group(2))
        self.procs = []
        return reports, elapsed


# -- what a step measures ----------------------------------------------------------------------


def _ticks(pids: Iterable[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total


class ProcessSampler:
    """CPU (% of one core) and RSS of named process trees between ``begin`` and ``end``."""

    def __init__(self, processes: dict[str, int]):
        self.processes = processes
        self._t0 = 0.0
        self._ticks: dict[str, int] = {}

    def _trees(self) -> dict[str, list[int]]:
        out = {}
        for name, pid in self.processes.items():
            try:
                out[name] = _tree(pid)
            except (FileNotFoundError, ProcessLookupError):
                out[name] = []
        return out

    def begin(self) -> None:
        self._t0 = time.monotonic()
        self._ticks = {name: _ticks(pids) for name, pids in self._trees().items()}

    def end(self) -> dict[str, dict[str, float]]:
        dt = max(time.monotonic() - self._t0, 1e-6)
        out = {}
        for name, pids in self._trees().items():
            used = max(0, _ticks(pids) - self._ticks.get(name, 0)) / CLK_TCK
            out[name] = {
                "cpu_pct": round(100 * used / dt, 1),
                "rss_mb": round(sum(_kb(p, "VmRSS") for p in pids) / 1024, 1),
            }
        return out


def stack_processes(settings: Settings) -> dict[str, int]:
    """Every running process of the stack by service name (`homestream status`)."""
    from compose.stack import Stack

    return {r.name: r.pid for r in Stack(settings, say=lambda _t: None).status() if r.pid}


def kafka_records(settings: Settings) -> int:
    """The sum of every topic partition's high watermark: records (and transaction markers)
    written so far."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": settings.kafka_bootstrap, "group.id": "e2e-watermarks"})
    try:
        md = c.list_topics(timeout=10)
        total = 0
        for name, topic in md.topics.items():
            if name.startswith("__"):
                continue
            for p in topic.partitions:
                total += c.get_watermark_offsets(TopicPartition(name, p), timeout=10)[1]
        return total
    finally:
        c.close()


def worker_counters(settings: Settings, ports: Sequence[int]) -> dict[str, float]:
    from runtime.metrics import outcomes_at

    total: dict[str, float] = {}
    for port in ports:
        try:
            counts = outcomes_at(settings.host, port, "homestream_streams_events_total")
        except OSError:
            continue
        for key, value in counts.items():
            total[key] = total.get(key, 0.0) + value
    return total


class HistoryWatch:
    """Rows the history sink wrote for the run's homes, and how far its newest row trails
    the clock, looked at once a second."""

    def __init__(self, settings: Settings, prefix: str):
        self.settings, self.like = settings, prefix + "%"
        self.trail_ms: list[float] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def rows(self) -> int:
        from stores.db import connect

        with connect(self.settings) as conn:
            row = conn.execute(
                "SELECT count(*) FROM history.state_changes WHERE home_id LIKE %s", (self.like,)
            ).fetchone()
        return int(row[0]) if row else 0

    def start(self) -> None:
        self.trail_ms = []
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True, name="history-watch")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(10)

    def _run(self) -> None:
        from stores.db import connect

        with connect(self.settings) as conn:
            while not self._stop.wait(1.0):
                row = conn.execute(
                    "SELECT extract(epoch FROM now() - max(time)) * 1000"
                    " FROM history.state_changes WHERE home_id LIKE %s"
                    " AND time > now() - interval '5 minutes'",
                    (self.like,),
                ).fetchone()
                conn.commit()
                if row and row[0] is not None:
                    self.trail_ms.append(float(row[0]))


# -- the ceilings of the parts alone --------------------------------------------------------------


def mqtt_ceiling(settings: Settings, messages: int = 20_000, size: int = 200) -> float:
    """Messages/s of QoS 1 through the stack's Mosquitto, one paho publisher to one paho
    subscriber (both QoS 1), on a topic outside hub/# that no bridge reads."""
    from bench.bridge import _client

    run = uuid.uuid4().hex[:6]
    topic = f"bench/e2e/{run}"
    got = threading.Semaphore(0)
    sub = _client(settings, f"raw-sub-{run}")
    sub.on_message = lambda *_a: got.release()
    subscribed = threading.Event()
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.subscribe(topic, qos=1)
    subscribed.wait(10)
    pub = _client(settings, f"raw-pub-{run}")
    payload = b"x" * size
    t0 = time.monotonic()
    for _ in range(messages):
        pub.publish(topic, payload, qos=1)
    received = 0
    deadline = time.monotonic() + 120
    while received < messages and time.monotonic() < deadline:
        if got.acquire(timeout=1):
            received += 1
    rate = received / (time.monotonic() - t0)
    for c in (pub, sub):
        c.loop_stop()
        c.disconnect()
    return round(rate)


PERF_LINE = re.compile(r"(\d+) records sent, ([\d.]+) records/sec .*?([\d.]+) ms 99th")


def kafka_ceiling(settings: Settings, records: int = 300_000, size: int = 300) -> dict[str, float]:
    """Kafka's ProducerPerformance (kafka-producer-perf-test) on a scratch topic with the
    stack's partitions and replication, acks=all: records/s and its p99 in ms."""
    import shutil

    from confluent_kafka.admin import AdminClient, NewTopic

    topic = f"bench.e2e.raw.{uuid.uuid4().hex[:6]}"
    rf, isr = settings.kafka_replication
    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    created = admin.create_topics(
        [NewTopic(topic, settings.partitions, rf, config={"min.insync.replicas": str(isr)})]
    )
    created[topic].result(30)
    java = shutil.which("java") or "java"
    try:
        proc = subprocess.run(
            [
                java,
                "-Xmx256m",
                "-cp",
                f"{settings.kafka_libs}/*",
                "-Dlog4j.configuration=file:/dev/null",
                "org.apache.kafka.tools.ProducerPerformance",
                "--topic",
                topic,
                "--num-records",
                str(records),
                "--record-size",
                str(size),
                "--throughput",
                "-1",
                "--producer-props",
                f"bootstrap.servers={settings.kafka_bootstrap}",
                "acks=all",
                "linger.ms=5",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    finally:
        admin.delete_topics([topic])
    found = PERF_LINE.findall(proc.stdout)
    if not found:
        raise RuntimeError(
            f"kafka-producer-perf-test failed:\n{proc.stdout[-800:]}{proc.stderr[-800:]}"
        )
    _n, rate, p99 = found[-1]
    return {"records_per_s": round(float(rate)), "p99_ms": float(p99), "record_bytes": size}


# -- the run --------------------------------------------------------------------------------------


@dataclass
class Step:
    offered_per_s: float
    seconds: float
    reports: int  # sent by the simulators (with every device's first state)
    sent_per_s: float
    reports_per_s: float  # folded by the workers
    frames: int
    app_p50_ms: float
    app_p99_ms: float
    app_max_ms: float
    commands: int
    commands_lost: int
    command_to_device_p50_ms: float
    command_to_device_p99_ms: float
    command_to_completed_p50_ms: float
    command_to_completed_p99_ms: float
    noop_ratio: float
    kafka_records_per_s: float
    history_rows_per_s: float
    history_trail_p50_ms: float
    history_trail_max_ms: float
    load_average: tuple[float, float, float]
    processes: dict[str, dict[str, float]]
    fractions: dict[str, float] = field(default_factory=dict)
    saturated: str = ""


@dataclass
class E2EResult:
    homes: int
    devices_per_home: int
    app_clients: int
    gateways: int
    brokers: int
    partitions: int
    mqtt_ceiling_msgs_per_s: float
    kafka_ceiling: dict[str, float]
    ceilings_load_average: tuple[float, float, float]
    steps: list[Step]
    max_sustained_reports_per_s: float
    saturated_by: str
    started_at: str


def _ms(values: list[float]) -> tuple[float, float, float]:
    values = sorted(values)
    q = _quantiles(values)
    return round(q[49], 1), round(q[98], 1), round(values[-1] if values else 0.0, 1)


def _saturation(step: Step, offered: float, cores: int, max_p99_ms: float = 5000) -> str:
    """Which stage stopped keeping up at this step, or "" if none did."""
    busiest = max(step.processes.items(), key=lambda kv: kv[1]["cpu_pct"], default=None)
    if step.sent_per_s < 0.9 * offered:
        return "simulators (could not send the offered rate)"
    name = busiest[0] if busiest else "?"
    if step.reports_per_s < 0.8 * offered:
        return f"pipeline (the workers folded under 80% of the offered rate; busiest: {name})"
    if step.app_p99_ms > max_p99_ms or step.frames == 0:
        return f"pipeline (report -> app p99 over {max_p99_ms:.0f} ms; busiest process: {name})"
    total_cpu = sum(p["cpu_pct"] for p in step.processes.values())
    if total_cpu > 92 * cores:
        return f"CPU ({total_cpu:.0f}% of {cores * 100}%)"
    if busiest and busiest[1]["cpu_pct"] > 92:
        return f"{busiest[0]} (a full core)"
    return ""


def run_bench(
    settings: Settings,
    *,
    homes: int = 200,
    devices: int = 20,
    rates: Sequence[float] = (1000, 2500, 5000, 7500, 10000, 12500),
    seconds: float = 20.0,
    warmup: float = 20.0,
    clients: int = 20,
    command_rate: float = 4.0,
    shards: int = 2,
    gateways: Sequence[str] = (),
    ceilings: bool = True,
    max_p99_ms: float = 5000,
    mqtt_messages: int = 20_000,
    kafka_messages: int = 300_000,
    work_dir: Path | None = None,
    env: dict[str, str] | None = None,
    say: Say = print,
) -> E2EResult:
    import tempfile

    from stores import accounts
    from stores.db import connect

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    processes = stack_processes(settings)
    for needed in ("bridge-1", "streams-1", "gateway"):
        if not gateways and needed not in processes:
            raise RuntimeError(
                f"{needed} is not running: start the whole stack with `homestream up` "
                "(HOMESTREAM_BRIDGES, HOMESTREAM_STREAM_WORKERS >= 1, the gateway and sinks on)"
            )
    urls = list(gateways) or [f"http://{settings.host}:{settings.ports.gateway}"]
    # The simulators' outboxes and device lists: the run's own, gone after it.
    scratch = None if work_dir else tempfile.TemporaryDirectory(prefix="homestream-e2e-")
    work = work_dir or Path(scratch.name)  # type: ignore[union-attr]
    run = uuid.uuid4().hex[:4]

    mqtt_limit, kafka_limit, ceiling_load = 0.0, {"records_per_s": 0.0}, os.getloadavg()
    if ceilings:
        say("ceilings: raw MQTT QoS 1 through Mosquitto (paho) ...")
        mqtt_limit = mqtt_ceiling(settings, mqtt_messages)
        say(f"  {mqtt_limit:,.0f} messages/s")
        say("ceilings: raw Kafka (kafka-producer-perf-test, acks=all) ...")
        kafka_limit = kafka_ceiling(settings, kafka_messages)
        say(f"  {kafka_limit['records_per_s']:,.0f} records/s")
        ceiling_load = os.getloadavg()

    user = f"e2e-{run}"
    with connect(settings) as conn:
        accounts.add_user(conn, user, PASSWORD)
        conn.commit()
    # at most MAX_HUBS_PER_PROCESS homes per simulator (paho's select() limit)
    shards = max(shards, -(-homes // MAX_HUBS_PER_PROCESS))
    sims = Simulators(env or {}, run, homes, devices, shards, user, work)
    say(f"provisioning {homes} homes x {devices} devices ({len(sims.shards)} simulators)")
    sims.provision()
    token = _token(urls[0], user)
    apps = AppClients(urls, token, sims.homes, clients)
    apps.start()
    witness = CommandWitness(settings)
    lights = sims.lights()
    history = HistoryWatch(settings, f"e2e{run}")
    worker_ports = [settings.ports.streams_metrics + i for i in range(settings.stream_workers or 1)]
    cores = os.cpu_count() or 1
    steps: list[Step] = []
    saturated_by = ""
    try:
        for rate in rates:
            say(f"step: {rate:,.0f} reports/s for {warmup:.0f} s of warm-up, then {seconds:.0f} s")
            # A simulator's start-up publishes every device's descriptor, availability and
            # first state at once (3 messages x devices): not the steady load the step is
            # about, so it drains first and the step is measured after it.
            sims.start(rate=rate, seconds=warmup + seconds)
            time.sleep(warmup)
            before = {
                "frames": len(apps.states),
                "kafka": kafka_records(settings),
                "counters": worker_counters(settings, worker_ports),
                "rows": history.rows(),
            }
            commander = Commander(urls[0], token, lights, command_rate)
            t_start = time.time() * 1000
            sims_named = {f"simulate-{k}": pid for k, pid in enumerate(sims.pids())}
            sampler = ProcessSampler({**processes, **sims_named})
            sampler.begin()
            history.start()
            commander.start()
            # CPU over the step's steady part, while the simulators still run.
            time.sleep(seconds * 0.9)
            load = os.getloadavg()
            usage = sampler.end()
            reports, elapsed = sims.wait(timeout=seconds + 120)
            commander.stop()
            t_end = time.time() * 1000
            kafka_after = kafka_records(settings)
            time.sleep(3)  # the last frames and rows
            history.stop()
            counters = worker_counters(settings, worker_ports)
            rows = history.rows() - before["rows"]
            # Readings taken in the measured part only (after the warm-up).
            window = [
                f.at_ms - f.ts_ms
                for f in apps.states[before["frames"] :]
                if t_start <= f.ts_ms <= t_end
            ]
            frames = len(apps.states) - before["frames"]
            sent = commander.sent
            to_dev = [witness.arrived[c] - at for c, at in sent.items() if c in witness.arrived]
            to_done = [
                apps.completed_at[c] - at for c, at in sent.items() if c in apps.completed_at
            ]
            c = before["counters"]
            seen = counters.get("reports", 0) - c.get("reports", 0)
            noop = counters.get("noop", 0) - c.get("noop", 0)
            span = max((t_end - t_start) / 1000, 1e-3)  # the measured part
            a50, a99, amax = _ms(window)
            d50, d99, _ = _ms(to_dev)
            k50, k99, _ = _ms(to_done)
            step = Step(
                offered_per_s=rate,
                seconds=round(elapsed, 1),
                reports=reports,
                sent_per_s=round(reports / max(elapsed, 1e-3)),
                reports_per_s=round(seen / span),
                frames=frames,
                app_p50_ms=a50,
                app_p99_ms=a99,
                app_max_ms=amax,
                commands=len(sent),
                commands_lost=len(sent) - len(to_dev),
                command_to_device_p50_ms=d50,
                command_to_device_p99_ms=d99,
                command_to_completed_p50_ms=k50,
                command_to_completed_p99_ms=k99,
                noop_ratio=round(noop / seen, 3) if seen else 0.0,
                kafka_records_per_s=round((kafka_after - before["kafka"]) / span),
                history_rows_per_s=round(rows / span),
                history_trail_p50_ms=_ms(history.trail_ms)[0],
                history_trail_max_ms=_ms(history.trail_ms)[2],
                load_average=tuple(round(x, 2) for x in load),  # type: ignore[arg-type]
                processes=usage,
            )
            if mqtt_limit:
                step.fractions["mqtt"] = round(step.reports_per_s / mqtt_limit, 3)
            if kafka_limit["records_per_s"]:
                step.fractions["kafka"] = round(
                    step.kafka_records_per_s / kafka_limit["records_per_s"], 3
                )
            step.saturated = _saturation(step, rate, cores, max_p99_ms)
            steps.append(step)
            say(
                f"  {step.reports_per_s:,.0f} reports/s carried, report -> app p50 "
                f"{a50} ms p99 {a99} ms, command -> device p99 {d99} ms, no-op "
                f"{step.noop_ratio:.0%}, load {step.load_average[0]}"
                + (f"; saturated: {step.saturated}" if step.saturated else "")
            )
            if step.saturated:
                saturated_by = step.saturated
                break
    finally:
        apps.stop()
        witness.close()
        for proc in sims.procs:
            proc.kill()
        if scratch is not None:
            scratch.cleanup()
    good = [s for s in steps if not s.saturated]
    return E2EResult(
        homes=homes,
        devices_per_home=devices,
        app_clients=len(apps.groups),
        gateways=len(urls),
        brokers=settings.kafka_brokers,
        partitions=settings.partitions,
        mqtt_ceiling_msgs_per_s=mqtt_limit,
        kafka_ceiling=kafka_limit,
        ceilings_load_average=tuple(round(x, 2) for x in ceiling_load),  # type: ignore[arg-type]
        steps=steps,
        max_sustained_reports_per_s=max((s.reports_per_s for s in good), default=0.0),
        saturated_by=saturated_by or "nothing saturated up to the last step",
        started_at=started,
    )


# -- output -----------------------------------------------------------------------------------


def print_result(r: E2EResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(r), indent=2))
        return
    print(markdown(r))


def markdown(r: E2EResult) -> str:
    lines = [
        f"Run {r.started_at}: {r.homes} homes x {r.devices_per_home} devices, {r.app_clients} "
        f"WebSocket clients on {r.gateways} gateway(s), {r.brokers} broker(s), "
        f"{r.partitions} partitions.",
        "",
        f"Ceilings alone (load average {r.ceilings_load_average[0]}): raw MQTT QoS 1 "
        f"{r.mqtt_ceiling_msgs_per_s:,.0f} msgs/s; raw Kafka (acks=all) "
        f"{r.kafka_ceiling.get('records_per_s', 0):,.0f} records/s.",
        "",
        "| offered/s | sent/s | carried/s | report->app p50 / p99 | command->device p50 / p99 | "
        "command->COMPLETED p99 | no-op | Kafka rec/s (of ceiling) | MQTT (of ceiling) | "
        "history rows/s, trail p50 | load | saturated |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in r.steps:
        lines.append(
            f"| {s.offered_per_s:,.0f} | {s.sent_per_s:,.0f} | {s.reports_per_s:,.0f} | "
            f"{s.app_p50_ms} / {s.app_p99_ms} ms | "
            f"{s.command_to_device_p50_ms} / {s.command_to_device_p99_ms} ms"
            f" | {s.command_to_completed_p99_ms} ms | {s.noop_ratio:.0%} | "
            f"{s.kafka_records_per_s:,.0f} ({s.fractions.get('kafka', 0):.0%}) | "
            f"{s.fractions.get('mqtt', 0):.0%} | {s.history_rows_per_s:,.0f}, "
            f"{s.history_trail_p50_ms:.0f} ms | {s.load_average[0]} | {s.saturated or '-'} |"
        )
    if r.steps:
        last = r.steps[-1]
        lines += [
            "",
            f"CPU (% of one core) and RSS per process at {last.offered_per_s:,.0f}/s:",
            "",
        ]
        lines += ["| process | CPU % | RSS MB |", "|---|---|---|"]
        for name, p in sorted(last.processes.items(), key=lambda kv: -kv[1]["cpu_pct"]):
            lines.append(f"| {name} | {p['cpu_pct']} | {p['rss_mb']} |")
    lines += [
        "",
        f"Highest rate carried without saturating: {r.max_sustained_reports_per_s:,.0f} "
        f"reports/s; saturated by: {r.saturated_by}.",
    ]
    return "\n".join(lines)


def plot(r: E2EResult, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        from runtime.cli import CliError

        raise CliError(
            "the plot needs matplotlib: pip install 'homestream[bench]' (make dev has it)"
        ) from None

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = [s.reports_per_s for s in r.steps]
    fig, ax = plt.subplots(figsize=(7, 4.2))
    ax.plot(x, [s.app_p50_ms for s in r.steps], "o-", label="report -> app p50")
    ax.plot(x, [s.app_p99_ms for s in r.steps], "o-", label="report -> app p99")
    ax.plot(x, [s.command_to_device_p99_ms for s in r.steps], "s--", label="command -> device p99")
    ax.axhline(250, color="grey", linestyle=":", label="target p99 (250 ms)")
    ax.set_xlabel("reports/s carried end to end")
    ax.set_ylabel("ms")
    ax.set_yscale("log")
    ax.set_title(f"homestream end to end ({r.brokers} broker(s), {r.started_at})")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


START, END = "<!-- bench e2e: start -->", "<!-- bench e2e: end -->"


def write_section(r: E2EResult, benchmarks: Path, png: Path, root: Path) -> None:
    """Replace BENCHMARKS.md's end-to-end section (between its markers) with this run."""
    rel = os.path.relpath(png, root)
    body = (
        f"{START}\n_Written by `homestream bench e2e --write` ({r.started_at})._\n\n"
        f"![report -> app latency versus load]({rel})\n\n{markdown(r)}\n{END}"
    )
    text = benchmarks.read_text() if benchmarks.exists() else ""
    if START in text and END in text:
        head, rest = text.split(START, 1)
        text = head + body + rest.split(END, 1)[1]
    else:
        text = (
            text.rstrip()
            + "\n\n## End to end: hub -> app (`homestream bench e2e`)\n\n"
            + body
            + "\n"
        )
    benchmarks.write_text(text)


def result_from_json(data: dict[str, Any]) -> E2EResult:
    """An earlier run's ``--json`` output, to write its section and plot again."""
    steps = [Step(**{**st, "load_average": tuple(st["load_average"])}) for st in data["steps"]]
    return E2EResult(
        **{
            **data,
            "steps": steps,
            "ceilings_load_average": tuple(data["ceilings_load_average"]),
        }
    )
