"""The mDNS adapter browsing real zeroconf registrations on a LAN of its own: a network
namespace of this test (hub/netns.py), lo up with multicast. Skipped, with the reason,
only where the kernel or the user may not make a namespace.
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Iterator

import pytest
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from domain.validate import validate_descriptor
from hub.adapters.base import CommandFailed
from hub.adapters.mdns import MdnsAdapter, MdnsConfig
from hub.adapters.mdns_map import device_id_for
from hub.adapters.recorder import Recorder, until
from hub.netns import NamespaceRefused, private_lan


@pytest.fixture
def lan() -> Iterator[str]:
    try:
        with private_lan(f"hs-mdns-{os.getpid()}") as name:
            yield name
    except NamespaceRefused as exc:
        pytest.skip(f"no private network namespace for mDNS: {exc}")


@pytest.fixture
async def devices(lan: str) -> AsyncIterator[AsyncZeroconf]:
    zc = AsyncZeroconf(ip_version=IPVersion.V4Only)  # the WiFi devices' own responder
    try:
        yield zc
    finally:
        await zc.async_unregister_all_services()
        await zc.async_close()


def service(kind: str, instance: str, port: int, **txt: str) -> AsyncServiceInfo:
    return AsyncServiceInfo(
        kind,
        f"{instance}.{kind}",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=port,
        properties=txt,
        server=f"{instance.replace(' ', '-').lower()}.local.",
    )


async def test_lan_devices_are_found_and_go_away(devices: AsyncZeroconf) -> None:
    rec = Recorder()
    adapter = MdnsAdapter(MdnsConfig(), rec)
    await adapter.start()
    try:
        found = [
            service("_hue._tcp.local.", "Hue Bridge", 443, modelid="BSB002"),
            service("_hap._tcp.local.", "Porch Light", 51826, ci="5", md="Eve Light"),
            service("_googlecast._tcp.local.", "Chromecast-abc", 8009, fn="Living TV", md="Cast"),
            service("_shelly._tcp.local.", "shellyplus1-a8", 80, app="Plus1"),
            service("_esphomelib._tcp.local.", "garage-node", 6053),
            service("_matter._tcp.local.", "0F1E2D3C-00000011", 5540),
        ]
        # registering probes the LAN first (~1.5 s): all at once
        await asyncio.gather(*(devices.async_register_service(i) for i in found))
        ids = {device_id_for(i.name, i.type): i for i in found}
        await until(lambda: set(rec.added) == set(ids), 20, "every service found")

        got = {i.type: rec.added[d] for d, i in ids.items()}
        assert [(got[t]["type"], got[t]["name"]) for t in sorted(got)] == [
            ("network.device", "garage-node"),
            ("media_player", "Living TV"),
            ("light.switch", "Porch Light"),  # HomeKit category 5: lightbulb
            ("bridge", "Hue Bridge"),
            ("network.device", "0F1E2D3C-00000011"),
            ("switch.plug", "shellyplus1-a8"),
        ]
        hue = got["_hue._tcp.local."]
        assert hue["endpoint"] == "hue://127.0.0.1:443" and hue["model"] == "BSB002"
        assert hue["protocol"] == "hue" and hue["capabilities"] == []
        for desc in got.values():
            assert validate_descriptor(desc) == []
        assert all(rec.online[d] for d in ids)
        cast = next(d for d, i in ids.items() if i.type == "_googlecast._tcp.local.")
        with pytest.raises(CommandFailed, match="does not control it"):
            await adapter.execute(cast, "ON_OFF", "turnOn", {})

        # a service that goes away -> unavailable; back -> available, same device
        await devices.async_unregister_service(found[0])
        hue_id = device_id_for(found[0].name, found[0].type)
        await until(lambda: rec.online[hue_id] is False, 10, "hue bridge gone")
        assert all(rec.online[d] for d in ids if d != hue_id)
        await devices.async_register_service(found[0])
        await until(lambda: rec.online[hue_id] is True, 20, "hue bridge back")
        assert len(rec.added) == len(ids) and rec.dead == []
    finally:
        await adapter.stop()
