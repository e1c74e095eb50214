"""The demo home's simulated hub (`homestream simulate --demo`) as a service of `up`."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from compose.services.base import Service
from runtime.config import Settings
from runtime.secrets import Secrets


class DemoSimulatorService(Service):
    start_timeout = 60.0

    def __init__(self, settings: Settings, secrets: Secrets):
        self.name = "sim"
        super().__init__(settings, secrets)

    def endpoint(self) -> str:
        return "home demo-home: a simulated hub with the demo floor plan"

    def prepare(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)

    def argv(self) -> Sequence[str]:
        # The service dir in the command line is the pid-file marker.
        cmd = [sys.executable, "-m", "homestream.cli", "simulate", "--demo"]
        return [*cmd, "--sim-dir", str(self.dir), "--progress", "60"]

    def healthy(self) -> bool:
        # The hub's outbox exists once the simulator has provisioned and started its hub.
        return self.pid() is not None and (self.dir / "outbox" / "demo-home.sqlite").exists()
