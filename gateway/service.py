"""Running the gateway: ``homestream gateway`` (uvicorn on ``settings.ports.gateway``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def gateway_argv(data_dir: Path, port: int | None = None) -> list[str]:
    """The command line of the gateway process (the launcher's and the tests')."""
    return [
        sys.executable,
        "-m",
        "homestream.cli",
        "gateway",
        "--data-dir",
        str(data_dir),
        *(["--port", str(port)] if port else []),
    ]


def run_gateway(
    settings: Any,
    *,
    host: str | None = None,
    port: int | None = None,
    loglevel: str = "info",
    data_dir: Path | None = None,
    sync_hub_logins: Any = None,
) -> int:
    import uvicorn

    from gateway.app import create_app
    from runtime.logs import setup

    setup(loglevel, settings.log_format)
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
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
    config = uvicorn.Config(
        app,
        host=host or settings.host,
        port=port or settings.ports.gateway,
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
    server.run()
    # uvicorn leaves started=False when start-up failed (port taken, lifespan error)
    return 0 if server.started else 1


class _Server:
    """uvicorn's Server, stopping cleanly on SIGTERM/SIGINT with exit code 0 (uvicorn
    re-raises the signal after its graceful shutdown, which makes the exit code -15)."""

    def __new__(cls, config: Any) -> Any:
        import contextlib
        import signal
        import threading

        import uvicorn

        class Server(uvicorn.Server):
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
