"""Request counters and latencies in Prometheus' text format (``GET /metrics``)."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Callable


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = defaultdict(int)
        self.seconds: dict[tuple[str, str], float] = defaultdict(float)
        self.commands: dict[str, int] = defaultdict(int)

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.requests[(method, route, status)] += 1
            self.seconds[(method, route)] += seconds

    def count_command(self, source: str) -> None:
        with self._lock:
            self.commands[source] += 1

    def render(self, gauges: dict[str, Callable[[], float]] | None = None) -> str:
        with self._lock:
            requests = dict(self.requests)
            seconds = dict(self.seconds)
            commands = dict(self.commands)
        out = [
            "# HELP homestream_gateway_requests_total HTTP requests by route and status.",
            "# TYPE homestream_gateway_requests_total counter",
        ]
        for (method, route, status), n in sorted(requests.items()):
            out.append(
                f'homestream_gateway_requests_total{{method="{method}",route="{route}",'
                f'status="{status}"}} {n}'
            )
        out += [
            "# HELP homestream_gateway_request_seconds_total Time spent per route.",
            "# TYPE homestream_gateway_request_seconds_total counter",
        ]
        for (method, route), s in sorted(seconds.items()):
            out.append(
                f'homestream_gateway_request_seconds_total{{method="{method}",route="{route}"}}'
                f" {s:.6f}"
            )
        out += [
            "# HELP homestream_gateway_commands_total CommandRequested events produced.",
            "# TYPE homestream_gateway_commands_total counter",
        ]
        for source, n in sorted(commands.items()):
            out.append(f'homestream_gateway_commands_total{{source="{source}"}} {n}')
        for name, fn in sorted((gauges or {}).items()):
            out += [f"# TYPE {name} gauge", f"{name} {fn():g}"]
        return "\n".join(out) + "\n"
