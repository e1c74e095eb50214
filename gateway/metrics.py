"""The gateway's Prometheus metrics (``GET /metrics``), on ``runtime.metrics``: requests by
route and status, their duration as a histogram, the commands produced and the fan-out's
gauges."""

from __future__ import annotations

from typing import Any

from runtime.metrics import ServiceMetrics


class Metrics:
    def __init__(self) -> None:
        # The gateway serves /metrics itself, on its own port: no process labels, and no
        # /ready (its launcher checks /healthz, which carries the same fan-out readiness).
        self.service = ServiceMetrics(
            {},
            "homestream_gateway_fanout_ready",
            "1 once the fan-out consumer has its partitions (live events flow).",
        )
        m = self.service
        self.requests = m.counter(
            "homestream_gateway_requests",
            "HTTP requests by route and status.",
            ("method", "route", "status"),
        )
        self.duration = m.histogram(
            "homestream_gateway_request_duration_seconds",
            "HTTP request duration by route, from routing to the response.",
            ("method", "route"),
        )
        self.commands = m.counter(
            "homestream_gateway_commands", "CommandRequested events produced.", ("source",)
        )
        self.voice = m.counter(
            "homestream_voice_commands",
            "Voice requests by intent (none: not understood) and status (success, failed: "
            "understood but nothing to do here, not_understood).",
            ("intent", "status"),
        )

    def watch(self, fanout: Any) -> None:
        """Read the fan-out's gauges at scrape time."""
        m = self.service
        m.ready_gauge.set_function(lambda: 1.0 if fanout.ready else 0.0)
        m.gauge(
            "homestream_gateway_ws_subscribers",
            "WebSocket connections subscribed to a home.",
            lambda: float(fanout.subscribers()),
        )
        m.gauge(
            "homestream_gateway_fanout_events_total",
            "Events published to the fan-out.",
            lambda: float(fanout.stats.events),
        )
        m.gauge(
            "homestream_gateway_fanout_dropped_total",
            "Frames a subscriber missed because its queue was full (it gets a new snapshot).",
            lambda: float(fanout.stats.dropped),
        )

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.duration.labels(method, route).observe(seconds)

    def count_voice(self, intent: str | None, status: str) -> None:
        self.voice.labels(intent or "none", status).inc()

    def count_command(self, source: str) -> None:
        self.commands.labels(source).inc()

    def exposition(self) -> bytes:
        return self.service.exposition()
