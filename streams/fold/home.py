"""The home processor: each home's devices, their shadows, commands and health."""

from __future__ import annotations

from streams.fold import commands, health, registry, shadow_api
from streams.fold.declaration import Processor, Table
from topics import catalogue as t

HOME = Processor(
    name="home",
    inputs={
        t.DEVICE_DISCOVERY: {
            "DeviceDiscovered": registry.on_discovered,
            "DeviceRemoved": registry.on_removed,
        },
        t.DEVICE_REPORTS: {"DeviceReport": registry.on_report},
        t.DEVICE_AVAILABILITY: {"Availability": registry.on_availability},
        t.COMMANDS_REQUESTED: {"CommandRequested": commands.on_command},
        t.COMMANDS_ACKS: {"HubAck": commands.on_ack},
        t.SHADOW_REQUESTS: {"ShadowUpdateRequest": shadow_api.on_shadow_request},
    },
    tables=(
        Table(
            "<home>", "device ids, reports parked while their device is unknown, commands in flight"
        ),
        Table("<home>/<device>", "the descriptor, the shadow, online, last_seen, battery"),
        Table("#/ticked/<partition>", "the partition's last tick time (streams.due.ticked_key)"),
    ),
    timers=(health.on_tick,),
)
