"""``homestream bridge`` and ``homestream simulate``: the hub side's commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from hub.sim import cli as sim_cli
from hub.sim.provision import Launcher
from runtime.cli import CliError, Commands, add_loglevel
from runtime.config import Settings


def cmd_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from hub.bridge import run_bridge

    return run_bridge(
        settings,
        name=args.name,
        metrics_port=args.metrics_port,
        loglevel=args.loglevel,
        data_dir=args.data_dir,
    )


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    import json

    from hub.sim.provision import ProvisionError
    from hub.sim.report import report_message, send

    try:
        state = json.loads(args.state) if args.state else None
        data = json.loads(args.data) if args.data else None
    except ValueError as exc:
        raise CliError(f"--state and --data take JSON: {exc}") from None
    if state is not None and not isinstance(state, dict):
        raise CliError("--state takes a JSON object of attributes, e.g. '{\"motion\": true}'")
    topic, payload = report_message(
        args.home, args.device, state=state, event=args.event, data=data
    )
    try:
        send(settings, args.home, topic, payload)
    except ProvisionError as exc:
        raise CliError(str(exc)) from None
    print(f"sent {topic} {json.dumps(payload)}")
    return 0


def cmd_hub_run(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from hub.hubrun import ConfigError, load_config, run_hub
    from runtime.logs import setup

    setup(args.loglevel, settings.log_format)
    try:
        cfg = load_config(args.config)
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    try:
        return asyncio.run(run_hub(cfg))
    except ConfigError as exc:
        raise CliError(str(exc)) from None
    except ImportError as exc:
        raise CliError(
            f"{exc.name} is missing: install the radio adapters with "
            "`pip install 'homestream[adapters]'`"
        ) from None


def cmd_zigbee_sim(args: argparse.Namespace, settings: Settings) -> int:
    import asyncio

    from hub.znpsim.cli import run
    from runtime.logs import setup

    setup(args.loglevel, settings.log_format)
    return asyncio.run(run(args))


def register(commands: Commands, *, launcher: type[Launcher] | None = None) -> None:
    """``launcher(settings)`` gives ``simulate`` the stack's hooks (see hub.sim.provision)."""
    p = commands.add(
        "bridge",
        cmd_bridge,
        "run one MQTT <-> Kafka bridge process (hub topics -> Avro events, commands/pairing/"
        "shadow replies -> hub topics); several share the load; runs until stopped",
    )
    p.add_argument("--name", default="bridge-1", help="bridge name; its MQTT session id")
    p.add_argument(
        "--data-dir", type=Path, help="where the bridge writes counters.json when it stops"
    )
    p.add_argument("--metrics-port", type=int, help="serve Prometheus counters on this port")
    add_loglevel(p)

    hub = commands.group("hub", "the hub process of a real installation (radios <-> cloud)")
    p = hub.add(
        "run",
        cmd_hub_run,
        "run the hub: load the radio adapters hub.toml names ([zigbee] port = serial path or "
        "socket://host:port), connect to the cloud broker with the hub's login (TLS with "
        "[cloud] tls_ca) and carry discovery, state, availability, commands and pairing; "
        "runs until SIGTERM. hub.toml's sections: [cloud] home, username, password or "
        "password_file, host, port, tls_ca; [hub] state_dir; [zigbee] port, channel, "
        "interview_timeout_s; [zwave] url (ws:// of a Z-Wave JS server), interview_timeout_s; "
        "[ble] hci (a bumble transport such as usb:0; omitted: bleak's own BlueZ backend); "
        "[mdns] service_types (DNS-SD types to browse; omitted: hue, hap, matter, googlecast, "
        "shelly, esphomelib)",
    )
    p.add_argument("--config", type=Path, required=True, help="path of hub.toml")
    add_loglevel(p)

    p = commands.add(
        "zigbee-sim",
        cmd_zigbee_sim,
        "run the ZNP coordinator simulator: a Z-Stack 3.30 dongle on a TCP port that "
        "zigpy-znp opens as socket://host:port, with simulated Zigbee devices added through "
        'its JSON-lines control port (e.g. {"op": "add", "name": "hall", '
        '"kind": "dimmer"}); runs until stopped',
    )
    p.add_argument("--port", type=int, default=6638, help="MT port zigpy-znp connects to [6638]")
    p.add_argument("--control-port", type=int, default=6639, help="JSON-lines control port [6639]")
    p.add_argument("--state-dir", type=Path, required=True, help="where NVRAM and devices persist")
    p.add_argument(
        "--device",
        action="append",
        default=[],
        metavar="NAME=KIND",
        help="a device waiting to join at the next permit (kinds: bulb, dimmer, color_bulb, "
        "plug, motion, contact, climate, lock, blinds); repeatable",
    )
    add_loglevel(p)

    p = commands.add("simulate", sim_cli.cmd_simulate, sim_cli.HELP)
    sim_cli.add_arguments(p)
    p.set_defaults(launcher=launcher)

    p = commands.add(
        "report",
        cmd_report,
        "send one state report or event of a simulated device, as its hub would (to try an "
        "automation now): e.g. `homestream report --device hallway-motion --state "
        "'{\"motion\": true}'`; the device's next own report says what it holds again",
    )
    p.add_argument("--home", default="demo-home", help="the simulated home [demo-home]")
    p.add_argument("--device", required=True, help="device id, e.g. front-door-contact")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--state", help='attributes as JSON, e.g. \'{"contact": "open"}\'')
    what.add_argument("--event", help="an event name, e.g. press")
    p.add_argument("--data", help="the event's data as JSON")
