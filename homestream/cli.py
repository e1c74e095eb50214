"""The `homestream` command (CONTRACT.md section 1)."""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from homestream.config import PORT_VARS, ConfigError, Settings

EPILOG = (
    "Environment variables (defaults in brackets):\n"
    + "\n".join(f"  {var:<34} {desc} [{default}]" for var, default, desc in PORT_VARS.values())
    + (
        "\n  HOMESTREAM_STATE_DIR               data, logs, pid files, secrets [<repo>/.state]"
        "\n  HOMESTREAM_CACHE_DIR               downloaded Kafka jars [~/.cache/homestream]"
        "\n  HOMESTREAM_PARTITIONS              partitions per topic [6]"
        "\n  HOMESTREAM_STREAM_WORKERS          stream worker processes `up` starts [1]"
        "\n  HOMESTREAM_KAFKA_HEAP              Kafka JVM heap [768m]"
        "\n  HOMESTREAM_MQTT_TLS_BIND           address of the TLS listener [127.0.0.1]"
        "\n  HOMESTREAM_MQTT_TLS_SANS           extra names for the broker certificate (comma list)"
        "\n  HOMESTREAM_SCHEMA_REGISTRY_URL     use Confluent wire format with this registry"
        "\n  HOMESTREAM_KAFKA_BOOTSTRAP, HOMESTREAM_PG_DSN, HOMESTREAM_REDIS_URL"
        "\n                                     use servers the launcher does not run"
    )
)


class CliError(Exception):
    """A failure the user can fix; printed without a traceback."""


def _out(text: str) -> None:
    print(text, flush=True)


