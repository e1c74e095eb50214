"""`homestream bench gateway`: WebSocket fan-out of the gateway against a plain baseline,
measured in one run on the running stack (issue #22).

The bench starts its own servers on free ports, from this checkout, next to the stack
(`homestream up`: Kafka, the stream worker, PostgreSQL, Redis):

- the gateway (``homestream gateway``, one process; a second pair on one port with
  SO_REUSEPORT for the two-process row);
- the baseline (``bench.baseline``): one asyncio process reading the same StateChanges and
  broadcasting pre-encoded frames with ``websockets``, no auth, no per-client logic.

Phases:

1. **Idle connections**: ``idle`` WebSocket connections to one fresh gateway process, each
   subscribed to a home; its RSS growth per connection.
2. **Connection storm**: ``storm`` connects spread evenly over ``storm_seconds``, each
   through to its snapshot; errors and connect -> snapshot times.
3. **Latency**: ``clients`` clients on ``homes`` homes; at each rate of ``rates`` (state
   changes/s, each a frame to clients/homes clients) the gateway and the baseline take
   turns. Latency runs from a report's production to its ``device.state`` frame at a
   client, for every client, so it covers Kafka and the stream worker too; a plain
   consumer times the same StateChanges readable in Kafka alongside. With ``profile``,
   py-spy samples the gateway during its phase at the target rate.
4. **Two processes**: the target rate again against two gateway processes sharing one
   port; how the connections spread and the latency.

``bench.fanout_report`` prints the result and writes the BENCHMARKS.md section and the PNG.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from bench.wsclient import Client, connect
from compose.process import free_port, terminate
from runtime.config import REPO_ROOT, Settings
from topics import catalogue as t
from topics.producer import EventProducer
from topics.state_change import state_of

PASSWORD = "bench-password-1"
Say = Callable[[str], None]


@dataclass
class Point:
    """One server at one rate."""

    server: str
    rate_per_s: int
    frames_per_s: int  # what the rate asks for: rate x clients per home
    frames: int
    expected: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    kafka_p99_ms: float  # the same StateChanges readable in Kafka (no WebSocket server)
    added_p50_ms: float  # each frame's arrival minus its StateChange's time in Kafka: the
    added_p99_ms: float  # server's own share, which the worker's noise does not move
    server_cpu_s: float  # the server process(es)' CPU time during the phase
    cpu_us_per_frame: float  # ... per frame delivered: what a loaded machine moves least
    load: float  # the machine's 1-minute load average at the end of the phase


@dataclass
class GatewayBenchResult:
    clients: int
    homes: int
    rate_per_s: int
    seconds: float
    ws: str
    points: list[Point] = field(default_factory=list)
    idle_connections: int = 0
    idle_errors: int = 0
    idle_rss_before_mb: float = 0.0
    idle_rss_after_mb: float = 0.0
    idle_kb_per_connection: float = 0.0
    storm_connections: int = 0
    storm_seconds: float = 0.0
    storm_errors: int = 0
    storm_took_s: float = 0.0
    storm_p50_ms: float = 0.0
    storm_p99_ms: float = 0.0
    two_process_connections: list[int] = field(default_factory=list)
    profile: list[tuple[float, str]] = field(default_factory=list)
    profile_samples: int = 0
    load_start: float = 0.0
    load_end: float = 0.0
    errors: list[str] = field(default_factory=list)

    def point(self, server: str, rate: int | None = None) -> Point | None:
        rate = self.rate_per_s if rate is None else rate
        return next((p for p in self.points if p.server == server and p.rate_per_s == rate), None)


# -- processes ---------------------------------------------------------------------------
def _load() -> float:
    return round(os.getloadavg()[0], 2)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _cpu_s(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / os.sysconf("SC_CLK_TCK")


def _sockets(pid: int) -> int:
    fd_dir = Path(f"/proc/{pid}/fd")
    n = 0
    for fd in fd_dir.iterdir():
        try:
            n += os.readlink(fd).startswith("socket:")
        except OSError:
            continue
    return n


class _Servers:
    """The processes the bench starts; all stopped at the end."""

    def __init__(self, settings: Settings, say: Say) -> None:
        self.settings = settings
        self.say = say
        self.dir = settings.state_dir / "bench-gateway"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.procs: list[subprocess.Popen[bytes]] = []

    def _spawn(self, argv: list[str], name: str) -> subprocess.Popen[bytes]:
        with (self.dir / f"{name}.log").open("wb") as out:
            proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=REPO_ROOT)
        self.procs.append(proc)
        return proc

    def gateway(self, port: int, *, ws: str, reuse_port: bool, name: str) -> int:
        from gateway.service import gateway_argv

        proc = self._spawn(gateway_argv(self.dir / name, port, ws=ws, reuse_port=reuse_port), name)
        return proc.pid

    def baseline(self, port: int) -> int:
        argv = [sys.executable, "-m", "bench.baseline", "--host", self.settings.host]
        return self._spawn([*argv, "--port", str(port)], "baseline").pid

    def wait_gateways(self, port: int, names: list[str], timeout: float = 90.0) -> None:
        """Every process listens (uvicorn logs it) with its feed ready. With SO_REUSEPORT
        /healthz lands on any one of them: ask until ten in a row say ready."""
        deadline = time.monotonic() + timeout
        url = f"http://{self.settings.host}:{port}/healthz"
        logs = [self.dir / f"{name}.log" for name in names]
        ready = 0
        while time.monotonic() < deadline and ready < 10:
            self._check_alive()
            if not all("gateway listening on" in log.read_text(errors="replace") for log in logs):
                time.sleep(0.5)
                continue
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    body = json.loads(resp.read())
                ready = ready + 1 if body.get("fanout", {}).get("ready") else 0
            except (OSError, ValueError):
                ready = 0
            time.sleep(0.1)
        if ready < 10:
            raise RuntimeError(f"the bench gateway on port {port} did not become ready")

    def wait_baseline(self, port: int, timeout: float = 60.0) -> None:
        log = self.dir / "baseline.log"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            if log.exists() and "ready" in log.read_text(errors="replace"):
                return
            time.sleep(0.3)
        raise RuntimeError(f"the baseline server did not start (see {log})")

    def _check_alive(self) -> None:
        for proc in self.procs:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"a bench server exited ({' '.join(map(str, proc.args))}); logs in {self.dir}"
                )

    def stop(self, pid: int | None = None) -> None:
        for proc in list(self.procs):
            if pid is not None and proc.pid != pid:
                continue
            terminate(proc)
            self.procs.remove(proc)


# -- set-up ------------------------------------------------------------------------------
def _provision(settings: Settings, run: str, homes: list[str]) -> str:
    from stores import accounts
    from stores.db import connect as db_connect

    user = f"bench-{run}"
    with db_connect(settings) as conn:
        accounts.add_user(conn, user, PASSWORD)
        for home in homes:
            accounts.add_home(conn, home, user)
        conn.commit()
    feed = EventProducer(settings.kafka_bootstrap, settings.partitions)
    for home in homes:
        feed.send(
            t.DEVICE_DISCOVERY,
            "DeviceDiscovered",
            home,
            device_id="thermo",
            name="Bench Thermometer",
            type="sensor.temperature",
            room="Bench",
            capabilities=["TEMPERATURE_SENSOR"],
        )
    feed.flush()
    return user


def _token(base: str, user: str) -> str:
    req = urllib.request.Request(
        f"{base}/v1/auth/token",
        data=json.dumps({"username": user, "password": PASSWORD}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        return str(json.loads(resp.read())["access_token"])


# -- clients -----------------------------------------------------------------------------
class _Frame(msgspec.Struct):
    type: str = ""
    home_id: str = ""
    reported: dict[str, float] | None = None


_DECODE = msgspec.json.Decoder(_Frame)


class _Latencies:
    """Report times by (home, temperature), when each StateChange became readable in Kafka,
    and the frames that arrive for them (matched after the phase: the clients' hot path
    only decodes and appends)."""

    def __init__(self) -> None:
        self.sent: dict[tuple[str, float], float] = {}
        self.in_kafka: dict[tuple[str, float], float] = {}
        self.arrivals: list[tuple[str, float, float]] = []

    def on_text(self, data: bytes, now: float) -> None:
        try:
            frame = _DECODE.decode(data)
        except msgspec.DecodeError:
            return
        if frame.type == "device.state" and frame.reported:
            self.arrivals.append((frame.home_id, frame.reported.get("temperature", -1.0), now))

    def results(self) -> tuple[list[float], list[float]]:
        """(report -> client, Kafka -> client) in ms, sorted."""
        total, added = [], []
        for home, temp, now in self.arrivals:
            started = self.sent.get((home, temp))
            if started is None:
                continue
            total.append((now - started) * 1000)
            seen = self.in_kafka.get((home, temp))
            if seen is not None:
                added.append((now - seen) * 1000)
        return sorted(total), sorted(added)


async def _subscribed(
    url: str,
    home: str,
    on_text: Callable[[bytes, float], None] | None,
    snapshot: bool,
    timeout: float = 60,
) -> Client:
    """A connection subscribed to ``home`` (its snapshot in, when the server sends one)."""
    client = await connect(url, on_text, timeout)
    try:
        client.send_text(json.dumps({"type": "subscribe", "home_id": home}))
        if snapshot:
            await asyncio.wait_for(asyncio.shield(client.first_text), timeout)
    except BaseException:
        client.close()
        raise
    return client


async def _open(
    url: str,
    homes: list[str],
    n: int,
    on_text: Callable[[bytes, float], None] | None,
    *,
    snapshot: bool,
    concurrency: int = 100,
    say: Say | None = None,
) -> tuple[list[Client], int]:
    """``n`` connections, each subscribed to a home in turn (through to the snapshot when
    the server sends one); (clients, errors)."""
    gate = asyncio.Semaphore(concurrency)
    clients: list[Client] = []
    errors = 0

    async def one(i: int) -> None:
        nonlocal errors
        async with gate:
            try:
                clients.append(await _subscribed(url, homes[i % len(homes)], on_text, snapshot))
            except (OSError, ConnectionError, TimeoutError):
                errors += 1
        if say is not None and (i + 1) % 2000 == 0:
            say(f"    {i + 1:,} connections")

    await asyncio.gather(*(one(i) for i in range(n)))
    return clients, errors


async def _close(clients: list[Client]) -> None:
    for client in clients:
        client.close()
    await asyncio.sleep(0.5)


# -- phases ------------------------------------------------------------------------------
async def _idle(
    url: str, homes: list[str], n: int, pid: int, say: Say
) -> tuple[float, float, int, list[Client]]:
    warm, _ = await _open(url, homes, 100, None, snapshot=True)  # first-use allocations
    await asyncio.sleep(1)
    before = _rss_mb(pid)
    clients, errors = await _open(url, homes, n, None, snapshot=True, say=say)
    await asyncio.sleep(3)
    after = _rss_mb(pid)
    return before, after, errors, [*warm, *clients]


async def _storm(
    url: str, homes: list[str], n: int, seconds: float
) -> tuple[list[float], int, float, list[Client]]:
    times: list[float] = []
    clients: list[Client] = []
    errors = 0
    t0 = time.monotonic()

    async def one(i: int) -> None:
        nonlocal errors
        await asyncio.sleep(i * seconds / n - (time.monotonic() - t0))
        started = time.monotonic()
        try:
            clients.append(await _subscribed(url, homes[i % len(homes)], None, True, 30))
            times.append((time.monotonic() - started) * 1000)
        except (OSError, ConnectionError, TimeoutError):
            errors += 1

    await asyncio.gather(*(one(i) for i in range(n)))
    return sorted(times), errors, time.monotonic() - t0, clients


def _quantiles(values: list[float]) -> list[float]:
    return statistics.quantiles(values, n=100) if len(values) >= 2 else [0.0] * 99


async def _load_phase(
    settings: Settings,
    url: str,
    homes: list[str],
    clients: int,
    rate: int,
    seconds: float,
    phase: int,
    *,
    server: str,
    pids: list[int],
    snapshot: bool,
    profile: Callable[[], None] | None = None,
) -> Point:
    lat = _Latencies()
    conns, errors = await _open(url, homes, clients, lat.on_text, snapshot=snapshot)
    if errors:
        raise RuntimeError(f"{errors} of {clients} clients could not connect to the {server}")
    await asyncio.sleep(2)
    kafka: list[float] = []
    stop_kafka = threading.Event()
    watcher = threading.Thread(
        target=_watch_state_changes,
        args=(settings, set(homes), lat.sent, lat.in_kafka, kafka, stop_kafka),
        daemon=True,
    )
    watcher.start()
    await asyncio.sleep(1)
    profiler = threading.Thread(target=profile, daemon=True) if profile else None
    if profiler is not None:
        profiler.start()
    cpu0 = _cpu_s(pids)
    feed = EventProducer(settings.kafka_bootstrap, settings.partitions, **{"linger.ms": 1})
    n, t0 = 0, time.monotonic()
    # Each phase its own temperatures (exact in binary), so no late frame of an earlier
    # phase matches; all within the sensor's range.
    base = 0.125 * (phase % 8)
    while time.monotonic() - t0 < seconds:
        due = int((time.monotonic() - t0) * rate)
        while n < due:
            home = homes[n % len(homes)]
            # Each report moves the home's thermometer by 1 °C (deadband 0.5): a change.
            # 160 values, -40 to 119 °C: a frame matches its own report unless it comes
            # 160 reports of its home late (16 s at 1,000 changes/s on 100 homes).
            temp = base - 40.0 + (n // len(homes)) % 160
            now = time.time()
            lat.sent[(home, temp)] = now
            feed.send(
                t.DEVICE_REPORTS,
                "DeviceReport",
                home,
                device_id="thermo",
                state={"temperature": temp},
                received_at=int(now * 1000),
                source="bench",
            )
            n += 1
        feed.producer.poll(0)
        await asyncio.sleep(0.002)
    feed.flush()
    await asyncio.sleep(3)  # the last frames
    cpu = _cpu_s(pids) - cpu0
    stop_kafka.set()
    watcher.join(10)
    if profiler is not None:
        await asyncio.to_thread(profiler.join, 60)
    await _close(conns)
    per_home = clients // len(homes)
    values, added = lat.results()
    q, kq, aq = _quantiles(values), _quantiles(sorted(kafka)), _quantiles(added)
    return Point(
        server=server,
        rate_per_s=rate,
        frames_per_s=rate * per_home,
        frames=len(values),
        expected=n * per_home,
        p50_ms=round(q[49], 1),
        p99_ms=round(q[98], 1),
        max_ms=round(values[-1] if values else 0.0, 1),
        kafka_p99_ms=round(kq[98], 1),
        added_p50_ms=round(aq[49], 1),
        added_p99_ms=round(aq[98], 1),
        server_cpu_s=round(cpu, 1),
        cpu_us_per_frame=round(cpu * 1e6 / max(len(values), 1), 1),
        load=_load(),
    )


def _watch_state_changes(
    settings: Settings,
    homes: set[str],
    sent: dict[tuple[str, float], float],
    seen: dict[tuple[str, float], float],
    out: list[float],
    stop: threading.Event,
) -> None:
    """The reference: when each bench StateChange becomes readable (read_committed)."""
    from confluent_kafka import Consumer, TopicPartition

    from topics.codec import make_codec
    from topics.schemas import SchemaStore

    codec = make_codec(SchemaStore(), settings.schema_registry_url)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"homestream-gateway-bench-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    parts = []
    for p in range(settings.partitions):
        _low, high = consumer.get_watermark_offsets(TopicPartition(t.STATE_CHANGES, p), timeout=10)
        parts.append(TopicPartition(t.STATE_CHANGES, p, high))
    consumer.assign(parts)
    try:
        while not stop.is_set():
            first = consumer.poll(0.2)
            if first is None:
                continue
            now = time.time()
            for msg in [first, *consumer.consume(499, timeout=0)]:
                if msg.error() or not msg.value():
                    continue
                try:
                    rec = codec.decode(msg.value()).record
                except Exception:
                    continue
                if rec.get("home_id") not in homes:
                    continue
                temp = state_of(rec).changed.get("temperature")
                started = sent.get((rec["home_id"], temp))
                seen[(rec["home_id"], temp)] = now
                if started is not None:
                    out.append((now - started) * 1000)
    finally:
        consumer.close()


# -- profile -----------------------------------------------------------------------------
def _py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return found if Path(found).exists() else None


def _profiler(
    pid: int, seconds: float, out: Path, result: GatewayBenchResult
) -> Callable[[], None]:
    def run() -> None:
        spy = _py_spy()
        if spy is None:
            result.errors.append("profile: py-spy is not installed (pip install py-spy)")
            return
        cmd = [spy, "record", "-p", str(pid), "-d", str(max(1, int(seconds))), "-r", "50"]
        cmd += ["--nonblocking", "--format", "raw", "-o", str(out)]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0 or not out.exists():
            result.errors.append(f"profile: py-spy failed: {proc.stderr.strip()[-300:]}")
            return
        result.profile, result.profile_samples = summarize_profile(out.read_text())

    return run


def summarize_profile(raw: str, top: int = 14) -> tuple[list[tuple[float, str]], int]:
    """The event loop thread's functions by share of its samples (inclusive), from py-spy's
    raw (collapsed) output; the loop waiting for I/O is not sampled (py-spy skips idle)."""
    import re

    counts: dict[str, int] = {}
    total = 0
    for line in raw.splitlines():
        stack, _, n = line.rpartition(" ")
        frames = stack.split(";")
        if not n.isdigit() or not frames or "_bootstrap" in frames[0]:
            continue  # another thread (the feed, the thread pool)
        total += int(n)
        for name in {re.sub(r" \(.*?([^/]+/[^/]+\.py):\d+\)$", r" (\1)", f) for f in frames}:
            counts[name] = counts.get(name, 0) + int(n)
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])
    # The frames under every sample (the module, uvicorn's run, the loop) say nothing.
    rows = [(round(100 * c / total, 1), name) for name, c in ranked if c < 0.97 * total]
    return rows[:top], total


# -- the run -----------------------------------------------------------------------------
def _event_loop_run(main: Coroutine[Any, Any, None]) -> None:
    """uvloop when installed: the gateway's loop too."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


