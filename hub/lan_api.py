"""The hub's LAN API: apps on the home's network control devices through the hub itself,
so they keep working while the cloud is unreachable.

Authenticated with the hub's own login (hub.toml's [cloud] username and password, the
credentials `homestream hubs add` printed) as HTTP Basic. Errors are CONTRACT's JSON
``{"error": {"code", "message"}}``.

=====================================  ================================================
``GET /v1/status``                     ``{"home_id", "cloud": "online"|"offline",
                                       "local_automations": [...]}``
``GET /v1/devices``                    the hub's registry: ``[{"device_id", "name", "room",
                                       "icon", "tags", "descriptor", "state"}]``, the
                                       user's name/room/icon/tags from the cloud
``POST /v1/commands``                  ``{"device_id", "capability", "command",
                                       "parameters"?}`` -> ``{"status": "COMPLETED"}``;
                                       422 ``FAILED`` with the device's reason
``POST /v1/scenes/{scene_id}/run``     a scene synced from the cloud, run by the hub:
                                       ``{"status", "actions_succeeded", ...}``
=====================================  ================================================
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import hmac
import logging
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from domain.commands import CommandRejected, validate_command
from hub.adapters.base import CommandFailed

if TYPE_CHECKING:
    from hub.hubrun import HubRuntime

log = logging.getLogger("homestream.hub.lan")


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status)


def _authorised(request: Request, username: str, password: str) -> bool:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        user, _, given = base64.b64decode(value, validate=True).decode("utf-8").partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return False
    # both compared, in constant time: the answer says nothing about which was wrong
    ok_user = hmac.compare_digest(user.encode(), username.encode())
    return hmac.compare_digest(given.encode(), password.encode()) and ok_user


def app(runtime: HubRuntime) -> Starlette:
    cfg = runtime.cfg

    def guard(handler: Any) -> Any:
        async def wrapped(request: Request) -> JSONResponse:
            if not _authorised(request, cfg.username, cfg.password):
                resp = _error(401, "unauthorized", "use the hub's own login as HTTP Basic")
                resp.headers["WWW-Authenticate"] = 'Basic realm="homestream hub"'
                return resp
            result: JSONResponse = await handler(request)
            return result

        return wrapped

    async def status(request: Request) -> JSONResponse:
        return JSONResponse(
            {
                "home_id": cfg.home,
                "cloud": "online" if runtime.client.connected else "offline",
                "local_automations": sorted(runtime.local.automations()),
            }
        )

    async def devices(request: Request) -> JSONResponse:
        return JSONResponse(runtime.local.shown())

    async def command(request: Request) -> JSONResponse:
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "bad_request", "the body must be JSON")
        if not isinstance(body, dict):
            return _error(400, "bad_request", "the body must be a JSON object")
        device = body.get("device_id")
        if not isinstance(device, str) or runtime.adapter_of(device) is None:
            return _error(404, "not_found", f"this hub has no device {device!r}")
        capability, name = body.get("capability"), body.get("command")
        parameters = body.get("parameters") or {}
        if not isinstance(capability, str) or not isinstance(name, str):
            return _error(422, "invalid", "a command needs capability and command (text)")
        if not isinstance(parameters, dict):
            return _error(422, "invalid", "parameters must be an object")
        desc = runtime.local.devices().get(device, ({}, {}))[0]
        try:
            validate_command(desc.get("capabilities") or [], capability, name, parameters)
        except CommandRejected as exc:
            return _error(422, exc.code.value, exc.reason)
        try:
            await runtime.execute(device, capability, name, parameters)
        except (CommandFailed, ValueError, LookupError) as exc:
            return _error(422, "failed", str(exc))
        log.info("lan command", extra={"device_id": device, "command": name})
        return JSONResponse({"device_id": device, "command": name, "status": "COMPLETED"})

    async def scene(request: Request) -> JSONResponse:
        try:
            result = await runtime.local.run_scene(request.path_params["scene_id"])
        except LookupError as exc:
            return _error(404, "not_found", str(exc))
        return JSONResponse(result)

    return Starlette(
        routes=[
            Route("/v1/status", guard(status)),
            Route("/v1/devices", guard(devices)),
            Route("/v1/commands", guard(command), methods=["POST"]),
            Route("/v1/scenes/{scene_id}/run", guard(scene), methods=["POST"]),
        ]
    )


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield  # the hub process owns SIGTERM/SIGINT (hubrun.run_hub)


class LanServer:
    def __init__(self, server: _Server, task: asyncio.Task[None]) -> None:
        self.server, self.task = server, task

    @property
    def port(self) -> int:
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        self.server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


async def serve(
    runtime: HubRuntime, host: str, port: int, tls: tuple[str, str] | None = None
) -> LanServer:
    """Listen on ``host:port``; HTTPS with ``tls`` (certificate and key PEM files)."""
    config = uvicorn.Config(
        app(runtime),
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        ssl_certfile=tls[0] if tls else None,
        ssl_keyfile=tls[1] if tls else None,
    )
    server = _Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()  # raises why it could not listen
            raise OSError(f"the LAN API could not listen on {host}:{port}")
        await asyncio.sleep(0.02)
    log.info("lan api listening", extra={"host": host, "port": port, "tls": bool(tls)})
    return LanServer(server, task)
