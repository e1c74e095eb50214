"""The `homestream` command (CONTRACT.md section 1)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from runtime.cli import CliError, Commands, Parser, out, positive_int, require_kafka
from runtime.config import ConfigError, Settings

if TYPE_CHECKING:
    from homestream.ops import Reparsed


def _epilog() -> str:
    """Every HOMESTREAM_* variable with its default, from the one settings object."""
    lines = ["Environment variables (defaults in brackets; `homestream config` shows values):"]
    for _name, var, info in Settings.variables():
        default = info.default
        if var == "HOMESTREAM_STATE_DIR":
            default = "<repo>/.state"
        elif var == "HOMESTREAM_CACHE_DIR":
            default = "~/.cache/homestream"
        elif isinstance(default, bool):
            default = int(default)
        shown = f" [{default}]" if default not in (None, ()) else ""
        lines.append(f"  {var:<36} {info.description}{shown}")
    return "\n".join(lines)


# What `homestream COMMAND --help` shows under "Example:" (one place for all of them).
EXAMPLES = {
    "up": "homestream up",
    "init": "homestream init",
    "down": "homestream down",
    "status": "homestream status",
    "demo-login": "homestream demo-login",
    "psql": "homestream psql -- -c 'SELECT * FROM history.devices LIMIT 5'",
    "sql": "homestream sql -- -c 'SELECT count(*) FROM history.state_history'",
    "config": "homestream config --json",
    "users add": "homestream users add --username alice --password 'correct horse'",
    "users list": "homestream users list",
    "users disable": "homestream users disable --username alice   # --enable undoes it",
    "users passwd": "homestream users passwd --username alice",
    "users remove": "homestream users remove --username alice",
    "homes add": "homestream homes add --home flat-12 --owner alice --name 'Flat 12'",
    "homes list": "homestream homes list",
    "homes remove": "homestream homes remove --home flat-12 --yes",
    "hubs add": "homestream hubs add --home flat-12 > hub-login.json",
    "hubs list": "homestream hubs list --home flat-12",
    "hubs rotate": "homestream hubs rotate --username hub-flat-12-a1b2c3",
    "hubs revoke": "homestream hubs revoke --username hub-flat-12-a1b2c3",
    "streams worker": "homestream streams worker --loglevel debug",
    "bridge": "homestream bridge",
    "simulate": "homestream simulate --homes 2 --devices 10 --rate 5",
    "hub run": "homestream hub run --config /etc/homestream/hub.toml",
    "zigbee-sim": "homestream zigbee-sim --state-dir zigbee-sim --device hall=dimmer",
    "report": "homestream report --device hallway-motion --state '{\"motion\": true}'",
    "sink history": "homestream sink history",
    "sink redis": "homestream sink redis",
    "notify": "homestream notify",
    "gateway": "homestream gateway --port 8081",
    "bench streams": "homestream bench streams --json",
    "bench bridge": "homestream bench bridge",
    "bench e2e": "homestream bench e2e --rates 1000,5000,10000 --write",
    "bench gateway": "homestream bench gateway --clients 200 --seconds 10",
    "bench graphql": "homestream bench graphql --clients 10 --rate 50",
    "bench automations": "homestream bench automations",
    "bench history": "homestream bench history",
    "bench history-engines": "homestream bench history-engines --rows 2000000 --homes 20",
    "bench notifications": "homestream bench notifications",
    "bench radio": "homestream bench radio --protocol zigbee --commands 500",
    "bench offline": "homestream bench offline --rounds 300 --notifies 500 --services 10",
    "bench scenes": "homestream bench scenes",
    "bench txfloor": "homestream bench txfloor --rates 1000,2000 --rounds 2",
    "bench voice": "homestream bench voice --requests 10",
    "voice serve": "homestream voice serve --wyoming tcp://0.0.0.0:10300 --home demo-home",
    "logbook": "homestream logbook --home demo-home --since 2h --area kitchen",
    "dlq list": "homestream dlq list --since 2h --reason UNKNOWN_DEVICE",
    "dlq redrive": "homestream dlq redrive --home demo-home --dry-run",
    "replay": "homestream replay --group homestream-sink-history "
    "--topic homestream.state.changes --since 2h --dry-run",
    "trace": "homestream trace 0b6c7a44-3f1e-4c55-9a43-2d4c1e5f9a10 --home demo-home",
    "topics create": "homestream topics create",
    "topics describe": "homestream topics describe",
    "topics republish-config": "homestream topics republish-config --home demo-home",
}


def leaf_commands(
    parser: argparse.ArgumentParser, words: tuple[str, ...] = ()
) -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """("dlq list", its parser) for every command that runs something."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from leaf_commands(sub, (*words, name))
            return
    yield " ".join(words), parser


def _add_examples(parser: argparse.ArgumentParser) -> None:
    for words, sub in leaf_commands(parser):
        example = EXAMPLES.get(words)
        if example:
            sub.epilog = f"Example:\n  {example}\n\n{sub.epilog or ''}".rstrip()


