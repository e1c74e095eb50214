"""Voice: ``POST /v1/homes/{h}/voice`` (CONTRACT.md section 5, docs/voice.md).

A JSON body ``{"text", "session_id"?}`` or an ``audio/wav`` body (transcribed by the
speech-to-text pool, ``speech.stt``; the session then comes from ``?session_id=``). The text
is understood against the home's vocabulary and the session's context
(``domain.voice.understand``); unless ``?dry_run=true``, the commands go out through the
normal command path (``gateway.routes.common.send_command``, checked like a REST command)
and a scene through the stream worker (``SceneRequested``, not waited for: its
``scene.status`` follows on the WebSocket). Every request is a ``VoiceUtterance`` on
``homestream.voice.utterances``: the text, how it was understood, the commands it issued.

Not understood -> 200 with ``intent: null`` and a helpful ``response``; understood but not
possible here ("unlock the kitchen" in a home without a lock there) -> the intent, no
commands, and why not.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from starlette.responses import Response

from domain.voice.understand import Interpretation, best_reading, understand, unsure_unlock
from gateway.api import Ctx, Endpoint, Param, Reply, ok
from gateway.errors import ApiError
from gateway.roles import Permission
from gateway.routes.common import (
    COMMAND_STATUS_SCHEMA,
    apply_override,
    check_command,
    now_ms,
    send_command,
)
from gateway.routes.scenes import start_scene_run
from topics import catalogue as t

log = logging.getLogger("homestream.gateway")

MAX_AUDIO_BYTES = 4 * 1024 * 1024  # 30 s of 48 kHz stereo 16-bit is 5.6 MB: send 16 kHz mono

VOICE_BODY = {
    "type": "object",
    "required": ["text"],
    "additionalProperties": False,
    "properties": {
        "text": {"type": "string", "minLength": 1, "maxLength": 1000},
        "session_id": {"type": "string", "maxLength": 128},
    },
}
ACTION = {
    "type": "object",
    "properties": {
        "device_id": {"type": "string"},
        "capability": {"type": "string"},
        "command": {"type": "string"},
        "parameters": {"type": "object"},
    },
}
VOICE_REPLY = {
    "type": "object",
    "required": [
        "transcript",
        "intent",
        "devices",
        "parameters",
        "commands",
        "response",
        "session_id",
    ],
    "properties": {
        "transcript": {"type": "string"},
        "intent": {
            "type": "object",
            "nullable": True,
            "description": "null when the text was not understood",
            "required": ["name", "confidence", "slots"],
            "properties": {
                "name": {"type": "string"},
                "confidence": {"type": "number"},
                "slots": {"type": "object"},
            },
        },
        "devices": {"type": "array", "items": {"type": "string"}},
        "parameters": {"type": "object"},
        "commands": {"type": "array", "items": COMMAND_STATUS_SCHEMA},
        "planned": {
            "type": "array",
            "items": ACTION,
            "description": "the commands the request means (sent unless dry_run)",
        },
        "scene": {"type": "object", "nullable": True},
        "response": {"type": "string"},
        "session_id": {"type": "string"},
        "dry_run": {"type": "boolean"},
        "stt": {"type": "object", "nullable": True},
    },
}


async def _vocabulary(ctx: Ctx) -> tuple[Any, dict[str, dict[str, Any]]]:
    """The home's vocabulary, and its devices by id (as the registry shows them now)."""
    b, home = ctx.backend, ctx.home_id
    devices = await b.run(b.devices.devices, home)
    overrides = await b.run(b.store.overrides, home)
    devices = [apply_override(d, overrides.get(d["device_id"])) for d in devices]
    groups = await b.run(b.store.list_docs, home, "group")
    scenes = await b.run(b.store.list_docs, home, "scene")
    vocab = await b.run(b.voice.vocabulary, home, devices, groups, scenes)
    return vocab, {d["device_id"]: d for d in devices}


async def _transcribe(ctx: Ctx, audio: bytes) -> tuple[list[str], dict[str, Any]]:
    from speech.audio import AudioRejected, wav_duration_s

    try:
        wav_duration_s(audio)  # not WAV: 415 before any speech-to-text process starts
    except AudioRejected as exc:
        raise ApiError(exc.status, str(exc)) from None
    try:
        stt = ctx.backend.voice.stt()
    except (RuntimeError, ImportError) as exc:
        raise ApiError(503, f"speech-to-text is unavailable: {exc}") from None
    try:
        heard = await stt.transcribe(audio)
    except AudioRejected as exc:
        raise ApiError(exc.status, str(exc)) from None
    stats = {
        "audio_s": round(heard.audio_s, 3),
        "speech_s": round(heard.speech_s, 3),
        "stt_ms": round(heard.stt_ms, 1),
        "stt_cpu_ms": round(heard.cpu_ms, 1),
        "hypotheses": list(heard.hypotheses),
    }
    return list(heard.hypotheses) or [heard.text], stats


