"""The simulator's sockets: the MT port the host's zigpy-znp opens, and a control port.

MT port: one host at a time, like a serial port; a second connection replaces the first.
Control port (JSON lines, for tests and ``homestream zigbee-sim``): ``{"op": "add", "name",
"kind", "behaviour"?}`` queues a device that joins when permit-join is open (at once if it
is), ``{"op": "set", "name", "cluster", "attr", "value"}`` changes a device's attribute (it
reports), ``{"op": "leave", "name"}`` makes it leave, ``{"op": "list"}`` and
``{"op": "stats"}`` describe the simulator. Every answer is ``{"ok": true, ...}`` or
``{"ok": false, "error": "..."}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from hub.znpsim import mt
from hub.znpsim.devices import KINDS, SimDevice, ieee_text
from hub.znpsim.zstack import Coordinator

log = logging.getLogger("homestream.znpsim")


class ZnpSimulator:
    def __init__(
        self,
        state_dir: Path,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        control_port: int | None = None,
    ) -> None:
        state_dir.mkdir(parents=True, exist_ok=True)
        self.host = host
        self.coordinator = Coordinator(state_dir / "znp-nvram.json")
        self._want_port = port
        self._want_control = control_port
        self._server: asyncio.Server | None = None
        self._control: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.port = 0
        self.control_port = 0
        self.coordinator.send = self._send

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve_host, self.host, self._want_port)
        self.port = self._server.sockets[0].getsockname()[1]
        self._want_port = self.port  # a restart keeps the address, as a dongle keeps its path
        if self._want_control is not None:
            self._control = await asyncio.start_server(
                self._serve_control, self.host, self._want_control
            )
            self.control_port = self._control.sockets[0].getsockname()[1]
            self._want_control = self.control_port
        log.info(
            "znp simulator listening", extra={"port": self.port, "control_port": self.control_port}
        )

    async def stop(self) -> None:
        """Unplug the radio: close every connection and stop listening."""
        for server in (self._server, self._control):
            if server is not None:
                server.close()
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        for server in (self._server, self._control):
            if server is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(server.wait_closed(), 2)
        self._server = self._control = None

    # -- the host link ---------------------------------------------------------------------
    def _send(self, command: Any) -> None:
        w = self._writer
        if w is None or w.is_closing():
            return
        w.write(mt.encode(command))

    async def _serve_host(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = writer
        frames = mt.FrameReader()
        try:
            while data := await reader.read(4096):
                for frame in frames.feed(data):
                    try:
                        req = mt.decode(frame)
                    except (KeyError, ValueError) as exc:
                        log.warning("znpsim: undecodable frame %s: %s", frame, exc)
                        continue
                    try:
                        answers = self.coordinator.handle(req)
                    except Exception:  # a simulator bug must not unplug the radio
                        log.exception("znpsim: handling %s failed", type(req).__qualname__)
                        continue
                    for rsp in answers:
                        self._send(rsp)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            if self._writer is writer:
                self._writer = None
            writer.close()

    # -- control ----------------------------------------------------------------------------
    def device(self, name: str) -> SimDevice:
        for dev in [*self.coordinator.devices.values(), *self.coordinator.waiting]:
            if dev.name == name:
                return dev
        raise KeyError(f"no simulated device named {name!r}")

    def add_device(self, name: str, kind: str, behaviour: str = "ok") -> SimDevice:
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; one of {', '.join(KINDS)}")
        if behaviour not in ("ok", "silent", "garbage"):
            raise ValueError("behaviour is one of ok, silent, garbage")
        with contextlib.suppress(KeyError):
            self.device(name)
            raise ValueError(f"a device named {name!r} exists already")
        dev = SimDevice.make(name, kind, self.coordinator.free_nwk(), behaviour)
        self.coordinator.waiting.append(dev)
        if self.coordinator.permitting:
            self.coordinator.join_waiting()
        return dev

    def set_attribute(self, name: str, cluster: int, attr: int, value: Any) -> None:
        dev = self.device(name)
        reports = dev.set_attributes([(cluster, attr, value)])
        self.coordinator.later(self.coordinator.report_frames(dev, reports))

    def burst(self, name: str, count: int) -> None:
        """``count`` reports from one device, back to back (a load test's storm)."""
        dev = self.device(name)
        cid = next(iter(dev.kind.clusters))
        aid = next(iter(dev.kind.clusters[cid]))
        frames = []
        for i in range(count):
            type_id = dev.clusters[cid][aid].type_id
            frames += self.coordinator.report_frames(
                dev, dev.set_attributes([(cid, aid, i % 2 if type_id in (0x10, 0x18) else i % 200)])
            )
        self.coordinator.later(frames)

    def leave(self, name: str) -> None:
        dev = self.device(name)
        self.coordinator.later(self.coordinator.leave(dev))

    def describe(self) -> list[dict[str, Any]]:
        return [
            {**d.as_dict(), "ieee": ieee_text(d.ieee), "joined": d.nwk in self.coordinator.devices}
            for d in [*self.coordinator.devices.values(), *self.coordinator.waiting]
        ]

    def control(self, msg: dict[str, Any]) -> dict[str, Any]:
        op = msg.get("op")
        try:
            if op == "add":
                dev = self.add_device(
                    str(msg["name"]), str(msg["kind"]), str(msg.get("behaviour", "ok"))
                )
                return {"ok": True, "ieee": ieee_text(dev.ieee)}
            if op == "set":
                self.set_attribute(
                    str(msg["name"]), int(msg["cluster"]), int(msg["attr"]), msg["value"]
                )
                return {"ok": True}
            if op == "burst":
                self.burst(str(msg["name"]), int(msg["count"]))
                return {"ok": True}
            if op == "leave":
                self.leave(str(msg["name"]))
                return {"ok": True}
            if op == "list":
                return {"ok": True, "devices": self.describe()}
            if op == "stats":
                return {
                    "ok": True,
                    "stats": dict(self.coordinator.stats),
                    "permitting": self.coordinator.permitting,
                }
        except (KeyError, ValueError, TypeError) as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": False, "error": f"unknown op {op!r}; one of add, set, leave, list, stats"}

    async def _serve_control(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while line := await reader.readline():
                try:
                    msg = json.loads(line)
                    answer = (
                        self.control(msg)
                        if isinstance(msg, dict)
                        else {"ok": False, "error": "not an object"}
                    )
                except ValueError as exc:
                    answer = {"ok": False, "error": f"not JSON: {exc}"}
                writer.write(json.dumps(answer).encode() + b"\n")
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


class ThreadedSimulator:
    """A simulator on its own event loop thread, driven synchronously (tests, benches)."""

    def __init__(self, state_dir: Path, *, port: int = 0) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="znpsim", daemon=True)
        self._thread.start()
        self.sim = self.call(lambda: ZnpSimulator(state_dir, port=port))

    def call(self, fn: Any) -> Any:
        async def run() -> Any:
            out = fn()
            if asyncio.iscoroutine(out):
                out = await out
            return out

        fut: Future[Any] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return fut.result(timeout=30)

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.sim.port}"

    def start(self) -> None:
        self.call(self.sim.start)

    def stop(self) -> None:
        self.call(self.sim.stop)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
