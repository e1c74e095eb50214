"""``homestream bridge`` and ``homestream simulate``: the hub side's commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from hub.sim import cli as sim_cli
from hub.sim.provision import Launcher
from runtime.cli import Commands, add_loglevel
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

    p = commands.add("simulate", sim_cli.cmd_simulate, sim_cli.HELP)
    sim_cli.add_arguments(p)
    p.set_defaults(launcher=launcher)
