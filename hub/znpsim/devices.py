"""Simulated Zigbee devices: their ZDO answers and ZCL server clusters, on the wire.

The wire format is written here from the Zigbee and ZCL specifications (little-endian
fields, ZCL data type ids), not borrowed from zigpy: the host side (zigpy) must parse what
these devices send, so the two are independent implementations of one format.

A device is pure state plus handlers: ``handle_zdo`` and ``handle_zcl`` take a request's
bytes and return the frames the device sends back (and what changed), without I/O. The
coordinator (hub/znpsim/zstack.py) moves the bytes.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# ZCL data types (ZCL spec, table 2-10) used by the clusters simulated here.
BOOL, MAP8, MAP16, UINT8, UINT16, UINT32, INT16, ENUM8, ENUM16, STRING, EUI64 = (
    0x10,
    0x18,
    0x19,
    0x20,
    0x21,
    0x23,
    0x29,
    0x30,
    0x31,
    0x42,
    0xF0,
)
_FORMATS = {BOOL: "<B", MAP8: "<B", MAP16: "<H", UINT8: "<B", UINT16: "<H", UINT32: "<I"}
_FORMATS |= {INT16: "<h"}
_FORMATS |= {ENUM8: "<B", ENUM16: "<H"}

HA_PROFILE = 0x0104
# ZCL status codes
SUCCESS, UNSUP_CLUSTER_COMMAND, UNSUPPORTED_ATTRIBUTE, MALFORMED = 0x00, 0x81, 0x86, 0x80
# ZDO status
ZDO_SUCCESS, ZDO_NOT_SUPPORTED = 0x00, 0x84

BASIC, POWER_CFG, ON_OFF, LEVEL, DOOR_LOCK, COVERING = (
    0x0000,
    0x0001,
    0x0006,
    0x0008,
    0x0101,
    0x0102,
)
OTA = 0x0019
COLOR, ILLUMINANCE, TEMPERATURE, HUMIDITY, OCCUPANCY, IAS_ZONE = (
    0x0300,
    0x0400,
    0x0402,
    0x0405,
    0x0406,
    0x0500,
)


def encode_value(type_id: int, value: Any) -> bytes:
    if type_id == STRING:
        raw = str(value).encode("utf-8")[:254]
        return bytes([len(raw)]) + raw
    if type_id == EUI64:
        return bytes(value)
    return struct.pack(_FORMATS[type_id], int(value))


def decode_value(type_id: int, data: bytes) -> tuple[Any, bytes]:
    if type_id == STRING:
        n = data[0]
        return data[1 : 1 + n].decode("utf-8", "replace"), data[1 + n :]
    if type_id == EUI64:
        return bytes(data[:8]), data[8:]
    fmt = _FORMATS[type_id]
    size = struct.calcsize(fmt)
    if len(data) < size:
        raise ValueError("value truncated")
    return struct.unpack(fmt, data[:size])[0], data[size:]


@dataclass
class Attr:
    type_id: int
    value: Any


@dataclass(frozen=True)
class Kind:
    """A kind of device the simulator can make: its model strings and clusters."""

    name: str
    model: str
    device_type: int  # HA device id in the simple descriptor
    mains: bool
    clusters: dict[int, dict[int, tuple[int, Any]]]


def _battery(pct: int = 90) -> dict[int, tuple[int, Any]]:
    return {0x0020: (UINT8, 30), 0x0021: (UINT8, pct * 2)}


def _ias(zone_type: int) -> dict[int, tuple[int, Any]]:
    return {
        0x0000: (ENUM8, 0),
        0x0001: (ENUM16, zone_type),
        0x0002: (MAP16, 0),
        0x0010: (EUI64, bytes(8)),
    }


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind("bulb", "HS-B1", 0x0100, True, {ON_OFF: {0: (BOOL, 0)}}),
        Kind("dimmer", "HS-D1", 0x0101, True, {ON_OFF: {0: (BOOL, 0)}, LEVEL: {0: (UINT8, 254)}}),
        Kind(
            "color_bulb",
            "HS-C1",
            0x0102,
            True,
            {
                ON_OFF: {0: (BOOL, 0)},
                LEVEL: {0: (UINT8, 254)},
                COLOR: {0: (UINT8, 0), 1: (UINT8, 0), 7: (UINT16, 370), 8: (ENUM8, 2)},
            },
        ),
        Kind("plug", "HS-P1", 0x0051, True, {ON_OFF: {0: (BOOL, 0)}}),
        Kind(
            "motion",
            "HS-M1",
            0x0107,
            False,
            {
                OCCUPANCY: {0: (MAP8, 0), 1: (ENUM8, 0)},
                ILLUMINANCE: {0: (UINT16, 20001)},
                POWER_CFG: _battery(),
            },
        ),
        Kind("contact", "HS-W1", 0x0402, False, {IAS_ZONE: _ias(0x0015), POWER_CFG: _battery()}),
        Kind(
            "climate",
            "HS-T1",
            0x0302,
            False,
            {TEMPERATURE: {0: (INT16, 2150)}, HUMIDITY: {0: (UINT16, 4500)}, POWER_CFG: _battery()},
        ),
        Kind("lock", "HS-L1", 0x000A, False, {DOOR_LOCK: {0: (ENUM8, 1)}, POWER_CFG: _battery()}),
        Kind("blinds", "HS-R1", 0x0202, True, {COVERING: {0x0008: (UINT8, 100)}}),
    )
}


def ieee_for(name: str) -> bytes:
    """A stable IEEE address (8 bytes, little-endian on the wire) for a device name."""
    digest = hashlib.sha256(name.encode()).digest()
    return bytes([*digest[:7], 0x00])


def ieee_text(ieee: bytes) -> str:
    return ":".join(f"{b:02x}" for b in reversed(ieee))


@dataclass
class Report:
    """A frame a device sends on its own: attribute reports or an IAS zone notification."""

    endpoint: int
    cluster: int
    zcl: bytes


@dataclass
class SimDevice:
    name: str
    kind: Kind
    ieee: bytes
    nwk: int
    # "ok"; "silent": never answers (an interview that never completes); "garbage": answers
    # ZDO with malformed descriptors.
    behaviour: str = "ok"
    endpoint: int = 1
    clusters: dict[int, dict[int, Attr]] = field(default_factory=dict)
    # client (output) clusters keep attributes too: the OTA client's current file version
    client_clusters: dict[int, dict[int, Attr]] = field(default_factory=dict)
    tsn: int = 0

    @classmethod
    def make(cls, name: str, kind: str, nwk: int, behaviour: str = "ok") -> SimDevice:
        k = KINDS[kind]
        clusters: dict[int, dict[int, Attr]] = {
            BASIC: {
                0x0000: Attr(UINT8, 3),
                0x0004: Attr(STRING, "homestream-sim"),
                0x0005: Attr(STRING, k.model),
                0x0007: Attr(ENUM8, 1 if k.mains else 3),
            }
        }
        for cid, attrs in k.clusters.items():
            clusters[cid] = {aid: Attr(t, v) for aid, (t, v) in attrs.items()}
        return cls(
            name=name, kind=k, ieee=ieee_for(name), nwk=nwk, behaviour=behaviour, clusters=clusters
        )

    # -- ZDO ---------------------------------------------------------------------------
    def announce(self) -> bytes:
        """Device_annce payload: nwk, ieee, MAC capability flags."""
        return struct.pack("<H", self.nwk) + self.ieee + bytes([self._mac_caps()])

    def _mac_caps(self) -> int:
        # alternate PAN coordinator 0, router bit, mains, rx on when idle, allocate address
        return 0x8E if self.kind.mains else 0x80

    def handle_zdo(self, cluster: int, payload: bytes) -> list[tuple[int, bytes]]:
        """ZDO request (without its TSN) -> [(response cluster, payload)]."""
        if self.behaviour == "silent":
            return []
        nwk = struct.pack("<H", self.nwk)
        if cluster == 0x0002:  # Node_Desc_req
            if self.behaviour == "garbage":
                return [(0x8002, bytes([ZDO_SUCCESS]) + nwk + b"\x02")]
            logical = 0x01 if self.kind.mains else 0x02
            desc = bytes([logical, 0x40, self._mac_caps()]) + struct.pack(
                "<HBHHHB", 0x1234, 82, 82, 0x2C00, 82, 0
            )
            return [(0x8002, bytes([ZDO_SUCCESS]) + nwk + desc)]
        if self.behaviour == "garbage" and cluster in (0x0005, 0x0004):
            # a count that promises more endpoints (or descriptor bytes) than follow
            return [(cluster | 0x8000, bytes([ZDO_SUCCESS]) + nwk + b"\x09\x01")]
        if cluster == 0x0005:  # Active_EP_req
            return [(0x8005, bytes([ZDO_SUCCESS]) + nwk + bytes([1, self.endpoint]))]
        if cluster == 0x0004:  # Simple_Desc_req
            ep = payload[2] if len(payload) >= 3 else 0
            if ep != self.endpoint:
                return [(0x8004, bytes([0x83]) + nwk + b"\x00")]  # NOT_ACTIVE
            ins = sorted(self.clusters)
            desc = struct.pack("<BHHB", self.endpoint, HA_PROFILE, self.kind.device_type, 1)
            desc += bytes([len(ins)]) + b"".join(struct.pack("<H", c) for c in ins)
            outs = sorted(self.client_clusters)
            desc += bytes([len(outs)]) + b"".join(struct.pack("<H", c) for c in outs)
            return [(0x8004, bytes([ZDO_SUCCESS]) + nwk + bytes([len(desc)]) + desc)]
        if cluster in (0x0021, 0x0022):  # Bind_req, Unbind_req
            return [(cluster | 0x8000, bytes([ZDO_SUCCESS]))]
        if cluster == 0x0001:  # IEEE_addr_req
            return [(0x8001, bytes([ZDO_SUCCESS]) + self.ieee + nwk)]
        if cluster == 0x0000:  # NWK_addr_req
            return [(0x8000, bytes([ZDO_SUCCESS]) + self.ieee + nwk)]
        if cluster in (0x0031, 0x0032):  # Mgmt_Lqi_req, Mgmt_Rtg_req: no neighbours, no routes
            start = payload[0] if payload else 0
            return [(cluster | 0x8000, bytes([ZDO_SUCCESS, 0, start, 0]))]
        if cluster == 0x0034:  # Mgmt_Leave_req
            return [(0x8034, bytes([ZDO_SUCCESS]))]
        return [(cluster | 0x8000, bytes([ZDO_NOT_SUPPORTED]))]

    # -- ZCL ---------------------------------------------------------------------------
    def handle_zcl(self, cluster: int, data: bytes) -> tuple[list[bytes], list[Report]]:
        """A ZCL frame from the coordinator -> (direct responses, reports it causes)."""
        if self.behaviour == "silent":
            return [], []
        if len(data) < 3:
            return [], []
        fc = data[0]
        manufacturer = fc & 0x04
        off = 3 if manufacturer else 1
        if len(data) < off + 2:
            return [], []
        tsn, cmd = data[off], data[off + 1]
        payload = data[off + 2 :]
        is_cluster_cmd = (fc & 0x03) == 0x01
        no_default = bool(fc & 0x10)
        to_client = bool(fc & 0x08)  # addressed to one of our client clusters
        attrs = (self.client_clusters if to_client else self.clusters).get(cluster)
        if attrs is None:
            return [self._default_rsp(tsn, cmd, 0xC3, to_client)], []  # UNSUPPORTED_CLUSTER
        if not is_cluster_cmd:
            return self._global(cluster, attrs, tsn, cmd, payload, no_default, to_client)
        if to_client:
            return [self._default_rsp(tsn, cmd, UNSUP_CLUSTER_COMMAND, to_client)], []
        return self._cluster_command(cluster, attrs, tsn, cmd, payload, no_default)

    def _header(
        self, tsn: int, cmd: int, cluster_specific: bool, from_client: bool = False
    ) -> bytes:
        # our answers go the other way than the request; default response disabled
        fc = (0x10 if from_client else 0x18) | (0x01 if cluster_specific else 0x00)
        return bytes([fc, tsn, cmd])

    def _default_rsp(self, tsn: int, cmd: int, status: int, from_client: bool = False) -> bytes:
        return self._header(tsn, 0x0B, False, from_client) + bytes([cmd, status])

    def _global(
        self,
        cluster: int,
        attrs: dict[int, Attr],
        tsn: int,
        cmd: int,
        payload: bytes,
        no_default: bool,
        from_client: bool = False,
    ) -> tuple[list[bytes], list[Report]]:
        if cmd == 0x00:  # Read Attributes
            out = bytearray()
            for (aid,) in struct.iter_unpack("<H", payload[: len(payload) // 2 * 2]):
                a = attrs.get(aid)
                if a is None:
                    out += struct.pack("<HB", aid, UNSUPPORTED_ATTRIBUTE)
                else:
                    out += struct.pack("<HBB", aid, SUCCESS, a.type_id) + encode_value(
                        a.type_id, a.value
                    )
            return [self._header(tsn, 0x01, False, from_client) + bytes(out)], []
        if cmd == 0x02 or cmd == 0x03:  # Write Attributes (undivided)
            rest = payload
            while len(rest) >= 3:
                aid, type_id = struct.unpack("<HB", rest[:3])
                try:
                    value, rest = decode_value(type_id, rest[3:])
                except (KeyError, ValueError, IndexError):
                    break
                if aid in attrs and attrs[aid].type_id == type_id:
                    attrs[aid].value = value
            return [self._header(tsn, 0x04, False, from_client) + bytes([SUCCESS])], []
        if cmd == 0x06:  # Configure Reporting: accepted for every record
            return [self._header(tsn, 0x07, False, from_client) + bytes([SUCCESS])], []
        if cmd == 0x0C:  # Discover Attributes
            out = bytearray([1])
            for aid in sorted(attrs):
                out += struct.pack("<HB", aid, attrs[aid].type_id)
            return [self._header(tsn, 0x0D, False, from_client) + bytes(out)], []
        if no_default:
            return [], []
        return [self._default_rsp(tsn, cmd, 0x82, from_client)], []  # UNSUP_GENERAL_COMMAND

    def _cluster_command(
        self,
        cluster: int,
        attrs: dict[int, Attr],
        tsn: int,
        cmd: int,
        payload: bytes,
        no_default: bool,
    ) -> tuple[list[bytes], list[Report]]:
        changed: dict[int, list[int]] = {}
        status = SUCCESS
        reply: bytes | None = None

        def put(cid: int, aid: int, value: Any) -> None:
            a = self.clusters[cid][aid]
            if a.value != value:
                a.value = value
                changed.setdefault(cid, []).append(aid)

        try:
            if cluster == ON_OFF and cmd in (0, 1, 2):
                on = {0: 0, 1: 1}.get(cmd, 0 if attrs[0].value else 1)
                put(ON_OFF, 0, on)
            elif cluster == LEVEL and cmd in (0x00, 0x04):
                level = payload[0]
                put(LEVEL, 0, level)
                if cmd == 0x04 and ON_OFF in self.clusters:
                    put(ON_OFF, 0, 1 if level > 0 else 0)
            elif cluster == COLOR and cmd == 0x06:
                put(COLOR, 0, payload[0])
                put(COLOR, 1, payload[1])
                put(COLOR, 8, 0)
            elif cluster == COLOR and cmd == 0x00:
                put(COLOR, 0, payload[0])
                put(COLOR, 8, 0)
            elif cluster == COLOR and cmd == 0x03:
                put(COLOR, 1, payload[0])
                put(COLOR, 8, 0)
            elif cluster == COLOR and cmd == 0x0A:
                put(COLOR, 7, struct.unpack("<H", payload[:2])[0])
                put(COLOR, 8, 2)
            elif cluster == DOOR_LOCK and cmd in (0x00, 0x01):
                put(DOOR_LOCK, 0, 1 if cmd == 0x00 else 2)
                # lock_door_response / unlock_door_response (server -> client)
                reply = self._header(tsn, cmd, True) + bytes([SUCCESS])
            elif cluster == COVERING and cmd in (0x00, 0x01, 0x05):
                target = {0x00: 0, 0x01: 100}.get(cmd)
                put(COVERING, 0x0008, payload[0] if target is None else target)
            elif cluster == COVERING and cmd == 0x02:
                pass  # stop: already where it is
            elif cluster == IAS_ZONE and cmd == 0x00:  # Zone Enroll Response
                put(IAS_ZONE, 0x0000, 1)
            else:
                status = UNSUP_CLUSTER_COMMAND
        except (IndexError, struct.error):
            status = MALFORMED
        responses: list[bytes] = []
        if reply is not None and status == SUCCESS:
            responses.append(reply)
        elif not no_default or status != SUCCESS:
            responses.append(self._default_rsp(tsn, cmd, status))
        return responses, self.reports(changed)

    # -- reports ------------------------------------------------------------------------
    def next_tsn(self) -> int:
        self.tsn = (self.tsn + 1) & 0xFF
        return self.tsn

    def reports(self, changed: dict[int, list[int]]) -> list[Report]:
        out = []
        for cid, aids in changed.items():
            if cid == IAS_ZONE and 0x0002 not in aids:
                continue
            if cid == IAS_ZONE:
                status = self.clusters[IAS_ZONE][0x0002].value
                body = struct.pack("<HBBH", status, 0, 0, 0)
                out.append(
                    Report(self.endpoint, cid, self._header(self.next_tsn(), 0x00, True) + body)
                )
                continue
            records = bytearray()
            for aid in aids:
                a = self.clusters[cid][aid]
                records += struct.pack("<HB", aid, a.type_id) + encode_value(a.type_id, a.value)
            out.append(
                Report(
                    self.endpoint, cid, self._header(self.next_tsn(), 0x0A, False) + bytes(records)
                )
            )
        return out

    def set_attributes(self, values: Iterable[tuple[int, int, Any]]) -> list[Report]:
        """A change the device itself makes (a sensor reading, a door opened by hand)."""
        changed: dict[int, list[int]] = {}
        for cid, aid, value in values:
            attr = self.clusters.get(cid, {}).get(aid)
            if attr is None:
                raise KeyError(f"{self.name} has no attribute 0x{cid:04x}/0x{aid:04x}")
            attr.value = value
            changed.setdefault(cid, []).append(aid)
        return self.reports(changed)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind.name,
            "nwk": self.nwk,
            "behaviour": self.behaviour,
        }
