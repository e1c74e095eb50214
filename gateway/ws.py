"""`GET /v1/ws`: the apps' live connection (CONTRACT.md section 5).

One connection can follow several homes. Each subscription is a bounded queue
(``gateway.subscriptions``) on the process's single Kafka fan-out (``gateway.fanout``): a
slow client only fills its own queue, and when that overflows the client gets
``{"type":"resync"}`` plus a fresh snapshot, so nobody else waits. Every frame from the
client is checked; a bad one gets an ``error`` frame and the socket stays open. The role
matrix applies to every message: subscribing needs *view*, commands and scene runs need
*control*.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from domain import ids, strictjson
from gateway import auth
from gateway.api import authorize
from gateway.backend import Backend
from gateway.errors import ApiError
from gateway.frames import Event
from gateway.roles import Permission
from gateway.subscriptions import Subscription
from gateway.wire import Handler, Wire
from topics import jsontext

log = logging.getLogger("homestream.gateway.ws")

MAX_FRAME_BYTES = 64 * 1024
MAX_HOMES_PER_SOCKET = 32
# Close codes: 4401 unauthorised (like HTTP 401) so browsers can tell it from a drop.
CLOSE_UNAUTHORIZED = 4401


async def websocket_endpoint(websocket: WebSocket) -> None:
    """The endpoint through ASGI (the tests' TestClient, ``homestream gateway --ws`` other
    than ``wire``); the gateway's own server opens :func:`wire_session` instead."""
    backend: Backend = websocket.app.state.backend
    try:
        token = auth.token_from_scope(websocket.headers, websocket.query_params)
        user = auth.verify_token(backend.token_secret, token or "").username
    except auth.TokenError as exc:
        # Accept first so the client can read why, then close.
        await websocket.accept()
        await websocket.send_json(_unauthorized(exc))
        await websocket.close(code=CLOSE_UNAUTHORIZED)
        return
    await websocket.accept()
    session = _Session(backend, user, websocket=websocket)
    try:
        while True:
            try:
                text = await websocket.receive_text()
            except WebSocketDisconnect:
                return
            except (RuntimeError, KeyError):  # a binary frame or a closed socket
                text = None
            await session.received(text)
    finally:
        session.closed()


def wire_session(
    backend: Backend, wire: Wire, headers: Mapping[str, str], query: Mapping[str, str]
) -> Handler:
    """The endpoint under the gateway's own server (``gateway.wire``): no task waits for
    the client's messages, they are pushed to the session's ``received``."""
    try:
        token = auth.token_from_scope(headers, query)
        user = auth.verify_token(backend.token_secret, token or "").username
    except (auth.TokenError, LookupError) as exc:  # LookupError: two Authorization headers
        wire.send_text(jsontext.dumps(_unauthorized(exc)))
        wire.close(CLOSE_UNAUTHORIZED)
        return _Refused()
    return _Session(backend, user, wire=wire)


def _unauthorized(exc: Exception) -> dict[str, Any]:
    return {"type": "error", "code": "unauthorized", "message": str(exc)}


class _Refused:
    """A connection being closed for its token: what it still sends is ignored."""

    async def received(self, text: str | None) -> None:
        return None

    def closed(self) -> None:
        return None