# -- settings ------------------------------------------------------------------------
def cmd_config(args: argparse.Namespace, settings: Settings) -> int:
    rows = settings.effective()
    if args.json:
        out(json.dumps(rows, indent=2))
        return 0
    for row in rows:
        value = "" if row["value"] is None else row["value"]
        if isinstance(value, bool):
            value = int(value)
        mark = "*" if row["source"] == "environment" else " "
        out(f"{mark} {row['variable']:<36} {value}")
    out("(* set in the environment; the rest are defaults. Secrets are masked.)")
    return 0


def _conn(settings: Settings):
    from compose.stack import require_running
    from stores import db

    require_running(settings)
    return db.connect(settings)


# -- topics --------------------------------------------------------------------------
def cmd_topics_create(args: argparse.Namespace, settings: Settings) -> int:
    from topics.admin import ensure_topics
    from topics.catalogue import catalogue

    require_kafka(settings)
    rf, isr = settings.kafka_replication
    results = ensure_topics(
        settings.kafka_bootstrap,
        catalogue(),
        partitions=settings.partitions,
        replication_factor=rf,
        min_insync_replicas=isr,
    )
    bad = 0
    for name, outcome in results:
        out(f"{name:<40} {outcome}")
        bad += outcome not in ("created", "exists")
    return 1 if bad else 0


def cmd_topics_republish_config(args: argparse.Namespace, settings: Settings) -> int:
    from stores.home_documents import config_fields, config_key, stored_documents
    from topics import catalogue as t
    from topics.producer import EventProducer

    require_kafka(settings)
    producer = EventProducer(settings.kafka_bootstrap, settings.partitions)
    sent = 0
    with _conn(settings) as conn:
        for home, kind, doc_id, document, by in stored_documents(conn, args.home):
            producer.send(
                t.HOME_CONFIG,
                "HomeConfig",
                home,
                key=config_key(home, kind, doc_id),
                **config_fields(kind, doc_id, document, by),
            )
            sent += 1
            if sent % 1000 == 0:
                out(f"  {sent:,} documents sent")
    producer.flush(60)
    out(f"{sent:,} documents republished to {t.HOME_CONFIG}")
    return 0


