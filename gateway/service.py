"""Running the gateway: ``homestream gateway`` (uvicorn on ``settings.ports.gateway``)."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

# The WebSocket implementations ``homestream gateway --ws`` takes: "wire" is uvicorn's
# websockets Sans-I/O protocol serving /v1/ws itself, pre-encoded frames written straight
# to the socket (gateway.wire); the others are uvicorn's own through ASGI, kept to compare
# (BENCHMARKS.md, issue #22).
WS_IMPLEMENTATIONS = ("wire", "websockets-sansio", "websockets", "wsproto")
BACKLOG = 4096  # a connection storm (2,000 connects in 10 s) waits in the accept queue


def gateway_argv(
    data_dir: Path, port: int | None = None, *, ws: str | None = None, reuse_port: bool = False
) -> list[str]:
    """The command line of the gateway process (the launcher's, the bench's and the tests')."""
    return [
        sys.executable,
        "-m",
        "homestream.cli",
        "gateway",
        "--data-dir",
        str(data_dir),
        *(["--port", str(port)] if port else []),
        *(["--ws", ws] if ws else []),
        *(["--reuse-port"] if reuse_port else []),
    ]


def listening_socket(host: str, port: int, *, reuse_port: bool) -> socket.socket:
    """The gateway's listening socket. With ``reuse_port`` (SO_REUSEPORT) several gateway
    processes bind the same port and the kernel spreads new connections over them."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def run_gateway(
    settings: Any,
    *,
    host: str | None = None,
    port: int | None = None,
    loglevel: str = "info",
    data_dir: Path | None = None,
    sync_hub_logins: Any = None,
    ws: str = "wire",
    reuse_port: bool = False,
) -> int:
    import logging

    import uvicorn

    from gateway.app import create_app
    from gateway.wire import WireProtocol
    from gateway.ws import wire_session
    from runtime.fdlimit import raise_open_files
    from runtime.logs import setup

    setup(loglevel, settings.log_format)
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
    raise_open_files()  # a socket per connection: 10,000 of them in one process
    host = host or settings.host
    port = port or settings.ports.gateway
    try:
        sock = listening_socket(host, port, reuse_port=reuse_port)
    except OSError as exc:
        logging.getLogger("homestream.gateway").error(
            "cannot listen on %s:%s: %s (another process has it; --reuse-port shares it "
            "with other gateway processes)",
            host,
            port,
            exc,
        )
        return 1
    app = create_app(settings, sync_hub_logins=sync_hub_logins)
    tls: dict[str, Any] = {}
    if settings.gateway_tls:
        cert, key = settings.gateway_tls_files
        if not (cert.exists() and key.exists()):
            raise SystemExit(
                f"HOMESTREAM_GATEWAY_TLS is on but {cert} or {key} is missing: `homestream up` "
                "issues them from the stack's CA"
            )
        tls = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    # /v1/ws served by the protocol itself (gateway.wire), the rest through ASGI.
    wire_protocol = WireProtocol.serving(
        "/v1/ws", lambda wire, headers, query: wire_session(app.state.backend, wire, headers, query)
    )
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        ws=wire_protocol if ws == "wire" else ws,
        backlog=BACKLOG,
        log_level=loglevel,
        access_log=False,
        proxy_headers=False,
        lifespan="on",
        ws_max_size=1 << 20,
        # Deflate cost ~20% of the fan-out's CPU and a zlib context per socket, to shrink
        # frames of a few hundred bytes (BENCHMARKS.md, WebSocket fan-out).
        ws_per_message_deflate=False,
        **tls,
    )
    server = _Server(config)
    server.run(sockets=[sock])
    # uvicorn leaves started=False when start-up failed (port taken, lifespan error)
    return 0 if server.started else 1


class _Server:
    """uvicorn's Server, stopping cleanly on SIGTERM/SIGINT with exit code 0 (uvicorn
    re-raises the signal after its graceful shutdown, which makes the exit code -15)."""

    def __new__(cls, config: Any) -> Any:
        import contextlib
        import logging
        import signal
        import threading

        import uvicorn

        class Server(uvicorn.Server):
            async def startup(self, sockets: Any = None) -> None:
                await super().startup(sockets=sockets)
                # uvicorn says nothing when given its sockets; the bench and the tests
                # wait for this line (with SO_REUSEPORT, /healthz may answer from another).
                if self.started:
                    for sock in sockets or ():
                        logging.getLogger("homestream.gateway").info(
                            "gateway listening on %s:%s", *sock.getsockname()[:2]
                        )

            @contextlib.contextmanager
            def capture_signals(self) -> Iterator[None]:
                if threading.current_thread() is not threading.main_thread():
                    yield
                    return
                sigs = (signal.SIGINT, signal.SIGTERM)
                original = {sig: signal.signal(sig, self.handle_exit) for sig in sigs}
                try:
                    yield
                finally:
                    for sig, handler in original.items():
                        signal.signal(sig, handler)

        return Server(config)
