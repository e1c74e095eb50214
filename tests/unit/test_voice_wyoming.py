"""The Wyoming server, driven by the wyoming package's own client over TCP: describe,
speech-to-text of a spoken clip streamed in chunks, and a transcript handled by a real
gateway (uvicorn on a local port, its backend in memory) signed in as a member."""

from __future__ import annotations

import asyncio
import contextlib
import io
import socket
import threading
import time
import wave

import pytest
import uvicorn
from wyoming.asr import Transcribe, Transcript
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.handle import Handled, NotHandled
from wyoming.info import Describe, Info

from gateway.app import create_app
from gateway.memory import memory_backend
from speech import synth
from speech.stt import Transcriber
from voice.gateway_client import GatewayClient
from voice.wyoming_server import serve

pytestmark = pytest.mark.skipif(not synth.available(), reason="espeak-ng is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def stt():
    t = Transcriber()
    t.warm()
    yield t
    t.close()


@pytest.fixture(scope="module")
def gateway():
    b = memory_backend(rate_limit="1000/60")
    b.store.add_user("speaker", "password-1")
    b.store.add_home("h1", "speaker")
    b.devices.add("h1", "k-lights", ["ON_OFF"], name="Kitchen Lights", type="light.switch",
                  room="Kitchen", state={"powerState": "OFF"})  # fmt: skip
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(backend=b), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield b, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@contextlib.asynccontextmanager
async def wyoming_server(stt, client):
    port = _free_port()
    ready = asyncio.Event()
    task = asyncio.create_task(serve(f"tcp://127.0.0.1:{port}", stt, client, "tiny.en", 30, ready))
    await asyncio.wait_for(ready.wait(), 10)
    try:
        yield f"tcp://127.0.0.1:{port}"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _read(client, kind):
    while True:
        event = await asyncio.wait_for(client.read_event(), 30)
        assert event is not None, "the server closed the connection"
        if kind.is_type(event.type) or NotHandled.is_type(event.type):
            return event


async def test_describe_and_transcribe_a_streamed_clip(stt):
    async with wyoming_server(stt, None) as uri, AsyncTcpClient.from_uri(uri) as client:
        await client.write_event(Describe().event())
        info = Info.from_event(await _read(client, Info))
        assert info.asr[0].models[0].languages == ["en"] and info.handle == []
        wav = synth.speak("turn on the kitchen lights", "en-us", 160)
        with wave.open(io.BytesIO(wav)) as w:
            rate, width, channels = w.getframerate(), w.getsampwidth(), w.getnchannels()
            pcm = w.readframes(w.getnframes())
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate=rate, width=width, channels=channels).event())
        for i in range(0, len(pcm), 4096):  # the way a satellite streams its microphone
            chunk = AudioChunk(rate=rate, width=width, channels=channels, audio=pcm[i : i + 4096])
            await client.write_event(chunk.event())
        await client.write_event(AudioStop().event())
        heard = Transcript.from_event(await _read(client, Transcript))
        assert heard.text.lower().strip(" .") == "turn on the kitchen lights"
        # transcription only: nothing to act with
        await client.write_event(Transcript(text="turn on the kitchen lights").event())
        assert NotHandled.is_type((await _read(client, Handled)).type)


async def test_transcripts_act_through_the_gateway(stt, gateway):
    backend, url = gateway
    client_gw = GatewayClient(url, "h1", "speaker", "password-1")
    async with wyoming_server(stt, client_gw) as uri, AsyncTcpClient.from_uri(uri) as client:
        await client.write_event(Describe().event())
        info = Info.from_event(await _read(client, Info))
        assert info.handle[0].supports_home_control
        await client.write_event(Transcript(text="Turn on the kitchen lights.").event())
        done = await _read(client, Handled)
        assert Handled.is_type(done.type), done
        handled = Handled.from_event(done)
        assert handled.text == "OK, Kitchen Lights on."
        session = handled.context["conversation_id"]
        sent = [r for _t, n, r in backend.producer.sent if n == "CommandRequested"]
        assert [(r["device_id"], r["command"], r["requested_by"]) for r in sent] == [
            ("k-lights", "turnOn", "speaker")
        ]
        # the same conversation goes on: "it" is the kitchen lights
        await client.write_event(
            Transcript(text="turn it off", context={"conversation_id": session}).event()
        )
        assert Handled.from_event(await _read(client, Handled)).text == "OK, Kitchen Lights off."
        await client.write_event(Transcript(text="sing me a song").event())
        assert NotHandled.is_type((await _read(client, Handled)).type)
