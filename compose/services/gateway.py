"""The REST/WebSocket gateway (issue #6) as a service of the local stack."""

from __future__ import annotations

import ssl
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
        return self.settings.gateway_url

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        cert, key = self.settings.gateway_tls_files
        if self.settings.gateway_tls and not (cert.exists() and key.exists()):
            import socket

            from compose.tls import issue

            s = self.settings
            names = ("localhost", "127.0.0.1", s.host, socket.gethostname(), *s.mqtt_tls_sans)
            _serial, crt, pem = issue(s.mqtt_ca_file.parent, s.host, client=False, sans=names)
            cert.parent.mkdir(parents=True, exist_ok=True)
            cert.write_bytes(crt)
            key.write_bytes(pem)
            key.chmod(0o600)

    def argv(self) -> Sequence[str]:
        from gateway.service import gateway_argv

        # The service dir in the command line is the pid-file marker.
        return gateway_argv(self.dir)

    def healthy(self) -> bool:
        import json
        import urllib.request

        try:
            url = f"{self.settings.gateway_url}/healthz"
            with urllib.request.urlopen(url, timeout=2, context=ca_context(self.settings)) as resp:
                body = json.loads(resp.read().decode())
                # Serving, and its fan-out consumer has its partitions (live events flow).
                return resp.status == 200 and bool(body.get("fanout", {}).get("ready"))
        except (OSError, ValueError):
            return False


def ca_context(settings: Settings) -> ssl.SSLContext | None:
    """For HTTPS to the gateway: trust the stack's CA (None: plain HTTP)."""
    if not settings.gateway_tls:
        return None
    return ssl.create_default_context(cafile=str(settings.mqtt_ca_file))
