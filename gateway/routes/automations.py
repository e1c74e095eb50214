"""Automations (Home Assistant's model, CONTRACT.md section 5): stored, checked, listed.

The document: ``{"alias", "mode"?, "enabled"?, "triggers": [...], "conditions"?: [...],
"actions": [...]}``; ``domain.automation.parse`` says what each trigger, condition and
action may hold and checks it (times that exist, readable durations, attributes and
commands the capability table has). Here the home is checked too: every device, group
and scene the automation names must exist, and a command must suit its device. Errors
name the path (``triggers[1].attribute``).

A PUT takes JSON or YAML (``application/yaml``, ``text/yaml``): one entry of Home
Assistant's automations.yaml pastes in, older spellings (``trigger:``, ``platform:``,
``initial_state``) and all. YAML that does not parse is a 400 naming the line and column;
a YAML body's 422 details carry each problem's line. What is stored (and published, and
shown) is the contract's spelling (``domain.automation.canonical``).

Running them is the automation engine's job; ``GET .../automations/{a}/runs`` lists the
runs it reported on ``homestream.automations.runs`` (kept in Redis by the fan-out).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from starlette.responses import Response

from domain.automation.canonical import canonical
from domain.automation.hass import Device, translate, uses_hass_spelling
from domain.automation.model import CommandAction, references
from domain.automation.parse import LOG_LEVELS, AutomationInvalid, parse
from domain.automation.yamldoc import YamlSyntaxError, locate, parse_yaml
from gateway.api import Ctx, Endpoint, Param, ParsedBody, Reply, ok
from gateway.automation_schema import typed_list
from gateway.errors import ApiError, validation_error
from gateway.roles import Permission
from gateway.routes.common import check_command, doc_endpoints
from gateway.routes.devices import shown_devices

# Home Assistant's older spelling of a list: an array, or one object for a list of one.
OLDER_LIST = {
    "type": ["array", "object"],
    "maxItems": 100,
    "items": {"type": "object"},
    "description": "Home Assistant's older spelling; stored as the plural",
}
YAML_TYPES = ("application/yaml", "text/yaml", "application/x-yaml")
AUTOMATION_BODY = {
    "type": "object",
    # triggers and actions are required too, in either spelling (check_automation)
    "required": ["alias"],
    "additionalProperties": False,
    "properties": {
        "alias": {"type": "string", "minLength": 1, "maxLength": 200},
        "description": {"type": "string", "maxLength": 2000},
        "enabled": {"type": "boolean"},
        "mode": {"type": "string", "enum": ["single", "restart", "queued", "parallel"]},
        "max": {"type": "integer", "minimum": 1, "maximum": 100},
        "max_exceeded": {"type": "string", "enum": list(LOG_LEVELS)},
        "triggers": typed_list("AutomationTrigger", minItems=1),
        "conditions": typed_list("AutomationCondition"),
        "actions": typed_list("AutomationAction", minItems=1),
        # an automations.yaml entry's own id (the URL names the automation here)
        "id": {"type": ["string", "integer"], "description": "kept as written; not the URL's id"},
        "trigger": OLDER_LIST,
        "condition": OLDER_LIST,
        "action": OLDER_LIST,
        "initial_state": {"type": "boolean", "description": "Home Assistant's enabled"},
    },
}
RUNS_REPLY = {
    "type": "object",
    "required": ["home_id", "automation_id", "runs"],
    "properties": {
        "home_id": {"type": "string"},
        "automation_id": {"type": "string"},
        "runs": {"type": "array", "items": {"type": "object"}},
    },
}


def read_yaml(raw: bytes) -> ParsedBody:
    """A YAML body -> the document (then validated as a JSON one is). 400 when it is not
    YAML, with the line and column; 422 for YAML no JSON document could be (a list of
    automations, NaN, non-text keys), with the line of each problem."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ApiError(
            400, f"the body is not UTF-8 text: byte {exc.start}", "invalid_yaml"
        ) from None
    try:
        doc = parse_yaml(text)
    except YamlSyntaxError as exc:
        where = f"line {exc.line}, column {exc.column}: " if exc.line is not None else ""
        detail: dict[str, Any] = {"path": "", "message": exc.message}
        if exc.line is not None:
            detail.update(line=exc.line, column=exc.column)
        raise ApiError(
            400,
            f"the body is not valid YAML: {where}{exc.message}",
            "invalid_yaml",
            details=[detail],
        ) from None
    except AutomationInvalid as exc:
        error = validation_error(exc.problems)
        for d in error.details or []:
            if (line := locate(text, d["path"])) is not None:
                d["line"] = line
        raise error from None
    return ParsedBody(doc, lambda path: locate(text, path))


