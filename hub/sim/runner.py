"""Virtual hubs over real MQTT: one ``HubClient`` per home, one scheduler thread for all devices.

Threads: each hub's ``HubClient`` runs its own network and sender threads (hub/hubclient.py);
everything else (every device of every hub) is driven by the one thread that calls
``Simulation.run``. Devices sit in a heap ordered by when they are next due, so 100 homes x 50
devices cost one heap operation per report, not a thread or a timer each. Messages from the
cloud (commands, pairing permits, shadow deltas) arrive on the clients' network threads, go into
a queue, and are handled by the scheduler thread: device models are never touched by two threads.

Start-up, per hub: devices that were simulated last time but are gone now get an empty retained
discovery (removed); every device's descriptor and availability are published retained, with a
first full state report; then the client connects. ``HubClient.publish`` only writes the
outbox, so all of this is queued even while the broker is away.

Rate: without ``rate`` each device reports every ``period_s``; with it the period becomes
(devices that report) / ``rate``, so the whole simulation sends ``rate`` state reports per
second. Events (camera detections, doorbell rings, button presses), availability changes and
the state reports that answer commands come on top.
"""

from __future__ import annotations

import contextlib
import fcntl
import heapq
import json
import logging
import os
import queue
import random
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol

from hub.sim.devices import Behaviour, DeviceSpec, Message, SimDevice, make_spec
from hub.sim.floorplan import TYPE_LABELS, slug

log = logging.getLogger("homestream.sim")

Say = Callable[[str], None]


class HubClientLike(Protocol):
    """What the simulation needs of ``hub.hubclient.HubClient`` (a fake has the same)."""

    def start(self) -> None: ...

    def publish(
        self, subtopic: str, payload: Any, *, retain: bool = False, qos: int = 1
    ) -> None: ...

    def pending(self) -> int: ...

    def wait_drained(self, timeout: float) -> bool: ...

    @property
    def connected(self) -> bool: ...

    def stop(self, *, offline: bool = True) -> None: ...


ClientFactory = Callable[..., HubClientLike]


class SimulationError(RuntimeError):
    """The simulation cannot start; the message says what to do."""


@dataclass(frozen=True)
class HubPlan:
    """One simulated hub: its home, MQTT login and devices."""

    home_id: str
    username: str
    password: str
    devices: Sequence[DeviceSpec]


@dataclass(frozen=True)
class SimConfig:
    state_dir: Path  # outboxes and the device list live here (<state dir>/sim)
    host: str = "127.0.0.1"
    port: int = 1883
    tls_ca: Path | None = None
    period_s: float = 30.0
    rate: float | None = None  # total state reports per second; overrides period_s
    duration_s: float | None = None  # None: until stopped
    seed: int = 0
    progress_s: float = 5.0
    drain_s: float = 10.0  # on stop: how long to wait for the outboxes to empty
    behaviour: Behaviour = field(default_factory=Behaviour)
    # Device types a pairing permit may bring in (one new device per permit).
    pairable: tuple[str, ...] = ("sensor.contact", "light.color", "switch.plug", "sensor.motion")


@dataclass
class Stats:
    hubs: int = 0
    devices: int = 0
    reports: int = 0  # periodic and command-answer state reports
    events: int = 0
    availability: int = 0  # availability changes after start-up
    commands: int = 0
    commands_failed: int = 0
    unreadable: int = 0  # cloud messages we could not parse or answer
    paired: int = 0
    publish_errors: int = 0
    elapsed_s: float = 0.0
    pending: int = 0  # in the outboxes when the run ended

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Hub:
    def __init__(self, index: int, plan: HubPlan, client: HubClientLike):
        self.index = index
        self.plan = plan
        self.home_id = plan.home_id
        self.client = client
        self.devices: dict[str, SimDevice] = {}
        self.paired: list[DeviceSpec] = []
        self.was_connected = False
        self.connections = 0


# Heap entries: (due_ms, seq, hub index, device id or "" for a pairing join).
_Entry = tuple[int, int, int, str]


