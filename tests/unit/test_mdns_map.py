"""mDNS services -> descriptors (hub/adapters/mdns_map.py) and the [mdns] hub.toml section."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from domain.ids import device_id_problem
from domain.validate import validate_descriptor
from hub.adapters import mdns_map as mm
from hub.adapters.recorder import Recorder
from hub.hubrun import ConfigError, load_config, make_adapters


def test_types_guessed_from_the_service_and_txt() -> None:
    hap = "_hap._tcp.local."
    assert mm.device_type(hap, {"ci": "6"}) == "lock"
    assert mm.device_type(hap, {"ci": "99"}) == "network.device"
    assert mm.device_type(hap, {"ci": "x"}) == "network.device"
    assert mm.device_type("_shelly._tcp.local.", {}) == "switch.plug"
    assert mm.device_type("_other._tcp.local.", {}) == "network.device"


def test_descriptor() -> None:
    name = "Kitchen Speaker._googlecast._tcp.local."
    desc = mm.descriptor(
        name, "_googlecast._tcp.local.", mm.txt({b"fn": b"Kitchen", b"md": b"Nest Mini"}),
        ["fe80::1"], 8009,
    )  # fmt: skip
    assert desc["name"] == "Kitchen" and desc["model"] == "Nest Mini"
    assert desc["endpoint"] == "googlecast://[fe80::1]:8009" and desc["type"] == "media_player"
    assert validate_descriptor(desc) == []
    assert mm.descriptor("x._hue._tcp.local.", "_hue._tcp.local.", {}, [], None)["endpoint"] is None
    assert mm.txt({b"flag": None, "K": b"\xff"}) == {"flag": "", "k": "\ufffd"}


@given(st.text(min_size=1, max_size=300), st.sampled_from(mm.SERVICE_TYPES))
def test_device_ids_are_valid_and_distinct(instance: str, kind: str) -> None:
    name = f"{instance}.{kind}"
    device_id = mm.device_id_for(name, kind)
    assert device_id_problem(device_id) is None
    assert device_id != mm.device_id_for(f"{instance}2.{kind}", kind)


def test_hub_toml_mdns(tmp_path: Path) -> None:
    cfg = tmp_path / "hub.toml"
    base = "[cloud]\nhome = 'h'\nusername = 'u'\npassword = 'p'\n"
    cfg.write_text(base + "[mdns]\n")
    (mdns,) = make_adapters(load_config(cfg), Recorder())
    assert mdns.config.service_types == mm.SERVICE_TYPES
    cfg.write_text(base + "[mdns]\nservice_types = ['_hue._tcp.local.']\n")
    (mdns,) = make_adapters(load_config(cfg), Recorder())
    assert mdns.config.service_types == ("_hue._tcp.local.",)
    cfg.write_text(base + "[mdns]\nservice_types = 'hue'\n")
    with pytest.raises(ConfigError, match="service_types must be a list"):
        make_adapters(load_config(cfg), Recorder())
