"""``homestream bench ...``: measurements against the running stack (BENCHMARKS.md)."""

from __future__ import annotations

import argparse
import sys

from runtime.cli import Commands, require_kafka, share
from runtime.cli import positive_float as amount
from runtime.cli import positive_int as count
from runtime.config import Settings


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def cmd_streams(args: argparse.Namespace, settings: Settings) -> int:
    from bench.workers import print_result, run_bench

    require_kafka(settings)
    result = run_bench(
        settings, homes=args.homes, backlog=args.backlog, rate=args.rate, seconds=args.seconds
    )
    print_result(result, args.json)
    return 0


def cmd_bridge(args: argparse.Namespace, settings: Settings) -> int:
    from bench.bridge import print_result, run_bench

    require_kafka(settings)
    result = run_bench(
        settings,
        messages=args.messages,
        command_rate=args.command_rate,
        command_seconds=args.command_seconds,
        say=_say,
    )
    print_result(result, args.json)
    return 0


def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
    from bench.fanout import print_result, run_bench

    require_kafka(settings)
    result = run_bench(
        settings,
        clients=args.clients,
        homes=args.homes,
        rate=args.rate,
        seconds=args.seconds,
        say=_say,
    )
    print_result(result, args.json)
    return 0


def cmd_history(args: argparse.Namespace, settings: Settings) -> int:
    from bench.sink_writes import print_result, run_bench

    require_kafka(settings)
    result = run_bench(
        settings,
        changes=args.changes,
        attributes=args.attributes,
        rate=args.rate,
        seconds=args.seconds,
        say=_say,
    )
    print_result(result, args.json)
    return 0


def cmd_radio(args: argparse.Namespace, settings: Settings) -> int:
    from bench.radio import print_result, run_bench

    result = run_bench(
        protocol=args.protocol,
        devices=args.devices,
        commands=args.commands,
        reports=args.reports,
        say=_say,
    )
    print_result(result, args.json)
    return 0


def cmd_history_engines(args: argparse.Namespace, settings: Settings) -> int:
    from bench.history_storage import print_results, run_bench

    require_kafka(settings)
    results = run_bench(
        settings,
        rows=args.rows,
        days=args.days,
        homes=args.homes,
        devices=args.devices,
        repeat=args.repeat,
        sink_changes=args.sink_changes,
        engines=tuple(args.engine or ("timescaledb", "native")),
        keep=args.keep,
        say=_say,
    )
    print_results(results, args.json)
    return 0 if results else 1


def cmd_scenes(args: argparse.Namespace, settings: Settings) -> int:
    from bench.scenes import print_result, run_bench

    require_kafka(settings)
    result = run_bench(settings, devices=args.devices, runs=args.runs, say=_say)
    print_result(result, args.json)
    return 0


def cmd_notifications(args: argparse.Namespace, settings: Settings) -> int:
    from bench.notifications import print_result, run_bench

    require_kafka(settings)
    result = run_bench(settings, events=args.events, rate=args.rate, burst=args.burst, say=_say)
    print_result(result, args.json)
    return 0


def cmd_automations(args: argparse.Namespace, settings: Settings) -> int:
    from bench.automations import print_result, run_fold, run_latency

    results = {}
    if not args.latency_only:
        results["fold"] = run_fold(
            homes=args.homes, reports=args.reports, motion_share=args.motion_share, say=_say
        )
    if not args.fold_only:
        require_kafka(settings)
        results["latency"] = run_latency(
            settings,
            homes=args.latency_homes,
            rate=args.rate,
            seconds=args.seconds,
            motion_share=args.latency_motion_share,
            say=_say,
        )
    for name, result in results.items():
        if not args.json:
            print(f"-- {name}")
        print_result(result, args.json)
    return 0


def cmd_voice(args: argparse.Namespace, settings: Settings) -> int:
    from bench.voice import print_result, run_bench

    result = run_bench(settings, rounds=args.rounds, requests=args.requests, say=_say)
    print_result(result, args.json)
    return 0


