"""/openapi.json, generated from the route declarations (``gateway.routes``).

Every route is there with its path and query parameters, request body schema, success
responses and every error status it can answer with (errors share ``Error``). The body
schemas are the ones the gateway validates with, so the document cannot drift from the code.
"""

from __future__ import annotations

import copy
from typing import Any

from gateway import automation_schema
from gateway.api import ERROR_DESCRIPTIONS, ERROR_SCHEMA, PATH_PARAMS, PUBLIC, Endpoint

VERSION = "1.0.0"


def _media(content_type: str, schema: dict[str, Any] | None) -> dict[str, Any]:
    return {content_type: {"schema": copy.deepcopy(schema) if schema is not None else {}}}


def operation(endpoint: Endpoint) -> dict[str, Any]:
    params: list[dict[str, Any]] = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": dict(PATH_PARAMS.get(name, {"type": "string"})),
        }
        for name in endpoint.path_params
    ]
    for p in endpoint.query:
        params.append(
            {
                "name": p.name,
                "in": "query",
                "required": p.required,
                "description": p.description,
                "schema": dict(p.schema),
            }
        )
    op: dict[str, Any] = {
        "operationId": endpoint.op_id,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "responses": {},
    }
    if endpoint.description:
        op["description"] = endpoint.description
    if isinstance(endpoint.access, str) and endpoint.access != PUBLIC:
        pass
    perm = endpoint.access if endpoint.access != PUBLIC else None
    if perm is not None:
        op["x-permission"] = str(perm)
        op["security"] = [{"bearer": []}]
    else:
        op["security"] = []
    if params:
        op["parameters"] = params
    if endpoint.body is not None:
        content: dict[str, Any] = {}
        for ctype in endpoint.body_content_types:
            if ctype == "application/json" or ctype in endpoint.body_readers:
                # A text body a reader parses has the JSON body's structure and rules.
                content.update(_media(ctype, endpoint.body))
            else:
                content.update(_media(ctype, {"type": "string", "format": "binary"}))
        op["requestBody"] = {"required": endpoint.body_required, "content": content}
    for status, reply in sorted(endpoint.responses.items()):
        resp: dict[str, Any] = {"description": reply.description}
        if reply.schema is not None:
            resp["content"] = _media(reply.content_type, reply.schema)
        op["responses"][str(status)] = resp
    for status in endpoint.error_statuses():
        resp = {
            "description": ERROR_DESCRIPTIONS.get(status, "Error"),
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
        if status == 429:
            resp["headers"] = {
                "Retry-After": {
                    "description": "seconds until requests are accepted again",
                    "schema": {"type": "integer"},
                }
            }
        op["responses"][str(status)] = resp
    return op


def document(endpoints: list[Endpoint]) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        paths.setdefault(ep.path, {})[ep.method.lower()] = operation(ep)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "homestream gateway",
            "version": VERSION,
            "description": "REST API of homestream (CONTRACT.md section 5). Sign in with "
            "POST /v1/auth/token and send `Authorization: Bearer <token>`. Each operation's "
            "`x-permission` is what the caller's role in the home must allow: view (every "
            "role), control (owner, admin, member), configure (owner, admin), manage "
            "(owner). The WebSocket is at /v1/ws.",
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
            "schemas": {"Error": copy.deepcopy(ERROR_SCHEMA), **automation_schema.components()},
        },
    }
