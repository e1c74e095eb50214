"""What `homestream bench gateway` prints and writes: the summary against issue #22's
targets, the BENCHMARKS.md section (replaced on each run) and the latency PNG."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path

from bench.fanout import GatewayBenchResult, Point

BEGIN = "<!-- bench gateway: begin (written by `homestream bench gateway`) -->"
END = "<!-- bench gateway: end -->"
P99_TARGET_MS = 100.0
RATIO_TARGET = 1.5
IDLE_KB_TARGET = 15.0


def verdicts(r: GatewayBenchResult) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for each of the issue's targets (None: not measured)."""
    gw, base = r.point("gateway"), r.point("baseline")
    rows: list[tuple[str, str, bool | None]] = []
    frames = r.rate_per_s * r.clients // r.homes
    if gw is not None:
        rows.append(
            (
                f"report -> client p99 < {P99_TARGET_MS:g} ms at {frames:,} frames/s",
                f"{gw.p99_ms} ms",
                gw.p99_ms < P99_TARGET_MS,
            )
        )
    if gw is not None and base is not None and base.p99_ms > 0:
        ratio = gw.p99_ms / base.p99_ms
        rows.append(
            (
                f"p99 within {RATIO_TARGET}x of the baseline",
                f"{ratio:.2f}x ({gw.p99_ms} / {base.p99_ms} ms)",
                ratio <= RATIO_TARGET,
            )
        )
        if base.cpu_us_per_frame > 0:
            rows.append(
                (
                    "(the servers' CPU per frame delivered)",
                    f"{gw.cpu_us_per_frame / base.cpu_us_per_frame:.2f}x "
                    f"({gw.cpu_us_per_frame} / {base.cpu_us_per_frame} µs)",
                    None,
                )
            )
        if base.added_p99_ms > 0:
            rows.append(
                (
                    "(the servers' own share: Kafka -> client p99)",
                    f"{gw.added_p99_ms / base.added_p99_ms:.2f}x "
                    f"({gw.added_p99_ms} / {base.added_p99_ms} ms)",
                    None,
                )
            )
    for p in r.points:
        if p.server.startswith("gateway x"):
            ratio_s = ""
            if base is not None and base.p99_ms:
                ratio_s = f", {p.p99_ms / base.p99_ms:.2f}x the baseline"
            rows.append(
                (
                    f"{p.server} on one port (SO_REUSEPORT): p99 < {P99_TARGET_MS:g} ms",
                    f"{p.p99_ms} ms{ratio_s}; connections per process "
                    f"{' / '.join(map(str, r.two_process_connections))}",
                    p.p99_ms < P99_TARGET_MS and all(n > 0 for n in r.two_process_connections),
                )
            )
    if r.idle_connections:
        rows.append(
            (
                f"{r.idle_connections:,} idle connections, < {IDLE_KB_TARGET:g} KB each",
                f"{r.idle_kb_per_connection} KB ({r.idle_errors} errors; RSS "
                f"{r.idle_rss_before_mb} -> {r.idle_rss_after_mb} MB)",
                r.idle_kb_per_connection < IDLE_KB_TARGET and r.idle_errors == 0,
            )
        )
    if r.storm_connections:
        rows.append(
            (
                f"storm of {r.storm_connections:,} connects in {r.storm_seconds:g} s, no errors",
                f"{r.storm_errors} errors, all in by {r.storm_took_s} s; connect -> snapshot "
                f"p50 {r.storm_p50_ms} / p99 {r.storm_p99_ms} ms",
                r.storm_errors == 0,
            )
        )
    return rows


def _mark(met: bool | None) -> str:
    return "—" if met is None else ("met" if met else "**not met**")


def _point_row(p: Point) -> str:
    share = 100 * p.frames / p.expected if p.expected else 0.0
    return (
        f"| {p.server} | {p.rate_per_s:,} | {p.frames_per_s:,} | {p.p50_ms} | {p.p99_ms} | "
        f"{p.max_ms} | {p.kafka_p99_ms} | {p.added_p50_ms} / {p.added_p99_ms} | {share:.1f} % | "
        f"{p.server_cpu_s} | {p.cpu_us_per_frame} | {p.load} |"
    )


