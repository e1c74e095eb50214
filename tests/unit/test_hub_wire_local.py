"""hub.wire for local control: the automations a hub ran on a report (local_runs), the
runs a hub reports (hub/{home}/automation/{id}), and the home documents the bridge keeps
retained for the hub's local store (hub/{home}/config/{kind}/{id})."""

from __future__ import annotations

import json

from hub.wire import Ignored, Outbound, encode_outbound, parse
from tests.unit.test_hub_wire import NOW, inbound, j, rejected, roundtrip
from topics import catalogue as t


def test_state_report_names_the_automations_the_hub_ran() -> None:
    result = inbound("hub/h1/state/pir", j({"state": {"motion": True}, "local_runs": ["a-1"]}))
    assert result.fields["local_runs"] == ["a-1"]
    assert roundtrip(result)["local_runs"] == ["a-1"]
    assert inbound("hub/h1/state/pir", j({"state": {}})).fields["local_runs"] == []
    for bad, reason in (
        ("a-1", "WRONG_TYPE"),
        (["a/1"], "WRONG_TYPE"),
        ([3], "WRONG_TYPE"),
        (["a"] * 101, "OUT_OF_RANGE"),
    ):
        r = rejected("hub/h1/state/pir", j({"state": {}, "local_runs": bad}))
        assert r.reason == reason, (bad, r.message)
        assert "local_runs" in r.message


def test_a_hub_reports_the_runs_it_ran() -> None:
    run = {
        "run_id": "r-1",
        "alias": "Hall light",
        "trigger": {"platform": "state", "device_id": "pir"},
        "status": "COMPLETED",
        "trace": {"actions": [{"action": "command"}]},
        "ts": 1_700_000_000_000,
    }
    result = inbound("hub/h1/automation/hall-light", j(run))
    assert (result.kafka_topic, result.record_name) == (t.AUTOMATIONS_RUNS, "AutomationFired")
    back = roundtrip(result)
    assert (back["automation_id"], back["run_id"], back["status"]) == (
        "hall-light",
        "r-1",
        "COMPLETED",
    )
    assert json.loads(back["trigger"]) == run["trigger"]
    assert json.loads(back["trace"]) == run["trace"]
    assert back["ts"] == run["ts"]
    assert inbound("hub/h1/automation/x", j({**run, "ts": None})).fields["ts"] == NOW
    assert rejected("hub/h1/automation/x", j({**run, "status": "DONE"})).reason == "OUT_OF_RANGE"
    assert rejected("hub/h1/automation/x", j({"run_id": "r"})).reason == "SCHEMA_VIOLATION"
    assert rejected("hub/h1/automation/x", j({**run, "trace": 3})).reason == "WRONG_TYPE"
    assert rejected("hub/h1/automation/a/b", j(run)).reason == "SCHEMA_VIOLATION"
    assert rejected("hub/h1/automation/%bad", j(run)).reason == "SCHEMA_VIOLATION"


def test_home_documents_go_to_the_hub_retained() -> None:
    record = {"home_id": "h1", "kind": "automation", "doc_id": "hall-light", "document": "{}"}
    assert encode_outbound("HomeConfig", record) == Outbound(
        "hub/h1/config/automation/hall-light", b"{}", retain=True
    )
    gone = encode_outbound("HomeConfig", {**record, "document": None})
    assert (gone.payload, gone.retain) == (b"", True)  # clears the retained document
    for bad in ({"doc_id": "a/b"}, {"kind": "+"}, {"home_id": "h/1"}):
        try:
            encode_outbound("HomeConfig", {**record, **bad})
        except ValueError as exc:
            assert "id" in str(exc)
        else:
            raise AssertionError(f"{bad} was encoded")
    # heard back by the bridge through hub/#: not an inbound message
    assert isinstance(parse("hub/h1/config/scene/s1", b"{}", received_at=NOW), Ignored)
