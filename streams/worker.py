"""Run one stream worker process: `homestream streams worker`."""

from __future__ import annotations

from pathlib import Path

from runtime.cli import command_line
from runtime.config import Settings


def worker_argv(name: str, data_dir: Path, metrics_port: int | None = None) -> list[str]:
    """The command line of one worker process (the launcher's and the tests')."""
    # Start, partitions owned, restore progress: a few lines, not one per event.
    return command_line(
        "streams",
        "worker",
        name=name,
        data_dir=data_dir,
        metrics_port=metrics_port or None,
        loglevel="info",
    )


def run_worker(
    settings: Settings,
    *,
    name: str = "worker-1",
    data_dir: Path | None = None,
    loglevel: str = "warning",
    metrics_port: int | None = None,
) -> None:
    from runtime.logs import setup
    from streams.fold.config import ProcessorConfig
    from streams.txloop import TxWorker

    # RocksDB files are per worker name: two workers never share a directory, and a
    # restarted worker finds its own.
    data_dir = (data_dir or settings.state_dir / "streams") / name
    data_dir.mkdir(parents=True, exist_ok=True)
    setup(loglevel, settings.log_format)
    config = ProcessorConfig.from_settings(settings)
    TxWorker(settings, name, config=config, data_dir=data_dir, metrics_port=metrics_port).run()
