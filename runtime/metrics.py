"""The stream worker's counters in Prometheus' text format, on a small HTTP endpoint."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HELP = {
    "homestream_streams_events_total": "Events handled by the stream worker, by outcome "
    "(reports, noop = dropped as unchanged, applied, parked, dead_letter_<reason>, "
    "command_<status>, ...).",
}


GAUGES = {
    "homestream_streams_ready": "1 once the worker has restored the state of the partitions "
    "it was given and processes events.",
    "homestream_streams_restoring": "Partitions whose state is being restored from the "
    "changelog right now.",
    "homestream_streams_partitions": "Partitions this worker owns.",
    "homestream_streams_cached_keys": "State values held decoded in memory; the rest of the "
    "state is read from the worker's RocksDB when needed (HOMESTREAM_STREAMS_CACHE_KEYS).",
}


def render(counters: Mapping[str, int], worker: str, gauges: Mapping[str, int] = {}) -> str:
    name = "homestream_streams_events_total"
    lines = [f"# HELP {name} {HELP[name]}", f"# TYPE {name} counter"]
    for outcome, value in sorted(counters.items()):
        lines.append(f'{name}{{worker="{worker}",outcome="{outcome}"}} {value}')
    for gauge, value in sorted(gauges.items()):
        lines += [f"# HELP {gauge} {GAUGES[gauge]}", f"# TYPE {gauge} gauge"]
        lines.append(f'{gauge}{{worker="{worker}"}} {value}')
    return "\n".join(lines) + "\n"


def gauge(text: str, name: str) -> int | None:
    """The value of gauge ``name`` in a rendered page (None when absent)."""
    for line in text.splitlines():
        if line.startswith(name + "{"):
            return int(float(line.rsplit(" ", 1)[-1]))
    return None


def serve(host: str, port: int, text: Callable[[], str]) -> ThreadingHTTPServer:
    """Serve GET /metrics from a daemon thread; returns the server (call shutdown())."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path != "/metrics":
                self.send_error(404, "only /metrics here")
                return
            body = text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server


def snapshot(counters: Mapping[str, int]) -> dict[str, int]:
    """A copy taken while the worker thread may be adding keys."""
    while True:
        try:
            return dict(counters)
        except RuntimeError:  # changed size during iteration: try again
            continue
