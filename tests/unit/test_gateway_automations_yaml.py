"""PUT .../automations/{a} with a YAML body (application/yaml, text/yaml): parsed, then
checked exactly as JSON; syntax errors are 400s with the line, problems 422s with the path
and the line; what is stored is the contract's spelling. In memory."""

from __future__ import annotations

import json

import httpx
import pytest

from domain.automation.parse import parse
from gateway.app import create_app
from gateway.auth import issue_token
from gateway.memory import memory_backend
from gateway.openapi import document
from gateway.routes import all_endpoints
from topics import catalogue as t

URL = "/v1/homes/h1/automations/porch"
YAML = {"content-type": "application/yaml"}

# One entry of a Home Assistant automations.yaml, as its editor writes it (list items at
# the key's indentation, quoted id, the older trigger:/platform:/action: spelling, the
# mode last), with only the device ids changed to this home's.
HA_ENTRY = """\
- id: '1718035200000'
  alias: Porch light at sunset
  description: ''
  trigger:
  - platform: sun
    event: sunset
    offset: -00:30:00
  - platform: state
    device_id: door
    attribute: contact
    to: open
    for:
      seconds: 5
  condition:
  - condition: time
    after: 07:30
    before: '23:00'
    weekday:
    - mon
    - fri
  action:
  - device_id: porch
    capability: BRIGHTNESS
    command: setBrightness
    parameters:
      brightness: 80
  - delay: 00:10:00
  - notify: Porch light is on
  mode: restart
"""


@pytest.fixture
def backend():
    b = memory_backend(rate_limit="1000/60")
    b.store.add_user("alice", "password-1")
    b.store.add_home("h1", "alice", "Alice's flat")
    b.devices.add("h1", "porch", ["ON_OFF", "BRIGHTNESS"], name="Porch")
    b.devices.add("h1", "door", ["CONTACT_SENSOR"], type="sensor.contact", name="Door")
    return b


@pytest.fixture
async def client(backend):
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        token = issue_token(backend.token_secret, "alice")[0]
        c.headers["Authorization"] = f"Bearer {token}"
        yield c


def entry(text: str = HA_ENTRY) -> str:
    """The list item as one automation (what the editor's paste box gets)."""
    return "\n".join(line[2:] for line in text.splitlines())


def details(resp: httpx.Response) -> list[dict]:
    return resp.json()["error"].get("details", [])


async def test_a_home_assistant_entry_pastes_in_and_is_stored_in_the_contract_spelling(
    client, backend
):
    r = await client.put(URL, content=entry(), headers=YAML)
    assert r.status_code == 201, r.text
    stored = (await client.get(URL)).json()
    assert stored["alias"] == "Porch light at sunset" and stored["mode"] == "restart"
    assert stored["id"] == "1718035200000"  # kept as written (the URL names it here)
    assert [t["trigger"] for t in stored["triggers"]] == ["sun", "state"]
    assert "trigger" not in stored and "action" not in stored and "condition" not in stored
    # YAML 1.1 would read 07:30 as the number 450 and -00:30:00 as -1800
    assert stored["conditions"][0]["after"] == "07:30"
    assert stored["triggers"][0]["offset"] == "-00:30:00"
    assert stored["actions"][1] == {"delay": "00:10:00"}
    # the stream workers get the same document, and it means what the paste meant
    [(_topic, _name, rec)] = [s for s in backend.producer.sent if s[0] == t.HOME_CONFIG]
    published = json.loads(rec["document"])
    assert published == {
        k: v for k, v in stored.items() if k not in ("automation_id", "updated_at")
    }
    assert parse(published).triggers == parse({**published}).triggers
    assert parse(published).actions[0].parameters == {"brightness": 80}


async def test_what_home_assistant_says_and_homestream_does_not_is_a_422_with_its_line(client):
    # A media player service: homestream has no such command.
    service = "- action: media_player.play_media\n  target:\n    entity_id: porch"
    text = entry().replace("- notify: Porch light is on", service)
    assert text != entry()
    r = await client.put(URL, content=text, headers=YAML)
    assert r.status_code == 422
    [d] = details(r)
    line = text.splitlines().index("- action: media_player.play_media") + 1
    assert d["path"] == "action[2].action" and d["line"] == line
    assert "has no homestream command" in d["message"]


# Home Assistant's entity ids and service calls, ids changed to the home's devices.
HA_ENTITIES = """alias: Porch light when the door opens
triggers:
  - trigger: state
    entity_id: binary_sensor.door
    to: "on"
actions:
  - action: light.turn_on
    target:
      entity_id: light.porch
    data:
      brightness_pct: 70
  - delay: 120
  - action: notify.notify
    data:
      message: Porch light is on
  - action: light.turn_off
    entity_id: light.porch
"""


