"""What several routes share: schemas, device views, sending commands, waiting for them.

:func:`send_command` writes the command's PENDING into the command log itself
(``stores.command_log``) rather than leave it to the Redis sink, which keeps the log from
``homestream.commands.status``: a write-ahead of the request's own command, so a GET on
another gateway process right after the POST finds it. The log's merge never goes back, so
the sink's later writes of the same command (its PENDING, then SENT ...) are safe in any
order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from typing import Any

from domain.commands import CommandRejected, validate_command
from domain.lifecycle import STATUSES
from gateway.api import Ctx, Param
from gateway.backend import Backend
from gateway.errors import ApiError, validation_error
from runtime.service import first_line
from stores.home_documents import config_fields, config_key
from topics import catalogue as t

log = logging.getLogger("homestream.gateway")

# -- schemas -----------------------------------------------------------------------------
NAME = {"type": "string", "minLength": 1, "maxLength": 200}
ID = {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"}
# A device named in a body: any id a hub can give (domain.ids), checked before any lookup.
DEVICE_REF = {"type": "string", "format": "device-id", "minLength": 1, "maxLength": 128}
PARAMETERS = {
    "type": "object",
    "description": 'command parameters, e.g. {"brightness": 40}',
    "additionalProperties": True,
}
STATUS = {
    "type": "string",
    "enum": list(STATUSES),
}
COMMAND_STATUS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["command_id", "status"],
    "properties": {
        "command_id": {"type": "string"},
        "home_id": {"type": "string"},
        "device_id": {"type": "string", "nullable": True},
        "group_id": {"type": "string", "nullable": True},
        "capability": {"type": "string", "nullable": True},
        "command": {"type": "string", "nullable": True},
        "status": {"type": "string"},
        "reason": {"type": "string", "nullable": True},
        "request_id": {"type": "string", "nullable": True},
        "parent_command_id": {"type": "string", "nullable": True},
        "ts": {"type": "integer", "nullable": True},
        "commands": {"type": "array", "items": {"type": "object"}},
    },
}
DEVICE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["device_id", "name", "type", "capabilities", "online"],
    "properties": {
        "home_id": {"type": "string"},
        "device_id": {"type": "string"},
        "name": {"type": "string", "nullable": True},
        "type": {"type": "string", "nullable": True},
        "room": {"type": "string", "nullable": True},
        "area": {
            "type": "string",
            "nullable": True,
            "description": "the area id of its room (GET .../areas)",
        },
        "capabilities": {"type": "array", "items": {"type": "string"}},
        "online": {"type": "boolean"},
        "lastSeen": {"type": "integer", "nullable": True},
        "battery": {"type": "number", "nullable": True},
        "version": {"type": "integer"},
        "state": {"type": "object"},
        "desired": {"type": "object"},
        "delta": {"type": "object"},
    },
}


# ``from``/``to`` of the time-series routes (history, logbook): domain.timerange reads them.
TIME_RANGE = (
    Param(
        "from",
        {"type": "string", "maxLength": 64},
        "start: ISO 8601 or epoch ms (default: to - 24 h)",
    ),
    Param("to", {"type": "string", "maxLength": 64}, "end: ISO 8601 or epoch ms (now)"),
)


def now_ms() -> int:
    return int(time.time() * 1000)


# -- devices -----------------------------------------------------------------------------
def apply_override(device: dict[str, Any], override: dict[str, Any] | None) -> dict[str, Any]:
    if not override:
        return device
    return {**device, **override}


async def device_or_404(ctx: Ctx, device_id: str) -> dict[str, Any]:
    b = ctx.backend
    device = await b.run(b.devices.device, ctx.home_id, device_id)
    if device is None:
        raise ApiError(404, f"device {device_id!r} not found in home {ctx.home_id!r}")
    return device


# -- commands ----------------------------------------------------------------------------
def check_command(
    device: dict[str, Any], capability: str, command: str, parameters: Any, path: str = ""
) -> None:
    """Refuse a command the device cannot take (422 naming the field). Validation only: the
    stream worker plans it against the state it holds, which may be newer than ours."""
    try:
        validate_command(device.get("capabilities") or [], capability, command, parameters)
    except CommandRejected as exc:
        if exc.path in ("capability", "command", "parameters", ""):
            field = exc.path or "parameters"
        else:
            field = f"parameters.{exc.path}"
        full = f"{path}.{field}" if path else field
        raise validation_error([(full, exc.reason)]) from None


def send_command(
    backend: Backend,
    home: str,
    *,
    device_id: str,
    capability: str,
    command: str,
    parameters: dict[str, Any] | None,
    requested_by: str,
    timeout_ms: int | None = None,
    request_id: str | None = None,
    group_id: str | None = None,
    parent_command_id: str | None = None,
    source: str = "rest",
) -> dict[str, Any]:
    """Produce one CommandRequested and note it as PENDING; blocking (run in a thread)."""
    command_id = str(uuid.uuid4())
    issued = now_ms()
    backend.producer.send(
        t.COMMANDS_REQUESTED,
        "CommandRequested",
        home,
        command_id=command_id,
        device_id=device_id,
        group_id=group_id,
        capability=capability,
        command=command,
        parameters=dict(parameters or {}),
        requested_by=requested_by,
        timeout_ms=int(timeout_ms or backend.command_timeout_ms),
        issued_at=issued,
        request_id=request_id,
        parent_command_id=parent_command_id,
    )
    backend.metrics.count_command(source)
    log.info(
        "command requested",
        extra={
            "correlation_id": command_id,
            "home_id": home,
            "device_id": device_id,
            "command": command,
            "source": source,
        },
    )
    status = {
        "command_id": command_id,
        "home_id": home,
        "device_id": device_id,
        "group_id": group_id,
        "capability": capability,
        "command": command,
        "status": "PENDING",
        "reason": None,
        "request_id": request_id,
        "parent_command_id": parent_command_id,
        "ts": issued,
    }
    with contextlib.suppress(Exception):  # best effort; Kafka has the command
        backend.fanout.commands.record(status)
    return status


async def wait_all(
    backend: Backend, command_ids: list[str], timeout_s: float
) -> dict[str, dict[str, Any] | None]:
    results = await asyncio.gather(
        *(backend.fanout.wait_status(cid, timeout_s) for cid in command_ids)
    )
    return dict(zip(command_ids, results, strict=True))


def wait_budget(backend: Backend, timeout_ms: int | None) -> float:
    """How long a ``"wait": true`` request waits: the command's timeout plus a second for
    the TIMEOUT status to arrive, at most ``command_wait_max_s``."""
    ms = timeout_ms or backend.command_timeout_ms
    return min(backend.command_wait_max_s, ms / 1000 + 1.0)


# -- stored documents (groups, scenes, automations) ---------------------------------------
def doc_schema(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """The response schema of a stored document: its id, its fields, updated_at."""
    props = dict(body.get("properties", {}))
    props[f"{kind}_id"] = {"type": "string"}
    props["updated_at"] = {"type": "integer", "nullable": True}
    return {"type": "object", "required": [f"{kind}_id"], "properties": props}


def publish_config(
    backend: Backend, home: str, kind: str, doc_id: str, document: dict[str, Any] | None, by: str
) -> None:
    """Tell the stream workers (``homestream.homes.config``) what the store now holds; blocking.

    After the store's write, so the topic never has a document the API does not; a failure
    here is a 503 that asks for the same request again (both writes are idempotent)."""
    try:
        backend.producer.send(
            t.HOME_CONFIG,
            "HomeConfig",
            home,
            key=config_key(home, kind, doc_id),
            **config_fields(kind, doc_id, document, by),
        )
        backend.producer.flush(5)
    except Exception as exc:
        log.warning("could not publish %s %s of %s: %s", kind, doc_id, home, exc)
        raise ApiError(
            503,
            f"the {kind} was stored but the automation engine was not told (Kafka: "
            f"{first_line(exc)}); send the same request again",
        ) from exc


def doc_endpoints(
    kind: str,
    plural: str,
    body: dict[str, Any],
    check: Any,
    label: str,
) -> list[Any]:
    """List, GET, PUT and DELETE of one kind of stored document.

    ``check(ctx, document)`` is awaited before a PUT stores the body; it raises a 422 for
    what the schema cannot say (e.g. a device that is not in the home), and may return
    the document to store instead (automations: in the contract's spelling)."""
    from gateway.api import Endpoint, Reply, no_content, ok
    from gateway.roles import Permission

    base = f"/v1/homes/{{home_id}}/{plural}"
    item = f"{base}/{{{kind}_id}}"
    view = doc_schema(kind, body)

    async def list_docs(ctx: Ctx) -> Any:
        b = ctx.backend
        docs = await b.run(b.store.list_docs, ctx.home_id, kind)
        return ok({"home_id": ctx.home_id, plural: docs})

    async def get_doc(ctx: Ctx) -> Any:
        b = ctx.backend
        doc = await b.run(b.store.get_doc, ctx.home_id, kind, ctx.path[f"{kind}_id"])
        if doc is None:
            raise ApiError(404, f"{kind} {ctx.path[f'{kind}_id']!r} not found")
        return ok(doc)

    async def put_doc(ctx: Ctx) -> Any:
        b = ctx.backend
        doc_id = ctx.path[f"{kind}_id"]
        document = dict(ctx.body)
        document = await check(ctx, document) or document
        created = await b.run(b.store.put_doc, ctx.home_id, kind, doc_id, document, ctx.user)
        stored = await b.run(b.store.get_doc, ctx.home_id, kind, doc_id)
        await b.run(publish_config, b, ctx.home_id, kind, doc_id, document, ctx.user)
        return ok(stored, 201 if created else 200)

    async def delete_doc(ctx: Ctx) -> Any:
        b = ctx.backend
        doc_id = ctx.path[f"{kind}_id"]
        if not await b.run(b.store.delete_doc, ctx.home_id, kind, doc_id):
            raise ApiError(404, f"{kind} {doc_id!r} not found")
        await b.run(publish_config, b, ctx.home_id, kind, doc_id, None, ctx.user)
        return no_content()

    for fn, verb in (
        (list_docs, "list"),
        (get_doc, "get"),
        (put_doc, "put"),
        (delete_doc, "delete"),
    ):
        fn.__name__ = f"{verb}_{plural if verb == 'list' else kind}"
    return [
        Endpoint(
            "GET",
            base,
            list_docs,
            Permission.VIEW,
            f"The home's {label}s",
            plural,
            {
                200: Reply(
                    f"{label.capitalize()}s",
                    {
                        "type": "object",
                        "required": ["home_id", plural],
                        "properties": {
                            "home_id": {"type": "string"},
                            plural: {"type": "array", "items": view},
                        },
                    },
                )
            },
        ),
        Endpoint(
            "GET",
            item,
            get_doc,
            Permission.VIEW,
            f"One {label}",
            plural,
            {200: Reply(f"The {label}", view)},
        ),
        Endpoint(
            "PUT",
            item,
            put_doc,
            Permission.CONFIGURE,
            f"Create or replace a {label}",
            plural,
            {200: Reply("Replaced", view), 201: Reply("Created", view)},
            body=body,
        ),
        Endpoint(
            "DELETE",
            item,
            delete_doc,
            Permission.CONFIGURE,
            f"Delete a {label}",
            plural,
            {204: Reply("Deleted")},
        ),
    ]


async def check_devices_exist(ctx: Ctx, device_ids: list[tuple[str, str]]) -> None:
    """422 for each ``(path, device_id)`` that is not a device of the home."""
    b = ctx.backend
    known = {d["device_id"] for d in await b.run(b.devices.devices, ctx.home_id)}
    problems = [
        (path, f"device {dev!r} is not in home {ctx.home_id!r}")
        for path, dev in device_ids
        if dev not in known
    ]
    if problems:
        raise validation_error(problems)