def cmd_graphql(args: argparse.Namespace, settings: Settings) -> int:
    from bench.graphql import print_result, run_bench

    result = run_bench(
        settings,
        devices=args.devices,
        requests=args.requests,
        homes=args.homes,
        clients=args.clients,
        rate=args.rate,
        seconds=args.seconds,
        say=_say,
    )
    print_result(result, args.json)
    return 0


def register(commands: Commands) -> None:
    bench = commands.group("bench", "benchmarks against the running stack")
    p = bench.add(
        "streams",
        cmd_streams,
        "stream workers through Kafka: backlog throughput (90%% unchanged reports) and "
        "report-in to StateChange-out latency at a steady rate; needs `homestream up`",
    )
    p.add_argument("--homes", type=count, default=200, help="homes (5 sensors each) [200]")
    p.add_argument("--backlog", type=count, default=50_000, help="reports in the backlog [50000]")
    p.add_argument("--rate", type=count, default=2_000, help="reports/s for latency [2000]")
    p.add_argument("--seconds", type=amount, default=15.0, help="latency phase length [15]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = bench.add(
        "bridge",
        cmd_bridge,
        "the MQTT bridge: QoS 1 MQTT -> Kafka throughput of one bridge process (draining a "
        "queued backlog) and the command round trip command -> hub -> ack -> COMPLETED; needs "
        "`homestream up` (a stream worker for the round trip)",
    )
    p.add_argument("--messages", type=count, default=60_000, help="backlog to publish [60000]")
    p.add_argument("--command-rate", type=count, default=20, help="commands/s [20]")
    p.add_argument("--command-seconds", type=amount, default=15.0, help="round-trip phase [15]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = bench.add(
        "gateway",
        cmd_gateway,
        "WebSocket fan-out: many clients, state changes at a steady rate; report-in to "
        "client latency and gateway memory per connection; needs `homestream up`",
    )
    p.add_argument("--clients", type=count, default=1000, help="WebSocket clients [1000]")
    p.add_argument("--homes", type=count, default=100, help="homes they follow [100]")
    p.add_argument("--rate", type=count, default=1000, help="state changes/s [1000]")
    p.add_argument("--seconds", type=amount, default=20.0, help="measured phase [20]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = bench.add(
        "graphql",
        cmd_graphql,
        "/v1/graphql against REST and the WebSocket in the same run: devicesByHome p50/p99 "
        "against GET .../devices for one home, and deviceState subscription fan-out latency "
        "against /v1/ws for StateChanges produced to Kafka; needs `homestream up`",
    )
    p.add_argument("--devices", type=count, default=100, help="devices in the home [100]")
    p.add_argument("--requests", type=count, default=300, help="reads of each kind [300]")
    p.add_argument("--homes", type=count, default=10, help="homes for the fan-out [10]")
    p.add_argument("--clients", type=count, default=50, help="clients of each kind [50]")
    p.add_argument("--rate", type=count, default=200, help="StateChanges/s [200]")
    p.add_argument("--seconds", type=amount, default=15.0, help="fan-out phase length [15]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = bench.add(
        "automations",
        cmd_automations,
        "the automation engine: trigger evaluations/s of one worker's fold (15 automations "
        "per home, in this process) and motion report -> automation command published "
        "latency at a steady rate (needs `homestream up`)",
    )
    p.add_argument("--homes", type=count, default=10_000, help="homes in the fold [10000]")
    p.add_argument("--reports", type=count, default=50_000, help="reports folded [50000]")
    p.add_argument("--motion-share", type=share, default=0.2, help="share of motion reports [0.2]")
    p.add_argument("--latency-homes", type=count, default=1_000, help="homes for latency [1000]")
    p.add_argument("--rate", type=count, default=1_000, help="reports/s for latency [1000]")
    p.add_argument(
        "--latency-motion-share",
        type=share,
        default=1.0,
        help="share of the latency phase's reports that toggle motion (half fire a run; the "
        "rest are temperature readings) [1.0]",
    )
    p.add_argument("--seconds", type=amount, default=15.0, help="latency phase length [15]")
    p.add_argument("--fold-only", action="store_true", help="only the in-process fold")
    p.add_argument("--latency-only", action="store_true", help="only the latency phase")
    p.add_argument("--json", action="store_true", help="print the result(s) as JSON")

    p = bench.add(
        "history",
        cmd_history,
        "the history sink: rows/s into PostgreSQL of one sink process (a backlog of "
        "StateChanges) and sink lag at a steady rate; needs `homestream up`",
    )
    p.add_argument("--changes", type=count, default=100_000, help="backlog StateChanges [100000]")
    p.add_argument("--attributes", type=count, default=3, help="changed attributes each [3]")
    p.add_argument("--rate", type=count, default=5_000, help="changes/s for the lag phase [5000]")
    p.add_argument("--seconds", type=amount, default=20.0, help="lag phase length [20]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = bench.add(
        "history-engines",
        cmd_history_engines,
        "history on TimescaleDB and on native partitioning, each in a database of its own: "
        "rows/s from one sink, on-disk size of N state rows before and after compression, "
        "time of a 30-day hourly roll-up of one home; needs `homestream up`",
    )
    p.add_argument("--rows", type=count, default=10_000_000, help="state rows [10000000]")
    p.add_argument("--days", type=count, default=35, help="days they span, up to now [35]")
    p.add_argument("--homes", type=count, default=100, help="homes [100]")
    p.add_argument("--devices", type=count, default=20, help="thermometers per home [20]")
    p.add_argument("--repeat", type=count, default=15, help="runs of each query [15]")
    p.add_argument(
        "--sink-changes", type=count, default=100_000, help="sink backlog, 0: skip [100000]"
    )
    p.add_argument(
        "--engine",
        action="append",
        choices=("timescaledb", "native"),
        help="only this engine (repeatable) [both]",
    )
    p.add_argument("--keep", action="store_true", help="keep the bench databases")
    p.add_argument("--json", action="store_true", help="print the results as JSON")

    p = bench.add(
        "notifications",
        cmd_notifications,
        "notification delivery end to end: a notification produced -> apprise's POST received "
        "by a local webhook; latency at a steady rate and a burst's deliveries/s; needs "
        "`homestream up` (or starts a notify process itself)",
    )
    p.add_argument("--events", type=count, default=2000, help="notifications for latency [2000]")
    p.add_argument("--rate", type=amount, default=100.0, help="notifications/s [100]")
    p.add_argument("--burst", type=count, default=2000, help="notifications at once [2000]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = bench.add(
        "radio",
        cmd_radio,
        "a radio adapter against its peer: Zigbee (zigpy + zigpy-znp) against the ZNP "
        "simulator in its own process (pairing time per device, command -> reported state "
        "p50/p99, reports/s one adapter carries), or Z-Wave against real zwave-js on its "
        "mock serial server (inclusion time, command -> reported state p50/p99; installs "
        "the npm packages once); needs no stack",
    )
    p.add_argument("--protocol", choices=("zigbee", "zwave"), default="zigbee", help="[zigbee]")
    p.add_argument("--devices", type=int, default=10, help="devices paired one by one [10]")
    p.add_argument("--commands", type=int, default=500, help="commands, one at a time [500]")
    p.add_argument("--reports", type=int, default=5000, help="reports in the storm [5000]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = bench.add(
        "scenes",
        cmd_scenes,
        "scene runs through the stream worker: a scene switching N devices at once, run "
        "after run, with the bench acking every command on Kafka; request -> commands "
        "dispatched and request -> final SceneRun; needs `homestream up`",
    )
    p.add_argument("--devices", type=count, default=10, help="devices in the scene [10]")
    p.add_argument("--runs", type=count, default=200, help="runs, one after the other [200]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = bench.add(
        "voice",
        cmd_voice,
        "voice on this CPU: text-only NLU per utterance, a spoken ~2 s request (espeak-ng) "
        "-> command requested through the gateway app and its speech-to-text process, and "
        "their memory; needs the voice extra and espeak-ng, no running stack",
    )
    p.add_argument("--rounds", type=int, default=100, help="NLU rounds over 12 requests [100]")
    p.add_argument("--requests", type=int, default=30, help="spoken requests [30]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
