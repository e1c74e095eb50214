"""The gateway's Starlette app: ``create_app(settings)``.

Serve it with ``homestream gateway`` (uvicorn on ``HOMESTREAM_GATEWAY_PORT``, 8080). The
REST routes are declared in ``gateway.routes``; the WebSocket ``/v1/ws`` is mounted from
``gateway.ws.websocket_endpoint`` when that module exists (it reads
``websocket.app.state.backend``: ``backend.fanout`` for events, ``backend.devices`` for the
snapshot, ``gateway.auth`` for the token).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from gateway.api import make_routes
from gateway.backend import Backend
from gateway.errors import error_response, unavailable_reason
from gateway.routes import all_endpoints
from gateway.routes.system import STATIC_DIR, swagger_ui_dir

log = logging.getLogger("homestream.gateway")


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "error"
    if exc.status_code == 404:
        message = f"no route {request.url.path}"
    elif exc.status_code == 405:
        message = f"{request.method} is not allowed on {request.url.path}"
    return error_response(exc.status_code, message, headers=getattr(exc, "headers", None))


async def _server_error(request: Request, exc: Exception) -> Response:
    reason = unavailable_reason(exc)
    if reason is not None:
        log.warning("%s %s: %s (%s)", request.method, request.url.path, reason, exc)
        return error_response(503, reason)
    log.exception("%s %s failed", request.method, request.url.path)
    return error_response(500, "internal error; the gateway's log has the details")


def _websocket_routes() -> list[BaseRoute]:
    try:
        ws = importlib.import_module("gateway.ws")
    except ModuleNotFoundError as exc:
        if exc.name != "gateway.ws":
            raise
        return []
    endpoint = getattr(ws, "websocket_endpoint", None)
    return [WebSocketRoute("/v1/ws", endpoint)] if endpoint is not None else []


async def _service_worker(request: Request) -> Response:
    """The dashboard's service worker, from / so that its scope is the whole app."""
    return FileResponse(
        STATIC_DIR / "sw.js",
        media_type="text/javascript",
        headers={"Cache-Control": "no-cache", "Service-Worker-Allowed": "/"},
    )


def _graphql_routes() -> list[BaseRoute]:
    from gateway.graphql.view import GraphQLView

    view = GraphQLView()
    return [
        Route("/v1/graphql", view, methods=["GET", "POST"]),
        WebSocketRoute("/v1/graphql", view),
    ]


def create_app(
    settings: Any = None,
    *,
    backend: Backend | None = None,
    extra_routes: Sequence[BaseRoute] = (),
    sync_hub_logins: Callable[[], object] | None = None,
) -> Starlette:
    """The gateway app. With ``backend`` (tests), that one is used; otherwise the real one
    is built from ``settings`` when the app starts (lifespan)."""
    endpoints = all_endpoints()

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if app.state.backend is None:
            from runtime.config import Settings

            app.state.backend = Backend.connect(
                settings or Settings.from_env(), sync_hub_logins=sync_hub_logins
            )
        await app.state.backend.start()
        try:
            yield
        finally:
            await app.state.backend.stop()

    routes: list[BaseRoute] = list(make_routes(endpoints))
    routes += _websocket_routes()
    routes += _graphql_routes()
    routes.append(Route("/sw.js", _service_worker, methods=["GET"]))
    routes.append(Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"))
    routes.append(Mount("/docs/assets", StaticFiles(directory=swagger_ui_dir()), name="docs"))
    routes += list(extra_routes)
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={HTTPException: _http_error, Exception: _server_error},
    )
    app.state.backend = backend
    app.state.endpoints = endpoints
    app.state.settings = settings
    return app
