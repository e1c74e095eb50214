"""Zigbee through zigpy and zigpy-znp: a TI Z-Stack coordinator on a serial port or socket://.

Lifecycle: ``start`` runs a connect loop. Each round starts a zigpy ControllerApplication
(forming a network the first time), attaches to every known device, marks them online
and re-reads their state. When the radio link drops (zigpy's ``connection_lost``, e.g.
the dongle unplugged or the simulator killed) every device goes offline, a radio event
is raised and the loop reconnects with exponential backoff (1 s doubling to 30 s, with
jitter).

Interview: zigpy discovers node/endpoint descriptors and the Basic model strings; this
adapter then reads the IAS zone type, binds and configures reporting for the mapped
clusters, reads their current values and publishes the descriptor. A device that fails
its interview, or has not finished it ``interview_timeout_s`` after joining, is
dead-lettered with the reason; the others go on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hub.adapters import zcl_map
from hub.adapters.base import Adapter, AdapterEvents, CommandFailed, Reconnect
from hub.adapters.common import CommandError, checked_state, device_type

log = logging.getLogger("homestream.hub.zigbee")


@dataclass(frozen=True)
class ZigbeeConfig:
    port: str  # /dev/ttyUSB0 or socket://host:port
    database: Path  # zigpy's device database (SQLite)
    channel: int | None = 15
    interview_timeout_s: float = 30.0
    backoff_max_s: float = 30.0


def device_id_for(ieee: Any) -> str:
    return "zigbee-" + str(ieee).replace(":", "")


class _ClusterListener:
    """zigpy calls these on the hub loop when a cluster reports or sends a command."""

    def __init__(self, adapter: ZigbeeAdapter, device_id: str, cluster_id: int) -> None:
        self.adapter = adapter
        self.device_id = device_id
        self.cluster_id = cluster_id

    def attribute_report(self, event: Any) -> None:
        self.adapter.on_attribute(
            self.device_id, self.cluster_id, int(event.attribute_id), event.value
        )

    def cluster_command(self, tsn: int, command_id: int, args: Any) -> None:
        if self.cluster_id == zcl_map.IAS_ZONE and command_id == 0x00 and args:
            self.adapter.on_zone_status(self.device_id, int(args[0]))

    def general_command(self, hdr: Any, args: Any) -> None:
        pass


class ZigbeeAdapter(Adapter):
    protocol = "zigbee"

    def __init__(self, config: ZigbeeConfig, events: AdapterEvents) -> None:
        self.config = config
        self.events = events
        self.app: Any = None
        self._task: asyncio.Task[None] | None = None
        self._lost: asyncio.Event = asyncio.Event()
        self._stopping = False
        self._zone_types: dict[str, int] = {}
        self._caps: dict[str, list[str]] = {}  # published devices' capabilities
        self._published: set[str] = set()
        self._listening: set[tuple[str, int]] = set()
        self._pending_interviews: dict[str, asyncio.TimerHandle] = {}
        self._failed_interviews: set[str] = set()  # dead-lettered once per join
        self.connected = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()

    def _spawn(self, coro: Any) -> None:
        """Run in the background, keeping a reference so the task is not collected."""
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- lifecycle -----------------------------------------------------------------------
    def _zigpy_config(self) -> dict[str, Any]:
        network: dict[str, Any] = {}
        if self.config.channel is not None:
            network["channel"] = self.config.channel
        return {
            "device": {"path": self.config.port},
            "database_path": str(self.config.database),
            "network": network,
            "ota": {"enabled": False},
            "topology_scan_enabled": False,
        }

    async def start(self) -> None:
        self.config.database.parent.mkdir(parents=True, exist_ok=True)
        self._task = asyncio.create_task(self._run(), name="zigbee-adapter")

    async def stop(self) -> None:
        self._stopping = True
        self._lost.set()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self._shutdown_app()

    async def _shutdown_app(self) -> None:
        app, self.app = self.app, None
        self.connected.clear()
        if app is not None:
            with contextlib.suppress(Exception):
                await app.shutdown()

    async def _run(self) -> None:
        from zigpy_znp.zigbee.application import ControllerApplication

        retry = Reconnect(self.events, self.protocol, self.config.port, self.config.backoff_max_s)
        while not self._stopping:
            self._lost.clear()
            # the device database opens first; a failed start must close it again, or each
            # retry leaves a database thread behind (and the process cannot exit)
            app = await ControllerApplication.new(self._zigpy_config(), start_radio=False)
            try:
                await app.startup(auto_form=True)
            except asyncio.CancelledError:
                with contextlib.suppress(Exception):
                    await app.shutdown(db=True)
                raise
            except Exception as exc:
                with contextlib.suppress(Exception):
                    await app.shutdown(db=True)
                if self._stopping:
                    break
                await retry.failed(exc)
                continue
            retry.succeeded()
            self.app = app
            app.add_listener(self)
            self.events.radio(self.protocol, True, f"coordinator on {self.config.port}")
            log.info(
                "zigbee network up",
                extra={
                    "port": self.config.port,
                    "channel": app.state.network_info.channel,
                    "pan_id": f"0x{app.state.network_info.pan_id:04x}",
                    "devices": len(self._devices()),
                },
            )
            self.connected.set()
            for dev in self._devices():
                if dev.is_initialized:
                    self._spawn(self._resume(dev))
            await self._lost.wait()
            self.connected.clear()
            for dev in self._devices():
                if device_id_for(dev.ieee) in self._published:
                    self.events.availability(device_id_for(dev.ieee), False)
            if not self._stopping:
                self.events.radio(
                    self.protocol, False, f"lost the coordinator on {self.config.port}"
                )
            await self._shutdown_app()
            self._listening.clear()

    def _devices(self) -> list[Any]:
        if self.app is None:
            return []
        coord = self.app.state.node_info.ieee
        return [d for ieee, d in self.app.devices.items() if ieee != coord]

    # -- zigpy application listener (called on the loop) ----------------------------------
    def connection_lost(self, exc: Exception | None) -> None:
        log.warning("zigbee radio link lost", extra={"port": self.config.port, "err": str(exc)})
        self._lost.set()

    def device_joined(self, device: Any) -> None:
        dev_id = device_id_for(device.ieee)
        log.info("zigbee device joined", extra={"device_id": dev_id, "nwk": f"0x{device.nwk:04x}"})
        old = self._pending_interviews.pop(dev_id, None)
        if old is not None:
            old.cancel()
        self._failed_interviews.discard(dev_id)
        self._pending_interviews[dev_id] = asyncio.get_running_loop().call_later(
            self.config.interview_timeout_s, self._interview_timed_out, device
        )

    def _interview_failed(self, dev_id: str, reason: str, detail: dict[str, Any]) -> None:
        timer = self._pending_interviews.pop(dev_id, None)
        if timer is not None:
            timer.cancel()
        if dev_id in self._failed_interviews or dev_id in self._published:
            return
        self._failed_interviews.add(dev_id)
        self.events.dead_letter(dev_id, reason, detail)

    def _interview_timed_out(self, device: Any) -> None:
        self._interview_failed(
            device_id_for(device.ieee),
            "INTERVIEW_TIMEOUT",
            {
                "ieee": str(device.ieee),
                "error": f"the device joined but did not finish its interview within "
                f"{self.config.interview_timeout_s:g} s",
            },
        )

    def device_init_failure(self, device: Any) -> None:
        self._interview_failed(
            device_id_for(device.ieee),
            "INTERVIEW_FAILED",
            {
                "ieee": str(device.ieee),
                "error": "the device's answers to the ZDO interview were unusable",
            },
        )

    def device_initialized(self, device: Any) -> None:
        if device.ieee == self.app.state.node_info.ieee:
            return
        self._spawn(self._finish_interview(device))

    def device_left(self, device: Any) -> None:
        dev_id = device_id_for(device.ieee)
        log.info("zigbee device left", extra={"device_id": dev_id})
        if self.app is not None:
            self._spawn(self._forget(device))

    def device_removed(self, device: Any) -> None:
        dev_id = device_id_for(device.ieee)
        if dev_id in self._published:
            self._published.discard(dev_id)
            self.events.device_removed(dev_id)

    async def _forget(self, device: Any) -> None:
        with contextlib.suppress(Exception):
            await self.app.remove(device.ieee, remove_children=False)
        self.device_removed(device)

    # -- interview -----------------------------------------------------------------------
    def _clusters(self, device: Any) -> dict[int, Any]:
        """Mapped server clusters of the device, first endpoint that has each."""
        out: dict[int, Any] = {}
        for ep_id, ep in device.endpoints.items():
            if ep_id == 0:
                continue
            for cid, cluster in ep.in_clusters.items():
                if cid in zcl_map.REPORTED and cid not in out:
                    out[cid] = cluster
        return out

    async def _finish_interview(self, device: Any) -> None:
        dev_id = device_id_for(device.ieee)
        try:
            clusters = self._clusters(device)
            if zcl_map.IAS_ZONE in clusters:
                ias = clusters[zcl_map.IAS_ZONE]
                got = await self._read(ias, [0x0001])
                if 0x0001 in got:
                    self._zone_types[dev_id] = int(got[0x0001])
                with contextlib.suppress(Exception):
                    await ias.write_attributes({0x0010: self.app.state.node_info.ieee})
                    await ias.enroll_response(enroll_response_code=0, zone_id=0)
            caps = zcl_map.capabilities(clusters, self._zone_types.get(dev_id))
            ha_id = next((ep.device_type for i, ep in device.endpoints.items() if i), None)
            dtype = device_type(caps, ha_id)
            if dtype is None:
                raise ValueError(f"no capability homestream knows in clusters {sorted(clusters)}")
            self._listen(device)
            for cid, cluster in clusters.items():
                with contextlib.suppress(Exception):
                    await cluster.bind()
                    await cluster.configure_reporting_multiple(
                        {a: (1, 300, 1) for a in zcl_map.REPORTED[cid]}
                    )
        except Exception as exc:
            self._interview_failed(
                dev_id,
                "INTERVIEW_FAILED",
                {"ieee": str(device.ieee), "error": f"{type(exc).__name__}: {exc}"},
            )
            return
        timer = self._pending_interviews.pop(dev_id, None)
        if timer is not None:
            timer.cancel()
        model = device.model or "Zigbee device"
        descriptor = {
            "name": f"{model} {str(device.ieee).replace(':', '')[-4:]}",
            "type": dtype,
            "protocol": "zigbee",
            "manufacturer": device.manufacturer,
            "model": device.model,
            "capabilities": caps,
            "endpoint": f"zigbee://{device.ieee}",
        }
        self._published.add(dev_id)
        self._caps[dev_id] = caps
        self.events.device_added(dev_id, descriptor)
        self.events.availability(dev_id, True)
        await self._read_state(device)

    def _listen(self, device: Any) -> None:
        dev_id = device_id_for(device.ieee)
        for cid, cluster in self._clusters(device).items():
            if (dev_id, cid) not in self._listening:
                listener = _ClusterListener(self, dev_id, cid)
                cluster.add_listener(listener)  # cluster_command (IAS zone notifications)
                cluster.on_event("attribute_report", listener.attribute_report)
                self._listening.add((dev_id, cid))

    async def _read(self, cluster: Any, attrs: list[int]) -> dict[int, Any]:
        """Read attributes from the device; {attribute id: value} of those it returned."""
        got, _failed = await cluster.read_attributes(attrs, allow_cache=False)
        out = {}
        for key, value in got.items():
            attr_id = key if isinstance(key, int) else cluster.find_attribute(key).id
            out[int(attr_id)] = value
        return out

    async def _read_state(self, device: Any) -> None:
        dev_id = device_id_for(device.ieee)
        for cid, cluster in self._clusters(device).items():
            try:
                values = await self._read(cluster, list(zcl_map.REPORTED[cid]))
                for attr_id, value in values.items():
                    self.on_attribute(dev_id, cid, attr_id, value)
            except Exception as exc:
                log.info(
                    "zigbee state read failed",
                    extra={
                        "device_id": device_id_for(device.ieee),
                        "cluster": f"0x{cid:04x}",
                        "err": str(exc),
                    },
                )

    async def _resume(self, device: Any) -> None:
        """A known device after (re)connecting: listen again, online, state re-read."""
        dev_id = device_id_for(device.ieee)
        clusters = self._clusters(device)
        if zcl_map.IAS_ZONE in clusters:
            zone = clusters[zcl_map.IAS_ZONE].get(0x0001)
            if zone is not None:
                self._zone_types[dev_id] = int(zone)
        self._listen(device)
        self._published.add(dev_id)
        self._caps[dev_id] = zcl_map.capabilities(clusters, self._zone_types.get(dev_id))
        self.events.availability(dev_id, True)
        await self._read_state(device)

    # -- reports ---------------------------------------------------------------------------
    def on_attribute(self, dev_id: str, cluster: int, attr: int, value: Any) -> None:
        if cluster == zcl_map.IAS_ZONE:
            if attr == 0x0002:
                self.on_zone_status(dev_id, int(value))
            return
        patch = zcl_map.state_from_attribute(cluster, attr, value)
        good, errors = checked_state(self._caps.get(dev_id, ()), patch)
        if good:
            self.events.state(dev_id, good)
        reported = attr in zcl_map.REPORTED.get(cluster, ())
        if dev_id in self._published and reported and (errors or not patch):
            self.events.dead_letter(
                dev_id,
                "BAD_VALUE",
                {
                    "cluster": f"0x{cluster:04x}",
                    "attribute": f"0x{attr:04x}",
                    "value": repr(value)[:100],
                    "error": "; ".join(errors) or "not a value this attribute can have",
                },
            )

    def on_zone_status(self, dev_id: str, status: int) -> None:
        patch = zcl_map.state_from_zone_status(self._zone_types.get(dev_id), status)
        good, _ = checked_state(self._caps.get(dev_id, ()), patch)
        if good:
            self.events.state(dev_id, good)

    # -- cloud -> radio ------------------------------------------------------------------
    def owns(self, device_id: str) -> bool:
        return device_id.startswith("zigbee-")

    def _find(self, device_id: str) -> Any:
        for dev in self._devices():
            if device_id_for(dev.ieee) == device_id:
                return dev
        raise CommandFailed(f"no Zigbee device {device_id} on this hub")

    async def permit(self, duration_s: int) -> None:
        if self.app is None:
            raise CommandFailed("the Zigbee radio is not connected")
        await self.app.permit(max(0, min(254, int(duration_s))))

    async def execute(
        self, device_id: str, capability: str, command: str, parameters: Mapping[str, Any]
    ) -> None:
        if self.app is None:
            raise CommandFailed("the Zigbee radio is not connected")
        device = self._find(device_id)
        try:
            steps = zcl_map.cluster_commands(capability, command, parameters)
        except CommandError as exc:
            raise CommandFailed(str(exc)) from None
        clusters = self._clusters(device)
        for step in steps:
            cluster = clusters.get(step.cluster)
            if cluster is None:
                raise CommandFailed(
                    f"{device_id} has no cluster 0x{step.cluster:04x} for {capability}"
                )
            try:
                rsp = await getattr(cluster, step.command)(**step.args)
            except Exception as exc:
                raise CommandFailed(f"{step.command}: {type(exc).__name__}: {exc}") from None
            status = getattr(rsp, "status", 0)
            if int(status) != 0:
                raise CommandFailed(f"{step.command}: the device answered status {status!r}")
