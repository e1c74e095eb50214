"""Install and run zwave-js's mock serial server and a Z-Wave JS server in front of it.

The npm packages (pinned below) go into ``<HOMESTREAM_CACHE_DIR>/zwave-js`` once
(``npm install``; Node 20+ and npm must be on PATH). ``ZWaveJsPeer`` then starts
``mock-server`` (a mock Z-Wave controller on a TCP port, with the nodes of mock.cjs) and
``zwave-server`` (the real driver, on that port as its serial port, serving the
WebSocket API on another).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

PACKAGES = ("zwave-js@15.29.0", "@zwave-js/server@3.10.2")
MOCK_CONFIG = Path(__file__).with_name("mock.cjs")
_SERVER_CONFIG = """module.exports = {
  securityKeys: { S0_Legacy: "0102030405060708090a0b0c0d0e0f10" },
  storage: { cacheDir: %s },
  logConfig: { enabled: false },
  // the mock serial server speaks the Serial API only: no bootloader / CLI probing
  testingHooks: { skipFirmwareIdentification: true },
};
"""


class ZWaveJsUnavailable(RuntimeError):
    """Node/npm missing or the install failed; the message says what to do."""


def default_cache() -> Path:
    """``zwave-js`` under the cache directory (HOMESTREAM_CACHE_DIR) the Kafka jars use."""
    from runtime.config import Settings

    return Settings.from_env().cache_dir / "zwave-js"


def ensure_installed(cache: Path | None = None) -> Path:
    """The directory holding node_modules/.bin/{mock-server,zwave-server}; installs once."""
    cache = cache or default_cache()
    bins = cache / "node_modules" / ".bin"
    if (bins / "zwave-server").exists() and (bins / "mock-server").exists():
        return cache
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise ZWaveJsUnavailable("Node.js 20+ and npm are needed for the Z-Wave peer: install them")
    cache.mkdir(parents=True, exist_ok=True)
    if not (cache / "package.json").exists():
        (cache / "package.json").write_text('{"name": "homestream-zwave-peer", "private": true}\n')
    proc = subprocess.run(
        ["npm", "install", "--no-audit", "--no-fund", "--loglevel", "error", *PACKAGES],
        cwd=cache,
        capture_output=True,
        text=True,
        timeout=900,
    )
    if proc.returncode != 0:
        raise ZWaveJsUnavailable(f"npm install {' '.join(PACKAGES)} failed: {proc.stderr[-1000:]}")
    return cache


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ZWaveJsUnavailable(f"{proc.args[1]} exited: {log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise ZWaveJsUnavailable(
        f"nothing listens on {port} after {timeout:g} s: {log.read_text()[-2000:]}"
    )


class ZWaveJsPeer:
    """mock-server + zwave-server as child processes; ``url`` is the WebSocket to use."""

    def __init__(self, work: Path, cache: Path | None = None) -> None:
        self.cache = ensure_installed(cache)
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.serial_port = _free_port()
        self.ws_port = _free_port()
        self.mock: subprocess.Popen[bytes] | None = None
        self.server: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}"

    def _node(self, tool: str, *args: str, log: Path) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            ["node", str(self.cache / "node_modules" / ".bin" / tool), *args],
            cwd=self.work,
            stdout=log.open("ab"),
            stderr=subprocess.STDOUT,
        )

    def start_mock(self) -> None:
        log = self.work / "mock-server.log"
        self.mock = self._node(
            "mock-server", "--port", str(self.serial_port), "--config", str(MOCK_CONFIG), log=log
        )
        _wait_port(self.serial_port, self.mock, log, 60)

    def start_server(self) -> None:
        config = self.work / "zwave-server.cjs"
        config.write_text(_SERVER_CONFIG % repr(str(self.work / "zwave-cache")))
        log = self.work / "zwave-server.log"
        self.server = self._node(
            "zwave-server",
            f"tcp://127.0.0.1:{self.serial_port}",
            "--port",
            str(self.ws_port),
            "--config",
            str(config),
            log=log,
        )
        _wait_port(self.ws_port, self.server, log, 120)

    def start(self) -> None:
        self.start_mock()
        self.start_server()

    def stop_server(self) -> None:
        self._stop(self.server)
        self.server = None

    def stop(self) -> None:
        self._stop(self.server)
        self._stop(self.mock)
        self.server = self.mock = None

    @staticmethod
    def _stop(proc: subprocess.Popen[bytes] | None) -> None:
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
