"""``homestream streams ...``: the stream workers' commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from runtime.cli import Commands, add_loglevel
from runtime.config import Settings


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.worker import run_worker

    run_worker(
        settings,
        name=args.name,
        data_dir=args.data_dir,
        loglevel=args.loglevel,
        metrics_port=args.metrics_port,
    )
    return 0


def register(commands: Commands) -> None:
    streams = commands.group("streams", "stream workers")
    p = streams.add(
        "worker",
        cmd_worker,
        "run one stream worker (registry, shadows, commands, health); runs until stopped",
    )
    p.add_argument(
        "--name",
        default="worker-1",
        help="worker name; its RocksDB tables live in <state dir>/streams/<name>",
    )
    p.add_argument("--data-dir", type=Path, help="where worker dirs live [<state dir>/streams]")
    add_loglevel(p, "warning")
    p.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus counters on http://<host>:PORT/metrics",
    )
