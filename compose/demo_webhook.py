"""The demo's webhook receiver: where the demo home's notification channel
(``json://127.0.0.1:<port>/demo-webhook``, Apprise's JSON webhook) posts to.

`homestream up` runs it beside the simulated demo hub, so a newcomer can watch a
notification leave homestream: ``GET /demo-webhook`` shows the latest ones received
(newest first), and each is appended to ``received.jsonl`` in its directory. It keeps
the last 50 in memory, reads at most 64 KiB per post, and listens on loopback only.
Plain standard library: a demo aid, not a service of the product.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from hub.sim.demo_docs import WEBHOOK_PATH

MAX_BODY = 64 * 1024
KEEP = 50


class Received:
    """The latest posts, newest last, and the file each is appended to."""

    def __init__(self, log_file: Path | None) -> None:
        self.items: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self.log_file = log_file
        self.lock = threading.Lock()

    def add(self, body: bytes, content_type: str) -> dict[str, Any]:
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = body.decode("utf-8", "replace")
        item = {"received_at": int(time.time() * 1000), "content_type": content_type,
                "payload": payload}  # fmt: skip
        with self.lock:
            self.items.append(item)
            if self.log_file is not None:
                with self.log_file.open("a") as fh:
                    fh.write(json.dumps(item) + "\n")
        return item

    def latest(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(reversed(self.items))


def make_server(host: str, port: int, received: Received) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/healthz":
                self._reply(200, {"status": "ok"})
            elif self.path == WEBHOOK_PATH:
                self._reply(200, {"received": received.latest()})
            else:
                self._reply(404, {"error": f"nothing here; see {WEBHOOK_PATH}"})

        def do_POST(self) -> None:
            if self.path != WEBHOOK_PATH:
                self._reply(404, {"error": f"post to {WEBHOOK_PATH}"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY:
                self._reply(413, {"error": f"at most {MAX_BODY} bytes"})
                return
            item = received.add(self.rfile.read(length), self.headers.get("Content-Type", ""))
            print(f"received: {json.dumps(item['payload'])[:500]}", flush=True)
            self._reply(200, {"ok": True})

        def _reply(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body, indent=2).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # one line per post is printed above; GETs are noise

    return ThreadingHTTPServer((host, port), Handler)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--dir", type=Path, help="append each post to DIR/received.jsonl")
    args = p.parse_args(argv)
    log_file = args.dir / "received.jsonl" if args.dir else None
    server = make_server(args.host, args.port, Received(log_file))
    print(f"demo webhook receiver on http://{args.host}:{args.port}{WEBHOOK_PATH}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
