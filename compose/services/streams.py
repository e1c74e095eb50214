"""The stream workers as services of the local stack."""

from __future__ import annotations

from collections.abc import Sequence

from compose.services.base import Service
from runtime.config import Settings
from runtime.secrets import Secrets
from topics.admin import group_members

GROUP = "homestream-streams"


class StreamWorkerService(Service):
    # Restoring the state of its partitions from the changelog comes first (docs/streams.md).
    start_timeout = 600.0

    def __init__(self, settings: Settings, secrets: Secrets, index: int = 1):
        self.name = f"streams-{index}"
        self.worker_name = f"worker-{index}"
        self.metrics_port = settings.ports.streams_metrics + index - 1
        super().__init__(settings, secrets)

    def endpoint(self) -> str:
        return (
            f"group {GROUP} on {self.settings.kafka_bootstrap}, "
            f"metrics http://{self.settings.host}:{self.metrics_port}/metrics"
        )

    def check_ports(self) -> None:
        from compose.errors import LauncherError
        from compose.process import port_in_use

        if port_in_use(self.settings.host, self.metrics_port):
            raise LauncherError(
                f"{self.name}: metrics port {self.metrics_port} is already in use. Pick another "
                "base with HOMESTREAM_STREAMS_METRICS_PORT=<port> (worker n uses base+n-1)."
            )

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def argv(self) -> Sequence[str]:
        from streams.worker import worker_argv

        # The service dir in the command line is the pid-file marker.
        return worker_argv(self.worker_name, self.dir, metrics_port=self.metrics_port)

    def healthy(self) -> bool:
        """In the group and done restoring its partitions' state (a restore from a long
        changelog takes minutes, and events wait for it)."""
        from runtime.metrics import ready_at

        if group_members(self.settings.kafka_bootstrap, GROUP) == 0:
            return False
        return ready_at(self.settings.host, self.metrics_port)
