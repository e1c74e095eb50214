"""``homestream zigbee-sim``: the simulator as a process of its own."""

from __future__ import annotations

import argparse
import asyncio
import signal

from hub.znpsim.server import ZnpSimulator
from runtime.cli import CliError, out


async def run(args: argparse.Namespace) -> int:
    sim = ZnpSimulator(args.state_dir, port=args.port, control_port=args.control_port)
    for spec in args.device:
        name, _, kind = spec.partition("=")
        try:
            sim.add_device(name, kind)
        except ValueError as exc:
            raise CliError(f"--device {spec}: {exc}") from None
    try:
        await sim.start()
    except OSError as exc:
        raise CliError(
            f"cannot listen on port {args.port}/{args.control_port}: {exc.strerror}"
        ) from None
    out(f"ZNP simulator: socket://127.0.0.1:{sim.port} (control port {sim.control_port})")
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await sim.stop()
    return 0
