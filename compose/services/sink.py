"""The history sink (Kafka -> PostgreSQL history, docs/history.md) as a service of the
local stack."""

from __future__ import annotations

from collections.abc import Sequence

from compose.services.base import Service
from runtime.config import Settings
from runtime.secrets import Secrets


class HistorySinkService(Service):
    start_timeout = 60.0

    def __init__(self, settings: Settings, secrets: Secrets, index: int = 1):
        self.name = "sink-history" if index == 1 else f"sink-history-{index}"
        self.sink_name = f"history-{index}"
        self.metrics_port = settings.ports.sink_metrics + index - 1
        super().__init__(settings, secrets)

    def endpoint(self) -> str:
        return (
            f"kafka -> postgresql history, "
            f"metrics http://{self.settings.host}:{self.metrics_port}/metrics"
        )

    def check_ports(self) -> None:
        from compose.errors import LauncherError
        from compose.process import port_in_use

        if port_in_use(self.settings.host, self.metrics_port):
            raise LauncherError(
                f"{self.name}: metrics port {self.metrics_port} is already in use. Pick another "
                "with HOMESTREAM_SINK_METRICS_PORT=<port>."
            )

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def argv(self) -> Sequence[str]:
        from sinks.history import sink_argv

        # The service dir in the command line is the pid-file marker.
        return sink_argv(self.dir, self.metrics_port, name=self.sink_name)

    def healthy(self) -> bool:
        from runtime.metrics import ready_at

        # Ready = connected to PostgreSQL, not merely running.
        return ready_at(self.settings.host, self.metrics_port)
