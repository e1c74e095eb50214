"""Run one stream worker process: `homestream streams worker`."""

from __future__ import annotations

import logging
from pathlib import Path

from runtime.config import Settings


def worker_argv(
    name: str, data_dir: Path, guarantee: str = "exactly_once", metrics_port: int | None = None
) -> list[str]:
    """The command line of one worker process (the launcher's and the tests')."""
    import sys

    return [
        sys.executable,
        "-m",
        "homestream.cli",
        "streams",
        "worker",
        "--name",
        name,
        "--data-dir",
        str(data_dir),
        "--guarantee",
        guarantee,
        *(["--metrics-port", str(metrics_port)] if metrics_port else []),
        # Start, partitions owned, restore progress: a few lines, not one per event.
        "--loglevel",
        "info",
    ]


def run_worker(
    settings: Settings,
    *,
    name: str = "worker-1",
    data_dir: Path | None = None,
    guarantee: str = "exactly_once",
    loglevel: str = "warning",
    engine: str = "txloop",
    metrics_port: int | None = None,
) -> None:
    # RocksDB files are per worker name: two workers never share a directory, and a
    # restarted worker finds its own.
    data_dir = (data_dir or settings.state_dir / "streams") / name
    data_dir.mkdir(parents=True, exist_ok=True)
    if engine == "txloop":
        import os

        from runtime.logs import setup
        from streams.txloop import TxWorker

        setup(loglevel, settings.log_format)

        from streams.fold.config import ProcessorConfig

        config = ProcessorConfig.from_env(os.environ)
        TxWorker(settings, name, config=config, data_dir=data_dir, metrics_port=metrics_port).run()
        return
    from faust.worker import Worker

    from streams.app import create_app

    app = create_app(settings, data_dir=data_dir, guarantee=guarantee)
    logging.getLogger("homestream").setLevel(loglevel.upper())
    Worker(app, loglevel=loglevel, quiet=True, redirect_stdouts=False).execute_from_commandline()
