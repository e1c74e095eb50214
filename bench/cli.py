"""``homestream bench ...``: measurements against the running stack (BENCHMARKS.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from runtime.cli import Commands, require_kafka, share
from runtime.cli import positive_float as amount
from runtime.cli import positive_int as count
from runtime.config import REPO_ROOT, Settings


def natural(text: str) -> int:
    """A whole number, 0 included."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text}: 0 or more")
    return value


def rate_list(text: str) -> list[int]:
    """Comma-separated positive whole numbers."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: numbers separated by commas") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: positive numbers separated by commas")
    return values


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
    import shlex

    from bench.fanout import run_bench
    from bench.fanout_report import markdown, plot, print_result, write_section

    require_kafka(settings)
    result = run_bench(
        settings,
        clients=args.clients,
        homes=args.homes,
        rate=args.rate,
        rates=args.rates,
        seconds=args.seconds,
        idle=args.idle,
        storm=args.storm,
        storm_seconds=args.storm_seconds,
        processes=args.processes,
        ws=args.ws,
        profile=args.profile,
        say=_say,
    )
    print_result(result, args.json)
    png: Path | None = args.png
    if png is not None and result.points:
        try:
            plot(result, png)
            _say(f"wrote {png}")
        except ImportError:
            _say("no PNG: matplotlib is not installed (pip install -e '.[bench]')")
            png = None
    if args.benchmarks is not None:
        command = "homestream bench gateway " + shlex.join(sys.argv[3:])
        shown = png.relative_to(args.benchmarks.parent) if png is not None else None
        write_section(args.benchmarks, markdown(result, shown, command.strip()))
        _say(f"wrote the section of {args.benchmarks}")
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


def cmd_offline(args: argparse.Namespace, settings: Settings) -> int:
    from bench.offline import print_result, run_bench

    result = run_bench(rounds=args.rounds, notifies=args.notifies, services=args.services, say=_say)
    print_result(result, args.json)
    return 0


def cmd_txfloor(args: argparse.Namespace, settings: Settings) -> int:
    from bench.txfloor import print_result, run_bench

    require_kafka(settings)
    points = run_bench(settings, args.rates, args.seconds, args.rounds, _say)
    print_result(points, args.json)
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


def _rates(text: str) -> tuple[float, ...]:
    try:
        rates = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: a comma list of reports/s, e.g. 1000,5000"
        ) from None
    if not rates or min(rates) <= 0:
        raise argparse.ArgumentTypeError("give at least one rate, each above 0")
    return rates


def cmd_e2e(args: argparse.Namespace, settings: Settings) -> int:
    import json
    from pathlib import Path

    from bench.e2e import plot, print_result, result_from_json, write_section
    from runtime.config import REPO_ROOT

    if args.from_json:
        result = result_from_json(json.loads(Path(args.from_json).read_text()))
        args.json = False
    else:
        require_kafka(settings)
        result = run_e2e(settings, args)
    print_result(result, args.json)
    if args.write:
        png = Path(args.png) if args.png else REPO_ROOT / "docs" / "e2e-latency.png"
        plot(result, png)
        write_section(result, REPO_ROOT / "BENCHMARKS.md", png, REPO_ROOT)
        _say(f"wrote BENCHMARKS.md's end-to-end section and {png}")
    return 0


def run_e2e(settings: Settings, args: argparse.Namespace):
    from bench.e2e import run_bench

    return run_bench(
        settings,
        homes=args.homes,
        devices=args.devices,
        rates=args.rates,
        seconds=args.seconds,
        warmup=args.warmup,
        clients=args.clients,
        command_rate=args.command_rate,
        shards=args.simulators,
        gateways=args.gateway or (),
        ceilings=not args.no_ceilings,
        max_p99_ms=args.max_p99_ms,
        mqtt_messages=args.mqtt_messages,
        kafka_messages=args.kafka_records,
        say=_say,
    )


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
        "WebSocket fan-out against a plain websockets baseline in the same run: report -> "
        "client latency at several rates (PNG), idle connections' memory, a connection storm, "
        "two processes on one port; writes its BENCHMARKS.md section; needs `homestream up`",
    )
    p.add_argument("--clients", type=count, default=1000, help="WebSocket clients [1000]")
    p.add_argument("--homes", type=count, default=100, help="homes they follow [100]")
    p.add_argument(
        "--rate", type=count, default=1000, help="state changes/s of the target point [1000]"
    )
    p.add_argument(
        "--rates",
        type=rate_list,
        default=[250, 500, 1000, 1500],
        help="the latency curve's points, changes/s, comma-separated [250,500,1000,1500]",
    )
    p.add_argument("--seconds", type=amount, default=15.0, help="each point's length [15]")
    p.add_argument(
        "--idle", type=natural, default=10_000, help="idle connections to one process, 0: skip"
    )
    p.add_argument(
        "--storm", type=natural, default=2_000, help="connects in the storm, 0: skip [2000]"
    )
    p.add_argument("--storm-seconds", type=amount, default=10.0, help="... over this long [10]")
    p.add_argument(
        "--processes",
        type=count,
        default=2,
        help="gateway processes sharing one port (SO_REUSEPORT) for the last row; 1: skip [2]",
    )
    p.add_argument(
        "--ws",
        choices=("wire", "websockets-sansio", "websockets", "wsproto"),
        default="wire",
        help="the gateway's WebSocket implementation (homestream gateway --ws) [wire]",
    )
    p.add_argument("--profile", action="store_true", help="py-spy the gateway at the target rate")
    p.add_argument(
        "--benchmarks",
        type=Path,
        default=REPO_ROOT / "BENCHMARKS.md",
        help="write the section here (replaced on each run) [BENCHMARKS.md]",
    )
    p.add_argument(
        "--png",
        type=Path,
        default=REPO_ROOT / "docs" / "benchmarks" / "gateway-latency.png",
        help="the latency curve, gateway and baseline [docs/benchmarks/gateway-latency.png]",
    )
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
        "offline",
        cmd_offline,
        "the hub with its cloud unreachable (issue #16): local motion -> light p50/p99 (the "
        "hub runtime, Zigbee through zigpy-znp and the ZNP simulator, the broker's port "
        "closed), BLE notify -> state report p50/p99 (bleak over bumble's virtual link), "
        "mDNS discovery time (zeroconf on a private network namespace; root); needs no stack",
    )
    p.add_argument("--rounds", type=count, default=200, help="motion -> light rounds [200]")
    p.add_argument("--notifies", type=count, default=500, help="BLE notifications [500]")
    p.add_argument("--services", type=count, default=10, help="mDNS services, one by one [10]")
    p.add_argument("--json", action="store_true", help="print the result as JSON")

    p = bench.add(
        "txfloor",
        cmd_txfloor,
        "the floor Kafka's transactions set on this machine: an echo that only consumes, "
        "produces, sends offsets and commits (the worker's loop, its client settings, "
        "nothing folded) against the same echo without transactions; produce -> readable "
        "p50/p99 at each rate; needs `homestream up`",
    )
    p.add_argument("--rates", type=rate_list, default=[1000], help="records/s [1000]")
    p.add_argument("--seconds", type=amount, default=15.0, help="each point's length [15]")
    p.add_argument("--rounds", type=count, default=2, help="A/B rounds, alternating [2]")
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
        "e2e",
        cmd_e2e,
        "end to end: simulated homes over real MQTT -> bridges -> Kafka -> workers -> "
        "WebSocket apps and PostgreSQL, at rising load until a stage saturates; report -> "
        "app and command -> device p50/p99, no-op ratio, CPU and memory per process, and "
        "the ceilings of raw MQTT (paho, QoS 1) and raw Kafka (kafka-producer-perf-test) "
        "in the same run; needs `homestream up` with its workers, bridges, sinks, gateway",
    )
    p.add_argument("--homes", type=count, default=200, help="simulated homes [200]")
    p.add_argument("--devices", type=count, default=20, help="devices per home [20]")
    p.add_argument(
        "--rates",
        type=_rates,
        default=(1000.0, 2500.0, 5000.0, 7500.0, 10000.0, 12500.0),
        help="reports/s of each step, rising; stops at the first saturated step "
        "[1000,2500,5000,7500,10000,12500]",
    )
    p.add_argument("--seconds", type=amount, default=20.0, help="measured length of each step [20]")
    p.add_argument(
        "--warmup",
        type=natural,
        default=20,
        help="seconds before each step is measured: the simulators' start-up (every "
        "device's descriptor and first state at once) drains first [20]",
    )
    p.add_argument("--clients", type=count, default=20, help="WebSocket clients [20]")
    p.add_argument("--command-rate", type=amount, default=4.0, help="REST commands/s [4]")
    p.add_argument(
        "--simulators", type=count, default=2, help="`homestream simulate` processes [2]"
    )
    p.add_argument(
        "--gateway",
        action="append",
        metavar="URL",
        help="a gateway the apps use (repeatable) [the stack's]",
    )
    p.add_argument(
        "--max-p99-ms",
        type=amount,
        default=5000.0,
        help="a step whose report -> app p99 is above this counts as saturated [5000]",
    )
    p.add_argument("--no-ceilings", action="store_true", help="skip the raw MQTT/Kafka runs")
    p.add_argument(
        "--mqtt-messages", type=count, default=20_000, help="raw MQTT ceiling's messages [20000]"
    )
    p.add_argument(
        "--kafka-records", type=count, default=300_000, help="raw Kafka ceiling's records [300000]"
    )
    p.add_argument(
        "--write",
        action="store_true",
        help="write BENCHMARKS.md's end-to-end section and the latency-vs-load PNG",
    )
    p.add_argument("--png", help="where the plot goes [docs/e2e-latency.png]")
    p.add_argument(
        "--from-json",
        metavar="FILE",
        help="no run: print (and with --write, write) an earlier run's --json output",
    )
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
