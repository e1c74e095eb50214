"""``homestream gateway``: the REST/WebSocket gateway in the foreground."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

from gateway.service import WS_IMPLEMENTATIONS
from runtime.cli import Commands, add_loglevel, port
from runtime.config import Settings

SyncFactory = Callable[[Settings], Callable[[], object]]


def register(commands: Commands, *, sync_hub_logins: SyncFactory | None = None) -> None:
    """``sync_hub_logins(settings)`` gives the callable that makes the broker reload its
    logins (the launcher's, wired in by homestream/cli.py)."""

    def cmd_gateway(args: argparse.Namespace, settings: Settings) -> int:
        from gateway.service import run_gateway
        from runtime.secrets import load_secrets

        if not settings.token_secret:
            load_secrets(settings)  # SecretsMissing here: one line, not a failed start-up

        return run_gateway(
            settings,
            host=args.host,
            port=args.port,
            loglevel=args.loglevel,
            data_dir=args.data_dir,
            sync_hub_logins=sync_hub_logins(settings) if sync_hub_logins else None,
            ws=args.ws,
            reuse_port=args.reuse_port,
        )

    p = commands.add(
        "gateway",
        cmd_gateway,
        "run the REST/WebSocket gateway in the foreground (uvicorn on HOMESTREAM_GATEWAY_PORT; "
        "`up` runs it for you); API description at /openapi.json",
    )
    p.add_argument("--host", help="address to listen on [HOMESTREAM_HOST]")
    p.add_argument("--port", type=port, help="port [HOMESTREAM_GATEWAY_PORT]")
    p.add_argument("--data-dir", type=Path, help="the service's directory (pid-file marker)")
    p.add_argument(
        "--ws",
        choices=WS_IMPLEMENTATIONS,
        default="wire",
        help="WebSocket implementation: wire (pre-encoded frames written straight to the "
        "socket) or one of uvicorn's, to compare [wire]",
    )
    p.add_argument(
        "--reuse-port",
        action="store_true",
        help="listen with SO_REUSEPORT: several gateway processes on one port share the "
        "connections (the kernel spreads them)",
    )
    add_loglevel(p)
