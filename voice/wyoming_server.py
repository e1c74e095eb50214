"""Wyoming: speech-to-text (``asr``) and intent handling (``handle``) for Home Assistant.

A satellite or an Assist pipeline connects, asks ``describe`` (-> ``info``: our ASR program
with its model, and - when a gateway is configured - a handle program that controls the
home), then either streams audio (``transcribe``, ``audio-start``, ``audio-chunk``...,
``audio-stop`` -> ``transcript``) or sends a ``transcript`` to be acted on (-> ``handled``
with the answer, or ``not-handled`` when it was not understood or failed). Audio is
converted to 16 kHz 16-bit mono as it arrives and transcribed by the shared process pool;
the conversation's session is the event's ``conversation_id`` context when it has one,
else the connection.
"""

from __future__ import annotations

import asyncio
import io
import logging
import uuid
import wave
from typing import Any

from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioStart, AudioStop
from wyoming.event import Event
from wyoming.handle import Handled, NotHandled
from wyoming.info import (
    AsrModel,
    AsrProgram,
    Attribution,
    Describe,
    HandleModel,
    HandleProgram,
    Info,
)
from wyoming.server import AsyncEventHandler, AsyncServer

from voice.gateway_client import GatewayClient, GatewayError

log = logging.getLogger("homestream.voice")

RATE, WIDTH, CHANNELS = 16_000, 2, 1
ATTRIBUTION = Attribution(name="homestream", url="")  # no public home page to name
WHISPER = Attribution(
    name="OpenAI Whisper (faster-whisper)", url="https://github.com/openai/whisper"
)


def info(model_name: str, handles: bool) -> Info:
    asr = AsrProgram(
        name="homestream-whisper",
        description="homestream speech-to-text (faster-whisper)",
        attribution=ATTRIBUTION,
        installed=True,
        version="1",
        models=[
            AsrModel(
                name=model_name,
                description=f"Whisper {model_name} (CTranslate2)",
                attribution=WHISPER,
                installed=True,
                languages=["en"],
                version="1",
            )
        ],
    )
    handle = HandleProgram(
        name="homestream",
        description="homestream: devices, scenes and questions about the home",
        attribution=ATTRIBUTION,
        installed=True,
        version="1",
        models=[
            HandleModel(
                name="homestream-intents",
                description="Home Assistant's English sentences with homestream's own",
                attribution=ATTRIBUTION,
                installed=True,
                languages=["en"],
                version="1",
            )
        ],
        supports_home_control=True,
    )
    return Info(asr=[asr], handle=[handle] if handles else [])


def to_wav(pcm: bytes) -> bytes:
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(CHANNELS)
        w.setsampwidth(WIDTH)
        w.setframerate(RATE)
        w.writeframes(pcm)
    return out.getvalue()


class VoiceHandler(AsyncEventHandler):
    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        stt: Any,
        gateway: GatewayClient | None,
        model_name: str,
        max_audio_s: float,
    ) -> None:
        super().__init__(reader, writer)
        self.stt, self.gateway = stt, gateway
        self.model_name, self.max_bytes = model_name, int(max_audio_s * RATE * WIDTH)
        self.session = str(uuid.uuid4())
        self.converter = AudioChunkConverter(rate=RATE, width=WIDTH, channels=CHANNELS)
        self.audio = bytearray()
        self.too_long = False

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(info(self.model_name, self.gateway is not None).event())
        elif Transcribe.is_type(event.type) or AudioStart.is_type(event.type):
            self.audio.clear()  # a new utterance
            self.too_long = False
        elif AudioChunk.is_type(event.type):
            chunk = self.converter.convert(AudioChunk.from_event(event))
            if len(self.audio) + len(chunk.audio) > self.max_bytes:
                self.too_long = True
            else:
                self.audio.extend(chunk.audio)
        elif AudioStop.is_type(event.type):
            await self._transcribe()
        elif Transcript.is_type(event.type):
            await self._handle(Transcript.from_event(event))
        return True

    async def _transcribe(self) -> None:
        pcm, self.audio = bytes(self.audio), bytearray()
        if self.too_long:
            log.warning("voice: audio over the limit; transcribing its first part only")
        text = ""
        if pcm:
            try:
                text = (await self.stt.transcribe(to_wav(pcm))).text
            except Exception as exc:  # one bad clip ends no connection
                log.warning("voice: transcription failed: %s", exc)
        await self.write_event(Transcript(text=text, language="en").event())

    async def _handle(self, transcript: Transcript) -> None:
        if self.gateway is None:
            await self.write_event(NotHandled(text="This server only transcribes.").event())
            return
        context = transcript.context or {}
        session = str(context.get("conversation_id") or self.session)
        try:
            reply = await asyncio.to_thread(self.gateway.voice, transcript.text, session)
        except GatewayError as exc:
            log.warning("voice: %s", exc)
            await self.write_event(NotHandled(text=f"Sorry, {exc}").event())
            return
        answer = str(reply.get("response") or "")
        out_context = {"conversation_id": reply.get("session_id") or session}
        if reply.get("intent") is None:
            await self.write_event(NotHandled(text=answer, context=out_context).event())
        else:
            await self.write_event(Handled(text=answer, context=out_context).event())


async def serve(
    uri: str,
    stt: Any,
    gateway: GatewayClient | None,
    model_name: str,
    max_audio_s: float,
    ready: asyncio.Event | None = None,
) -> None:
    """Serve Wyoming on ``uri`` (``tcp://host:port``, ``unix://path``) until cancelled."""
    server = AsyncServer.from_uri(uri)

    def factory(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> VoiceHandler:
        return VoiceHandler(
            reader,
            writer,
            stt=stt,
            gateway=gateway,
            model_name=model_name,
            max_audio_s=max_audio_s,
        )

    await server.start(factory)
    if ready is not None:
        ready.set()
    try:
        await asyncio.Event().wait()
    finally:
        await server.stop()