async def test_entity_ids_and_service_calls_are_translated_for_the_home(client, backend):
    r = await client.put(URL, content=HA_ENTITIES, headers=YAML)
    assert r.status_code == 201, r.text
    stored = r.json()
    assert stored["triggers"] == [
        {"trigger": "state", "device_id": "door", "attribute": "contact", "to": "open"}
    ]
    assert stored["actions"] == [
        {"device_id": "porch", "capability": "ON_OFF", "command": "turnOn"},
        {"device_id": "porch", "capability": "BRIGHTNESS", "command": "setBrightness",
         "parameters": {"brightness": 70}},
        {"delay": {"seconds": 120}},
        {"action": "notify", "message": "Porch light is on"},
        {"device_id": "porch", "capability": "ON_OFF", "command": "turnOff"},
    ]  # fmt: skip
    assert parse(stored).actions[2].ms == 120_000
    # an entity the home does not have: its path and line
    text = HA_ENTITIES.replace("light.porch\n    data", "light.garage\n    data")
    r = await client.put(URL, content=text, headers=YAML)
    assert r.status_code == 422
    [d] = details(r)
    assert d["path"] == "actions[0].target.entity_id"
    assert d["line"] == text.splitlines().index("      entity_id: light.garage") + 1
    assert "'garage'" in d["message"] and "GET .../devices" in d["message"]


@pytest.mark.parametrize("ctype", ["application/yaml", "text/yaml", "application/x-yaml"])
async def test_each_yaml_content_type_is_read(client, ctype):
    text = "alias: Ping\ntriggers:\n- trigger: time\n  at: 22:00\nactions:\n- notify: ping\n"
    r = await client.put(URL, content=text, headers={"content-type": f"{ctype}; charset=utf-8"})
    assert r.status_code == 201, r.text
    assert r.json()["triggers"] == [{"trigger": "time", "at": "22:00"}]


async def test_yaml_that_does_not_parse_is_a_400_with_the_line_and_column(client):
    text = "alias: Ping\ntriggers:\n  - trigger: time\n    at: [22:00\nactions: []\n"
    r = await client.put(URL, content=text, headers=YAML)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["code"] == "invalid_yaml"
    assert error["message"].startswith("the body is not valid YAML: line 5, column 8: ")
    assert "flow sequence at line 4" in error["message"]
    assert error["details"][0] | {"line": 5, "column": 8} == error["details"][0]
    r = await client.put(URL, content=b"alias: \xff\n", headers=YAML)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_yaml"
    r = await client.put(URL, content=b"", headers=YAML)
    assert r.status_code == 422 and details(r)[0]["message"] == "a body is required"


async def test_missing_devices_unknown_triggers_and_impossible_times_name_path_and_line(client):
    text = "\n".join(
        [
            "alias: Bad",  # 1
            "triggers:",  # 2
            "  - trigger: state",  # 3
            "    device_id: ghost",  # 4
            "    attribute: contact",  # 5
            "  - trigger: sometimes",  # 6
            "  - trigger: time",  # 7
            "    at: '25:00'",  # 8
            "actions:",  # 9
            "  - group_id: nogroup",  # 10
            "    capability: ON_OFF",  # 11
            "    command: turnOn",  # 12
        ]
    )
    r = await client.put(URL, content=text, headers=YAML)
    assert r.status_code == 422
    # the document's own rules first (as for JSON): the unknown trigger, the time
    assert {(d["path"], d["line"]) for d in details(r)} == {
        ("triggers[1].trigger", 6),
        ("triggers[2].at", 8),
    }
    text = text.replace("sometimes", "hub").replace("25:00", "23:00")
    r = await client.put(URL, content=text, headers=YAML)
    assert r.status_code == 422
    assert [(d["path"], d["line"]) for d in details(r)] == [
        ("triggers[0].device_id", 4),
        ("actions[0].group_id", 10),
    ]
    assert "ghost" in details(r)[0]["message"]


async def test_yaml_of_a_shape_no_automation_has_is_a_422(client):
    r = await client.put(URL, content=HA_ENTRY, headers=YAML)  # the whole list
    assert r.status_code == 422 and "paste one of them" in details(r)[0]["message"]
    r = await client.put(URL, content="alias: x\nextra: 1\ntriggers: []\n", headers=YAML)
    assert r.status_code == 422
    assert {d["path"]: d.get("line") for d in details(r)} == {"extra": 2, "triggers": 3}


async def test_older_spellings_in_json_are_stored_in_the_contract_spelling(client):
    doc = {
        "alias": "Porch",
        "initial_state": False,
        "trigger": {"platform": "time", "at": "22:00"},
        "action": [{"notify": "ok"},
                   {"wait_for_trigger": {"platform": "state", "device_id": "door"}}],
    }  # fmt: skip
    r = await client.put(URL, json=doc)
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["enabled"] is False and "initial_state" not in body
    assert body["triggers"] == [{"trigger": "time", "at": "22:00"}]
    assert body["actions"][1] == {"wait_for_trigger": [{"trigger": "state", "device_id": "door"}]}
    r = await client.put(URL, json={"alias": "No lists", "condition": []})
    assert r.status_code == 422
    assert [d["path"] for d in details(r)] == ["triggers", "actions"]


async def test_other_content_types_are_refused_with_the_ones_taken(client):
    r = await client.put(URL, content="alias: x", headers={"content-type": "text/plain"})
    assert r.status_code == 415
    assert "application/yaml" in r.json()["error"]["message"]


def test_openapi_documents_the_yaml_body():
    op = document(all_endpoints())["paths"]["/v1/homes/{home_id}/automations/{automation_id}"]
    content = op["put"]["requestBody"]["content"]
    assert set(content) == {"application/json", "application/yaml", "text/yaml",
                            "application/x-yaml"}  # fmt: skip
    assert content["application/yaml"]["schema"] == content["application/json"]["schema"]
    assert "automations.yaml" in op["put"]["description"]