class _Session:
    """One client's connection: through ASGI (``websocket``) or the gateway's own server
    (``wire``)."""

    __slots__ = ("areas", "backend", "pumps", "send_lock", "subs", "tasks", "user", "wire", "ws")

    def __init__(
        self,
        backend: Backend,
        user: str,
        *,
        websocket: WebSocket | None = None,
        wire: Wire | None = None,
    ) -> None:
        self.ws = websocket
        self.wire = wire
        self.backend = backend
        self.user = user
        self.subs: dict[str, Subscription] = {}
        # home -> the task forwarding its queue, or resyncing it (none while a sink writes)
        self.pumps: dict[str, asyncio.Task[None]] = {}
        self.send_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task[None]] = set()  # scene runs in progress
        # home -> (the area asked for, its devices now): a subscription to one area
        self.areas: dict[str, tuple[str, set[str]]] = {}

    async def received(self, text: str | None) -> None:
        """One message from the client (None: not a text message)."""
        if text is None:
            await self.error(None, "bad_frame", "send JSON text frames")
        else:
            await self.handle(text)

    def closed(self) -> None:
        for task in [*self.pumps.values(), *self.tasks]:
            task.cancel()
        for sub in self.subs.values():
            sub.sink = sub.on_refused = None
            self.backend.fanout.unsubscribe(sub)
        self.subs.clear()

    async def send(self, frame: dict[str, Any]) -> None:
        await self.send_text(jsontext.dumps(frame, default=str))

    async def send_text(self, text: str) -> None:
        if self.wire is not None:
            self.wire.send_text(text)
            return
        assert self.ws is not None
        async with self.send_lock:
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await self.ws.send_text(text)

    async def error(self, request_id: Any, code: str, message: str) -> None:
        frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
        if request_id is not None:
            frame["request_id"] = request_id
        await self.send(frame)

    # -- client frames ---------------------------------------------------------------------
    async def handle(self, text: str) -> None:
        if len(text.encode("utf-8", "surrogatepass")) > MAX_FRAME_BYTES:
            await self.error(
                None, "payload_too_large", f"frames are limited to {MAX_FRAME_BYTES} bytes"
            )
            return
        try:
            msg = strictjson.loads(text)
        except strictjson.JsonRejected as exc:
            await self.error(None, "bad_json", f"not valid JSON: {exc.message}")
            return
        if not isinstance(msg, dict):
            await self.error(None, "bad_frame", "a frame is a JSON object with a 'type'")
            return
        rid = msg.get("request_id")
        kind = msg.get("type")
        handler = {
            "subscribe": self.on_subscribe,
            "unsubscribe": self.on_unsubscribe,
            "command": self.on_command,
            "scene.run": self.on_scene_run,
            "ping": self.on_ping,
        }.get(kind if isinstance(kind, str) else "")
        if handler is None:
            await self.error(
                rid,
                "unknown_type",
                f"unknown frame type {kind!r}: use subscribe, unsubscribe, command, scene.run "
                "or ping",
            )
            return
        try:
            await handler(msg)
        except ApiError as exc:
            await self.error(rid, exc.code, exc.message)
        except Exception:  # never let one frame end the connection
            log.exception("websocket frame failed", extra={"type": kind})
            await self.error(rid, "internal", "the gateway could not handle this frame")

    async def _home(self, msg: dict[str, Any], permission: Permission) -> str:
        home = msg.get("home_id")
        if home is None and len(self.subs) == 1:
            home = next(iter(self.subs))  # a command on a one-home socket may omit it
        if not isinstance(home, str) or not home:
            raise ApiError(422, "home_id: required (a string)")
        problem = ids.home_id_problem(home)
        if problem is not None:  # before the store sees it
            raise ApiError(422, f"home_id: {problem}")
        await authorize(self.backend, self.user, home, permission)  # REST's and GraphQL's check
        return home

    async def on_ping(self, msg: dict[str, Any]) -> None:
        frame: dict[str, Any] = {"type": "pong"}
        if msg.get("request_id") is not None:
            frame["request_id"] = msg["request_id"]
        await self.send(frame)

    async def on_subscribe(self, msg: dict[str, Any]) -> None:
        home = await self._home(msg, Permission.VIEW)
        if home not in self.subs and len(self.subs) >= MAX_HOMES_PER_SOCKET:
            raise ApiError(429, f"at most {MAX_HOMES_PER_SOCKET} homes per connection")
        old = self.subs.pop(home, None)
        if old is not None:  # re-subscribing: a fresh snapshot
            self._stop_following(home, old)
        # Subscribe before reading the snapshot: events that race it are queued, and the
        # client drops those older than the versions the snapshot holds.
        sub = self.backend.fanout.subscribe(home)
        self.subs[home] = sub
        area = msg.get("area")
        if area is not None and (not isinstance(area, str) or not area.strip()):
            raise ApiError(422, "area: an area id or name (GET .../areas lists them)")
        self.areas.pop(home, None)
        if area is not None:
            self.areas[home] = (area, set())
        await self.snapshot(home)
        self._follow(home, sub)

    async def on_unsubscribe(self, msg: dict[str, Any]) -> None:
        home = msg.get("home_id")
        if not isinstance(home, str) or home not in self.subs:
            raise ApiError(404, f"not subscribed to {home!r}")
        sub = self.subs.pop(home)
        self.areas.pop(home, None)
        self._stop_following(home, sub)

    async def snapshot(self, home: str) -> None:
        if home not in self.areas:
            devices = await self.backend.run(self.backend.devices.devices, home)
            await self.send({"type": "snapshot", "home_id": home, "devices": devices})
            return
        devices = await self._refresh_area(home)
        area = self.areas[home][0]
        await self.send({"type": "snapshot", "home_id": home, "area": area, "devices": devices})

    async def _refresh_area(self, home: str) -> list[dict[str, Any]]:
        """Re-read which devices are in the area this client follows; returns them."""
        from domain.areas import matches
        from gateway.routes.devices import shown_devices

        area = self.areas[home][0]
        shown, names = await shown_devices(self.backend, home)
        devices = [d for d in shown if matches(d["area"], area, names)]
        self.areas[home] = (area, {d["device_id"] for d in devices})
        return devices

    async def _in_area(self, home: str, event: Event) -> bool:
        """Whether an event goes to a client subscribed to one area of the home: device
        events of its devices (a device added or renamed re-reads them), and what names
        no device (scene runs, notifications of the home)."""
        if home not in self.areas:
            return True
        device = event.frame.get("device_id")
        if event.type in ("device.added", "device.removed"):
            before = self.areas[home][1]
            await self._refresh_area(home)
            return device in before or device in self.areas[home][1]
        return device is None or device in self.areas[home][1]

    # -- events to the client -------------------------------------------------------------
    def _follow(self, home: str, sub: Subscription) -> None:
        """After the snapshot: the home's events to the client from now on.

        Under the gateway's own server a client following the whole home gets each Kafka
        batch of its events written straight to its socket by the subscription's sink,
        pre-encoded, in one write, with no task of its own; when the sink refuses (the
        client fell behind), a task resyncs it. Otherwise a task forwards the queue."""
        wire = self.wire
        if wire is None or home in self.areas:
            self.pumps[home] = asyncio.create_task(self._forward(home, sub))
            return
        backlog = sub.drain()  # what raced the snapshot
        if not sub.overflowed and (not backlog or wire.write([e.wire for e in backlog])):
            sub.sink = lambda events: wire.write([e.wire for e in events])
            sub.on_refused = lambda: self._resync_later(home, sub)
            return
        sub.overflowed = True
        sub.dropped += len(backlog)
        self._resync_later(home, sub)

    def _stop_following(self, home: str, sub: Subscription) -> None:
        task = self.pumps.pop(home, None)
        if task is not None:
            task.cancel()
        sub.sink = sub.on_refused = None
        self.backend.fanout.unsubscribe(sub)

    def _resync_later(self, home: str, sub: Subscription) -> None:
        if self.subs.get(home) is sub:
            self.pumps[home] = asyncio.create_task(self._resync(home, sub))

    async def _resync(self, home: str, sub: Subscription) -> None:
        """Once the client has caught up: a resync, a fresh snapshot, then follow again."""
        if self.wire is not None and not await self.wire.drained():
            return  # closed
        sub.clear_overflow()
        await self.send({"type": "resync", "home_id": home, "dropped": sub.dropped})
        await self.snapshot(home)
        if self.pumps.get(home) is asyncio.current_task():
            del self.pumps[home]
            self._follow(home, sub)

    async def _forward(self, home: str, sub: Subscription) -> None:
        """Forward the queue (through ASGI, or to the wire for one area's events), and
        resync after an overflow."""
        while True:
            event: Event | None = await sub.get()
            # What queued up meanwhile goes out under one lock, without a wake-up each.
            async with self.send_lock:
                while event is not None:
                    if home not in self.areas or await self._in_area(home, event):
                        await self._send_event(sub, event)
                    event = sub.get_nowait()
            if sub.overflowed and sub.queue.empty():
                if self.wire is not None and not await self.wire.drained():
                    return
                sub.clear_overflow()
                await self.send({"type": "resync", "home_id": home, "dropped": sub.dropped})
                await self.snapshot(home)

    async def _send_event(self, sub: Subscription, event: Event) -> None:
        if self.wire is not None:
            if not self.wire.write([event.wire]):
                sub.overflowed = True
                sub.dropped += 1
            return
        assert self.ws is not None
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await self.ws.send_text(event.text)

    async def on_command(self, msg: dict[str, Any]) -> None:
        from gateway.routes.common import check_command, send_command

        rid = msg.get("request_id")
        home = await self._home(msg, Permission.CONTROL)
        problems = [
            f"{name}: required (a string)"
            for name in ("device_id", "capability", "command")
            if not isinstance(msg.get(name), str) or not msg.get(name)
        ]
        params = msg.get("parameters", {})
        if not isinstance(params, dict):
            problems.append("parameters: must be an object")
        problem = ids.device_id_problem(msg.get("device_id"))
        if not problems and problem is not None:
            problems.append(f"device_id: {problem}")
        if problems:
            raise ApiError(422, "; ".join(problems))
        device = await self.backend.run(self.backend.devices.device, home, msg["device_id"])
        if device is None:
            raise ApiError(404, f"device {msg['device_id']!r} not found in {home!r}")
        check_command(device, msg["capability"], msg["command"], params)
        status = await self.backend.run(
            send_command,
            self.backend,
            home,
            device_id=msg["device_id"],
            capability=msg["capability"],
            command=msg["command"],
            parameters=params,
            requested_by=self.user,
            request_id=str(rid) if rid is not None else None,
            source="websocket",
        )
        self.backend.fanout.note_status(status)
        # Later steps (SENT, ACKNOWLEDGED, COMPLETED ...) come through the fan-out, with
        # this request_id, to every subscriber of the home.
        await self.send(
            {
                "type": "command.status",
                "home_id": home,
                "request_id": rid,
                "command_id": status["command_id"],
                "device_id": msg["device_id"],
                "command": msg["command"],
                "status": status["status"],
            }
        )

    async def on_scene_run(self, msg: dict[str, Any]) -> None:
        from gateway.routes.scenes import run_scene

        rid = msg.get("request_id")
        home = await self._home(msg, Permission.CONTROL)
        scene_id = msg.get("scene_id")
        if not isinstance(scene_id, str) or not scene_id:
            raise ApiError(422, "scene_id: required (a string)")
        problem = ids.doc_id_problem(scene_id)
        if problem is not None:
            raise ApiError(422, f"scene_id: {problem}")

        # The run takes the scene's delays: do not hold this socket's other frames.
        async def go() -> None:
            try:
                result = await run_scene(self.backend, home, scene_id, self.user, str(rid))
                await self.send(
                    {
                        "type": "scene.status",
                        "home_id": home,
                        "request_id": rid,
                        "scene_id": scene_id,
                        **result,
                    }
                )
            except ApiError as exc:
                await self.error(rid, exc.code, exc.message)

        task = asyncio.create_task(go())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
