"""POST /v1/homes/{h}/voice through the gateway: text in, commands out through the normal
command path, the utterance on Kafka, session context, dry runs, errors."""

from __future__ import annotations

import httpx
import pytest

from gateway.app import create_app
from gateway.auth import issue_token
from gateway.memory import memory_backend
from topics import catalogue as t

H = "/v1/homes/h1/voice"


@pytest.fixture
def backend():
    b = memory_backend(rate_limit="1000/60")
    b.store.add_user("alice", "password-1")
    b.store.add_user("gus", "password-2")
    b.store.add_home("h1", "alice")
    b.store.roles[("h1", "gus")] = "guest"
    add = b.devices.add
    add("h1", "lr-ceiling", ["ON_OFF", "BRIGHTNESS"], name="Living Room Ceiling",
        state={"powerState": "ON", "brightness": 60})  # fmt: skip
    add("h1", "lr-lamp", ["ON_OFF", "BRIGHTNESS", "COLOR_CONTROL"], name="Living Room Lamp",
        type="light.color", state={"powerState": "OFF", "brightness": 40})  # fmt: skip
    add("h1", "k-lights", ["ON_OFF"], name="Kitchen Lights", type="light.switch", room="Kitchen")
    add("h1", "door", ["LOCK", "BATTERY"], name="Front Door Lock", type="lock",
        room="Front Door", state={"lockState": "LOCKED"})  # fmt: skip
    add("h1", "bed-th", ["THERMOSTAT", "TEMPERATURE_SENSOR"], name="Bedroom Thermostat",
        type="thermostat", room="Bedroom",
        state={"targetTemperature": 19, "temperature": 18.5})  # fmt: skip
    b.store.put_doc("h1", "scene", "night", {"name": "Good Night", "actions": []}, "alice")
    return b


def _client(backend, user="alice"):
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    c = httpx.AsyncClient(transport=transport, base_url="http://t")
    c.headers["Authorization"] = f"Bearer {issue_token(backend.token_secret, user)[0]}"
    return c


def _sent(backend, name):
    return [rec for _topic, n, rec in backend.producer.sent if n == name]


async def test_text_becomes_commands_through_the_command_path(backend):
    async with _client(backend) as c:
        r = await c.post(H, json={"text": "Turn on the living room lights", "session_id": "s1"})
    body = r.json()
    assert r.status_code == 200
    assert body["intent"]["name"] == "TurnOnDevice" and body["intent"]["confidence"] == 1.0
    assert body["intent"]["slots"]["area"] == "Living Room"
    assert sorted(body["devices"]) == ["lr-ceiling", "lr-lamp"]
    assert body["response"] == "OK, 2 lights on in the living room."
    assert body["session_id"] == "s1" and body["transcript"] == "Turn on the living room lights"
    requested = _sent(backend, "CommandRequested")
    assert sorted((c["device_id"], c["command"]) for c in requested) == [
        ("lr-ceiling", "turnOn"),
        ("lr-lamp", "turnOn"),
    ]
    assert {c["command_id"] for c in body["commands"]} == {c["command_id"] for c in requested}
    assert all(c["status"] == "PENDING" for c in body["commands"])
    (utterance,) = _sent(backend, "VoiceUtterance")
    assert utterance["intent"] == "TurnOnDevice" and utterance["session_id"] == "s1"
    assert sorted(utterance["command_ids"]) == sorted(c["command_id"] for c in requested)
    assert backend.producer.sent[-1][0] == t.VOICE_UTTERANCES


async def test_session_context_follows_the_conversation(backend):
    async with _client(backend) as c:
        await c.post(H, json={"text": "turn on the living room lights", "session_id": "s2"})
        r = await c.post(H, json={"text": "make them dimmer", "session_id": "s2"})
        assert r.json()["intent"]["name"] == "SetBrightness"
        assert r.json()["planned"] == [
            {"device_id": "lr-ceiling", "capability": "BRIGHTNESS", "command": "setBrightness",
             "parameters": {"brightness": 40}},
            {"device_id": "lr-lamp", "capability": "BRIGHTNESS", "command": "setBrightness",
             "parameters": {"brightness": 20}},
        ]  # fmt: skip
        r = await c.post(H, json={"text": "turn it off", "session_id": "s2"})
        assert sorted(r.json()["devices"]) == ["lr-ceiling", "lr-lamp"]
        # another session has no context to lean on
        r = await c.post(H, json={"text": "turn it off", "session_id": "other"})
        assert r.json()["commands"] == [] and "Which device" in r.json()["response"]


