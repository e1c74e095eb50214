"""Liveness, metrics, the API description and the dashboard's place."""

from __future__ import annotations

from pathlib import Path

from starlette.responses import HTMLResponse, Response

from gateway.api import PUBLIC, Ctx, Endpoint, Reply, ok

STATIC_DIR = Path(__file__).resolve().parents[1] / "static"  # the dashboard, no CDN

HEALTH = {
    "type": "object",
    "required": ["status"],
    "properties": {
        "status": {"type": "string", "enum": ["ok"]},
        "fanout": {"type": "object"},
    },
}


async def healthz(ctx: Ctx) -> Response:
    b = ctx.backend
    feed = b.fanout.feed
    return ok(
        {
            "status": "ok",
            "fanout": {
                "ready": b.fanout.ready,
                "subscribers": b.fanout.subscribers(),
                "error": feed.error if feed is not None else None,
            },
        }
    )


async def metrics(ctx: Ctx) -> Response:
    from prometheus_client import CONTENT_TYPE_LATEST

    return Response(ctx.backend.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)


async def openapi_json(ctx: Ctx) -> Response:
    from gateway.openapi import document

    return ok(document(ctx.request.app.state.endpoints))


async def api_docs(ctx: Ctx) -> Response:
    return HTMLResponse((STATIC_DIR / "docs.html").read_text(encoding="utf-8"))


def swagger_ui_dir() -> Path:
    """Swagger UI's files, from the swagger-ui-bundle package (served at /docs/assets)."""
    from swagger_ui_bundle import swagger_ui_path

    return Path(swagger_ui_path)


async def index(ctx: Ctx) -> Response:
    return HTMLResponse((STATIC_DIR / "index.html").read_text(encoding="utf-8"))


ENDPOINTS = [
    Endpoint(
        "GET",
        "/healthz",
        healthz,
        PUBLIC,
        "Liveness",
        "system",
        {200: Reply("The gateway is up", HEALTH)},
    ),
    Endpoint(
        "GET",
        "/metrics",
        metrics,
        PUBLIC,
        "Prometheus metrics",
        "system",
        {
            200: Reply(
                "Metrics in Prometheus' text format", {"type": "string"}, content_type="text/plain"
            )
        },
    ),
    Endpoint(
        "GET",
        "/openapi.json",
        openapi_json,
        PUBLIC,
        "This API's OpenAPI 3 description",
        "system",
        {200: Reply("OpenAPI 3.0 document", {"type": "object"})},
    ),
    Endpoint(
        "GET",
        "/docs",
        api_docs,
        PUBLIC,
        "Interactive API docs (Swagger UI over /openapi.json, served from this gateway)",
        "system",
        {200: Reply("HTML", {"type": "string"}, content_type="text/html")},
    ),
    Endpoint(
        "GET",
        "/",
        index,
        PUBLIC,
        "The web dashboard",
        "system",
        {200: Reply("HTML", {"type": "string"}, content_type="text/html")},
    ),
]
