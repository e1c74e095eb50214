"""Real local receivers for the notify service's tests: an HTTP server that takes apprise's
JSON webhooks (``json://``) and an aiosmtpd SMTP server with a login (``mailto://``), each
stopped and started again on the same port when a test says so; and the notify process
itself (the real ``homestream notify`` command line)."""

from __future__ import annotations

import email
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from compose.process import free_port
from sinks.notify import notify_argv

REPO = Path(__file__).resolve().parents[2]


def until(pred: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(step)
    return pred()


class HttpReceiver:
    """Records each POST: (path, JSON body, when it arrived)."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[tuple[str, dict[str, Any], float]] = []
        self.lock = threading.Lock()
        self.delay = 0.0  # seconds each answer takes: a slow receiver
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.received.append((self.path, json.loads(body), time.time()))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def url(self, path: str) -> str:
        return f"json://127.0.0.1:{self.port}{path}"

    def messages(self, path: str) -> Counter[str]:
        with self.lock:
            return Counter(body["message"] for p, body, _at in self.received if p == path)


class SmtpReceiver:
    """aiosmtpd with a plain login (no TLS: loopback only); records each mail's body."""

    def __init__(self, user: str = "bob", password: str = "smtp-pass-1") -> None:
        self.port = free_port()
        self.user, self.password = user, password
        self.mails: list[email.message.Message] = []
        self.controller: Any = None

    def start(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import AuthResult

        receiver = self

        class Handler:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                receiver.mails.append(email.message_from_bytes(envelope.content))
                return "250 OK"

        def login(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
            ok = (
                data.login == receiver.user.encode() and data.password == receiver.password.encode()
            )
            return AuthResult(success=ok)

        self.controller = Controller(
            Handler(),
            hostname="127.0.0.1",
            port=self.port,
            authenticator=login,
            auth_require_tls=False,
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def url(self, to: str) -> str:
        return (
            f"mailto://{self.user}:{self.password}@127.0.0.1:{self.port}"
            f"?from=homestream@example.com&to={to}"
        )

    def messages(self) -> Counter[str]:
        """The notification message of each mail (its plain-text part's first line)."""
        out: Counter[str] = Counter()
        for mail in list(self.mails):
            for part in mail.walk():
                if part.get_content_type() == "text/plain":
                    text = part.get_payload(decode=True).decode()
                    out[text.strip().splitlines()[0]] += 1
                    break
        return out


# Small waits so a test sees several retries within seconds.
FAST_RETRIES = {
    "HOMESTREAM_NOTIFY_RETRY_FIRST_MS": "100",
    "HOMESTREAM_NOTIFY_RETRY_MAX_MS": "800",
    "HOMESTREAM_NOTIFY_MAX_ATTEMPTS": "200",
    "HOMESTREAM_NOTIFY_LEASE_S": "3",
}


class NotifyProcess:
    """One ``homestream notify`` process against the test stack."""

    def __init__(
        self, stack_env: dict[str, str], tmp: Path, group: str, name: str, **env: str
    ) -> None:
        self.dir = tmp / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.log = self.dir / "notify.log"
        full_env = {**os.environ, **stack_env, **FAST_RETRIES, **env}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                notify_argv(self.dir, self.port, name=name, group=group),
                env=full_env,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=REPO,
            )

    def counters(self) -> dict[str, float]:
        from runtime.metrics import scrape

        try:
            samples = scrape("127.0.0.1", self.port, timeout=2)
        except OSError:
            return {}
        out = {s.labels["outcome"]: s.value for s in samples.get("homestream_notify_total", [])}
        for gauge in ("up", "partitions"):
            values = [s.value for s in samples.get(f"homestream_notify_{gauge}", [])]
            out[gauge] = values[0] if values else 0
        return out

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            c = self.counters()
            return c.get("up") == 1 and c.get("partitions", 0) > 0

        ok = until(lambda: ready() or self.proc.poll() is not None, timeout, 0.2)
        assert ok and self.proc.poll() is None, f"notify did not start:\n{self.tail()}"

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 40) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(f"notify did not stop on signal {sig}:\n{self.tail()}") from None

    def tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])
