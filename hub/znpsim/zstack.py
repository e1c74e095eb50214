"""The coordinator: what a Z-Stack 3.30 ZNP (CC2652, 2.7.1) does with each MT request.

It keeps NVRAM (the legacy OSAL items and the extended ``sys/item/sub`` items), forms a
network through BDB commissioning, answers the host's ZDO requests for itself, opens
permit-join, lets waiting simulated devices join (trust-centre indication, then the
device's announcement) and carries AF and ZDO traffic to and from them.

``Coordinator.handle`` turns one request into the synchronous response plus whatever
callbacks follow; callbacks that happen later (a device joining, a report) go through
``send``. NVRAM and the joined devices persist in a JSON file so a restarted simulator is
the same radio with the same network, as a real dongle would be after a power cycle.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zigpy_znp.commands as c
import zigpy_znp.const as const
import zigpy_znp.types as t
from zigpy_znp.types.nvids import ExNvIds, NvSysIds, OsalNvIds

from hub.znpsim.devices import Report, SimDevice

log = logging.getLogger("homestream.znpsim")

Send = Callable[[Any], None]

CODE_REVISION = 20230507  # a build after 20210708: permit-join goes through ZDO only
ZDO_EP = 0


def _ser(value: Any) -> bytes:
    if isinstance(value, t.CStruct | t.BaseListType):
        return bytes(value.serialize(align=True))
    return bytes(value.serialize())


def _factory_osal(ieee: bytes) -> dict[int, bytes]:
    """The items a freshly flashed coordinator has before any network exists."""
    items: dict[int, Any] = {
        OsalNvIds.EXTADDR: t.EUI64(ieee),
        OsalNvIds.STARTUP_OPTION: t.StartupOptions.NONE,
        OsalNvIds.LOGICAL_TYPE: t.DeviceLogicalType.Coordinator,
        OsalNvIds.CONCENTRATOR_ENABLE: t.Bool(False),
        OsalNvIds.CONCENTRATOR_DISCOVERY: t.uint8_t(60),
        OsalNvIds.CONCENTRATOR_RC: t.Bool(False),
        OsalNvIds.SRC_RTG_EXPIRY_TIME: t.uint8_t(10),
        OsalNvIds.NWK_CHILD_AGE_ENABLE: t.Bool(True),
        OsalNvIds.BCAST_DELIVERY_TIME: t.uint8_t(30),
        OsalNvIds.ZDO_DIRECT_CB: t.Bool(False),
        OsalNvIds.PANID: t.uint16_t(0xFFFF),
        OsalNvIds.CHANLIST: t.Channels.from_channel_list([11]),
        OsalNvIds.PRECFGKEY: t.KeyData(bytes(16)),
        OsalNvIds.PRECFGKEYS_ENABLE: t.Bool(False),
    }
    out = {int(k): _ser(v) for k, v in items.items()}
    # the APS link key table: a count (0) and room for entries
    out[int(OsalNvIds.APS_LINK_KEY_TABLE)] = _ser(t.APSLinkKeyTable([])).ljust(20, b"\x00")
    return out


def _default_nib() -> t.NIB:
    return t.NIB(
        SequenceNum=0,
        PassiveAckTimeout=5,
        MaxBroadcastRetries=2,
        MaxChildren=0,
        MaxDepth=20,
        MaxRouters=0,
        dummyNeighborTable=0,
        BroadcastDeliveryTime=30,
        ReportConstantCost=0,
        RouteDiscRetries=0,
        dummyRoutingTable=0,
        SecureAllFrames=1,
        SecurityLevel=5,
        SymLink=1,
        CapabilityFlags=143,
        TransactionPersistenceTime=7,
        nwkProtocolVersion=2,
        RouteDiscoveryTime=5,
        RouteExpiryTime=30,
        nwkDevAddress=0xFFFE,
        nwkLogicalChannel=0,
        nwkCoordAddress=0xFFFE,
        nwkCoordExtAddress=t.EUI64(bytes(8)),
        nwkPanId=0xFFFF,
        nwkState=t.NwkState.NWK_INIT,
        channelList=t.Channels.NO_CHANNELS,
        beaconOrder=15,
        superFrameOrder=15,
        scanDuration=0,
        battLifeExt=0,
        allocatedRouterAddresses=0,
        allocatedEndDeviceAddresses=0,
        nodeDepth=0,
        extendedPANID=t.EUI64(bytes(8)),
        nwkKeyLoaded=t.Bool(False),
        spare1=t.NwkKeyDesc(KeySeqNum=0, Key=t.KeyData(bytes(16))),
        spare2=t.NwkKeyDesc(KeySeqNum=0, Key=t.KeyData(bytes(16))),
        spare3=0,
        spare4=0,
        nwkLinkStatusPeriod=60,
        nwkRouterAgeLimit=3,
        nwkUseMultiCast=t.Bool(False),
        nwkIsConcentrator=t.Bool(True),
        nwkConcentratorDiscoveryTime=120,
        nwkConcentratorRadius=10,
        nwkAllFresh=1,
        nwkManagerAddr=0x0000,
        nwkTotalTransmissions=0,
        nwkUpdateId=0,
    )


class Coordinator:
    def __init__(self, state_file: Path, *, ieee: bytes | None = None) -> None:
        self.state_file = state_file
        self.osal: dict[int, bytes] = {}
        self.ex: dict[tuple[int, int], bytes] = {}
        self.devices: dict[int, SimDevice] = {}  # nwk -> joined device
        self.waiting: list[SimDevice] = []  # join when permit-join opens
        self.endpoints: dict[int, c.AF.Register.Req] = {}
        self.device_state = t.DeviceState.InitializedNotStarted
        self.permit_until = 0.0
        self.primary_channels: t.Channels | None = None
        self.send: Send = lambda cmd: None
        self.delay_s = 0.005  # radio latency between a request and the device's answer
        self.stats = {"requests": 0, "unhandled": 0, "joins": 0, "reports": 0}
        self._load(ieee)

    # -- persistence ----------------------------------------------------------------------
    def _load(self, ieee: bytes | None) -> None:
        if self.state_file.exists():
            doc = json.loads(self.state_file.read_text())
            self.osal = {int(k, 16): bytes.fromhex(v) for k, v in doc["osal"].items()}
            self.ex = {
                (int(k.split(":")[0], 16), int(k.split(":")[1], 16)): bytes.fromhex(v)
                for k, v in doc["ex"].items()
            }
            for d in doc.get("devices", []):
                dev = SimDevice.make(d["name"], d["kind"], d["nwk"], d.get("behaviour", "ok"))
                self.devices[dev.nwk] = dev
            return
        self.osal = _factory_osal(ieee or bytes([*os.urandom(7), 0x00]))

    def save(self) -> None:
        doc = {
            "osal": {f"{k:04x}": v.hex() for k, v in self.osal.items()},
            "ex": {f"{i:04x}:{s:04x}": v.hex() for (i, s), v in self.ex.items()},
            "devices": [d.as_dict() for d in self.devices.values()],
        }
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        tmp.replace(self.state_file)

    # -- NVRAM helpers ---------------------------------------------------------------------
    def nib(self) -> t.NIB | None:
        raw = self.osal.get(OsalNvIds.NIB)
        if raw is None:
            return None
        nib, _ = t.NIB.deserialize(raw, align=True)
        return nib

    @property
    def on_network(self) -> bool:
        return self.osal.get(OsalNvIds.BDBNODEISONANETWORK) == b"\x01"

    @property
    def ieee(self) -> bytes:
        return self.osal[OsalNvIds.EXTADDR]

    def _clear_network(self) -> None:
        for item in (
            OsalNvIds.NIB,
            OsalNvIds.BDBNODEISONANETWORK,
            OsalNvIds.NWKKEY,
            OsalNvIds.NWK_ACTIVE_KEY_INFO,
            OsalNvIds.NWK_ALTERN_KEY_INFO,
        ):
            self.osal.pop(int(item), None)
        self.ex = {
            k: v
            for k, v in self.ex.items()
            if k[0] not in (ExNvIds.NWK_SEC_MATERIAL_TABLE, ExNvIds.ADDRMGR)
        }
        self.devices.clear()

    def _form(self) -> None:
        """BDB formation: the NIB, keys and security material from the configured items."""
        chans = self.primary_channels
        if not chans:
            chans, _ = t.Channels.deserialize(self.osal[OsalNvIds.CHANLIST])
        channel = (list(chans) or [11])[0]
        pan, _ = t.uint16_t.deserialize(self.osal[OsalNvIds.PANID])
        if pan in (0xFFFF, 0xFFFE):
            pan = random.randint(1, 0xFFF0)
        epid = self.osal.get(OsalNvIds.APS_USE_EXT_PANID) or self.ieee
        key = self.osal[OsalNvIds.PRECFGKEY]
        nib = _default_nib().replace(
            nwkState=t.NwkState.NWK_ROUTER,
            nwkLogicalChannel=channel,
            channelList=t.Channels.from_channel_list([channel]),
            extendedPANID=t.EUI64(epid),
            nwkPanId=pan,
            nwkKeyLoaded=t.Bool(True),
            nwkDevAddress=0x0000,
            nwkCoordAddress=0x0000,
        )
        desc = t.NwkKeyDesc(KeySeqNum=0, Key=t.KeyData(key))
        self.osal[OsalNvIds.NIB] = _ser(nib)
        self.osal[OsalNvIds.NWK_ACTIVE_KEY_INFO] = _ser(desc)
        self.osal[OsalNvIds.NWK_ALTERN_KEY_INFO] = _ser(desc)
        self.osal[OsalNvIds.NWKKEY] = _ser(t.NwkActiveKeyItems(Active=desc, FrameCounter=0))
        self.osal[OsalNvIds.BDBNODEISONANETWORK] = b"\x01"
        sec = ExNvIds.NWK_SEC_MATERIAL_TABLE
        self.ex[(sec, 0)] = _ser(t.NwkSecMaterialDesc(FrameCounter=0, ExtendedPanID=t.EUI64(epid)))
        glob = t.EUI64.convert("FF:FF:FF:FF:FF:FF:FF:FF")
        self.ex[(sec, 1)] = _ser(t.NwkSecMaterialDesc(FrameCounter=0, ExtendedPanID=glob))
        for sub in range(16):
            self.ex[(ExNvIds.ADDRMGR, sub)] = _ser(const.EMPTY_ADDR_MGR_ENTRY_ZSTACK3)
        self.save()

    # -- dispatch ------------------------------------------------------------------------
    def handle(self, req: Any) -> list[Any]:
        """One request -> the synchronous response and the callbacks that follow at once."""
        self.stats["requests"] += 1
        name = type(req).__qualname__.replace(".", "_")  # e.g. "SYS_Ping_Req"
        method = getattr(self, "on_" + name.removesuffix("_Req"), None)
        if method is None:
            self.stats["unhandled"] += 1
            log.info("znpsim: no handler for %s", type(req).__qualname__)
            return [
                c.RPCError.CommandNotRecognized.Rsp(
                    ErrorCode=c.rpc_error.ErrorCode.InvalidCommandId,
                    RequestHeader=req.to_frame(align=True).header,
                )
            ]
        out = method(req)
        return out if isinstance(out, list) else [out]

    def later(self, cmds: list[Any], delay: float | None = None) -> None:
        loop = asyncio.get_running_loop()
        loop.call_later(self.delay_s if delay is None else delay, self._send_all, cmds)

    def _send_all(self, cmds: list[Any]) -> None:
        for cmd in cmds:
            try:
                self.send(cmd)
            except Exception:  # one bad frame must not stop the simulator
                log.exception("znpsim: cannot send %s", type(cmd).__qualname__)

    # -- SYS -----------------------------------------------------------------------------
    def on_SYS_Ping(self, req: Any) -> Any:
        caps = (
            t.MTCapabilities.SYS
            | t.MTCapabilities.AF
            | t.MTCapabilities.ZDO
            | t.MTCapabilities.UTIL
            | t.MTCapabilities.APP_CNF
        )
        return c.SYS.Ping.Rsp(Capabilities=caps)

    def on_SYS_Version(self, req: Any) -> Any:
        return c.SYS.Version.Rsp(
            TransportRev=2,
            ProductId=1,
            MajorRel=2,
            MinorRel=7,
            MaintRel=1,
            CodeRevision=CODE_REVISION,
            BootloaderBuildType=c.sys.BootloaderBuildType.NON_BOOTLOADER_BUILD,
            BootloaderRevision=0xFFFFFFFF,
        )

    def on_SYS_ResetReq(self, req: Any) -> list[Any]:
        opts, _ = t.StartupOptions.deserialize(self.osal.get(OsalNvIds.STARTUP_OPTION, b"\x00"))
        if opts & t.StartupOptions.ClearState:
            self._clear_network()
            self.osal[OsalNvIds.STARTUP_OPTION] = _ser(t.StartupOptions.NONE)
        if OsalNvIds.EXTADDR not in self.osal:
            self.osal[OsalNvIds.EXTADDR] = bytes([*os.urandom(7), 0x00])
        self.device_state = t.DeviceState.InitializedNotStarted
        self.endpoints.clear()
        self.permit_until = 0.0
        self.save()
        self.later(
            [
                c.SYS.ResetInd.Callback(
                    Reason=t.ResetReason.PowerUp,
                    TransportRev=2,
                    ProductId=1,
                    MajorRel=2,
                    MinorRel=7,
                    MaintRel=1,
                )
            ],
            0.05,
        )
        return []  # an AREQ: no synchronous response

    def on_SYS_SetTxPower(self, req: Any) -> Any:
        return c.SYS.SetTxPower.Rsp(StatusOrPower=t.Status.SUCCESS)

    def on_SYS_OSALNVLength(self, req: Any) -> Any:
        return c.SYS.OSALNVLength.Rsp(ItemLen=len(self.osal.get(req.Id, b"")))

    def _osal_read(self, req: Any, rsp_cls: Any) -> Any:
        value = self.osal.get(req.Id)
        if value is None:
            return rsp_cls(Status=t.Status.INVALID_PARAMETER, Value=t.ShortBytes(b""))
        return rsp_cls(
            Status=t.Status.SUCCESS, Value=t.ShortBytes(value[req.Offset : req.Offset + 244])
        )

    def on_SYS_OSALNVRead(self, req: Any) -> Any:
        return self._osal_read(req, c.SYS.OSALNVRead.Rsp)

    def on_SYS_OSALNVReadExt(self, req: Any) -> Any:
        return self._osal_read(req, c.SYS.OSALNVReadExt.Rsp)

    def _osal_write(self, req: Any, rsp_cls: Any) -> Any:
        value = self.osal.get(req.Id)
        if value is None or req.Offset + len(req.Value) > len(value):
            return rsp_cls(Status=t.Status.INVALID_PARAMETER)
        buf = bytearray(value)
        buf[req.Offset : req.Offset + len(req.Value)] = req.Value
        self.osal[req.Id] = bytes(buf)
        self.save()
        return rsp_cls(Status=t.Status.SUCCESS)

    def on_SYS_OSALNVWrite(self, req: Any) -> Any:
        return self._osal_write(req, c.SYS.OSALNVWrite.Rsp)

    def on_SYS_OSALNVWriteExt(self, req: Any) -> Any:
        return self._osal_write(req, c.SYS.OSALNVWriteExt.Rsp)

    def on_SYS_OSALNVItemInit(self, req: Any) -> Any:
        if req.Id in self.osal:
            return c.SYS.OSALNVItemInit.Rsp(Status=t.Status.SUCCESS)
        if len(req.Value) > req.ItemLen:
            return c.SYS.OSALNVItemInit.Rsp(Status=t.Status.INVALID_PARAMETER)
        self.osal[req.Id] = bytes(req.Value).ljust(req.ItemLen, b"\xff")
        self.save()
        return c.SYS.OSALNVItemInit.Rsp(Status=t.Status.NV_ITEM_UNINIT)

    def on_SYS_OSALNVDelete(self, req: Any) -> Any:
        value = self.osal.get(req.Id)
        if value is None or len(value) != req.ItemLen:
            return c.SYS.OSALNVDelete.Rsp(Status=t.Status.INVALID_PARAMETER)
        del self.osal[req.Id]
        self.save()
        return c.SYS.OSALNVDelete.Rsp(Status=t.Status.SUCCESS)

    def _ex_key(self, req: Any) -> tuple[int, int] | None:
        if req.SysId != NvSysIds.ZSTACK:
            return None
        if req.ItemId == ExNvIds.LEGACY:
            return None
        return (int(req.ItemId), int(req.SubId))

    def on_SYS_NVLength(self, req: Any) -> Any:
        if req.SysId == NvSysIds.ZSTACK and req.ItemId == ExNvIds.LEGACY:
            return c.SYS.NVLength.Rsp(Length=len(self.osal.get(req.SubId, b"")))
        key = self._ex_key(req)
        return c.SYS.NVLength.Rsp(Length=len(self.ex.get(key, b"")) if key else 0)

    def on_SYS_NVRead(self, req: Any) -> Any:
        key = self._ex_key(req)
        value = self.ex.get(key) if key else None
        if value is None:
            return c.SYS.NVRead.Rsp(Status=t.Status.FAILURE, Value=t.ShortBytes(b""))
        return c.SYS.NVRead.Rsp(
            Status=t.Status.SUCCESS,
            Value=t.ShortBytes(value[req.Offset : req.Offset + min(req.Length, 244)]),
        )

    def on_SYS_NVWrite(self, req: Any) -> Any:
        key = self._ex_key(req)
        value = self.ex.get(key) if key else None
        if key is None or value is None or req.Offset + len(req.Value) > len(value):
            return c.SYS.NVWrite.Rsp(Status=t.Status.FAILURE)
        buf = bytearray(value)
        buf[req.Offset : req.Offset + len(req.Value)] = req.Value
        self.ex[key] = bytes(buf)
        self.save()
        return c.SYS.NVWrite.Rsp(Status=t.Status.SUCCESS)

    def on_SYS_NVCreate(self, req: Any) -> Any:
        key = self._ex_key(req)
        if key is None:
            return c.SYS.NVCreate.Rsp(Status=t.Status.FAILURE)
        if key in self.ex:
            return c.SYS.NVCreate.Rsp(Status=t.Status.SUCCESS)
        self.ex[key] = b"\xff" * req.Length
        self.save()
        return c.SYS.NVCreate.Rsp(Status=t.Status.NV_ITEM_UNINIT)

    def on_SYS_NVDelete(self, req: Any) -> Any:
        key = self._ex_key(req)
        if key is None or self.ex.pop(key, None) is None:
            return c.SYS.NVDelete.Rsp(Status=t.Status.FAILURE)
        self.save()
        return c.SYS.NVDelete.Rsp(Status=t.Status.SUCCESS)

    # -- UTIL ----------------------------------------------------------------------------
    def on_UTIL_AssocFindDevice(self, req: Any) -> Any:
        # The in-memory associated_devices_t struct: 36 bytes on the 32-bit CC26x2
        return c.UTIL.AssocFindDevice.Rsp(Device=t.Bytes(b"\xff" * 36))

    def on_UTIL_GetDeviceInfo(self, req: Any) -> Any:
        started = self.device_state == t.DeviceState.StartedAsCoordinator
        return c.UTIL.GetDeviceInfo.Rsp(
            Status=t.Status.SUCCESS,
            IEEE=t.EUI64(self.ieee),
            NWK=0x0000 if started else 0xFFFE,
            DeviceType=t.DeviceTypeCapabilities(7),
            DeviceState=self.device_state,
            AssociatedDevices=[d.nwk for d in self.devices.values()],
        )

    def on_UTIL_LEDControl(self, req: Any) -> Any:
        return c.UTIL.LEDControl.Rsp(Status=t.Status.SUCCESS)

    # -- APP_CONFIG (BDB) ------------------------------------------------------------------
    def on_AppConfig_BDBSetChannel(self, req: Any) -> Any:
        if req.IsPrimary:
            self.primary_channels = req.Channel
        return c.AppConfig.BDBSetChannel.Rsp(Status=t.Status.SUCCESS)

    def on_AppConfig_BDBStartCommissioning(self, req: Any) -> list[Any]:
        mode = c.app_config.BDBCommissioningMode
        status = c.app_config.BDBCommissioningStatus
        notify = c.AppConfig.BDBCommissioningNotification.Callback
        state = c.ZDO.StateChangeInd.Callback
        rsp = c.AppConfig.BDBStartCommissioning.Rsp(Status=t.Status.SUCCESS)
        if self.on_network:
            self.device_state = t.DeviceState.StartedAsCoordinator
            self.later(
                [
                    state(State=t.DeviceState.StartedAsCoordinator),
                    notify(
                        Status=status.NetworkRestored,
                        Mode=mode.NONE,
                        RemainingModes=mode.NwkFormation,
                    ),
                    # Z-Stack reports a "formation failure" when it restored a network instead
                    notify(
                        Status=status.FormationFailure,
                        Mode=mode.NwkFormation,
                        RemainingModes=mode.NONE,
                    ),
                ]
            )
            return [rsp]
        self._form()
        self.device_state = t.DeviceState.StartedAsCoordinator
        self.later(
            [
                state(State=t.DeviceState.StartingAsCoordinator),
                notify(
                    Status=status.InProgress,
                    Mode=mode.NwkFormation,
                    RemainingModes=mode.NwkFormation,
                ),
                state(State=t.DeviceState.StartedAsCoordinator),
                notify(Status=status.Success, Mode=mode.NwkFormation, RemainingModes=mode.NONE),
            ],
            0.1,
        )
        return [rsp]

    # -- AF --------------------------------------------------------------------------------
    def on_AF_Register(self, req: Any) -> Any:
        if req.Endpoint in self.endpoints:
            return c.AF.Register.Rsp(Status=t.Status.ZApsDuplicateEntry)
        self.endpoints[req.Endpoint] = req
        return c.AF.Register.Rsp(Status=t.Status.SUCCESS)

    def on_AF_Delete(self, req: Any) -> Any:
        self.endpoints.pop(req.Endpoint, None)
        return c.AF.Delete.Rsp(Status=t.Status.SUCCESS)

    def on_AF_DataRequestExt(self, req: Any) -> list[Any]:
        rsp = c.AF.DataRequestExt.Rsp(Status=t.Status.SUCCESS)
        addr = req.DstAddrModeAddress
        if req.DstEndpoint == ZDO_EP:
            self._zdo_request(addr, req.ClusterId, bytes(req.Data))
            return [rsp]
        if addr.mode != t.AddrMode.NWK:
            return [rsp]  # group / broadcast ZCL: nothing simulated listens
        dev = self.devices.get(addr.address)
        if dev is None:
            confirm = c.AF.DataConfirm.Callback(
                Status=t.Status.MAC_NO_ACK, Endpoint=req.SrcEndpoint, TSN=req.TSN
            )
            self.later([confirm], 0.05)
            return [rsp]
        confirm = c.AF.DataConfirm.Callback(
            Status=t.Status.SUCCESS, Endpoint=req.SrcEndpoint, TSN=req.TSN
        )
        responses, reports = dev.handle_zcl(req.ClusterId, bytes(req.Data))
        out = [confirm]
        out += [
            self._incoming(dev, dev.endpoint, req.SrcEndpoint, req.ClusterId, z) for z in responses
        ]
        out += [self._incoming(dev, r.endpoint, 1, r.cluster, r.zcl) for r in reports]
        self.stats["reports"] += len(reports)
        self.later(out)
        return [rsp]

    def _incoming(self, dev: SimDevice, src_ep: int, dst_ep: int, cluster: int, data: bytes) -> Any:
        return c.AF.IncomingMsg.Callback(
            GroupId=0x0000,
            ClusterId=cluster,
            SrcAddr=dev.nwk,
            SrcEndpoint=src_ep,
            DstEndpoint=dst_ep,
            WasBroadcast=t.Bool(False),
            LQI=220,
            SecurityUse=t.Bool(False),
            TimeStamp=int(time.monotonic() * 1000) & 0xFFFFFFFF,
            TSN=0,
            Data=t.ShortBytes(data),
            MacSrcAddr=dev.nwk,
            MsgResultRadius=29,
        )

    # -- ZDO -------------------------------------------------------------------------------
    def on_ZDO_MsgCallbackRegister(self, req: Any) -> Any:
        return c.ZDO.MsgCallbackRegister.Rsp(Status=t.Status.SUCCESS)

    def on_ZDO_ExtRouteChk(self, req: Any) -> Any:
        known = req.Dst in self.devices or req.Dst == 0x0000
        status = c.zdo.RoutingStatus.SUCCESS if known else c.zdo.RoutingStatus.FAIL
        return c.ZDO.ExtRouteChk.Rsp(Status=status)

    def on_ZDO_ExtRouteDisc(self, req: Any) -> Any:
        return c.ZDO.ExtRouteDisc.Rsp(Status=t.Status.SUCCESS)

    def on_ZDO_MgmtPermitJoinReq(self, req: Any) -> list[Any]:
        self._permit(req.Duration)
        self.later(
            [
                c.ZDO.MgmtPermitJoinRsp.Callback(Src=0x0000, Status=t.ZDOStatus.SUCCESS),
                c.ZDO.PermitJoinInd.Callback(Duration=req.Duration),
            ]
        )
        return [c.ZDO.MgmtPermitJoinReq.Rsp(Status=t.Status.SUCCESS)]

    def _permit(self, duration: int) -> None:
        self.permit_until = time.monotonic() + duration if duration else 0.0
        if duration:
            self.join_waiting()

    @property
    def permitting(self) -> bool:
        return time.monotonic() < self.permit_until

    def _zdo_request(self, addr: Any, cluster: int, data: bytes) -> None:
        if not data:
            return
        tsn, payload = data[0], data[1:]
        if addr.mode == t.AddrMode.Broadcast:
            if cluster == 0x0036 and len(payload) >= 1:  # Mgmt_Permit_Joining_req
                self._permit(payload[0])
            return
        nwk = addr.address if addr.mode == t.AddrMode.NWK else None
        if nwk == 0x0000:
            out = self._own_zdo(cluster, payload)
            self.later([self._zdo_cb(0x0000, rc, tsn, body) for rc, body in out])
            return
        dev = self.devices.get(nwk) if nwk is not None else None
        if dev is None:
            return  # nobody there: the host times out, as over the air
        answers = dev.handle_zdo(cluster, payload)
        self.later([self._zdo_cb(dev.nwk, rc, tsn, body) for rc, body in answers])
        if cluster == 0x0034 and answers:  # Mgmt_Leave_req: it leaves after answering
            self.later(self.leave(dev), 0.05)

    def _zdo_cb(self, src: int, cluster: int, tsn: int, body: bytes) -> Any:
        return c.ZDO.MsgCbIncoming.Callback(
            Src=src,
            IsBroadcast=t.Bool(False),
            ClusterId=cluster,
            SecurityUse=0,
            TSN=tsn,
            MacDst=0x0000,
            Data=t.Bytes(body),
        )

    def _own_zdo(self, cluster: int, payload: bytes) -> list[tuple[int, bytes]]:
        """The coordinator's answers about itself (ZDO_DIRECT_CB)."""
        nwk = b"\x00\x00"
        if cluster == 0x0002:
            desc = bytes([0x00, 0x40, 0x8F]) + bytes.fromhex("0000528000412a800000")
            return [(0x8002, b"\x00" + nwk + desc)]
        if cluster == 0x0005:
            eps = sorted(self.endpoints)
            return [(0x8005, b"\x00" + nwk + bytes([len(eps), *eps]))]
        if cluster == 0x0004 and len(payload) >= 3:
            ep = self.endpoints.get(payload[2])
            if ep is None:
                return [(0x8004, b"\x83" + nwk + b"\x00")]
            body = bytes([ep.Endpoint]) + int(ep.ProfileId).to_bytes(2, "little")
            body += int(ep.DeviceId).to_bytes(2, "little") + bytes([ep.DeviceVersion])
            body += bytes([len(ep.InputClusters)]) + b"".join(
                int(x).to_bytes(2, "little") for x in ep.InputClusters
            )
            body += bytes([len(ep.OutputClusters)]) + b"".join(
                int(x).to_bytes(2, "little") for x in ep.OutputClusters
            )
            return [(0x8004, b"\x00" + nwk + bytes([len(body)]) + body)]
        if cluster == 0x0001:
            return [(0x8001, b"\x00" + self.ieee + nwk)]
        if cluster in (0x0031, 0x0032):
            return [(cluster | 0x8000, bytes([0, 0, payload[0] if payload else 0, 0]))]
        return [(cluster | 0x8000, b"\x84")]

    # -- devices ---------------------------------------------------------------------------
    def free_nwk(self) -> int:
        while True:
            nwk = random.randint(0x0001, 0xFFF7)
            if nwk not in self.devices:
                return nwk

    def join_waiting(self) -> None:
        """Let every waiting device join (permit-join is open)."""
        for i, dev in enumerate(self.waiting):
            self.devices[dev.nwk] = dev
            self.stats["joins"] += 1
            self.later(self.join_frames(dev), 0.2 + 0.1 * i)
        self.waiting.clear()
        self.save()

    def join_frames(self, dev: SimDevice) -> list[Any]:
        ieee = t.EUI64(dev.ieee)
        return [
            c.ZDO.TCDevInd.Callback(SrcNwk=dev.nwk, SrcIEEE=ieee, ParentNwk=0x0000),
            c.ZDO.EndDeviceAnnceInd.Callback(
                Src=dev.nwk,
                NWK=dev.nwk,
                IEEE=ieee,
                Capabilities=c.zdo.MACCapabilities(dev.announce()[-1]),
            ),
            c.ZDO.MsgCbIncoming.Callback(
                Src=dev.nwk,
                IsBroadcast=t.Bool(True),
                ClusterId=0x0013,
                SecurityUse=0,
                TSN=dev.next_tsn(),
                MacDst=0xFFFD,
                Data=t.Bytes(dev.announce()),
            ),
        ]

    def leave(self, dev: SimDevice) -> list[Any]:
        self.devices.pop(dev.nwk, None)
        self.save()
        return [
            c.ZDO.LeaveInd.Callback(
                NWK=dev.nwk,
                IEEE=t.EUI64(dev.ieee),
                Request=t.Bool(False),
                Remove=t.Bool(False),
                Rejoin=t.Bool(False),
            )
        ]

    def report_frames(self, dev: SimDevice, reports: list[Report]) -> list[Any]:
        self.stats["reports"] += len(reports)
        return [self._incoming(dev, r.endpoint, 1, r.cluster, r.zcl) for r in reports]
