"""The demo's webhook receiver (``compose.demo_webhook``) as a service of `up`: where the
demo home's notification channel posts, beside the simulated demo hub."""

from __future__ import annotations

import sys
import urllib.request
from collections.abc import Sequence

from compose.services.base import Service
from hub.sim.demo_docs import WEBHOOK_PATH
from runtime.config import Settings
from runtime.secrets import Secrets


class DemoWebhookService(Service):
    port_fields = (("demo_webhook", "HOMESTREAM_DEMO_WEBHOOK_PORT"),)
    start_timeout = 20.0

    def __init__(self, settings: Settings, secrets: Secrets):
        self.name = "webhook"
        super().__init__(settings, secrets)

    @property
    def url(self) -> str:
        return f"http://{self.settings.host}:{self.settings.ports.demo_webhook}"

    def endpoint(self) -> str:
        return f"{self.url}{WEBHOOK_PATH} (the demo's notifications, as a webhook got them)"

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def argv(self) -> Sequence[str]:
        # The service dir in the command line is the pid-file marker.
        port = str(self.settings.ports.demo_webhook)
        return [sys.executable, "-m", "compose.demo_webhook", "--host", self.settings.host,
                "--port", port, "--dir", str(self.dir)]  # fmt: skip

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False
