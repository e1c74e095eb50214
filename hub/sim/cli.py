"""`homestream simulate`: virtual hubs with devices that report and obey commands.

``homestream.cli.build_parser`` registers the sub-command with ``add_arguments`` and
``cmd_simulate``; this module imports nothing heavy until the command runs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from runtime.cli import CliError, positive_float

if TYPE_CHECKING:
    from runtime.config import Settings

HELP = "virtual hubs over MQTT whose devices report state and obey commands"
DESCRIPTION = """\
Run virtual hubs against the stack's Mosquitto, one MQTT login per home (created with
`homestream hubs add` semantics on the first run, reused afterwards). Each hub announces its
devices (retained discovery + availability), then every device reports its full state once per
period; about 90% of those reports change nothing, as real sensors do. Devices drift, drain
their batteries, drop off now and then, raise events (camera detections, doorbell rings, button
presses) and answer commands on hub/{home}/command/{device} with ack ACKNOWLEDGED, the new
state and ack COMPLETED (or FAILED with the reason). A pairing permit brings in a new device.

Homes: --homes N simulates sim-0001..sim-N (created if missing, owned by --owner);
--home H (repeatable) names the homes instead; --demo is --home demo-home --floorplan demo,
the demo home `make up` simulates.

Examples:
  homestream simulate --demo
  homestream simulate --homes 100 --devices 50 --rate 500
  homestream simulate --homes 2 --devices 5 --rate 20 --duration 60