# -- stack ---------------------------------------------------------------------------
def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from compose.stack import DEMO_HOME, Stack
    from homestream.secrets import DEMO_USER

    secrets = Stack(settings, _out).up(install=not args.no_install, demo=not args.no_demo)
    s = settings
    _out("\nhomestream is up. Endpoints:")
    _out(f"  MQTT        mqtt://{s.host}:{s.ports.mqtt}")
    _out(f"  MQTT TLS    mqtts://{s.mqtt_tls_bind}:{s.ports.mqtt_tls}  (CA: {s.mqtt_ca_file})")
    _out(f"  Kafka       {s.kafka_bootstrap}")
    _out(f"  PostgreSQL  postgresql://{s.pg_user}@{s.host}:{s.ports.postgres}/{s.pg_database}")
    _out(f"  Redis       redis://{s.host}:{s.ports.redis}/0")
    _out(f"  Secrets     {s.secrets_file} (database, Redis and broker passwords)")
    if not args.no_demo:
        _out(f"\nDemo login:  {DEMO_USER} / {secrets.demo_password}   (home {DEMO_HOME!r})")
    return 0


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from compose.stack import Stack
    from compose.tls import ensure_certificates
    from homestream.secrets import ensure_secrets

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    ensure_certificates(
        settings.mqtt_ca_file.parent,
        settings.service_dir("mosquitto") / "tls",
        settings.mqtt_tls_sans,
    )
    Stack(settings, _out).provision(ensure_secrets(settings), demo=not args.no_demo)
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from compose.stack import Stack

    _out(f"stopping the stack in {settings.state_dir}")
    Stack(settings, _out).down(purge=args.purge)
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from compose.stack import Stack

    rows = Stack(settings, _out).status()
    if args.json:
        _out(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0 if rows and all(r.healthy for r in rows) else 1
    if not rows:
        _out(f"no stack in {settings.state_dir} (run `homestream up`)")
        return 1
    _out(f"{'SERVICE':<10} {'STATE':<10} {'PID':>7}  ENDPOINT")
    for r in rows:
        state = "healthy" if r.healthy else ("running" if r.running else "stopped")
        _out(f"{r.name:<10} {state:<10} {r.pid or '-':>7}  {r.endpoint}")
    return 0 if all(r.healthy for r in rows) else 1


# -- accounts ------------------------------------------------------------------------
def _conn(settings: Settings):
    from compose.stack import require_running
    from homestream import db

    require_running(settings)
    return db.connect(settings)


def cmd_users_add(args: argparse.Namespace, settings: Settings) -> int:
    from homestream import accounts

    password = args.password or getpass.getpass(f"password for {args.username}: ")
    with _conn(settings) as conn:
        accounts.add_user(conn, args.username, password)
    _out(json.dumps({"username": args.username, "created": True}))
    return 0


def cmd_homes_add(args: argparse.Namespace, settings: Settings) -> int:
    from homestream import accounts

    with _conn(settings) as conn:
        accounts.add_home(conn, args.home, args.owner, name=args.name)
    _out(json.dumps({"home_id": args.home, "owner": args.owner, "created": True}))
    return 0


def cmd_hubs_add(args: argparse.Namespace, settings: Settings) -> int:
    from compose.stack import Stack
    from homestream import accounts

    with _conn(settings) as conn:
        creds = accounts.add_hub(conn, args.home)
    Stack(settings, lambda _t: None).sync_mqtt_logins()
    s = settings
    _out(
        json.dumps(
            {
                "username": creds.username,
                "password": creds.password,
                "home_id": creds.home_id,
                "mqtt_host": s.host,
                "mqtt_port": s.ports.mqtt,
                "mqtt_tls_port": s.ports.mqtt_tls,
                "ca_file": str(s.mqtt_ca_file),
                "topic_prefix": f"hub/{creds.home_id}/",
            }
        )
    )
    return 0


def _require_kafka(settings: Settings) -> None:
    from confluent_kafka.admin import AdminClient

    try:
        md = AdminClient(
            {"bootstrap.servers": settings.kafka_bootstrap, "log_level": 0}
        ).list_topics(timeout=5)
        if md.brokers:
            return
    except Exception:  # KafkaException: no broker answered
        pass
    raise CliError(
        f"Kafka at {settings.kafka_bootstrap} is not reachable: start the stack with "
        "`homestream up`, or set HOMESTREAM_KAFKA_BOOTSTRAP / HOMESTREAM_KAFKA_PORT"
    )


# -- topics --------------------------------------------------------------------------
def cmd_topics_create(args: argparse.Namespace, settings: Settings) -> int:
    from topics.admin import ensure_topics
    from topics.catalogue import catalogue

    _require_kafka(settings)
    results = ensure_topics(settings.kafka_bootstrap, catalogue(), partitions=settings.partitions)
    bad = 0
    for name, outcome in results:
        _out(f"{name:<40} {outcome}")
        bad += outcome not in ("created", "exists")
    return 1 if bad else 0


def cmd_topics_describe(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from topics.admin import describe_topics
    from topics.catalogue import catalogue

    _require_kafka(settings)
    rows = describe_topics(settings.kafka_bootstrap, catalogue(), partitions=settings.partitions)
    if args.json:
        _out(json.dumps([asdict(r) for r in rows], indent=2, default=str))
    else:
        for r in rows:
            flag = "ok" if r.ok else "PROBLEM"
            _out(
                f"{r.name:<40} {flag:<8} partitions={r.partitions} cleanup={r.cleanup_policy} "
                f"retention.ms={r.retention_ms} {'; '.join(r.problems)}"
            )
    return 0 if all(r.ok for r in rows) else 1


# -- stream workers -------------------------------------------------------------------
def cmd_streams_worker(args: argparse.Namespace, settings: Settings) -> int:
    from streams.worker import run_worker

    run_worker(
        settings,
        name=args.name,
        data_dir=args.data_dir,
        guarantee=args.guarantee,
        loglevel=args.loglevel,
        engine=args.engine,
        metrics_port=args.metrics_port,
    )
    return 0


def cmd_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from hub.bridge import run_bridge

    return run_bridge(
        settings,
        name=args.name,
        metrics_port=args.metrics_port,
        loglevel=args.loglevel,
        data_dir=args.data_dir,
    )


def cmd_bench_streams(args: argparse.Namespace, settings: Settings) -> int:
    from streams.bench import print_result, run_bench

    _require_kafka(settings)
    result = run_bench(
        settings, homes=args.homes, backlog=args.backlog, rate=args.rate, seconds=args.seconds
    )
    print_result(result, args.json)
    return 0


def cmd_bench_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from gateway.bench import print_result, run_bench

    _require_kafka(settings)
    result = run_bench(
        settings,
        clients=args.clients,
        homes=args.homes,
        rate=args.rate,
        seconds=args.seconds,
        say=lambda line: print(line, file=sys.stderr),
    )
    print_result(result, args.json)
    return 0


def cmd_bench_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from hub.bench import print_result, run_bench

    _require_kafka(settings)
    result = run_bench(
        settings,
        messages=args.messages,
        command_rate=args.command_rate,
        command_seconds=args.command_seconds,
        say=lambda line: print(line, file=sys.stderr),
    )
    print_result(result, args.json)
    return 0


def _dlq_rows(args: argparse.Namespace, settings: Settings):
    from homestream.ops import dead_letters, parse_since

    _require_kafka(settings)
    return list(
        dead_letters(
            settings,
            home=args.home,
            reason=args.reason,
            since_ms=parse_since(args.since),
            limit=args.limit,
        )
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


def cmd_dlq_redrive(args: argparse.Namespace, settings: Settings) -> int:
    from homestream.ops import redrive

    rows = _dlq_rows(args, settings)
    result = redrive(settings, rows, dry_run=args.dry_run)
    verb = "would re-drive" if args.dry_run else "re-drove"
    print(
        f"{verb} {result.redriven} of {len(rows)} dead letter(s); {result.still_bad} still "
        f"refused, {result.skipped} could not be rebuilt"
    )
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    from homestream.ops import parse_since, replay

    _require_kafka(settings)
    moved = replay(
        settings,
        group=args.group,
        topic=args.topic,
        since_ms=parse_since(args.since),
        dry_run=args.dry_run,
    )
    for part, old, new in moved:
        print(f"{args.topic}/{part}: {old} -> {new}")
    verb = "would move" if args.dry_run else "moved"
    print(f"{verb} group {args.group} on {args.topic}; start its consumers to re-process")
    return 0


def cmd_sink_history(args: argparse.Namespace, settings: Settings) -> int:
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


def cmd_bench_history(args: argparse.Namespace, settings: Settings) -> int:
    from sinks.bench import print_result, run_bench

    _require_kafka(settings)
    result = run_bench(
        settings,
        changes=args.changes,
        attributes=args.attributes,
        rate=args.rate,
        seconds=args.seconds,
        say=lambda line: print(line, file=sys.stderr),
    )
    print_result(result, args.json)
    return 0


def cmd_sink_redis(args: argparse.Namespace, settings: Settings) -> int:
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


# -- parser --------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="homestream",
        description="homestream: open smart-home backend on Kafka. Runs and manages the local "
        "stack (Kafka, PostgreSQL, Redis, Mosquitto) and its accounts.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable, help_: str, parent=sub) -> argparse.ArgumentParser:
        p = parent.add_parser(
            name,
            help=help_,
            description=help_,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        p.set_defaults(func=func)
        return p

    p = add("up", cmd_up, "install what is missing and start the local stack (idempotent)")
    p.add_argument(
        "--no-install",
        action="store_true",
        help="do not run apt-get or mvn; fail if something is missing",
    )
    p.add_argument("--no-demo", action="store_true", help="do not create the demo user and home")
    p = add(
        "init",
        cmd_init,
        "prepare servers the launcher does not run (docker compose): migrations, topics, "
        "Mosquitto's password file and ACL in the state dir",
    )
    p.add_argument("--no-demo", action="store_true", help="do not create the demo user and home")
    p = add("down", cmd_down, "stop what `up` started (by pid file)")
    p.add_argument(
        "--purge",
        action="store_true",
        help="also delete the state directory: all data, logs and secrets",
    )
    p = add("status", cmd_status, "show each service, its pid, health and endpoint")
    p.add_argument("--json", action="store_true", help="machine-readable output")

    users = add("users", None, "manage logins").add_subparsers(dest="sub", required=True)
    p = add("add", cmd_users_add, "create a login (password hashed with argon2id)", users)
    p.add_argument("--username", required=True)
    p.add_argument("--password", help="at least 8 characters (prompted for when omitted)")

    homes = add("homes", None, "manage homes").add_subparsers(dest="sub", required=True)
    p = add("add", cmd_homes_add, "create a home owned by a user", homes)
    p.add_argument("--home", required=True, help="home id: letters, digits, _ and -")
    p.add_argument("--owner", required=True, help="username of the owner")
    p.add_argument("--name", help="display name (default: the home id)")

    hubs = add("hubs", None, "manage hub MQTT logins").add_subparsers(dest="sub", required=True)
    p = add(
        "add",
        cmd_hubs_add,
        "create MQTT credentials for the hub of a home; prints them as JSON",
        hubs,
    )
    p.add_argument("--home", required=True)

    streams = add("streams", None, "stream workers").add_subparsers(dest="sub", required=True)
    p = add(
        "worker",
        cmd_streams_worker,
        "run one stream worker (registry, shadows, commands, health); runs until stopped",
        streams,
    )
    p.add_argument(
        "--name",
        default="worker-1",
        help="worker name; its RocksDB tables live in <state dir>/streams/<name>",
    )
    p.add_argument("--data-dir", type=Path, help="where worker dirs live [<state dir>/streams]")
    p.add_argument(
        "--guarantee",
        choices=("exactly_once", "at_least_once"),
        default="exactly_once",
        help="Kafka processing guarantee (docs/streams.md)",
    )
    p.add_argument("--loglevel", default="warning", choices=("debug", "info", "warning", "error"))
    p.add_argument(
        "--metrics-port",
        type=int,
        help="serve Prometheus counters on http://<host>:PORT/metrics (txloop engine)",
    )
    p.add_argument(
        "--engine",
        choices=("txloop", "faust"),
        default="txloop",
        help="txloop: our Kafka-transaction loop (exactly-once); faust: the Faust app "
        "(--guarantee applies; not exactly-once across a crash, see docs/streams.md)",
    )

    p = add(
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
    p.add_argument("--loglevel", default="info", choices=("debug", "info", "warning", "error"))

    from hub.sim import cli as sim_cli

    sim_cli.add_arguments(add("simulate", sim_cli.cmd_simulate, sim_cli.HELP))

    bench = add("bench", None, "benchmarks against the running stack").add_subparsers(
        dest="sub", required=True
    )
    p = add(
        "streams",
        cmd_bench_streams,
        "stream workers through Kafka: backlog throughput (90%% unchanged reports) and "
        "report-in to StateChange-out latency at a steady rate; needs `homestream up`",
        bench,
    )
    p.add_argument("--homes", type=int, default=200, help="homes (5 sensors each) [200]")
    p.add_argument("--backlog", type=int, default=50_000, help="reports in the backlog [50000]")
    p.add_argument("--rate", type=int, default=2_000, help="reports/s for latency [2000]")
    p.add_argument("--seconds", type=float, default=15.0, help="latency phase length [15]")
    p.add_argument("--json", action="store_true")

    p = add(
        "bridge",
        cmd_bench_bridge,
        "the MQTT bridge: QoS 1 MQTT -> Kafka throughput of one bridge process (draining a "
        "queued backlog) and the command round trip command -> hub -> ack -> COMPLETED; needs "
        "`homestream up` (a stream worker for the round trip)",
        bench,
    )
    p.add_argument("--messages", type=int, default=60_000, help="backlog to publish [60000]")
    p.add_argument("--command-rate", type=int, default=20, help="commands/s [20]")
    p.add_argument("--command-seconds", type=float, default=15.0, help="round-trip phase [15]")
    p.add_argument("--json", action="store_true")
    p = add(
        "gateway",
        cmd_bench_gateway,
        "WebSocket fan-out: many clients, state changes at a steady rate; report-in to "
        "client latency and gateway memory per connection; needs `homestream up`",
        bench,
    )
    p.add_argument("--clients", type=int, default=1000, help="WebSocket clients [1000]")
    p.add_argument("--homes", type=int, default=100, help="homes they follow [100]")
    p.add_argument("--rate", type=int, default=1000, help="state changes/s [1000]")
    p.add_argument("--seconds", type=float, default=20.0, help="measured phase [20]")
    p.add_argument("--json", action="store_true")

    dlq = add("dlq", None, "dead letters: inspect and re-drive").add_subparsers(
        dest="sub", required=True
    )
    for name, func, help_ in (
        ("list", cmd_dlq_list, "list dead letters with their reason and where they came from"),
        (
            "redrive",
            cmd_dlq_redrive,
            "put dead letters back on their way (MQTT ones through the bridge's parser again, "
            "Kafka ones to their source topic, stream refusals as the event they were)",
        ),
    ):
        p = add(name, func, help_, dlq)
        p.add_argument("--home", help="only this home")
        p.add_argument("--reason", help="only this reason, e.g. UNKNOWN_DEVICE, MALFORMED_JSON")
        p.add_argument("--since", help="from this time: 30m, 2h, 7d, ISO time or epoch ms")
        p.add_argument("--limit", type=int, help="at most this many")
        if name == "list":
            p.add_argument("--json", action="store_true")
        else:
            p.add_argument("--dry-run", action="store_true", help="say what would be done")
    p = add(
        "replay",
        cmd_replay,
        "re-process a topic range: move a consumer group back to a time (its consumers must "
        "be stopped); history and shadows are idempotent, so nothing is counted twice",
    )
    p.add_argument("--group", required=True, help="consumer group, e.g. homestream-streams")
    p.add_argument("--topic", required=True, help="topic, e.g. homestream.state.changes")
    p.add_argument("--since", required=True, help="30m, 2h, 7d, ISO time, epoch ms, or 0")
    p.add_argument("--dry-run", action="store_true", help="show the offsets, move nothing")

    # -- history sink (issue #5) --
    sink = add("sink", None, "sinks: Kafka events into stores").add_subparsers(
        dest="sub", required=True
    )
    p = add(
        "history",
        cmd_sink_history,
        "run one history sink: state changes, device events, command outcomes, notifications, "
        "availability and the registry into PostgreSQL (docs/history.md); runs until stopped",
        sink,
    )
    p.add_argument("--name", default="history-1", help="sink name (Kafka client id)")
    p.add_argument("--group", default="homestream-history", help="consumer group")
    p.add_argument("--data-dir", type=Path, help="where the sink writes counters.json on stop")
    p.add_argument("--metrics-port", type=int, help="serve Prometheus counters on this port")
    p.add_argument("--batch-size", type=int, default=5000, help="records per batch [5000]")
    p.add_argument("--loglevel", default="info", choices=("debug", "info", "warning", "error"))
    p = add(
        "history",
        cmd_bench_history,
        "the history sink: rows/s into PostgreSQL of one sink process (a backlog of "
        "StateChanges) and sink lag at a steady rate; needs `homestream up`",
        bench,
    )
    p.add_argument("--changes", type=int, default=100_000, help="backlog StateChanges [100000]")
    p.add_argument("--attributes", type=int, default=3, help="changed attributes each [3]")
    p.add_argument("--rate", type=int, default=5_000, help="changes/s for the lag phase [5000]")
    p.add_argument("--seconds", type=float, default=20.0, help="lag phase length [20]")
    p.add_argument("--json", action="store_true")

    # -- Redis sink (issue #5) --
    p = add(
        "redis",
        cmd_sink_redis,
        "run one Redis sink: device registry, shadows and availability into Redis for the "
        "gateway (docs/redis.md); runs until stopped",
        sink,
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
    p.add_argument("--loglevel", default="info", choices=("debug", "info", "warning", "error"))

    # -- gateway (issue #6) --
    def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
        from gateway.service import run_gateway

        return run_gateway(
            settings,
            host=args.host,
            port=args.port,
            loglevel=args.loglevel,
            data_dir=args.data_dir,
        )

    p = add(
        "gateway",
        cmd_gateway,
        "run the REST/WebSocket gateway in the foreground (uvicorn on HOMESTREAM_GATEWAY_PORT; "
        "`up` runs it for you); API description at /openapi.json",
    )
    p.add_argument("--host", help="address to listen on [HOMESTREAM_HOST]")
    p.add_argument("--port", type=int, help="port [HOMESTREAM_GATEWAY_PORT]")
    p.add_argument("--data-dir", type=Path, help="the service's directory (pid-file marker)")
    p.add_argument("--loglevel", default="info", choices=("debug", "info", "warning", "error"))

    topics = add("topics", None, "Kafka topic catalogue").add_subparsers(dest="sub", required=True)
    add("create", cmd_topics_create, "create every catalogue topic (idempotent)", topics)
    p = add(
        "describe", cmd_topics_describe, "compare the broker's topics with the catalogue", topics
    )
    p.add_argument("--json", action="store_true")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from compose.errors import LauncherError
    from homestream.accounts import AccountError
    from homestream.db import DatabaseUnavailable
    from homestream.secrets import SecretsMissing

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
        return int(args.func(args, settings) or 0)
    except (
        CliError,
        ConfigError,
        LauncherError,
        AccountError,
        DatabaseUnavailable,
        SecretsMissing,
    ) as exc:
        print(f"homestream {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