async def check_automation(ctx: Ctx, doc: dict[str, Any]) -> dict[str, Any]:
    """422 for what the schema cannot say: the document's own rules (domain.automation),
    then devices, groups and scenes it names that the home does not have, and commands a
    named device cannot take. Returns the document to store: the contract's spelling."""
    missing = [
        (plural, "is required")
        for plural, singular in (("triggers", "trigger"), ("actions", "action"))
        if plural not in doc and singular not in doc
    ]
    if missing:
        raise validation_error(missing)
    b = ctx.backend
    shown, area_names = await shown_devices(b, ctx.home_id)
    devices = {d["device_id"]: d for d in shown}
    if uses_hass_spelling(doc):
        hass_devices = {k: hass_device(d) for k, d in devices.items()}
        doc, problems = translate(doc, hass_devices, area_names)
        if problems:
            raise validation_error(problems)
    try:
        automation = parse(doc)
    except AutomationInvalid as exc:
        raise validation_error(exc.problems) from None
    problems: list[tuple[str, str]] = []
    for ref in references(automation):
        if ref.kind == "device" and ref.id not in devices:
            problems.append((ref.path, f"device {ref.id!r} is not in home {ctx.home_id!r}"))
        elif ref.kind != "device" and (
            await b.run(b.store.get_doc, ctx.home_id, ref.kind, ref.id) is None
        ):
            problems.append((ref.path, f"{ref.kind} {ref.id!r} does not exist"))
    for action in automation.actions:
        if isinstance(action, CommandAction) and action.device_id in devices:
            device = devices[action.device_id]
            try:
                check_command(
                    device, action.capability, action.command, action.parameters, action.path
                )
            except ApiError as exc:
                problems += [(d["path"], d["message"]) for d in exc.details or []]
    if problems:
        raise validation_error(problems)
    return canonical(doc)


def hass_device(entry: dict[str, Any]) -> Device:
    """What Home Assistant translation reads of a device as shown (with its area id)."""
    return Device(
        capabilities=tuple(entry.get("capabilities") or ()),
        type=entry.get("type"),
        area=entry.get("area"),
    )


def _takes_yaml(endpoint: Endpoint) -> Endpoint:
    """The PUT of an automation also reads YAML bodies."""
    if endpoint.method != "PUT":
        return endpoint
    return dataclasses.replace(
        endpoint,
        body_content_types=("application/json", *YAML_TYPES),
        body_readers=dict.fromkeys(YAML_TYPES, read_yaml),
        description="The body is JSON, or YAML (application/yaml, text/yaml): one entry of "
        "Home Assistant's automations.yaml, whose older spellings (trigger:, platform:, "
        "initial_state) are read and stored in the contract's. A 422's details name each "
        "field path, and for YAML its line; YAML that does not parse is a 400 with the "
        "line and column.",
    )


async def list_runs(ctx: Ctx) -> Response:
    b = ctx.backend
    automation_id = ctx.path["automation_id"]
    if await b.run(b.store.get_doc, ctx.home_id, "automation", automation_id) is None:
        raise ApiError(404, f"automation {automation_id!r} not found")
    limit = int(ctx.query.get("limit", 50))
    runs: list[dict[str, Any]] = []
    if b.recent is not None:
        runs = await b.run(b.recent.runs, ctx.home_id, automation_id, limit)
    return ok({"home_id": ctx.home_id, "automation_id": automation_id, "runs": runs})


ENDPOINTS = [
    *map(
        _takes_yaml,
        doc_endpoints("automation", "automations", AUTOMATION_BODY, check_automation, "automation"),
    ),
    Endpoint(
        "GET",
        "/v1/homes/{home_id}/automations/{automation_id}/runs",
        list_runs,
        Permission.VIEW,
        "The latest runs of an automation, newest first",
        "automations",
        {200: Reply("Runs", RUNS_REPLY)},
        query=(Param("limit", {"type": "integer", "minimum": 1, "maximum": 100}, "at most"),),
    ),
]