A progress line every few seconds: hubs connected, reports sent, commands handled, messages
pending in the hubs' outboxes. Stops on Ctrl-C / SIGTERM or after --duration; what is still
in an outbox is sent on the next run. State (credentials, outboxes) lives in
<state dir>/sim."""

MAX_HOMES = 10_000
# paho watches its sockets with select(), which takes no file descriptor above 1023, and each
# simulated hub holds 7 (its outbox's SQLite file, WAL, shared memory and lock, opened first;
# the MQTT socket and paho's wake-up pair): past about 140 hubs in one process the later
# hubs' sockets land above 1023 and never connect, silently. 120 leaves room for the rest.
MAX_HUBS_PER_PROCESS = 120
MAX_DEVICES = 1000  # per home; hub.sim.floorplan.MAX_DEVICES


def _positive_int(limit: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not 1 <= value <= limit:
            raise argparse.ArgumentTypeError(f"must be between 1 and {limit}, got {value}")
        return value

    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.description = DESCRIPTION
    p.add_argument(
        "--homes",
        type=_positive_int(MAX_HOMES),
        default=1,
        metavar="N",
        help="simulate homes <prefix>-0001..<prefix>-N [1]",
    )
    p.add_argument(
        "--devices",
        type=_positive_int(MAX_DEVICES),
        default=20,
        metavar="M",
        help="devices per generated home: lights and sensors first, a realistic mix [20]",
    )
    p.add_argument(
        "--rate",
        type=positive_float,
        metavar="R",
        help="state reports per second across the whole simulation (sets each device's "
        "period; overrides --period)",
    )
    p.add_argument(
        "--period",
        type=positive_float,
        default=30.0,
        metavar="S",
        help="seconds between one device's periodic state reports [30]",
    )
    p.add_argument(
        "--duration",
        type=positive_float,
        metavar="S",
        help="stop after S seconds [run until Ctrl-C / SIGTERM]",
    )
    p.add_argument(
        "--seed",
        type=int,
        default=0,
        metavar="N",
        help="random seed: which devices generated homes get and how they behave [0]",
    )
    p.add_argument(
        "--demo",
        action="store_true",
        help="simulate the demo home 'demo-home' with the demo floor plan "
        "(= --home demo-home --floorplan demo)",
    )
    p.add_argument(
        "--home",
        action="append",
        metavar="H",
        help="simulate home H (repeatable; created if missing) instead of --homes",
    )
    p.add_argument(
        "--floorplan",
        choices=("generated", "demo"),
        help="devices of each home: 'generated' (--devices of a realistic mix) or 'demo' "
        "(the demo floor plan) [generated; demo with --demo]",
    )
    p.add_argument(
        "--prefix", default="sim", metavar="P", help="id prefix of the --homes homes [sim]"
    )
    p.add_argument(
        "--owner",
        metavar="U",
        help="user who owns homes the simulator creates; must exist "
        "(`homestream users add`) [demo]",
    )
    p.add_argument(
        "--tls", action="store_true", help="connect to the MQTT TLS listener, verifying the CA"
    )
    p.add_argument(
        "--no-outages",
        action="store_true",
        help="devices never drop off (by default each does, at random, about twice a day)",
    )
    p.add_argument(
        "--progress",
        type=positive_float,
        default=5.0,
        metavar="S",
        help="seconds between progress lines [5]",
    )
    p.add_argument(
        "--sim-dir",
        type=Path,
        help="where outboxes and the device list live [<state dir>/sim]",
    )


def _say(text: str) -> None:
    print(text, flush=True)


def cmd_simulate(args: argparse.Namespace, settings: Settings) -> int:
    from hub.sim.provision import ProvisionError
    from hub.sim.runner import SimulationError

    try:
        return _simulate(args, settings)
    except (CliError, ProvisionError, SimulationError) as exc:
        print(f"homestream simulate: error: {exc}", file=sys.stderr)
        return 2


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from hub.sim.devices import Behaviour
    from hub.sim.floorplan import DEMO_HOME_ID, demo_home, synthetic_home, synthetic_home_ids
    from hub.sim.provision import provision, sim_dir
    from hub.sim.runner import HubPlan, SimConfig, Simulation
    from runtime.secrets import DEMO_USER

    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=logging.WARNING,
            stream=sys.stderr,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )

    homes: list[str] = list(args.home or [])
    floorplan = args.floorplan
    if args.demo:
        if homes and homes != [DEMO_HOME_ID]:
            raise CliError("--demo simulates 'demo-home'; drop --home, or drop --demo")
        homes = [DEMO_HOME_ID]
        floorplan = floorplan or "demo"
    if not homes:
        try:
            homes = synthetic_home_ids(args.homes, args.prefix)
        except ValueError as exc:
            raise CliError(str(exc)) from None
    if len(set(homes)) != len(homes):
        raise CliError("a home is named twice in --home; name each home once")
    floorplan = floorplan or "generated"

    owner = args.owner or DEMO_USER
    logins = provision(
        settings,
        homes,
        owner,
        launcher=args.launcher(settings),
        say=_say,
        home_names={DEMO_HOME_ID: "Demo Home"},
    )

    tls_ca = settings.mqtt_ca_file if args.tls else None
    if tls_ca is not None and not tls_ca.exists():
        raise CliError(f"{tls_ca} does not exist: start the stack with `homestream up` first")
    if len(homes) > MAX_HUBS_PER_PROCESS:
        return _run_shards(args, homes, floorplan)
    behaviour = Behaviour(offline_every_s=None) if args.no_outages else Behaviour()
    config = SimConfig(
        state_dir=args.sim_dir or sim_dir(settings),
        host=settings.host,
        port=settings.ports.mqtt_tls if args.tls else settings.ports.mqtt,
        tls_ca=tls_ca,
        period_s=args.period,
        rate=args.rate,
        duration_s=args.duration,
        seed=args.seed,
        progress_s=args.progress,
        behaviour=behaviour,
    )
    # The devices after the sharding: a parent of many children builds none of them.
    plans = [
        HubPlan(
            login.home_id,
            login.username,
            login.password,
            demo_home()
            if floorplan == "demo"
            else synthetic_home(login.home_id, args.devices, args.seed),
        )
        for login in logins
    ]
    Simulation(plans, config, say=_say).run()
    return 0


def _run_shards(args: argparse.Namespace, homes: list[str], floorplan: str) -> int:
    """More hubs than one process carries: a `homestream simulate` child per share of the
    homes (provisioned already, so the children create nothing), each with its share of the
    rate; SIGTERM / Ctrl-C reach every child; the exit code is the worst of theirs."""
    import math
    import signal
    import subprocess

    n = math.ceil(len(homes) / MAX_HUBS_PER_PROCESS)
    shares = [homes[k::n] for k in range(n)]
    _say(
        f"{len(homes)} hubs in {n} processes of at most {MAX_HUBS_PER_PROCESS} (paho's "
        "select() cannot watch the sockets of more in one)"
    )
    children = []
    for share in shares:
        argv = [sys.executable, "-m", "homestream.cli", "simulate", "--floorplan", floorplan]
        argv += ["--devices", str(args.devices), "--seed", str(args.seed)]
        argv += ["--owner", args.owner] if args.owner else []
        if args.rate:
            argv += ["--rate", repr(args.rate * len(share) / len(homes))]
        else:
            argv += ["--period", repr(args.period)]
        argv += ["--duration", repr(args.duration)] if args.duration else []
        argv += ["--progress", repr(args.progress)]
        argv += ["--sim-dir", str(args.sim_dir)] if args.sim_dir else []
        argv += ["--tls"] if args.tls else []
        argv += ["--no-outages"] if args.no_outages else []
        for home in share:
            argv += ["--home", home]
        children.append(subprocess.Popen(argv))

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, forward)
    return max(child.wait() for child in children)