def cmd_topics_describe(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from topics.admin import describe_topics
    from topics.catalogue import catalogue

    require_kafka(settings)
    rows = describe_topics(settings.kafka_bootstrap, catalogue(), partitions=settings.partitions)
    if args.json:
        out(json.dumps([asdict(r) for r in rows], indent=2, default=str))
    else:
        for r in rows:
            flag = "ok" if r.ok else "PROBLEM"
            out(
                f"{r.name:<40} {flag:<8} partitions={r.partitions} cleanup={r.cleanup_policy} "
                f"retention.ms={r.retention_ms} {'; '.join(r.problems)}"
            )
    return 0 if all(r.ok for r in rows) else 1


def _dlq_rows(args: argparse.Namespace, settings: Settings):
    from homestream.ops import check_reason, dead_letters, parse_since

    since_ms, reason = parse_since(args.since), check_reason(args.reason)
    require_kafka(settings)
    return list(
        dead_letters(settings, home=args.home, reason=reason, since_ms=since_ms, limit=args.limit)
    )


def cmd_dlq_list(args: argparse.Namespace, settings: Settings) -> int:
    rows = _dlq_rows(args, settings)
    if args.json:
        out = [
            {
                "partition": r.partition,
                "offset": r.offset,
                **{k: v for k, v in r.record.items() if k != "original"},
                "original": r.record["original"].decode("utf-8", "replace"),
            }
            for r in rows
        ]
        print(json.dumps(out, indent=2, default=str))
        return 0
    for r in rows:
        rec = r.record
        print(
            f"{r.when}  {rec['home_id'] or '-':<16} {rec['reason']:<18} {r.where}\n"
            f"    {rec['message'][:300]}"
        )
    print(f"{len(rows)} dead letter(s)", file=sys.stderr)
    return 0


def _reparse_mqtt(topic: str, payload: bytes, now: int) -> Reparsed:
    """The bridge's parser, for ``dlq redrive`` of MQTT originals (homestream.ops.Reparse)."""
    from hub import wire

    parsed = wire.parse(topic, payload, received_at=now)
    if isinstance(parsed, wire.Inbound):
        return parsed.kafka_topic, parsed.record_name, parsed.home_id, parsed.fields
    if isinstance(parsed, wire.Rejected):
        return parsed.message
    return None


class _StackLauncher:
    """The launcher's hooks that ``homestream simulate`` provisions hub logins through."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def require_running(self) -> None:
        from compose.stack import require_running

        require_running(self.settings)

    def sync_mqtt_logins(self) -> object:
        from compose.stack import Stack

        return Stack(self.settings, lambda _t: None).sync_mqtt_logins()


def cmd_dlq_redrive(args: argparse.Namespace, settings: Settings) -> int:
    from homestream.ops import redrive

    rows = _dlq_rows(args, settings)
    result = redrive(settings, rows, reparse=_reparse_mqtt, dry_run=args.dry_run)
    verb = "would re-drive" if args.dry_run else "re-drove"
    print(
        f"{verb} {result.redriven} of {len(rows)} dead letter(s); {result.still_bad} still "
        f"refused, {result.skipped} could not be rebuilt"
    )
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from homestream.ops import parse_since, replay

    since_ms = parse_since(args.since)
    require_kafka(settings)
    moved = replay(
        settings, group=args.group, topic=args.topic, since_ms=since_ms, dry_run=args.dry_run
    )
    for part, old, new in moved:
        print(f"{args.topic}/{part}: {'none' if old is None else old} -> {new}")
    if args.dry_run:
        print(f"would move group {args.group} on {args.topic} (nothing moved: a dry run)")
    else:
        print(f"moved group {args.group} on {args.topic}; start its consumers to re-process")
    return 0


# -- parser --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    """The whole command line: each package registers its own commands (its ``cli.py``);
    this is the one place that wires packages into each other."""
    from bench import cli as bench_cli
    from compose import cli as compose_cli
    from gateway import cli as gateway_cli
    from homestream import logbook_cli, manage, trace_cli
    from homestream.ops import dead_letter_reasons
    from hub import cli as hub_cli
    from sinks import cli as sinks_cli
    from streams import cli as streams_cli
    from voice import cli as voice_cli

    parser = Parser(
        prog="homestream",
        description="homestream: open smart-home backend on Kafka. Runs and manages the local "
        "stack (Kafka, PostgreSQL, Redis, Mosquitto) and its accounts.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = Commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    compose_cli.register(commands)
    p = commands.add("config", cmd_config, "print the effective settings (secrets masked)")
    p.add_argument("--json", action="store_true", help="print them as JSON")

    manage.register(commands)
    logbook_cli.register(commands)
    trace_cli.register(commands)
    streams_cli.register(commands)
    hub_cli.register(commands, launcher=_StackLauncher)
    sinks_cli.register(commands)
    gateway_cli.register(commands, sync_hub_logins=lambda s: _StackLauncher(s).sync_mqtt_logins)
    voice_cli.register(commands)
    bench_cli.register(commands)

    dlq = commands.group("dlq", "dead letters: inspect and re-drive")
    for name, func, help_ in (
        ("list", cmd_dlq_list, "list dead letters with their reason and where they came from"),
        (
            "redrive",
            cmd_dlq_redrive,
            "put dead letters back on their way (MQTT ones through the bridge's parser again, "
            "Kafka ones to their source topic, stream refusals as the event they were)",
        ),
    ):
        p = dlq.add(name, func, help_)
        p.add_argument("--home", help="only this home")
        p.add_argument(
            "--reason",
            help="only this reason: " + ", ".join(dead_letter_reasons()),
        )
        p.add_argument("--since", help="from this time: 30m, 2h, 7d, ISO time or epoch ms")
        p.add_argument("--limit", type=positive_int, help="at most this many (1 or more)")
        if name == "list":
            p.add_argument("--json", action="store_true", help="print the rows as JSON")
        else:
            p.add_argument("--dry-run", action="store_true", help="say what would be done")
    p = commands.add(
        "replay",
        cmd_replay,
        "re-process a topic range: move a consumer group back to a time (its consumers must "
        "be stopped; --dry-run previews while they run); history and shadows are "
        "idempotent, so nothing is counted twice",
    )
    p.add_argument("--group", required=True, help="consumer group, e.g. homestream-streams")
    p.add_argument("--topic", required=True, help="topic, e.g. homestream.state.changes")
    p.add_argument("--since", required=True, help="30m, 2h, 7d, ISO time, epoch ms, or 0")
    p.add_argument("--dry-run", action="store_true", help="show the offsets, move nothing")

    topics = commands.group("topics", "Kafka topic catalogue")
    topics.add("create", cmd_topics_create, "create every catalogue topic (idempotent)")
    p = topics.add(
        "describe", cmd_topics_describe, "compare the broker's topics with the catalogue"
    )
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    p = topics.add(
        "republish-config",
        cmd_topics_republish_config,
        "send every stored group, scene, automation and home setting to homestream.homes.config "
        "again (once after upgrading from a version that did not publish them; unchanged "
        "documents change nothing in the workers)",
    )
    p.add_argument("--home", help="only this home's documents")
    _add_examples(parser)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from confluent_kafka import KafkaException

    from compose.errors import LauncherError
    from homestream.ops import OpsError
    from runtime.secrets import SecretsMissing
    from stores.accounts import AccountError
    from stores.db import DatabaseUnavailable

    parser = build_parser()
    args = parser.parse_args(argv)
    name = " ".join(w for w in ("homestream", args.command, getattr(args, "sub", None)) if w)
    try:
        settings = Settings.from_env().with_recorded_cluster()
        return int(args.func(args, settings) or 0)
    except (
        CliError,
        ConfigError,
        LauncherError,
        AccountError,
        DatabaseUnavailable,
        SecretsMissing,
        OpsError,
    ) as exc:
        print(f"{name}: error: {exc}", file=sys.stderr)
        return 2
    except KafkaException as exc:
        print(
            f"{name}: error: Kafka said {exc.args[0] if exc.args else exc}: is the stack up "
            "(`homestream status`)?",
            file=sys.stderr,
        )
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