def _send(ctx: Ctx, meant: Interpretation, devices: dict[str, Any]) -> list[dict[str, Any]]:
    """The commands, checked like REST ones, through the normal path; blocking."""
    b = ctx.backend
    for action in meant.actions:
        check_command(
            devices[action.device_id], action.capability, action.command, action.parameters
        )
    return [
        send_command(
            b,
            ctx.home_id,
            device_id=a.device_id,
            capability=a.capability,
            command=a.command,
            parameters=dict(a.parameters),
            requested_by=ctx.user or "",
            source="voice",
        )
        for a in meant.actions
    ]


def _utterance(
    ctx: Ctx,
    session_id: str,
    text: str | None,
    meant: Interpretation,
    dry_run: bool,
    command_ids: list[str],
    received: int,
) -> None:
    b = ctx.backend
    b.producer.send(
        t.VOICE_UTTERANCES,
        "VoiceUtterance",
        ctx.home_id,
        ts=received,
        session_id=session_id,
        text=text,
        audio_ref=None,
        audio_content_type=None if text is not None else "audio/wav",
        transcript=meant.text,
        intent=meant.intent,
        confidence=meant.confidence,
        slots=dict(meant.slots),
        response=meant.response,
        dry_run=dry_run,
        requested_by=ctx.user,
        command_ids=command_ids,
    )


def voice_status(intent: str | None, actions: Any, scene_id: str | None) -> str:
    """The design brief's voice outcome: success (something to do), not_understood, or
    failed (understood, but nothing here it could be done to)."""
    if intent is None:
        return "not_understood"
    return "success" if actions or scene_id is not None else "failed"


async def post_voice(ctx: Ctx) -> Response:
    b = ctx.backend
    received = now_ms()
    started = time.perf_counter()
    dry_run = bool(ctx.query.get("dry_run"))
    stats: dict[str, Any] | None = None
    if isinstance(ctx.body, bytes):
        text_in = None
        session_id = ctx.query.get("session_id") or str(uuid.uuid4())
        heard, stats = await _transcribe(ctx, ctx.body)
    else:
        text_in = ctx.body["text"]
        heard = [text_in]
        session_id = ctx.body.get("session_id") or ctx.query.get("session_id") or str(uuid.uuid4())
    vocab, devices = await _vocabulary(ctx)
    # of the recogniser's readings, the first this home's grammar understands
    transcript = heard[0] if len(heard) == 1 else await b.run(best_reading, heard, vocab)
    user = ctx.user or ""
    context = b.voice.context(ctx.home_id, user, session_id)
    meant = await b.run(understand, transcript, vocab, context)
    if stats is not None:
        meant = unsure_unlock(meant, heard)
    commands: list[dict[str, Any]] = []
    scene: dict[str, Any] | None = None
    if not dry_run and meant.actions:
        devices = {
            a.device_id: await b.run(b.devices.device, ctx.home_id, a.device_id)
            for a in meant.actions
        }
        commands = await b.run(_send, ctx, meant, devices)
        for status in commands:
            b.fanout.note_status(status)
    if not dry_run and meant.scene_id is not None:
        run_id, _ = await start_scene_run(b, ctx.home_id, meant.scene_id, user)
        b.fanout.scenes.forget(run_id)  # its end comes as scene.status; the answer does not wait
        scene = {"scene_id": meant.scene_id, "run_id": run_id, "status": "STARTED"}
    b.voice.remember(ctx.home_id, user, session_id, meant.context)
    ids = [c["command_id"] for c in commands]
    try:
        await b.run(_utterance, ctx, session_id, text_in, meant, dry_run, ids, received)
    except Exception as exc:  # the commands went out; the record of the request is best effort
        log.warning("voice: could not record the utterance of %s: %s", ctx.home_id, exc)
    log.info(
        "voice home=%s intent=%s confidence=%.2f devices=%d commands=%d ms=%.1f",
        ctx.home_id,
        meant.intent,
        meant.confidence,
        len(meant.devices),
        len(commands),
        (time.perf_counter() - started) * 1000,
    )
    b.metrics.count_voice(meant.intent, voice_status(meant.intent, meant.actions, meant.scene_id))
    intent = None
    if meant.intent is not None:
        intent = {
            "name": meant.intent,
            "confidence": round(meant.confidence, 3),
            "slots": dict(meant.slots),
        }
    return ok(
        {
            "transcript": transcript,
            "intent": intent,
            "devices": list(meant.devices),
            "parameters": dict(meant.parameters),
            "commands": commands,
            "planned": [a.view() for a in meant.actions],
            "scene": scene,
            "response": meant.response,
            "session_id": session_id,
            "dry_run": dry_run,
            "stt": stats,
        }
    )


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/homes/{home_id}/voice",
        post_voice,
        Permission.CONTROL,
        "Voice request: text (JSON) or speech (audio/wav) -> intent, commands and an answer",
        "voice",
        {200: Reply("What was understood and done", VOICE_REPLY)},
        body=VOICE_BODY,
        body_content_types=("application/json", "audio/wav"),
        max_body_bytes=MAX_AUDIO_BYTES,
        query=(
            Param("dry_run", {"type": "boolean"}, "parse without acting"),
            Param(
                "session_id",
                {"type": "string", "maxLength": 128},
                "the conversation, for audio bodies (JSON bodies carry it)",
            ),
        ),
        extra={"errors": (503,)},
    ),
]
