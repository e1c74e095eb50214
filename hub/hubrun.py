"""``homestream hub run --config hub.toml``: the hub process a real installation runs.

It loads the adapters the config names, connects to the cloud broker with the hub's login
(over TLS when a CA is given) through ``HubClient`` (store-and-forward: everything is
queued in the outbox while the broker is away) and translates both ways:

* adapters -> cloud: descriptors (retained ``discovery/{device}``), availability, state
  reports, command acks; dead letters go to ``<state_dir>/dead-letters.jsonl`` (one JSON
  object a line, with the reason) and the log: CONTRACT.md has no hub -> cloud dead-letter
  topic;
* cloud -> adapters: ``pairing`` opens permit-join on every radio for ``duration``;
  ``command/{device}`` goes to the adapter that owns the device, acked ACKNOWLEDGED at
  once and COMPLETED or FAILED (with the reason) when the device has answered.

hub.toml::

    [cloud]
    home = "my-home"
    username = "hub-my-home-1a2b"
    password_file = "/etc/homestream/hub.secret"   # or password = "..."
    host = "cloud.example.org"
    port = 8883
    tls_ca = "/etc/homestream/ca.crt"              # omit for plain MQTT

    [hub]
    state_dir = "/var/lib/homestream-hub"          # outbox, zigbee.db, dead letters

    [zigbee]
    port = "/dev/ttyUSB0"                          # or "socket://host:port"
    channel = 15

    [zwave]
    url = "ws://127.0.0.1:3000"                    # a Z-Wave JS server (@zwave-js/server)

    [ble]                                          # Bluetooth LE sensors (bleak)
    hci = "usb:0"                                  # omit: bleak's own backend (BlueZ)

    [mdns]                                         # WiFi devices found by mDNS (zeroconf)
    service_types = ["_hue._tcp.local."]           # omit: every type hub/adapters/mdns_map knows

    [local]                                        # the LAN API (hub/lan_api.py), with the
    api_host = "0.0.0.0"                           # hub's own login ([cloud] username and
    api_port = 8765                                # password) as HTTP Basic; omit: no API
    tls_cert = "/etc/homestream/hub.crt"           # HTTPS (omit both: plain HTTP), e.g. the
    tls_key = "/etc/homestream/hub.key"            # certificate `hubs add --cert` issued

Local control (hub/local.py) is always on: the home's automations, scenes and mode synced
from the cloud, the local automations run while the cloud broker is unreachable.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import time
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hub.adapters.base import Adapter, CommandFailed
from hub.hubclient import HubClient
from hub.local import LocalControl

log = logging.getLogger("homestream.hub.run")


class ConfigError(ValueError):
    """hub.toml is missing something or has a wrong value; the message says which."""


@dataclass(frozen=True)
class HubConfig:
    home: str
    username: str
    password: str
    host: str
    port: int
    tls_ca: Path | None
    state_dir: Path
    zigbee: dict[str, Any] | None = None
    zwave: dict[str, Any] | None = None
    ble: dict[str, Any] | None = None
    mdns: dict[str, Any] | None = None
    local: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


def _need(section: Mapping[str, Any], key: str, where: str, kind: type) -> Any:
    value = section.get(key)
    if value is None:
        raise ConfigError(f"[{where}] needs {key!r}")
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
        raise ConfigError(f"[{where}] {key} must be a {kind.__name__}, got {value!r}")
    return value


def load_config(path: Path) -> HubConfig:
    try:
        doc = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(
            f"{path} does not exist: write a hub.toml (see `homestream hub run --help`)"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path} is not valid TOML: {exc}") from None
    cloud = doc.get("cloud")
    if not isinstance(cloud, dict):
        raise ConfigError(f"{path} needs a [cloud] section with home, username, password and host")
    base = path.parent
    password = cloud.get("password")
    if password is None and "password_file" in cloud:
        secret = base / str(cloud["password_file"])
        try:
            password = secret.read_text().strip()
        except OSError as exc:
            raise ConfigError(f"[cloud] password_file {secret}: {exc.strerror}") from None
    if not isinstance(password, str) or not password:
        raise ConfigError("[cloud] needs 'password' or 'password_file'")
    tls_ca = cloud.get("tls_ca")
    hub = doc.get("hub", {})
    state_dir = base / str(hub.get("state_dir", "hub-state"))
    radios = {k: doc.get(k) for k in ("zigbee", "zwave", "ble", "mdns")}
    for name, section in radios.items():
        if section is not None and not isinstance(section, dict):
            raise ConfigError(f"[{name}] must be a table")
    if all(section is None for section in radios.values()):  # an empty [mdns] is one
        raise ConfigError(
            f"{path} names no radio: add a [zigbee] (port = ...), [zwave] (url = ...), "
            "[ble] or [mdns] section"
        )
    return HubConfig(
        home=_need(cloud, "home", "cloud", str),
        username=_need(cloud, "username", "cloud", str),
        password=password,
        host=str(cloud.get("host", "127.0.0.1")),
        port=int(cloud.get("port", 8883 if tls_ca else 1883)),
        tls_ca=base / str(tls_ca) if tls_ca else None,
        state_dir=state_dir,
        zigbee=radios["zigbee"],
        zwave=radios["zwave"],
        ble=radios["ble"],
        mdns=radios["mdns"],
        local=_local_section(doc.get("local", {}), base),
    )


def _local_section(section: Any, base: Path) -> dict[str, Any]:
    if not isinstance(section, dict):
        raise ConfigError("[local] must be a table")
    port = section.get("api_port")
    if port is not None and (isinstance(port, bool) or not isinstance(port, int)):
        raise ConfigError(f"[local] api_port must be a port number, got {port!r}")
    if port is not None and not 0 <= port <= 65535:
        raise ConfigError(f"[local] api_port must be within 0..65535, got {port}")
    host = section.get("api_host", "0.0.0.0")
    if not isinstance(host, str):
        raise ConfigError(f"[local] api_host must be an address, got {host!r}")
    tls: dict[str, str | None] = {k: section.get(k) for k in ("tls_cert", "tls_key")}
    if (tls["tls_cert"] is None) != (tls["tls_key"] is None):
        raise ConfigError("[local] tls_cert and tls_key go together: give both or neither")
    for k, v in tls.items():
        if v is None:
            continue
        if not isinstance(v, str) or not (base / v).is_file():
            raise ConfigError(f"[local] {k} must be the path of a PEM file, got {v!r}")
        tls[k] = str(base / v)  # relative to hub.toml, as state_dir is
    return {"api_port": port, "api_host": host, **tls}


def make_adapters(cfg: HubConfig, events: Any) -> list[Adapter]:
    adapters: list[Adapter] = []
    if cfg.zigbee is not None:
        from hub.adapters.zigbee import ZigbeeAdapter, ZigbeeConfig

        port = _need(cfg.zigbee, "port", "zigbee", str)
        channel = cfg.zigbee.get("channel", 15)
        adapters.append(
            ZigbeeAdapter(
                ZigbeeConfig(
                    port=port,
                    database=cfg.state_dir / "zigbee.db",
                    channel=channel,
                    interview_timeout_s=float(cfg.zigbee.get("interview_timeout_s", 30)),
                ),
                events,
            )
        )
    if cfg.zwave is not None:
        from hub.adapters.zwave import ZWaveAdapter, ZWaveConfig

        zwave = ZWaveConfig(
            url=_need(cfg.zwave, "url", "zwave", str),
            interview_timeout_s=float(cfg.zwave.get("interview_timeout_s", 120)),
        )
        adapters.append(ZWaveAdapter(zwave, events))
    if cfg.ble is not None:
        from hub.adapters.ble import BleAdapter, BleConfig

        hci = cfg.ble.get("hci")
        if hci is not None and not isinstance(hci, str):
            raise ConfigError(f"[ble] hci must be a bumble transport name, got {hci!r}")
        adapters.append(
            BleAdapter(BleConfig(state_file=cfg.state_dir / "ble.json", hci=hci), events)
        )
    if cfg.mdns is not None:
        from hub.adapters.mdns import MdnsAdapter, MdnsConfig

        types = cfg.mdns.get("service_types", list(MdnsConfig.service_types))
        if not isinstance(types, list) or not all(
            (isinstance(t, str) and t.endswith("._tcp.local.")) or t.endswith("._udp.local.")
            for t in types
        ):
            raise ConfigError(
                f"[mdns] service_types must be a list like ['_hue._tcp.local.'], got {types!r}"
            )
        adapters.append(MdnsAdapter(MdnsConfig(service_types=tuple(types)), events))
    return adapters


def _now_ms() -> int:
    return int(time.time() * 1000)


class HubRuntime:
    """The adapters' events -> MQTT, and MQTT -> the adapters; everything on one loop."""

    def __init__(self, cfg: HubConfig) -> None:
        self.cfg = cfg
        cfg.state_dir.mkdir(parents=True, exist_ok=True)
        self.loop = asyncio.get_running_loop()
        self.inbox: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self.client = HubClient(
            home_id=cfg.home,
            username=cfg.username,
            password=cfg.password,
            host=cfg.host,
            port=cfg.port,
            tls_ca=cfg.tls_ca,
            outbox=cfg.state_dir / "outbox.sqlite",
            on_message=self._on_message,
        )
        self.adapters = make_adapters(cfg, self)
        self.local = LocalControl(
            cfg.state_dir / "local.sqlite",
            owns=lambda device_id: self.adapter_of(device_id) is not None,
            execute=self.execute,
            publish=self.client.publish,
            online=lambda: self.client.connected,
        )
        self.lan_port: int | None = None  # the LAN API's, once it listens
        self.dead_letters = cfg.state_dir / "dead-letters.jsonl"
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts = {"states": 0, "commands": 0, "failed": 0, "dead_letters": 0, "paired": 0}

    # -- MQTT (paho's network thread) -> loop -----------------------------------------------
    def _on_message(self, subtopic: str, payload: bytes) -> None:
        self.loop.call_soon_threadsafe(self.inbox.put_nowait, (subtopic, payload))

    # -- AdapterEvents -------------------------------------------------------------------
    def device_added(self, device_id: str, descriptor: dict[str, Any]) -> None:
        self.counts["paired"] += 1
        log.info("device paired", extra={"device_id": device_id, "type": descriptor.get("type")})
        self.local.on_descriptor(device_id, descriptor)
        self.client.publish(f"discovery/{device_id}", descriptor, retain=True)

    def device_removed(self, device_id: str) -> None:
        log.info("device removed", extra={"device_id": device_id})
        self.local.on_descriptor(device_id, None)
        self.client.publish(f"discovery/{device_id}", None, retain=True)

    def state(self, device_id: str, state: Mapping[str, Any]) -> None:
        self.counts["states"] += 1
        ts = _now_ms()
        ran = self.local.on_state(device_id, state)  # cloud away: local automations run
        body: dict[str, Any] = {"state": dict(state), "ts": ts}
        if ran:
            body["local_runs"] = ran
        self.client.publish(f"state/{device_id}", body)
        self.local.flush()  # the runs after the report that started them

    def availability(self, device_id: str, online: bool) -> None:
        self.client.publish(
            f"availability/{device_id}", "online" if online else "offline", retain=True
        )

    def radio(self, protocol: str, online: bool, detail: str) -> None:
        level = logging.INFO if online else logging.WARNING
        log.log(
            level,
            "radio %s",
            "online" if online else "offline",
            extra={"protocol": protocol, "detail": detail},
        )

    def dead_letter(self, device_id: str | None, reason: str, detail: Mapping[str, Any]) -> None:
        self.counts["dead_letters"] += 1
        record = {
            "ts": _now_ms(),
            "home": self.cfg.home,
            "device_id": device_id,
            "reason": reason,
            **detail,
        }
        log.warning("dead letter", extra={k: v for k, v in record.items() if k != "ts"})
        with self.dead_letters.open("a") as f:
            f.write(json.dumps(record, default=str) + "\n")

    # -- cloud -> adapters -----------------------------------------------------------------
    async def handle(self, subtopic: str, payload: bytes) -> None:
        parts = subtopic.split("/")
        try:
            doc = json.loads(payload) if payload else None
        except ValueError:
            doc = None
        if parts[0] == "config" and len(parts) == 3:
            self.local.on_config(parts[1], parts[2], payload)
        elif parts[0] == "pairing" and len(parts) == 1:
            await self._pairing(doc)
        elif parts[0] == "command" and len(parts) == 2:
            await self._command(parts[1], doc)
        # shadow replies need no answer from a radio hub

    async def _pairing(self, doc: Any) -> None:
        if not isinstance(doc, dict):
            self.dead_letter(None, "MALFORMED", {"error": "pairing payload is not an object"})
            return
        duration = doc.get("duration", 60)
        if doc.get("permit") is False:
            duration = 0
        if isinstance(duration, bool) or not isinstance(duration, int | float) or duration < 0:
            self.dead_letter(None, "MALFORMED", {"error": f"pairing duration {duration!r}"})
            return
        log.info("pairing opened", extra={"duration_s": duration})
        for adapter in self.adapters:
            try:
                await adapter.permit(int(duration))
            except Exception as exc:
                log.warning("permit failed", extra={"protocol": adapter.protocol, "err": str(exc)})

    async def _command(self, device_id: str, doc: Any) -> None:
        self.counts["commands"] += 1
        command_id = doc.get("command_id") if isinstance(doc, dict) else None
        if not isinstance(command_id, str) or not command_id:
            self.dead_letter(device_id, "MALFORMED", {"error": "command without a command_id"})
            return

        def ack(status: str, error: str | None = None) -> None:
            body: dict[str, Any] = {"command_id": command_id, "status": status}
            if error:
                body["error"] = error[:500]
            self.client.publish(f"ack/{device_id}", body)

        assert isinstance(doc, dict)
        adapter = self.adapter_of(device_id)
        capability, command = doc.get("capability"), doc.get("command")
        parameters = doc.get("parameters") or {}
        if adapter is None:
            self.counts["failed"] += 1
            ack("FAILED", f"this hub has no device {device_id!r}")
            return
        if (
            not isinstance(capability, str)
            or not isinstance(command, str)
            or not isinstance(parameters, dict)
        ):
            self.counts["failed"] += 1
            ack("FAILED", "a command needs capability, command and parameters (an object)")
            return
        ack("ACKNOWLEDGED")
        try:
            await adapter.execute(device_id, capability, command, parameters)
        except (CommandFailed, ValueError) as exc:
            self.counts["failed"] += 1
            ack("FAILED", str(exc))
            return
        ack("COMPLETED")

    def adapter_of(self, device_id: str) -> Adapter | None:
        return next((a for a in self.adapters if a.owns(device_id)), None)

    async def execute(
        self, device_id: str, capability: str, command: str, parameters: Mapping[str, Any]
    ) -> None:
        """A command decided on the hub (a local automation, scene or the LAN API)."""
        adapter = self.adapter_of(device_id)
        if adapter is None:
            raise LookupError(f"this hub has no device {device_id!r}")
        await adapter.execute(device_id, capability, command, parameters)

    async def _ticks(self, stop: asyncio.Event) -> None:
        """The local automations' timers (delays, ``for:``, waits), every 50 ms."""
        while not stop.is_set():
            try:
                self.local.tick()
            except Exception:
                log.exception("local automation tick failed")
            await asyncio.sleep(0.05)

    # -- run -------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        self.client.start()
        for adapter in self.adapters:
            await adapter.start()
        ticker = asyncio.create_task(self._ticks(stop))
        lan = None
        if self.cfg.local.get("api_port") is not None:
            from hub.lan_api import serve

            local = self.cfg.local
            lan = await serve(
                self,
                local["api_host"],
                local["api_port"],
                tls=(local["tls_cert"], local["tls_key"]) if local.get("tls_cert") else None,
            )
            self.lan_port = lan.port
        log.info(
            "hub running",
            extra={"home_id": self.cfg.home, "adapters": [a.protocol for a in self.adapters]},
        )
        getter: asyncio.Task[tuple[str, bytes]] | None = None
        stopper = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                getter = getter or asyncio.create_task(self.inbox.get())
                done, _ = await asyncio.wait({getter, stopper}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    subtopic, payload = getter.result()
                    getter = None
                    # each message on its own task: a slow device does not hold up the others
                    task = asyncio.create_task(self._safe_handle(subtopic, payload))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        finally:
            stopper.cancel()
            ticker.cancel()
            if getter is not None:
                getter.cancel()
            if lan is not None:
                await lan.close()
            for adapter in self.adapters:
                await adapter.stop()
            await self.local.close()
            self.client.wait_drained(5)
            self.client.stop()
            log.info("hub stopped", extra={"home_id": self.cfg.home, **self.counts})

    async def _safe_handle(self, subtopic: str, payload: bytes) -> None:
        try:
            await self.handle(subtopic, payload)
        except Exception:
            log.exception("hub message handling failed", extra={"topic": subtopic})


async def run_hub(cfg: HubConfig) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    runtime = HubRuntime(cfg)
    await runtime.run(stop)
    return 0
