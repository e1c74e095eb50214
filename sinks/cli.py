"""``homestream sink ...`` (the history and Redis sinks) and ``homestream notify`` (delivery
of notifications to members' channels), in the foreground."""

from __future__ import annotations

import argparse
from pathlib import Path

from runtime.cli import Commands, add_loglevel
from runtime.config import Settings


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    from sinks.history import run_sink

    return run_sink(
        settings,
        name=args.name,
        group=args.group,
        metrics_port=args.metrics_port,
        loglevel=args.loglevel,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
    )


def cmd_redis(args: argparse.Namespace, settings: Settings) -> int:
    from sinks.redis_sink import run_redis_sink

    return run_redis_sink(
        settings,
        args.name,
        args.metrics_port,
        group=args.group,
        prefix=args.prefix,
        batch_size=args.batch_size,
        rebuild=args.rebuild,
        rebuild_only=args.rebuild_only,
        loglevel=args.loglevel,
        data_dir=args.data_dir,
    )


def cmd_notify(args: argparse.Namespace, settings: Settings) -> int:
    from sinks.notify import run_notify

    return run_notify(
        settings,
        name=args.name,
        group=args.group,
        metrics_port=args.metrics_port,
        loglevel=args.loglevel,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
    )


def register(commands: Commands) -> None:
    sink = commands.group("sink", "sinks: Kafka events into stores")
    p = sink.add(
        "history",
        cmd_history,
        "run one history sink: state changes, device events, command outcomes, notifications, "
        "availability and the registry into PostgreSQL (docs/history.md); runs until stopped",
    )
    p.add_argument("--name", default="history-1", help="sink name (Kafka client id)")
    p.add_argument("--group", default="homestream-history", help="consumer group")
    p.add_argument("--data-dir", type=Path, help="where the sink writes counters.json on stop")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus counters on this port")
    p.add_argument("--batch-size", type=int, default=5000, help="records per batch [5000]")
    add_loglevel(p)

    p = sink.add(
        "redis",
        cmd_redis,
        "run one Redis sink: device registry, shadows and availability into Redis for the "
        "gateway (docs/redis.md); runs until stopped",
    )
    p.add_argument("--name", default="redis-1", help="sink name (Kafka client id)")
    p.add_argument("--group", default="homestream-redis-sink", help="consumer group")
    p.add_argument("--prefix", default="hs", help="Redis key prefix [hs]")
    p.add_argument("--data-dir", type=Path, help="where the sink writes counters.json on stop")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus counters on this port")
    p.add_argument("--batch-size", type=int, default=2000, help="records per batch [2000]")
    p.add_argument(
        "--rebuild",
        action="store_true",
        help="first rebuild the state from the beginning of the topics into a new generation "
        "and swap it in, then run",
    )
    p.add_argument("--rebuild-only", action="store_true", help="rebuild, swap, and exit")
    add_loglevel(p)

    p = commands.add(
        "notify",
        cmd_notify,
        "run one notification delivery process: notifications to each member's channels "
        "(webhooks, email, ntfy, ... through apprise), at least once, with backoff "
        "(docs/notifications.md); runs until stopped",
    )
    p.add_argument("--name", default="notify-1", help="process name (Kafka client id)")
    p.add_argument("--group", default="homestream-notify", help="consumer group")
    p.add_argument("--data-dir", type=Path, help="where it writes counters.json on stop")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus counters on this port")
    p.add_argument("--batch-size", type=int, default=500, help="records per batch [500]")
    add_loglevel(p)
