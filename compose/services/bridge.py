"""The MQTT <-> Kafka bridge processes as services of the local stack."""

from __future__ import annotations

from collections.abc import Sequence

from compose.services.base import Service
from runtime.config import Settings
from runtime.secrets import Secrets


class BridgeService(Service):
    start_timeout = 60.0

    def __init__(self, settings: Settings, secrets: Secrets, index: int = 1):
        self.name = f"bridge-{index}"
        self.metrics_port = settings.ports.bridge_metrics + index - 1
        super().__init__(settings, secrets)

    def endpoint(self) -> str:
        return (
            f"mqtt {self.settings.host}:{self.settings.ports.mqtt} <-> kafka, "
            f"metrics http://{self.settings.host}:{self.metrics_port}/metrics"
        )

    def check_ports(self) -> None:
        from compose.errors import LauncherError
        from compose.process import port_in_use

        if port_in_use(self.settings.host, self.metrics_port):
            raise LauncherError(
                f"{self.name}: metrics port {self.metrics_port} is already in use. Pick another "
                "base with HOMESTREAM_BRIDGE_METRICS_PORT=<port> (bridge n uses base+n-1)."
            )

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def argv(self) -> Sequence[str]:
        from hub.bridge import bridge_argv

        # The service dir in the command line is the pid-file marker.
        return bridge_argv(self.name, self.dir, self.metrics_port)

    def healthy(self) -> bool:
        from runtime.metrics import ready_at

        # Ready = subscribed, not merely running: the demo hub starts right after us.
        return ready_at(self.settings.host, self.metrics_port)