async def _run(
    settings: Settings,
    servers: _Servers,
    result: GatewayBenchResult,
    home_ids: list[str],
    user: str,
    *,
    rates: list[int],
    idle: int,
    storm: int,
    storm_seconds: float,
    processes: int,
    profile: bool,
    say: Say,
) -> None:
    host = settings.host
    gw_port, base_port = free_port(host), free_port(host)
    gw = servers.gateway(gw_port, ws=result.ws, reuse_port=False, name="gateway")
    base = servers.baseline(base_port)
    servers.wait_gateways(gw_port, ["gateway"])
    servers.wait_baseline(base_port)
    token = _token(f"http://{host}:{gw_port}", user)
    gw_url = f"ws://{host}:{gw_port}/v1/ws?access_token={token}"
    base_url = f"ws://{host}:{base_port}/"

    if idle:
        say(f"idle: {idle:,} subscribed connections to one gateway process")
        before, after, errors, conns = await _idle(gw_url, home_ids, idle, gw, say)
        result.idle_connections, result.idle_errors = idle, errors
        result.idle_rss_before_mb, result.idle_rss_after_mb = round(before, 1), round(after, 1)
        result.idle_kb_per_connection = round((after - before) * 1024 / max(idle - errors, 1), 1)
        await _close(conns)
        await asyncio.sleep(2)
    if storm:
        say(f"storm: {storm:,} connects in {storm_seconds:g} s")
        times, errors, took, conns = await _storm(gw_url, home_ids, storm, storm_seconds)
        q = _quantiles(times)
        result.storm_connections, result.storm_seconds = storm, storm_seconds
        result.storm_errors, result.storm_took_s = errors, round(took, 1)
        result.storm_p50_ms, result.storm_p99_ms = round(q[49], 1), round(q[98], 1)
        await _close(conns)
        await asyncio.sleep(2)

    phase = 0
    for i, rate in enumerate(rates):
        order = ["gateway", "baseline"] if i % 2 == 0 else ["baseline", "gateway"]
        for server in order:
            phase += 1
            say(
                f"latency: {server}, {rate:,} changes/s "
                f"({rate * result.clients // len(home_ids):,} frames/s)"
            )
            spy = None
            if profile and server == "gateway" and rate == result.rate_per_s:
                spy = _profiler(gw, result.seconds, servers.dir / "gateway-profile.txt", result)
            point = await _load_phase(
                settings,
                gw_url if server == "gateway" else base_url,
                home_ids,
                result.clients,
                rate,
                result.seconds,
                phase,
                server=server,
                pids=[gw] if server == "gateway" else [base],
                snapshot=server == "gateway",
                profile=spy,
            )
            result.points.append(point)
            say(
                f"  p50 {point.p50_ms} ms, p99 {point.p99_ms} ms, "
                f"{point.frames:,}/{point.expected:,} frames, load {point.load}"
            )

    if processes > 1:
        servers.stop(gw)
        pair_port = free_port(host)
        names = [f"gateway-{k + 1}" for k in range(processes)]
        pids = [
            servers.gateway(pair_port, ws=result.ws, reuse_port=True, name=name) for name in names
        ]
        servers.wait_gateways(pair_port, names)
        pair_url = f"ws://{host}:{pair_port}/v1/ws?access_token={token}"
        before = [_sockets(pid) for pid in pids]
        lat_clients, errors = await _open(pair_url, home_ids, result.clients, None, snapshot=True)
        result.two_process_connections = [
            _sockets(pid) - b for pid, b in zip(pids, before, strict=True)
        ]
        await _close(lat_clients)
        phase += 1
        server = f"gateway x{processes}"
        say(f"latency: {server} on one port, {result.rate_per_s:,} changes/s")
        point = await _load_phase(
            settings,
            pair_url,
            home_ids,
            result.clients,
            result.rate_per_s,
            result.seconds,
            phase,
            server=server,
            pids=pids,
            snapshot=True,
        )
        result.points.append(point)
        say(f"  p50 {point.p50_ms} ms, p99 {point.p99_ms} ms, load {point.load}")


