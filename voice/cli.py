"""``homestream voice serve``: the Wyoming server in the foreground (docs/voice.md)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from runtime.cli import CliError, Commands, add_loglevel
from runtime.config import Settings


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from runtime.logs import setup
    from speech.stt import Transcriber
    from voice.gateway_client import GatewayClient
    from voice.wyoming_server import serve

    setup(args.loglevel, settings.log_format)
    if not args.wyoming.startswith(("tcp://", "unix://")):
        raise CliError("--wyoming takes tcp://HOST:PORT or unix://PATH")
    gateway = None
    if args.home:
        if not settings.voice_username or not settings.voice_password:
            raise CliError(
                "--home acts through the gateway: set HOMESTREAM_VOICE_USERNAME and "
                "HOMESTREAM_VOICE_PASSWORD to a member of that home"
            )
        url = args.gateway or f"http://{settings.host}:{settings.ports.gateway}"
        gateway = GatewayClient(url, args.home, settings.voice_username, settings.voice_password)
    stt = Transcriber(
        settings.voice_model,
        settings.voice_workers,
        settings.voice_compute_type,
        settings.voice_max_audio_s,
        beam=settings.voice_beam,
    )
    print(f"loading the speech-to-text model ({stt.model}) ...", file=sys.stderr)
    stt.warm()
    name = Path(stt.model).name if settings.voice_model else "tiny.en"
    print(f"serving Wyoming on {args.wyoming}", file=sys.stderr)

    async def main() -> None:
        task = asyncio.create_task(
            serve(args.wyoming, stt, gateway, name, settings.voice_max_audio_s)
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(main())
    finally:
        stt.close()
    return 0


def register(commands: Commands) -> None:
    voice = commands.group("voice", "voice: speech-to-text and intents for voice satellites")
    p = voice.add(
        "serve",
        cmd_serve,
        "serve speech-to-text and intent handling over the Wyoming protocol (Home Assistant "
        "voice satellites, Assist pipelines); with --home, what is said acts on that home "
        "through the gateway as HOMESTREAM_VOICE_USERNAME",
    )
    p.add_argument(
        "--wyoming", required=True, help="where to listen: tcp://HOST:PORT or unix://PATH"
    )
    p.add_argument("--home", help="the home transcripts act on (without: transcription only)")
    p.add_argument("--gateway", help="the gateway's URL [http://HOMESTREAM_HOST:GATEWAY_PORT]")
    add_loglevel(p)
