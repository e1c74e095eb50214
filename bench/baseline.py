"""The plainest server for the gateway's fan-out job, to read the gateway's figures against
(`homestream bench gateway`, issue #22): ``python -m bench.baseline --port N``.

One asyncio process: a thread reads homestream.state.changes from Kafka (the gateway's own
``KafkaFeed``, so both decode the same way) and each batch's ``device.state`` frames go,
encoded once, to the home's connections with ``websockets``' ``broadcast``. A client sends
``{"type":"subscribe","home_id":...}``; there is no token, no snapshot, no role check, no
per-client queue and no resync (a slow client's frames pile up in its socket buffer).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
from collections import defaultdict

from websockets.asyncio.server import ServerConnection, broadcast, serve

from gateway.feed import KafkaFeed
from gateway.frames import Event
from runtime.config import Settings
from runtime.fdlimit import raise_open_files
from topics import catalogue as t


async def serve_baseline(settings: Settings, host: str, port: int) -> None:
    from topics.codec import make_codec
    from topics.schemas import SchemaStore

    homes: dict[str, set[ServerConnection]] = defaultdict(set)

    async def handler(ws: ServerConnection) -> None:
        mine: list[str] = []
        try:
            async for message in ws:
                with contextlib.suppress(ValueError, KeyError, TypeError, AttributeError):
                    frame = json.loads(message)
                    if frame.get("type") == "subscribe":
                        homes[frame["home_id"]].add(ws)
                        mine.append(frame["home_id"])
        finally:
            for home in mine:
                homes[home].discard(ws)

    def publish(events: list[Event]) -> None:
        for event in events:
            conns = homes.get(event.home_id)
            if conns:
                broadcast(conns, event.text)

    loop = asyncio.get_running_loop()

    def from_thread(events: list[Event]) -> None:
        with contextlib.suppress(RuntimeError):  # loop closing
            loop.call_soon_threadsafe(publish, events)

    codec = make_codec(SchemaStore(), settings.schema_registry_url)
    feed = KafkaFeed(
        settings.kafka_bootstrap,
        codec,
        topics=(t.STATE_CHANGES,),
        client_id="homestream-bench-baseline",
    )
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(None))
    feed.start(from_thread)
    try:
        async with serve(handler, host, port, compression=None, backlog=4096):
            await asyncio.to_thread(feed.ready.wait, 60)
            print("ready", flush=True)
            await stop
    finally:
        await asyncio.to_thread(feed.stop)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args()
    raise_open_files()
    settings = Settings.from_env()
    try:
        import uvloop  # the gateway's loop too (uvicorn's "auto")

        uvloop.run(serve_baseline(settings, args.host, args.port))
    except ImportError:
        asyncio.run(serve_baseline(settings, args.host, args.port))


if __name__ == "__main__":
    main()