async def test_dry_run_parses_without_acting(backend):
    async with _client(backend) as c:
        r = await c.post(H + "?dry_run=true", json={"text": "set the bedroom to 21 degrees"})
    body = r.json()
    assert body["intent"]["name"] == "SetTemperature" and body["parameters"] == {"temperature": 21}
    assert body["devices"] == ["bed-th"] and body["commands"] == [] and body["dry_run"]
    assert body["planned"][0]["parameters"] == {"temperature": 21}
    assert _sent(backend, "CommandRequested") == []
    assert _sent(backend, "VoiceUtterance")[0]["dry_run"] is True


async def test_scene_questions_and_refusals(backend):
    async with _client(backend) as c:
        r = await c.post(H, json={"text": "activate good night"})
        assert r.json()["intent"]["name"] == "ActivateScene"
        assert r.json()["scene"]["scene_id"] == "night"
        assert _sent(backend, "SceneRequested")[0]["scene_id"] == "night"
        r = await c.post(H, json={"text": "is the front door locked?"})
        assert r.json()["intent"]["name"] == "QueryState"
        assert r.json()["response"] == "Yes, Front Door Lock is locked."
        r = await c.post(H, json={"text": "unlock the kitchen"})
        assert r.json()["intent"]["name"] == "UnlockDevice" and r.json()["commands"] == []
        assert r.json()["response"] == "There is no lock in the kitchen."
        r = await c.post(H, json={"text": "dim the kitchen lights to 30%"})
        assert r.json()["response"] == "Kitchen Lights can't be dimmed."
        r = await c.post(H, json={"text": "colourless green ideas sleep furiously"})
        assert r.status_code == 200 and r.json()["intent"] is None
        assert "Try" in r.json()["response"]


async def test_registry_changes_rebuild_the_vocabulary(backend):
    async with _client(backend) as c:
        await c.post(H, json={"text": "turn on the kitchen lights"})
        await c.post(H, json={"text": "turn off the kitchen lights"})
        assert backend.voice.builds == 1
        backend.devices.add("h1", "desk", ["ON_OFF"], name="Desk Fan", type="switch.plug")
        r = await c.post(H, json={"text": "turn on the desk fan"})
        assert r.json()["devices"] == ["desk"] and backend.voice.builds == 2


async def test_roles_and_bodies(backend):
    async with _client(backend, "gus") as c:
        r = await c.post(H, json={"text": "turn on the kitchen lights"})
        assert r.status_code == 403
    async with _client(backend) as c:
        r = await c.post(H, content=b"OggS....", headers={"content-type": "audio/ogg"})
        assert r.status_code == 415
        r = await c.post(H, content=b"not a wav at all", headers={"content-type": "audio/wav"})
        assert r.status_code == 415 and "WAV" in r.json()["error"]["message"]
        r = await c.post(H, json={"text": ""})
        assert r.status_code == 422


async def test_the_utterances_encode_with_their_avro_schema(backend):
    """What the route produces is what VoiceUtterance's schema takes (the real codec)."""
    from topics.codec import SingleObjectCodec
    from topics.schemas import SchemaStore

    codec = SingleObjectCodec(SchemaStore())
    async with _client(backend) as c:
        for text in ("turn on the living room lights", "make them dimmer", "what?", "good night"):
            await c.post(H, json={"text": text, "session_id": "avro"})
    for record in _sent(backend, "VoiceUtterance"):
        decoded = codec.decode(codec.encode("VoiceUtterance", record))
        assert decoded.record["transcript"] == record["transcript"]
        assert decoded.record["slots"] == record["slots"]
