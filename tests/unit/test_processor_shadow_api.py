"""The AWS shadow API (update / get / delete requests) in the per-home fold."""

from __future__ import annotations

import json

from streams.fold.dispatch import INPUT_TOPICS, Fold
from streams.fold.store import DictStore
from tests.unit.test_processor import CODEC, HOME, T0, discovered, eid, report
from topics import catalogue as t
from topics.state_change import state_of


def request(
    op, dev="lamp", ts=T0, desired=None, reported=None, token=None, version=None, size=None
):
    return "ShadowUpdateRequest", {
        "event_id": eid(),
        "home_id": HOME,
        "ts": ts,
        "device_id": dev,
        "operation": op,
        "source": "mqtt",
        "desired": None if desired is None else json.dumps(desired),
        "reported": None if reported is None else json.dumps(reported),
        "client_token": token,
        "version": version,
        "payload_size": size,
        "request_id": None,
        "requested_by": None,
    }


def run(proc, event):
    name, rec = event
    out = proc.handle(name, rec)
    for e in out:  # everything the fold emits must encode
        CODEC.encode(e.record_name, e.record)
    return out


def replies(out):
    return [
        (e.record["outcome"], json.loads(e.record["payload"]), e.record["error_code"])
        for e in out
        if e.record_name == "ShadowResponse"
    ]


def setup():
    proc = Fold(DictStore())
    run(proc, discovered())
    run(proc, report({"powerState": "OFF", "brightness": 10}))
    return proc


def test_get_returns_the_document_with_the_client_token():
    proc = setup()
    [(outcome, doc, code)] = replies(run(proc, request("GET", token="t-1")))
    assert (outcome, code) == ("ACCEPTED", None)
    assert doc["state"]["reported"] == {"powerState": "OFF", "brightness": 10}
    assert doc["version"] == 1 and doc["clientToken"] == "t-1"


def test_update_desired_is_accepted_versioned_and_leaves_a_delta():
    proc = setup()
    out = run(proc, request("UPDATE", desired={"brightness": 60}, token="tok", version=1))
    got = replies(out)
    assert [o for o, _, _ in got] == ["ACCEPTED", "DOCUMENTS"]
    accepted = got[0][1]
    assert accepted["version"] == 2 and accepted["clientToken"] == "tok"
    assert accepted["state"]["desired"] == {"brightness": 60}
    [change] = [e.record for e in out if e.record_name == "StateChange"]
    assert change["version"] == 2 and state_of(change).delta == {"brightness": 60}
    [delta] = [e.record for e in out if e.record_name == "ShadowDelta"]
    assert json.loads(delta["state"]) == {"brightness": 60}


def test_stale_version_is_rejected_with_409_and_changes_nothing():
    proc = setup()
    before = proc.store.get(f"{HOME}/lamp")
    [(outcome, doc, code)] = replies(
        run(proc, request("UPDATE", desired={"brightness": 60}, version=7, token="x"))
    )
    assert (outcome, code, doc["code"], doc["clientToken"]) == ("REJECTED", 409, 409, "x")
    assert proc.store.get(f"{HOME}/lamp") == before


def test_values_outside_the_capability_are_rejected_with_400_naming_the_leaf():
    proc = setup()
    [(outcome, doc, code)] = replies(run(proc, request("UPDATE", reported={"brightness": 400})))
    assert (outcome, code) == ("REJECTED", 400)
    assert "brightness" in doc["message"]


def test_oversize_payload_is_rejected_with_413():
    proc = setup()
    [(outcome, _doc, code)] = replies(
        run(proc, request("UPDATE", desired={"brightness": 1}, size=9000))
    )
    assert (outcome, code) == ("REJECTED", 413)


def test_unknown_device_gets_404():
    proc = setup()
    [(outcome, doc, code)] = replies(run(proc, request("GET", dev="ghost")))
    assert (outcome, code) == ("REJECTED", 404)
    assert "ghost" in doc["message"]


def test_reported_update_completes_and_noop_update_keeps_the_version():
    proc = setup()
    run(proc, request("UPDATE", reported={"brightness": 10}))  # same as reported: no-op
    assert proc.store.get(f"{HOME}/lamp")["shadow"]["version"] == 1
    out = run(proc, request("UPDATE", reported={"brightness": 30}))
    assert [e.record["version"] for e in out if e.record_name == "StateChange"] == [2]


def test_delete_clears_the_shadow_and_a_later_get_is_404():
    proc = setup()
    [(outcome, doc, _)] = [
        r for r in replies(run(proc, request("DELETE", token="d"))) if r[0] == "ACCEPTED"
    ]
    assert doc["clientToken"] == "d" and doc["version"] == 2
    shadow = proc.store.get(f"{HOME}/lamp")["shadow"]
    assert shadow["reported"] == {} and shadow["desired"] == {}
    # The device still exists; its shadow is empty but versioned (AWS keeps counting).
    [(outcome, doc, _)] = replies(run(proc, request("GET")))
    assert outcome == "ACCEPTED" and doc["version"] == 2


def test_shadow_requests_are_a_stream_input():
    assert t.SHADOW_REQUESTS in INPUT_TOPICS
