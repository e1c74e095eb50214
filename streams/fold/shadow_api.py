"""The AWS IoT shadow API (MQTT ``hub/{h}/shadow/{d}/...``, the gateway): GET, UPDATE and
DELETE requests answered with ShadowResponse records (accepted, rejected, documents)
that the bridge publishes on the reply topics."""

from __future__ import annotations

import json
from typing import Any

from domain.shadow import (
    MAX_DOCUMENT_BYTES,
    MSG_TOO_LARGE,
    ShadowError,
    apply_update,
    get_document,
)
from domain.validate import validate_state
from streams.fold.commands import complete_matching
from streams.fold.context import Context
from streams.fold.shadows import emit_state_change, load_shadow, shadow_state
from topics import catalogue as t
from topics.keys import device_key


def on_shadow_request(ctx: Context, rec: dict[str, Any]) -> None:
    home, dev = rec["home_id"], rec["device_id"]
    op = rec.get("operation") or "UNKNOWN"
    token = rec.get("client_token")
    ctx.counters[f"shadow_{op.lower()}"] += 1
    now_s = ctx.now // 1000
    device = ctx.device_state(home, dev)
    if device is None:
        err = ShadowError(404, f"No shadow exists with name: '{dev}' (device not discovered)")
        _reply(ctx, rec, "REJECTED", err.payload(now_s, token), err)
        return
    if op == "GET":
        doc = get_document(load_shadow(device), token, now=now_s, name=dev)
        if "code" in doc:
            err = ShadowError(int(doc["code"]), str(doc["message"]))
            _reply(ctx, rec, "REJECTED", doc, err)
        else:
            _reply(ctx, rec, "ACCEPTED", doc, None)
        return
    request = _update_request(rec)
    if isinstance(request, ShadowError):
        _reply(ctx, rec, "REJECTED", request.payload(now_s, token), request)
        return
    if op == "UPDATE":
        # Capability attributes hold only valid values, whichever way they arrive.
        caps = device["descriptor"]["capabilities"]
        for section in ("desired", "reported"):
            part = request["state"].get(section)
            if isinstance(part, dict):
                set_leaves = {k: v for k, v in part.items() if v is not None}
                errors = validate_state(caps, set_leaves).errors
                if errors:
                    err = ShadowError(400, f"state.{section}: {_reason_text(errors)}")
                    _reply(ctx, rec, "REJECTED", err.payload(now_s, token), err)
                    return
    before = load_shadow(device)
    result = apply_update(before, request, now_s)
    if not result.accepted:
        err = result.error or ShadowError(500, "rejected")
        _reply(ctx, rec, "REJECTED", result.rejected_response or {}, err)
        return
    if op == "DELETE":
        accepted: dict[str, Any] = {"version": result.shadow.version, "timestamp": now_s}
        if token is not None:
            accepted["clientToken"] = token
    else:
        accepted = result.accepted_response or {}
    if result.changed:
        device = {**device, "shadow": shadow_state(result.shadow)}
        ctx.store.put(device_key(home, dev), device)
        emit_state_change(
            ctx, dev, result, source=f"shadow:{rec.get('source') or 'api'}", before=before
        )
    _reply(ctx, rec, "ACCEPTED", accepted, None)
    if result.changed and result.documents_message is not None:
        _reply(ctx, rec, "DOCUMENTS", result.documents_message, None)
    if result.changed:
        complete_matching(ctx, home, dev, result.shadow.reported)


def _reply(
    ctx: Context,
    rec: dict[str, Any],
    outcome: str,
    payload: dict[str, Any],
    error: ShadowError | None,
) -> None:
    ctx.emit(
        t.SHADOW_RESPONSES,
        ctx.home,
        "ShadowResponse",
        {
            "device_id": rec["device_id"],
            "operation": rec.get("operation") or "UNKNOWN",
            "outcome": outcome,
            "payload": json.dumps(payload, separators=(",", ":")),
            "error_code": error.code if error else None,
            "error_message": error.message if error else None,
            "client_token": rec.get("client_token"),
            "version": payload.get("version") if error is None else None,
            "request_id": rec.get("request_id"),
        },
    )


def _update_request(rec: dict[str, Any]) -> dict[str, Any] | ShadowError:
    """The AWS update request a ShadowUpdateRequest record stands for (DELETE clears both
    sections), or the error to answer with."""
    if (rec.get("payload_size") or 0) > MAX_DOCUMENT_BYTES:
        return ShadowError(413, MSG_TOO_LARGE)
    if rec.get("operation") == "DELETE":
        request: dict[str, Any] = {"state": {"desired": None, "reported": None}}
    elif rec.get("operation") == "UPDATE":
        state: dict[str, Any] = {}
        for section in ("desired", "reported"):
            text = rec.get(section)
            if text is not None:
                try:
                    state[section] = json.loads(text)
                except ValueError:
                    return ShadowError(400, f"Invalid JSON in state.{section}")
        request = {"state": state}
        if rec.get("version") is not None:
            request["version"] = rec["version"]
    else:
        return ShadowError(400, f"unsupported shadow operation {rec.get('operation')!r}")
    if rec.get("client_token") is not None:
        request["clientToken"] = rec["client_token"]
    return request


def _reason_text(errors: list) -> str:
    return "; ".join(getattr(e, "reason", str(e)) for e in errors)