class Simulation:
    def __init__(
        self,
        plans: Sequence[HubPlan],
        config: SimConfig,
        *,
        client_factory: ClientFactory | None = None,
        say: Say = print,
    ) -> None:
        if not plans:
            raise ValueError("nothing to simulate: no hubs")
        self.config = config
        self.say = say
        self.stats = Stats(hubs=len(plans))
        self._factory = client_factory or _hub_client
        self._inbox: queue.SimpleQueue[tuple[int, str, bytes]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._heap: list[_Entry] = []
        self._seq = 0
        self._mono0 = time.monotonic()
        self._epoch0 = time.time()
        self._rng = random.Random(f"runner/{config.seed}")
        self._plans = list(plans)
        self._hubs: list[_Hub] = []
        self._registry_path = config.state_dir / "devices.json"
        self._locks: list[int] = []  # one flock per simulated home, held while running

    # -- public ------------------------------------------------------------------------------

    def stop(self) -> None:
        """Ask ``run`` to finish (thread-safe, signal-safe)."""
        self._stop.set()

    def now_ms(self) -> int:
        """Epoch milliseconds, advancing with the monotonic clock (no jumps)."""
        return int((self._epoch0 + time.monotonic() - self._mono0) * 1000)

    def run(self) -> Stats:
        """Start every hub, drive the devices until stopped or ``duration_s``; returns stats."""
        restore = self._install_signal_handlers()
        try:
            self._start_hubs()
            self._loop()
        finally:
            self._shutdown()
            for sig, handler in restore:
                signal.signal(sig, handler if handler is not None else signal.SIG_DFL)
        return self.stats

    @property
    def period_s(self) -> float:
        """The reporting period every device uses in this run."""
        cfg = self.config
        if cfg.rate is None:
            return cfg.period_s
        reporting = sum(1 for plan in self._plans for s in plan.devices if _reports_state(s)) or 1
        return reporting / cfg.rate

    # -- start-up ----------------------------------------------------------------------------

    def _start_hubs(self) -> None:
        cfg = self.config
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        (cfg.state_dir / "outbox").mkdir(exist_ok=True)
        behaviour = replace(cfg.behaviour, period_s=self.period_s)
        self._behaviour = behaviour
        for plan in self._plans:
            self._lock_home(plan.home_id)
        previous = self._load_registry()
        now = self.now_ms()
        for index, plan in enumerate(self._plans):
            client = self._factory(
                home_id=plan.home_id,
                username=plan.username,
                password=plan.password,
                host=cfg.host,
                port=cfg.port,
                outbox=cfg.state_dir / "outbox" / f"{plan.home_id}.sqlite",
                client_id=f"homestream-sim-{plan.home_id}",
                tls_ca=cfg.tls_ca,
                on_message=self._receiver(index),
            )
            hub = _Hub(index, plan, client)
            self._hubs.append(hub)
            before = previous.get(plan.home_id, {})
            paired = [p for p in map(_spec_from_dict, before.get("paired", [])) if p]
            specs = list(plan.devices)
            known = {s.device_id for s in specs}
            for spec in paired:
                if spec.device_id not in known:
                    specs.append(spec)
                    hub.paired.append(spec)
                    known.add(spec.device_id)
            for gone in sorted(set(before.get("device_ids", [])) - known):
                self._publish(hub, Message(f"discovery/{gone}", None, retain=True))
                self._publish(hub, Message(f"availability/{gone}", None, retain=True))
            for spec in specs:
                self._add_device(hub, spec, now)
        self.stats.devices = sum(len(h.devices) for h in self._hubs)
        self._save_registry()
        for hub in self._hubs:
            hub.client.start()
        reporting = sum(d.reports_state for h in self._hubs for d in h.devices.values())
        rate = reporting / max(behaviour.period_s, 1e-9)
        self.say(
            f"simulating {len(self._hubs)} hub(s), {self.stats.devices} device(s) on "
            f"{cfg.host}:{cfg.port}{' (TLS)' if cfg.tls_ca else ''}: one report per device "
            f"every {behaviour.period_s:.3g} s (~{rate:.3g} reports/s)"
            + (f", for {cfg.duration_s:g} s" if cfg.duration_s else ", until Ctrl-C")
        )

    def _lock_home(self, home_id: str) -> None:
        """One simulator per home: a second would share its MQTT client id and outbox."""
        path = self.config.state_dir / "outbox" / f"{home_id}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SimulationError(
                f"home {home_id} is already simulated by another `homestream simulate` "
                f"(pid {holder}); stop that one first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._locks.append(fd)

    def _add_device(self, hub: _Hub, spec: DeviceSpec, now: int) -> SimDevice:
        device = SimDevice(
            spec,
            seed=f"{self.config.seed}/{hub.home_id}",
            behaviour=self._behaviour,
            start_ms=now,
        )
        hub.devices[spec.device_id] = device
        for m in device.announce(now):
            self._publish(hub, m)
            self._count(m, startup=True)
        self._schedule(device.next_due_ms, hub.index, spec.device_id)
        return device

    def _receiver(self, index: int) -> Callable[[str, bytes], None]:
        def on_message(subtopic: str, payload: bytes) -> None:  # a client's network thread
            self._inbox.put((index, subtopic, payload))

        return on_message

    def _install_signal_handlers(self) -> list[tuple[int, Any]]:
        if threading.current_thread() is not threading.main_thread():
            return []
        restore: list[tuple[int, Any]] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            restore.append((sig, signal.getsignal(sig)))
            signal.signal(sig, lambda _s, _f: self._stop.set())
        return restore

    # -- the scheduler loop ------------------------------------------------------------------

    def _loop(self) -> None:
        cfg = self.config
        start = time.monotonic()
        deadline = start + cfg.duration_s if cfg.duration_s else None
        next_progress = start + cfg.progress_s
        last_reports, last_progress = self.stats.reports, start  # not the start-up reports
        while not self._stop.is_set():
            mono = time.monotonic()
            if deadline is not None and mono >= deadline:
                break
            now = self.now_ms()
            self._drain_inbox(now)
            self._reannounce_on_reconnect(now)
            while self._heap and self._heap[0][0] <= now:
                _, _, hub_index, device_id = heapq.heappop(self._heap)
                hub = self._hubs[hub_index]
                if device_id:
                    self._tick(hub, hub.devices[device_id], now)
                else:
                    self._pair_new_device(hub, now)
            if mono >= next_progress:
                rate = (self.stats.reports - last_reports) / max(mono - last_progress, 1e-9)
                self.say(self._progress_line(rate))
                last_reports, last_progress = self.stats.reports, mono
                next_progress = mono + cfg.progress_s
            wait_until = next_progress
            if deadline is not None:
                wait_until = min(wait_until, deadline)
            if self._heap:
                wait_until = min(wait_until, mono + (self._heap[0][0] - self.now_ms()) / 1000)
            timeout = min(max(wait_until - time.monotonic(), 0.0), 0.5)
            if timeout > 0:
                try:
                    item = self._inbox.get(timeout=timeout)
                except queue.Empty:
                    continue
                self._handle(*item, now=self.now_ms())
        self.stats.elapsed_s = time.monotonic() - start

    def _reannounce_on_reconnect(self, now: int) -> None:
        # As real hubs do on every (re)connect: announce the devices again. Retained
        # messages are not delivered to the bridges' shared subscription, and a broker
        # restart forgets that subscription until the bridges are back, so a descriptor
        # published once at start can be lost; a repeat is a no-op downstream.
        for hub in self._hubs:
            up = hub.client.connected
            if up and not hub.was_connected:
                hub.connections += 1
                if hub.connections > 1:
                    for device in hub.devices.values():
                        for m in device.announce(now):
                            if m.subtopic.startswith(("discovery/", "availability/")):
                                self._publish(hub, m)
            hub.was_connected = up

    def _tick(self, hub: _Hub, device: SimDevice, now: int) -> None:
        for m in device.tick(now):
            self._publish(hub, m)
            self._count(m)
        self._schedule(device.next_due_ms, hub.index, device.device_id)

    def _schedule(self, due_ms: int, hub_index: int, device_id: str) -> None:
        if due_ms >= 2**62:
            return  # nothing will ever be due (a wired doorbell with events off)
        self._seq += 1
        heapq.heappush(self._heap, (due_ms, self._seq, hub_index, device_id))

    def _drain_inbox(self, now: int) -> None:
        while True:
            try:
                item = self._inbox.get_nowait()
            except queue.Empty:
                return
            self._handle(*item, now=now)

    # -- messages from the cloud -------------------------------------------------------------

    def _handle(self, hub_index: int, subtopic: str, data: bytes, *, now: int) -> None:
        hub = self._hubs[hub_index]
        parts = subtopic.split("/")
        payload = _json(data)
        if parts[0] == "command" and len(parts) == 2:
            self.stats.commands += 1
            device = hub.devices.get(parts[1])
            if device is None:
                command_id = payload.get("command_id") if isinstance(payload, dict) else None
                if isinstance(command_id, str) and command_id:
                    self.stats.commands_failed += 1
                    self._publish(
                        hub,
                        Message(
                            f"ack/{parts[1]}",
                            {
                                "command_id": command_id,
                                "status": "FAILED",
                                "error": f"hub {hub.home_id} has no device {parts[1]!r}",
                            },
                        ),
                    )
                else:
                    self._unreadable(hub, subtopic, "not a command for a known device")
                return
            out = device.on_command(payload, now)
            if not out:
                self._unreadable(hub, subtopic, "no command_id: cannot acknowledge")
                return
            failed = [
                m.payload
                for m in out
                if isinstance(m.payload, dict) and m.payload.get("status") == "FAILED"
            ]
            if failed:
                self.stats.commands_failed += 1
                # Also said here: whoever runs the simulator sees why a command did nothing
                # (e.g. one without the cloud's planned desired state) without reading acks.
                log.warning(
                    "hub/%s/%s: command %s failed: %s",
                    hub.home_id,
                    subtopic,
                    failed[0].get("command_id"),
                    failed[0].get("error"),
                )
            for m in out:
                self._publish(hub, m)
                self._count(m)
        elif parts[0] == "pairing" and len(parts) == 1:
            if isinstance(payload, dict) and payload.get("permit") is True:
                duration = payload.get("duration", 60)
                if not isinstance(duration, int | float) or duration <= 0:
                    duration = 60
                delay_s = self._rng.uniform(1.0, max(1.0, min(8.0, float(duration) / 2)))
                self._seq += 1
                heapq.heappush(self._heap, (now + int(delay_s * 1000), self._seq, hub.index, ""))
                self.say(f"{hub.home_id}: pairing open for {duration:g} s; a device will join")
        elif len(parts) == 4 and parts[0] == "shadow" and parts[2:] == ["update", "delta"]:
            device = hub.devices.get(parts[1])
            if device is not None:
                for m in device.on_delta(payload, now):
                    self._publish(hub, m)
                    self._count(m)
        # Other shadow replies (accepted, rejected, documents, get/...) need no answer.

    def _unreadable(self, hub: _Hub, subtopic: str, why: str) -> None:
        self.stats.unreadable += 1
        log.warning("ignored hub/%s/%s: %s", hub.home_id, subtopic, why)

    def _pair_new_device(self, hub: _Hub, now: int) -> None:
        dtype = self._rng.choice(self.config.pairable)
        n = 1
        while slug(f"New {TYPE_LABELS[dtype]} {n}") in hub.devices:
            n += 1
        name = f"New {TYPE_LABELS[dtype]} {n}"
        spec = make_spec(slug(name), name, dtype, "Living Room", self._rng)
        hub.paired.append(spec)
        self._add_device(hub, spec, now)
        self.stats.devices += 1
        self.stats.paired += 1
        self._save_registry()
        self.say(f"{hub.home_id}: paired {spec.device_id} ({dtype}, {spec.protocol})")

    # -- publishing and bookkeeping ----------------------------------------------------------

    def _publish(self, hub: _Hub, m: Message) -> None:
        try:
            hub.client.publish(m.subtopic, m.payload, retain=m.retain)
        except Exception as exc:  # OutboxFull, a closed outbox: count, say once in a while
            self.stats.publish_errors += 1
            if self.stats.publish_errors in (1, 10, 100) or self.stats.publish_errors % 1000 == 0:
                log.warning("publish to hub/%s/%s failed: %s", hub.home_id, m.subtopic, exc)

    def _count(self, m: Message, *, startup: bool = False) -> None:
        kind = m.subtopic.split("/", 1)[0]
        if kind == "state":
            self.stats.reports += 1
        elif kind == "event":
            self.stats.events += 1
        elif kind == "availability" and not startup:
            self.stats.availability += 1

    def _progress_line(self, rate: float) -> str:
        s = self.stats
        connected = sum(1 for h in self._hubs if h.client.connected)
        offline = sum(1 for h in self._hubs for d in h.devices.values() if not d.online)
        pending = sum(_pending(h.client) for h in self._hubs)
        return (
            f"hubs {connected}/{len(self._hubs)} connected | devices {s.devices} "
            f"({offline} offline) | reports {s.reports} ({rate:.1f}/s) | events {s.events} | "
            f"commands {s.commands} ({s.commands_failed} failed) | outbox pending {pending}"
        )

    def _shutdown(self) -> None:
        try:
            self._stop_hubs()
        finally:
            for fd in self._locks:
                os.close(fd)  # releases the flock
            self._locks.clear()

    def _stop_hubs(self) -> None:
        if not self._hubs:
            return
        deadline = time.monotonic() + self.config.drain_s
        for hub in self._hubs:
            if hub.client.connected:
                with contextlib.suppress(Exception):
                    hub.client.wait_drained(max(0.0, deadline - time.monotonic()))
        self.stats.pending = sum(_pending(h.client) for h in self._hubs)
        for hub in self._hubs:
            with contextlib.suppress(Exception):
                hub.client.stop(offline=True)
        s = self.stats
        self.say(
            f"stopped after {s.elapsed_s:.1f} s: {s.reports} reports, {s.events} events, "
            f"{s.commands} commands ({s.commands_failed} failed), {s.pending} left in outboxes"
            + (" (sent on the next run)" if s.pending else "")
        )

    # -- which devices each home had (removals, paired devices) ------------------------------

    def _load_registry(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self._registry_path.read_text())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _save_registry(self) -> None:
        data = self._load_registry()
        for hub in self._hubs:
            data[hub.home_id] = {
                "device_ids": sorted(hub.devices),
                "paired": [_spec_to_dict(s) for s in hub.paired],
            }
        tmp = self._registry_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self._registry_path)


def _hub_client(**kwargs: Any) -> HubClientLike:
    from hub.hubclient import HubClient

    return HubClient(**kwargs)


def _pending(client: HubClientLike) -> int:
    try:
        return client.pending()
    except Exception:  # a stopped client's outbox is closed
        return 0


def _reports_state(spec: DeviceSpec) -> bool:
    return bool(spec.capabilities)


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except (ValueError, UnicodeDecodeError):
        return None


def _spec_to_dict(spec: DeviceSpec) -> dict[str, Any]:
    d = asdict(spec)
    d["capabilities"] = list(spec.capabilities)
    return d


def _spec_from_dict(d: Any) -> DeviceSpec | None:
    """A paired device saved by an earlier run (None if the entry is unusable)."""
    try:
        spec = DeviceSpec(**{**d, "capabilities": tuple(d.get("capabilities", ()))})
        SimDevice(spec)  # a type or capability this version does not know
    except (TypeError, ValueError, AttributeError, KeyError):
        return None
    return spec
