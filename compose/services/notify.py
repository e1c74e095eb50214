"""Notification delivery (Kafka -> members' channels through apprise,
docs/notifications.md) as a service of the local stack."""

from __future__ import annotations

from collections.abc import Sequence

from compose.services.base import Service
from runtime.config import Settings
from runtime.secrets import Secrets


class NotifyService(Service):
    start_timeout = 60.0

    def __init__(self, settings: Settings, secrets: Secrets, index: int = 1):
        self.name = "notify" if index == 1 else f"notify-{index}"
        self.worker_name = f"notify-{index}"
        self.metrics_port = settings.ports.notify_metrics + index - 1
        super().__init__(settings, secrets)

    def endpoint(self) -> str:
        return (
            f"kafka -> members' channels (apprise), "
            f"metrics http://{self.settings.host}:{self.metrics_port}/metrics"
        )

    def check_ports(self) -> None:
        from compose.errors import LauncherError
        from compose.process import port_in_use

        if port_in_use(self.settings.host, self.metrics_port):
            raise LauncherError(
                f"{self.name}: metrics port {self.metrics_port} is already in use. Pick another "
                "with HOMESTREAM_NOTIFY_METRICS_PORT=<port>."
            )

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def argv(self) -> Sequence[str]:
        from sinks.notify import notify_argv

        # The service dir in the command line is the pid-file marker.
        return notify_argv(self.dir, self.metrics_port, name=self.worker_name)

    def healthy(self) -> bool:
        from runtime.metrics import ready_at

        # Ready = connected to PostgreSQL, not merely running.
        return ready_at(self.settings.host, self.metrics_port)
