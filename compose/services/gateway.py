"""The REST/WebSocket gateway (issue #6) as a service of the local stack."""

from __future__ import annotations

from collections.abc import Sequence

from compose.services.base import Service
from runtime.config import Settings
from runtime.secrets import Secrets


class GatewayService(Service):
    name = "gateway"
    port_fields = (("gateway", "HOMESTREAM_GATEWAY_PORT"),)
    start_timeout = 60.0

    def __init__(self, settings: Settings, secrets: Secrets):
        super().__init__(settings, secrets)

    def endpoint(self) -> str:
        return f"http://{self.settings.host}:{self.settings.ports.gateway}"

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def argv(self) -> Sequence[str]:
        from gateway.service import gateway_argv

        # The service dir in the command line is the pid-file marker.
        return gateway_argv(self.dir)

    def healthy(self) -> bool:
        import json
        import urllib.request

        try:
            url = f"http://{self.settings.host}:{self.settings.ports.gateway}/healthz"
            with urllib.request.urlopen(url, timeout=2) as resp:
                body = json.loads(resp.read().decode())
                # Serving, and its fan-out consumer has its partitions (live events flow).
                return resp.status == 200 and bool(body.get("fanout", {}).get("ready"))
        except (OSError, ValueError):
            return False
