"""Z-Wave through a Z-Wave JS server (``@zwave-js/server``) and zwave-js-server-python.

The server owns the controller and interviews the nodes; this adapter listens on its
WebSocket: every ready node becomes a descriptor (capabilities from its values), "value
updated" events become state reports, commands become ``set_value`` calls, inclusion
opens for the permit's duration and an included node is described once its interview is
done; a removed node is removed. When the server goes away every device goes offline and
the adapter reconnects (1 s doubling to 30 s, with jitter); the values it then receives
are the state read again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hub.adapters import zwave_map
from hub.adapters.base import Adapter, AdapterEvents, CommandFailed, Reconnect
from hub.adapters.common import CommandError, checked_state, device_type

log = logging.getLogger("homestream.hub.zwave")


@dataclass(frozen=True)
class ZWaveConfig:
    url: str  # ws://host:port of the Z-Wave JS server
    backoff_max_s: float = 30.0


class ZWaveAdapter(Adapter):
    protocol = "zwave"

    def __init__(self, config: ZWaveConfig, events: AdapterEvents) -> None:
        self.config = config
        self.events = events
        self.client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._home = ""
        self._published: set[int] = set()
        self._states: dict[int, dict[str, Any]] = {}
        self._caps: dict[int, list[str]] = {}
        self._unsubs: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._inclusion_timer: asyncio.TimerHandle | None = None
        self.connected = asyncio.Event()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def device_id(self, node_id: int) -> str:
        return f"zwave-{self._home}-{node_id}"

    # -- lifecycle -----------------------------------------------------------------------
    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="zwave-adapter")

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _run(self) -> None:
        import aiohttp
        from zwave_js_server.client import Client

        retry = Reconnect(self.events, self.protocol, self.config.url, self.config.backoff_max_s)
        async with aiohttp.ClientSession() as session:
            while not self._stopping:
                client = Client(self.config.url, session)
                ready = asyncio.Event()
                listener: asyncio.Task[None] | None = None
                try:
                    await client.connect()
                    listener = asyncio.create_task(client.listen(ready))
                    _done, _ = await asyncio.wait(
                        {listener, asyncio.create_task(ready.wait())},
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    if not ready.is_set():
                        listener.result()  # raises why the server went away
                        raise ConnectionError("the Z-Wave JS server closed the connection")
                except asyncio.CancelledError:
                    if listener is not None:
                        listener.cancel()
                    with contextlib.suppress(Exception):
                        await client.disconnect()
                    raise
                except Exception as exc:
                    if listener is not None:
                        listener.cancel()
                    await retry.failed(exc)
                    continue
                retry.succeeded()
                self.client = client
                try:
                    self._attach(client)
                except Exception:  # a node we cannot read must not stop the others
                    log.exception("Z-Wave nodes could not all be read")
                self.connected.set()
                self.events.radio(self.protocol, True, f"Z-Wave JS server at {self.config.url}")
                try:
                    await listener
                except asyncio.CancelledError:
                    with contextlib.suppress(Exception):
                        await client.disconnect()
                    raise
                except Exception as exc:
                    log.warning("Z-Wave JS server connection lost", extra={"err": str(exc)})
                self.connected.clear()
                self.client = None
                for unsub in self._unsubs:
                    unsub()
                self._unsubs.clear()
                for node_id in self._published:
                    self.events.availability(self.device_id(node_id), False)
                if not self._stopping:
                    self.events.radio(
                        self.protocol, False, f"lost the Z-Wave JS server at {self.config.url}"
                    )

    # -- nodes -----------------------------------------------------------------------------
    def _attach(self, client: Any) -> None:
        controller = client.driver.controller
        self._home = f"{controller.home_id or 0:08x}"
        own = controller.own_node_id
        self._unsubs.append(controller.on("node added", self._on_node_added))
        self._unsubs.append(controller.on("node removed", self._on_node_removed))
        for node_id, node in controller.nodes.items():
            if node_id == own:
                continue
            self._watch(node)
            if node.ready:
                self._describe(node)

    def _watch(self, node: Any) -> None:
        self._unsubs.append(node.on("value updated", self._on_value))
        self._unsubs.append(node.on("value notification", self._on_value))
        self._unsubs.append(node.on("ready", lambda event: self._describe(event["node"])))
        self._unsubs.append(node.on("dead", lambda event: self._availability(event["node"], False)))
        self._unsubs.append(node.on("alive", lambda event: self._availability(event["node"], True)))

    def _availability(self, node: Any, online: bool) -> None:
        if node.node_id in self._published:
            self.events.availability(self.device_id(node.node_id), online)

    def _keys(self, node: Any) -> list[tuple[int, str, Any]]:
        return [(v.command_class, str(v.property_), v.property_key) for v in node.values.values()]

    def _describe(self, node: Any) -> None:
        dev_id = self.device_id(node.node_id)
        caps = zwave_map.capabilities(self._keys(node))
        dtype = device_type(caps)
        if dtype is None:
            self.events.dead_letter(
                dev_id,
                "NO_CAPABILITY",
                {
                    "error": f"node {node.node_id} has no command class homestream maps",
                    "ccs": sorted({k[0] for k in self._keys(node)}),
                },
            )
            return
        config = getattr(node, "device_config", None)
        model = node.label or getattr(config, "label", None)
        descriptor = {
            "name": f"{model or 'Z-Wave node'} {node.node_id}",
            "type": dtype,
            "protocol": "zwave",
            "manufacturer": getattr(config, "manufacturer", None),
            "model": model,
            "capabilities": caps,
            "endpoint": f"zwave://{self._home}/{node.node_id}",
        }
        first = node.node_id not in self._published
        self._published.add(node.node_id)
        self._caps[node.node_id] = caps
        if first:
            self.events.device_added(dev_id, descriptor)
        self.events.availability(dev_id, True)
        state: dict[str, Any] = {}
        for v in node.values.values():
            state.update(
                zwave_map.state_from_value(
                    v.command_class, str(v.property_), v.property_key, v.value
                )
            )
        self._report(node.node_id, state)

    def _report(self, node_id: int, patch: dict[str, Any]) -> None:
        """A mapped state, checked against the device's capabilities; the rest dead-lettered."""
        good, errors = checked_state(self._caps.get(node_id, ()), patch)
        if good:
            self._states.setdefault(node_id, {}).update(good)
            self.events.state(self.device_id(node_id), good)
        if errors:
            self.events.dead_letter(
                self.device_id(node_id), "BAD_VALUE", {"error": "; ".join(errors)}
            )

    def _on_value(self, event: Mapping[str, Any]) -> None:
        node = event["node"]
        args = event.get("args") or {}
        value = args.get("newValue", args.get("value"))
        patch = zwave_map.state_from_value(
            int(args.get("commandClass", 0)),
            str(args.get("property")),
            args.get("propertyKey"),
            value,
        )
        if patch and node.node_id in self._published:
            self._report(node.node_id, patch)

    def _on_node_added(self, event: Mapping[str, Any]) -> None:
        node = event["node"]
        log.info("zwave node included", extra={"node_id": node.node_id})
        self._watch(node)
        if node.ready:
            self._describe(node)

    def _on_node_removed(self, event: Mapping[str, Any]) -> None:
        node = event["node"]
        if node.node_id in self._published:
            self._published.discard(node.node_id)
            self.events.device_removed(self.device_id(node.node_id))

    # -- cloud -> radio ------------------------------------------------------------------
    def owns(self, device_id: str) -> bool:
        return device_id.startswith("zwave-")

    async def permit(self, duration_s: int) -> None:
        if self.client is None:
            raise CommandFailed("the Z-Wave JS server is not connected")
        from zwave_js_server.const import InclusionStrategy

        controller = self.client.driver.controller
        if self._inclusion_timer is not None:
            self._inclusion_timer.cancel()
            self._inclusion_timer = None
        if duration_s <= 0:
            with contextlib.suppress(Exception):
                await controller.async_stop_inclusion()
            return
        await controller.async_begin_inclusion(InclusionStrategy.INSECURE)

        def stop() -> None:
            if self.client is not None:
                self._spawn(self._stop_inclusion())

        self._inclusion_timer = asyncio.get_running_loop().call_later(duration_s, stop)

    async def _stop_inclusion(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.driver.controller.async_stop_inclusion()

    async def execute(
        self, device_id: str, capability: str, command: str, parameters: Mapping[str, Any]
    ) -> None:
        if self.client is None:
            raise CommandFailed("the Z-Wave JS server is not connected")
        try:
            node_id = int(device_id.rsplit("-", 1)[1])
            node = self.client.driver.controller.nodes[node_id]
        except (IndexError, ValueError, KeyError):
            raise CommandFailed(f"no Z-Wave device {device_id} on this hub") from None
        from zwave_js_server.model.value import get_value_id_str

        ccs = {k[0] for k in self._keys(node)}
        try:
            steps = zwave_map.set_values(
                ccs, capability, command, parameters, self._states.get(node_id, {})
            )
        except CommandError as exc:
            raise CommandFailed(str(exc)) from None
        for step in steps:
            value_id = get_value_id_str(node, step.cc, step.prop, 0, step.key)
            try:
                result = await node.async_set_value(value_id, step.value)
            except Exception as exc:
                raise CommandFailed(f"set {value_id}: {type(exc).__name__}: {exc}") from None
            # these statuses (SetValueStatus) mean the device did not take the value
            refused = ("NO_DEVICE_SUPPORT", "FAIL", "ENDPOINT_NOT_FOUND", "NOT_IMPLEMENTED")
            if result is not None and result.status.name in (*refused, "INVALID_VALUE"):
                raise CommandFailed(f"set {value_id}: {result!r}")