def run_bench(
    settings: Settings,
    *,
    clients: int = 1000,
    homes: int = 100,
    rate: int = 1000,
    rates: list[int] | None = None,
    seconds: float = 15.0,
    idle: int = 10_000,
    storm: int = 2_000,
    storm_seconds: float = 10.0,
    processes: int = 2,
    ws: str = "wire",
    profile: bool = False,
    say: Say = print,
) -> GatewayBenchResult:
    from runtime.fdlimit import raise_open_files

    limit = raise_open_files()
    if limit < max(idle, storm, clients) + 100:
        raise RuntimeError(
            f"this process may open {limit} files, the bench needs "
            f"{max(idle, storm, clients) + 100}: raise the hard limit (ulimit -Hn) or ask for "
            "fewer connections"
        )
    rates = sorted(set(rates or [rate]) | {rate})
    run = uuid.uuid4().hex[:6]
    home_ids = [f"gwb-{run}-{i:03d}" for i in range(homes)]
    result = GatewayBenchResult(
        clients=clients, homes=homes, rate_per_s=rate, seconds=seconds, ws=ws
    )
    result.load_start = _load()
    say(f"provisioning {homes} homes with a thermometer each (load average {result.load_start})")
    user = _provision(settings, run, home_ids)
    time.sleep(5)  # the worker registers the thermometers
    servers = _Servers(settings, say)
    phases = _run(
        settings,
        servers,
        result,
        home_ids,
        user,
        rates=rates,
        idle=idle,
        storm=storm,
        storm_seconds=storm_seconds,
        processes=processes,
        profile=profile,
        say=say,
    )
    try:
        _event_loop_run(phases)
    finally:
        servers.stop()
    result.load_end = _load()
    return result