def markdown(r: GatewayBenchResult, png: Path | None, command: str) -> str:
    day = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        BEGIN,
        f"## WebSocket fan-out against a plain baseline (`homestream bench gateway`, issue #22): "
        f"measured {day}",
        "",
        f"`{command}`: {r.clients:,} clients on {r.homes} homes, {r.seconds:g} s per point, "
        f"the gateway's WebSocket implementation `{r.ws}`. Load average {r.load_start} at the "
        f"start, {r.load_end} at the end (2 cores; other work on the machine shows here).",
        "",
        "| target | measured | |",
        "|---|---|---|",
        *[f"| {t} | {m} | {_mark(ok)} |" for t, m, ok in verdicts(r)],
        "",
        "Latency from a report's production to its `device.state` frame at each client (the "
        'stream worker\'s share included; "Kafka p99" is the same StateChanges readable in '
        'Kafka, no WebSocket server; "Kafka -> client" is each frame\'s arrival minus the '
        "time its StateChange became readable in Kafka, the server's own share, which the "
        "worker's noise moves less); CPU is the server process(es)' CPU seconds in the phase, "
        "and per frame delivered:",
        "",
        "| server | changes/s | frames/s | p50 ms | p99 ms | max ms | Kafka p99 ms "
        "| Kafka -> client p50 / p99 ms | frames in | CPU s | CPU µs/frame | load |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *[_point_row(p) for p in r.points],
    ]
    if png is not None:
        lines += ["", f"![latency against frames/s]({png.as_posix()})"]
    if r.profile:
        lines += [
            "",
            f"py-spy on the gateway at {r.rate_per_s:,} changes/s ({r.profile_samples:,} samples "
            "of the event loop's thread, inclusive share):",
            "",
            "| share | function |",
            "|---|---|",
            *[f"| {pct} % | `{name}` |" for pct, name in r.profile],
        ]
    if r.errors:
        lines += ["", *[f"- {e}" for e in r.errors]]
    return "\n".join([*lines, END, ""])


def write_section(path: Path, section: str) -> None:
    """Replace the bench's section in BENCHMARKS.md, or put it first under the title."""
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        tail = rest.split(END, 1)[1].lstrip("\n")
        text = head + section + "\n" + tail
    else:
        title, _, body = text.partition("\n")
        text = f"{title}\n\n{section}\n{body.lstrip(chr(10))}"
    path.write_text(text)


def plot(r: GatewayBenchResult, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    styles = {"gateway": "tab:blue", "baseline": "tab:gray"}
    for server in sorted({p.server for p in r.points}):
        points = sorted((p for p in r.points if p.server == server), key=lambda p: p.frames_per_s)
        xs = [p.frames_per_s for p in points]
        color = styles.get(server, "tab:green")
        ax.plot(xs, [p.p99_ms for p in points], "o-", color=color, label=f"{server} p99")
        ax.plot(
            xs, [p.p50_ms for p in points], "o--", color=color, alpha=0.6, label=f"{server} p50"
        )
    ax.axhline(P99_TARGET_MS, color="tab:red", lw=0.8, ls=":", label="p99 target")
    ax.set_xlabel("frames/s delivered (changes/s x clients per home)")
    ax.set_ylabel("report -> client latency (ms)")
    ax.set_title(
        f"WebSocket fan-out, {r.clients:,} clients on {r.homes} homes "
        f"(load {r.load_start}-{r.load_end})",
        fontsize=10,
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def print_result(r: GatewayBenchResult, as_json: bool) -> None:
    if as_json:
        print(json.dumps(asdict(r), indent=2))
        return
    print(f"load average {r.load_start} -> {r.load_end}")
    for p in r.points:
        print(
            f"{p.server:>12} {p.rate_per_s:>6,} changes/s {p.frames_per_s:>7,} frames/s: "
            f"p50 {p.p50_ms} ms, p99 {p.p99_ms} ms, max {p.max_ms} ms, Kafka p99 "
            f"{p.kafka_p99_ms} ms, Kafka -> client p50 {p.added_p50_ms} / p99 {p.added_p99_ms} "
            f"ms, {p.frames:,}/{p.expected:,} frames, CPU {p.server_cpu_s} s "
            f"({p.cpu_us_per_frame} µs/frame), "
            f"load {p.load}"
        )
    for target, measured, ok in verdicts(r):
        print(f"{_mark(ok).strip('*'):>8}  {target}: {measured}")
    for pct, name in r.profile:
        print(f"  profile {pct:5.1f} %  {name}")
    for e in r.errors:
        print(f"  note: {e}")
