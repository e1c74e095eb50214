"""Device shadows (domain.shadow): AWS IoT Device Shadow semantics with concrete documents."""

from __future__ import annotations

import json
from typing import Any

import pytest

from domain import shadow as sh
from domain.shadow import (
    Shadow,
    ShadowError,
    UpdateResult,
    apply_report,
    apply_update,
    delta,
    depth,
    diff,
    get_document,
    json_equal,
    merge,
)

T0, T1, T2 = 1_700_000_000, 1_700_000_060, 1_700_000_120


def compact_size(value: Any) -> int:
    """Bytes of the compact UTF-8 JSON the limits are measured on."""
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return len(text.encode("utf-8"))


def ok(result: UpdateResult) -> Shadow:
    assert result.accepted, result.rejected_response
    assert result.error is None and result.rejected_response is None
    return result.shadow


def rejected(result: UpdateResult, code: int) -> ShadowError:
    assert not result.accepted and not result.changed
    assert result.error is not None, result.accepted_response
    assert result.error.code == code, result.error
    assert result.accepted_response is None
    assert result.delta_message is None and result.documents_message is None
    assert result.rejected_response is not None
    assert result.rejected_response["code"] == code
    assert result.rejected_response["message"] == result.error.message
    return result.error


def desired(d: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"state": {"desired": d}, **extra}


def reported(r: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"state": {"reported": r}, **extra}


@pytest.fixture
def light() -> Shadow:
    """A colour light at version 2: desired set by an app at T0, reported by its hub at T1."""
    s = ok(apply_update(None, desired({"powerState": "ON", "brightness": 80}), T0))
    return ok(
        apply_report(
            s, {"powerState": "OFF", "brightness": 80, "color": {"hue": 120, "saturation": 100}}, T1
        )
    )


# --- a first update, payload by payload ------------------------------------------


def test_first_desired_update_creates_version_1_with_every_aws_payload():
    r = apply_update(None, desired({"powerState": "ON"}, clientToken="app-1"), T0)
    s = ok(r)
    assert r.changed
    assert (s.version, s.timestamp) == (1, T0)
    assert s.desired == {"powerState": "ON"} and s.reported == {}
    assert s.metadata == {"desired": {"powerState": {"timestamp": T0}}, "reported": {}}
    assert r.accepted_response == {
        "state": {"desired": {"powerState": "ON"}},
        "metadata": {"desired": {"powerState": {"timestamp": T0}}},
        "version": 1,
        "timestamp": T0,
        "clientToken": "app-1",
    }
    assert r.delta_message == {
        "state": {"powerState": "ON"},
        "metadata": {"powerState": {"timestamp": T0}},
        "version": 1,
        "timestamp": T0,
        "clientToken": "app-1",
    }
    assert r.documents_message == {
        "previous": None,
        "current": {
            "state": {"desired": {"powerState": "ON"}},
            "metadata": {"desired": {"powerState": {"timestamp": T0}}},
            "version": 1,
        },
        "timestamp": T0,
        "clientToken": "app-1",
    }
    assert r.delta == {"powerState": "ON"}
    assert r.changed_desired == {"powerState": "ON"} and r.changed_reported == {}


def test_documents_message_carries_previous_and_current(light):
    r = apply_update(light, desired({"brightness": 40}), T2)
    s = ok(r)
    assert r.documents_message is not None
    previous, current = r.documents_message["previous"], r.documents_message["current"]
    assert previous["version"] == 2 and current["version"] == 3 == s.version
    assert previous["state"]["desired"]["brightness"] == 80
    assert current["state"]["desired"]["brightness"] == 40
    assert current["state"]["reported"] == light.reported
    assert current["metadata"]["desired"]["brightness"] == {"timestamp": T2}
    assert "delta" not in current["state"]  # AWS: documents carry desired and reported only
    assert r.documents_message["timestamp"] == T2 and "clientToken" not in r.documents_message


def test_report_that_satisfies_desired_clears_delta_and_sends_no_delta_message():
    s = ok(apply_update(None, desired({"powerState": "ON"}), T0))
    r = apply_report(s, {"powerState": "ON"}, T1)
    ok(r)
    assert r.changed and r.shadow.version == 2
    assert r.delta == {} and r.shadow.delta == {}
    assert r.delta_message is None
    assert r.documents_message is not None
    assert r.changed_reported == {"powerState": "ON"}


def test_delta_message_is_sent_on_any_change_that_leaves_a_delta(light):
    # The device reports something unrelated; powerState still differs, so it is reminded.
    r = apply_report(light, {"battery": 90}, T2)
    assert r.changed
    assert r.delta_message is not None
    assert r.delta_message["state"] == {"powerState": "ON"}
    assert r.delta_message["metadata"] == {"powerState": {"timestamp": T0}}
    assert r.delta_message["version"] == 3


# --- delta ------------------------------------------------------------------------


def test_delta_lists_desired_leaves_that_differ_or_are_missing_but_never_reported_only_keys():
    assert delta({"color": "RED", "state": "STOP"}, {"color": "GREEN", "engine": "ON"}) == {
        "color": "RED",
        "state": "STOP",
    }


def test_delta_of_nested_objects_keeps_the_path_to_each_differing_leaf():
    want = {"lights": {"color": {"r": 255, "g": 255, "b": 255}}}
    have = {"lights": {"color": {"r": 255, "g": 0, "b": 255}}}
    assert delta(want, have) == {"lights": {"color": {"g": 255}}}


def test_delta_compares_arrays_whole():
    assert delta({"colors": ["RED", "GREEN"]}, {"colors": ["RED"]}) == {"colors": ["RED", "GREEN"]}
    assert delta({"colors": ["RED"]}, {"colors": ["RED"]}) == {}
    assert delta({"colors": [1, 2]}, {"colors": [2, 1]}) == {"colors": [1, 2]}


def test_delta_of_object_against_scalar_is_the_whole_desired_object():
    assert delta({"color": {"hue": 1}}, {"color": "red"}) == {"color": {"hue": 1}}
    assert delta({"color": "red"}, {"color": {"hue": 1}}) == {"color": "red"}


def test_delta_numeric_equality_ignores_int_float_but_not_bool():
    assert delta({"t": 21}, {"t": 21.0}) == {}
    assert delta({"on": True}, {"on": 1}) == {"on": True}
    assert delta({"n": 1}, {"n": True}) == {"n": 1}
    assert delta({"n": 0}, {"n": False}) == {"n": 0}
    assert delta({"n": "1"}, {"n": 1}) == {"n": "1"}


def test_delta_ignores_empty_desired_objects_because_they_have_no_leaves():
    assert delta({"a": {}}, {}) == {}
    assert delta({"a": {"b": {}}}, {"a": 1}) == {}


def test_get_document_shows_partial_colour_delta(light):
    s = ok(apply_update(light, desired({"color": {"hue": 120, "saturation": 50}}), T2))
    doc = get_document(s, now=T2 + 5)
    assert doc["state"]["delta"] == {"powerState": "ON", "color": {"saturation": 50}}


# --- merge, nested objects, null deletes -------------------------------------------


def test_partial_nested_update_keeps_siblings_and_their_timestamps(light):
    r = apply_report(light, {"color": {"saturation": 50}}, T2)
    s = ok(r)
    assert s.reported["color"] == {"hue": 120, "saturation": 50}
    assert s.metadata["reported"]["color"] == {
        "hue": {"timestamp": T1},
        "saturation": {"timestamp": T2},
    }
    assert r.changed_reported == {"color": {"saturation": 50}}
    assert r.accepted_response is not None
    assert r.accepted_response["state"] == {"reported": {"color": {"saturation": 50}}}
    assert r.accepted_response["metadata"] == {
        "reported": {"color": {"saturation": {"timestamp": T2}}}
    }


def test_null_leaf_deletes_it_and_its_metadata(light):
    r = apply_report(light, {"brightness": None}, T2)
    s = ok(r)
    assert "brightness" not in s.reported
    assert "brightness" not in s.metadata["reported"]
    assert r.changed_reported == {"brightness": None}
    assert s.version == light.version + 1
    # The request is echoed as sent, null included.
    assert r.accepted_response is not None
    assert r.accepted_response["state"] == {"reported": {"brightness": None}}
    assert r.accepted_response["metadata"] == {"reported": {"brightness": {"timestamp": T2}}}


def test_deleting_last_leaves_prunes_empty_parent_objects(light):
    s = ok(apply_report(light, {"color": {"hue": None}}, T2))
    assert s.reported["color"] == {"saturation": 100}
    s = ok(apply_report(s, {"color": {"saturation": None}}, T2))
    assert "color" not in s.reported
    assert "color" not in s.metadata["reported"]


def test_null_deletes_a_whole_subtree(light):
    s = ok(apply_report(light, {"color": None}, T2))
    assert "color" not in s.reported and "color" not in s.metadata["reported"]


def test_deleting_a_missing_leaf_is_a_no_op(light):
    r = apply_report(light, {"nothing": None, "color": {"missing": None}}, T2)
    assert r.accepted and not r.changed
    assert r.shadow is light


def test_null_for_a_whole_section_deletes_it(light):
    r = apply_update(light, {"state": {"desired": None}}, T2)
    s = ok(r)
    assert s.desired == {} and s.metadata["desired"] == {}
    assert s.reported == light.reported
    assert s.delta == {}
    assert r.changed_desired == {"powerState": None, "brightness": None}
    doc = s.to_document()
    assert "desired" not in doc["state"] and "desired" not in doc["metadata"]
    assert r.delta_message is None


def test_both_sections_can_be_cleared_and_the_shadow_still_exists(light):
    s = ok(apply_update(light, {"state": {"desired": None, "reported": None}}, T2))
    assert s.exists and s.version == light.version + 1
    assert get_document(s, now=T2) == {"state": {}, "metadata": {}, "version": 3, "timestamp": T2}


def test_null_section_on_an_empty_section_is_a_no_op(light):
    s = ok(apply_update(light, {"state": {"desired": None}}, T2))
    r = apply_update(s, {"state": {"desired": None}}, T2 + 1)
    assert r.accepted and not r.changed and r.shadow is s


def test_scalar_replaced_by_object_and_back():
    s = ok(apply_report(None, {"color": "red"}, T0))
    s = ok(apply_report(s, {"color": {"hue": 0, "saturation": 100}}, T1))
    assert s.reported == {"color": {"hue": 0, "saturation": 100}}
    assert s.metadata["reported"]["color"] == {
        "hue": {"timestamp": T1},
        "saturation": {"timestamp": T1},
    }
    s = ok(apply_report(s, {"color": "blue"}, T2))
    assert s.reported == {"color": "blue"}
    assert s.metadata["reported"]["color"] == {"timestamp": T2}


def test_an_object_with_no_leaves_changes_nothing():
    s = ok(apply_report(None, {"color": "red"}, T0))
    for patch in ({"color": {}}, {"color": {"hue": None}}, {"other": {}}):
        r = apply_report(s, patch, T1)
        assert r.accepted and not r.changed, patch
        assert r.shadow is s


def test_arrays_replace_whole_and_get_per_element_metadata_like_aws():
    s = ok(apply_update(None, desired({"colors": ["RED", "GREEN", "BLUE"]}), T0))
    assert s.metadata["desired"]["colors"] == [{"timestamp": T0}] * 3
    s = ok(apply_update(s, desired({"colors": ["RED"]}), T1))
    assert s.desired == {"colors": ["RED"]}
    assert s.metadata["desired"]["colors"] == [{"timestamp": T1}]


def test_merge_is_pure_and_follows_null_and_replace_rules():
    base = {"a": 1, "o": {"x": 1, "y": 2}, "arr": [1, 2]}
    frozen = json.dumps(base, sort_keys=True)
    patch = {"a": None, "o": {"x": None, "z": 3}, "arr": [3], "n": {"m": {"k": None}}}
    assert merge(base, patch) == {"o": {"y": 2, "z": 3}, "arr": [3]}
    assert json.dumps(base, sort_keys=True) == frozen
    assert merge({"o": {"x": 1}}, {"o": {"x": None}}) == {}
    kept = merge({"t": 21}, {"t": 21.0})["t"]  # an equal value keeps the stored one
    assert kept == 21 and type(kept) is int
    assert merge({"b": 1}, {"b": True}) == {"b": True}
    assert merge({}, {"new": {"k": None, "v": 1}}) == {"new": {"v": 1}}


def test_diff_is_the_patch_between_two_states():
    old = {"a": 1, "o": {"x": 1, "y": 2}, "gone": True}
    new = {"a": 1.0, "o": {"x": 1, "y": 3}, "fresh": [1]}
    assert diff(old, new) == {"o": {"y": 3}, "fresh": [1], "gone": None}
    assert merge(old, diff(old, new)) == new


# --- no-ops and numeric equality ---------------------------------------------------


def test_a_report_that_changes_nothing_is_a_no_op(light):
    r = apply_report(light, {"powerState": "OFF", "brightness": 80.0}, T2, client_token="hub")
    assert r.accepted and not r.changed and r.error is None
    assert r.shadow is light  # same version, metadata and timestamp
    assert r.delta_message is None and r.documents_message is None
    assert r.changed_reported == {} and r.changed_desired == {}
    assert r.delta == {"powerState": "ON"}
    assert r.accepted_response == {
        "state": {"reported": {"powerState": "OFF", "brightness": 80.0}},
        "metadata": {},
        "version": light.version,
        "timestamp": T2,
        "clientToken": "hub",
    }


def test_an_empty_update_is_a_no_op_even_on_a_new_shadow():
    for request in ({"state": {}}, {"state": {"desired": {}}}, desired({"x": None})):
        r = apply_update(None, request, T0)
        assert r.accepted and not r.changed
        assert r.shadow == Shadow.empty() and not r.shadow.exists
        assert r.accepted_response is not None and r.accepted_response["version"] == 0
        assert r.documents_message is None


@pytest.mark.parametrize(
    ("before", "after", "changes"),
    [
        (21, 21.0, False),
        (21.0, 21, False),
        (0, -0.0, False),
        (1, True, True),
        (True, 1, True),
        (0, False, True),
        (1, "1", True),
        ("ON", "ON", False),
        ([1, 2], [1.0, 2.0], False),
        ([1, 2], [2, 1], True),
        ({"a": 1}, {"a": 1.0}, False),
    ],
)
def test_numeric_equality_rules_decide_what_is_a_change(before, after, changes):
    s = ok(apply_report(None, {"v": before}, T0))
    r = apply_report(s, {"v": after}, T1)
    assert r.accepted and r.changed is changes
    assert r.shadow.version == (2 if changes else 1)


def test_an_equal_number_in_a_changing_report_keeps_the_stored_value_and_timestamp():
    s = ok(apply_report(None, {"t": 21, "x": 1}, T0))
    r = apply_report(s, {"t": 21.0, "x": 2}, T1)
    assert r.changed and r.changed_reported == {"x": 2}
    assert type(r.shadow.reported["t"]) is int
    assert r.shadow.metadata["reported"]["t"] == {"timestamp": T0}


def test_metadata_timestamps_move_only_for_changed_leaves():
    s = ok(apply_report(None, {"a": 1, "b": 2, "n": {"x": 1, "y": 1}}, T0))
    r = apply_report(s, {"a": 1, "b": 3, "n": {"x": 1, "y": 2}}, T1)
    s = ok(r)
    assert s.metadata["reported"] == {
        "a": {"timestamp": T0},
        "b": {"timestamp": T1},
        "n": {"x": {"timestamp": T0}, "y": {"timestamp": T1}},
    }
    assert r.accepted_response is not None
    assert r.accepted_response["metadata"] == {
        "reported": {"b": {"timestamp": T1}, "n": {"y": {"timestamp": T1}}}
    }
    # desired metadata is untouched by a report
    assert s.metadata["desired"] == {}


def test_an_attribute_named_timestamp_is_state_not_metadata():
    s = ok(apply_report(None, {"timestamp": {"x": 1}, "t": {"timestamp": 5}}, T0))
    s = ok(apply_report(s, {"timestamp": {"x": 2}}, T1))
    assert s.metadata["reported"] == {
        "timestamp": {"x": {"timestamp": T1}},
        "t": {"timestamp": {"timestamp": T0}},
    }


# --- versions ------------------------------------------------------------------------


def test_matching_version_is_accepted(light):
    s = ok(apply_update(light, desired({"brightness": 10}, version=2), T2))
    assert s.version == 3


def test_stale_version_is_rejected_409_and_the_shadow_is_untouched(light):
    r = apply_update(light, desired({"brightness": 10}, version=1, clientToken="c"), T2)
    err = rejected(r, 409)
    assert err.message == "Version conflict"
    assert r.shadow is light
    assert r.rejected_response == {
        "code": 409,
        "message": "Version conflict",
        "timestamp": T2,
        "clientToken": "c",
    }


def test_future_version_is_a_conflict_too(light):
    rejected(apply_update(light, desired({"brightness": 10}, version=3), T2), 409)


def test_version_conflict_wins_over_a_no_op(light):
    rejected(apply_update(light, reported({"powerState": "OFF"}, version=7), T2), 409)


def test_new_shadow_is_version_0():
    assert ok(apply_update(None, desired({"a": 1}, version=0), T0)).version == 1
    rejected(apply_update(None, desired({"a": 1}, version=1), T0), 409)


def test_version_rises_by_one_per_change_only():
    s: Shadow | None = None
    versions = []
    for value in (1, 1, 2, 2.0, 3):
        r = apply_report(s, {"v": value}, T0)
        s = r.shadow
        versions.append(s.version)
    assert versions == [1, 1, 2, 2, 3]


def test_null_version_and_null_client_token_count_as_absent(light):
    r = apply_update(light, desired({"brightness": 1}, version=None, clientToken=None), T2)
    ok(r)
    assert r.accepted_response is not None and "clientToken" not in r.accepted_response


# --- clientToken -----------------------------------------------------------------


def test_client_token_is_echoed_in_every_response(light):
    r = apply_update(light, desired({"brightness": 5}, clientToken="tok-1"), T2)
    payloads = [r.accepted_response, r.delta_message, r.documents_message]
    assert all(p is not None and p["clientToken"] == "tok-1" for p in payloads)
    r = apply_update(light, desired({"brightness": 5}, clientToken="tok-2", version=0), T2)
    assert r.rejected_response is not None and r.rejected_response["clientToken"] == "tok-2"
    r = apply_report(light, {"powerState": "OFF"}, T2, client_token="tok-3")
    assert r.accepted_response is not None and r.accepted_response["clientToken"] == "tok-3"
    assert get_document(light, "tok-4", now=T2)["clientToken"] == "tok-4"
    assert get_document(None, "tok-5", now=T2)["clientToken"] == "tok-5"


def test_no_client_token_means_no_client_token_key(light):
    r = apply_update(light, desired({"brightness": 5}), T2)
    for p in (r.accepted_response, r.delta_message, r.documents_message):
        assert p is not None and "clientToken" not in p
    r = apply_update(light, desired({"brightness": 5}, version=0), T2)
    assert r.rejected_response is not None and "clientToken" not in r.rejected_response


@pytest.mark.parametrize(
    ("token", "accepted"),
    [
        ("a" * 64, True),
        ("a" * 65, False),
        ("é" * 32, True),  # 64 bytes in UTF-8
        ("é" * 32 + "a", False),  # 65 bytes although only 33 characters
        ("", True),
    ],
)
def test_client_token_limit_is_64_bytes_of_utf8(token, accepted):
    r = apply_update(None, desired({"a": 1}, clientToken=token), T0)
    assert r.accepted is accepted
    if not accepted:
        assert rejected(r, 400).message == "Invalid clientToken"
        # a too-long token is still echoed so the caller can match the rejection
        assert r.rejected_response is not None and r.rejected_response["clientToken"] == token


@pytest.mark.parametrize("token", [5, ["t"], {"t": 1}, True])
def test_non_string_client_token_is_rejected_and_not_echoed(token):
    r = apply_update(None, desired({"a": 1}, clientToken=token), T0)
    assert rejected(r, 400).message == "Invalid clientToken"
    assert r.rejected_response is not None and "clientToken" not in r.rejected_response


# --- size limit -------------------------------------------------------------------


def request_of_size(total: int, char: str = "x") -> dict[str, Any]:
    """A reported update whose compact UTF-8 JSON is exactly ``total`` bytes: as many
    ``char`` as fit, topped up with ASCII."""
    room = total - compact_size(reported({"pad": ""}))
    width = len(char.encode("utf-8"))
    req = reported({"pad": char * (room // width) + "x" * (room % width)})
    assert compact_size(req) == total
    return req


@pytest.mark.parametrize("char", ["x", "é", "💡"])
def test_request_of_exactly_8192_bytes_is_accepted(char):
    req = request_of_size(8192, char)
    s = ok(apply_update(None, req, T0))
    assert s.reported == req["state"]["reported"]


def test_request_of_8193_bytes_is_rejected_413():
    r = apply_update(None, request_of_size(8193), T0)
    assert rejected(r, 413).message == "The payload exceeds the maximum size allowed"
    assert r.shadow == Shadow.empty()


@pytest.mark.parametrize("char", ["é", "💡"])
def test_request_size_counts_utf8_bytes_not_characters(char):
    req = request_of_size(8193, char)
    assert len(json.dumps(req, ensure_ascii=False, separators=(",", ":"))) < 8192
    rejected(apply_update(None, req, T0), 413)


def test_client_token_and_version_count_towards_the_request_size():
    req = request_of_size(8192)
    req["clientToken"] = "t"
    rejected(apply_update(None, req, T0), 413)


def state_bytes(s: Shadow) -> int:
    sections = {k: v for k, v in (("desired", s.desired), ("reported", s.reported)) if v}
    return compact_size({"state": sections})


def test_resulting_shadow_over_8192_bytes_is_rejected_though_each_request_is_small():
    s = ok(apply_report(None, {"big": "r" * 5000}, T0))
    # desired-side request of ~3100 bytes: fine alone, too much together
    r = apply_update(s, desired({"big": "d" * 3200}), T1)
    assert rejected(r, 413).message == "The payload exceeds the maximum size allowed"
    assert r.shadow is s


def test_resulting_shadow_of_exactly_8192_bytes_is_accepted_and_8193_rejected():
    s = ok(apply_report(None, {"big": "r" * 5000}, T0))
    probe = ok(apply_update(s, desired({"big": ""}), T1))
    room = 8192 - state_bytes(probe)
    at_limit = ok(apply_update(s, desired({"big": "d" * room}), T1))
    assert state_bytes(at_limit) == 8192
    rejected(apply_update(s, desired({"big": "d" * (room + 1)}), T1), 413)


def test_metadata_does_not_count_towards_the_size():
    # many tiny leaves: the metadata is far bigger than the state, which is what counts
    leaves = {f"k{i}": i for i in range(600)}
    s = ok(apply_report(None, leaves, T0))
    assert state_bytes(s) < 8192 < compact_size(s.metadata)


def test_a_shrinking_update_is_accepted_on_a_full_shadow():
    s = ok(apply_report(None, {"big": "r" * 8000}, T0))
    s = ok(apply_report(s, {"big": None, "small": 1}, T1))
    assert s.reported == {"small": 1}


# --- depth limit ------------------------------------------------------------------


def nested(levels: int, leaf: Any = 1) -> dict[str, Any]:
    """An object whose leaf sits ``levels`` keys down: nested(2) == {"l1": {"l2": 1}}."""
    value: Any = leaf
    for i in range(levels, 0, -1):
        value = {f"l{i}": value}
    return value


def test_depth_counts_objects_and_arrays_not_scalars():
    assert depth(1) == 0 and depth("x") == 0 and depth(None) == 0
    assert depth({}) == 1 and depth([]) == 1
    assert depth({"a": 1}) == 1
    assert depth({"a": [1]}) == 2
    assert depth([[], [[]]]) == 3
    assert depth(nested(6)) == 6
    assert depth({"a": 1, "b": {"c": {"d": 1}}}) == 3


@pytest.mark.parametrize("section", ["desired", "reported"])
def test_six_levels_under_a_section_are_accepted(section):
    # AWS's example: a leaf six keys below "desired" is the deepest allowed
    ok(apply_update(None, {"state": {section: nested(6)}}, T0))
    ok(apply_update(None, {"state": {section: nested(5, [1, 2])}}, T0))
    ok(apply_update(None, {"state": {section: nested(5, {})}}, T0))


@pytest.mark.parametrize("section", ["desired", "reported"])
@pytest.mark.parametrize(
    "too_deep",
    [nested(7), nested(6, [1]), nested(6, {}), nested(5, [[1]]), nested(6, {"x": None})],
    ids=["leaf-7-keys-down", "array-at-6", "empty-object-at-6", "nested-array", "null-at-7"],
)
def test_seven_levels_are_rejected_400(section, too_deep):
    r = apply_update(None, {"state": {section: too_deep}}, T0)
    err = rejected(r, 400)
    assert err.message == "JSON contains too many levels of nesting; maximum is 6"


def test_depth_is_checked_per_section_not_summed():
    ok(apply_update(None, {"state": {"desired": nested(6), "reported": nested(6)}}, T0))
    r = apply_update(None, {"state": {"desired": nested(6), "reported": nested(7)}}, T0)
    rejected(r, 400)


def test_very_deep_python_objects_are_rejected_without_recursion_errors():
    value: Any = 1
    for _ in range(5000):
        value = {"a": value}
    r = apply_update(None, reported(value), T0)
    assert rejected(r, 400).message.startswith("JSON contains too many levels")
    r = apply_update(None, b'{"state":{"reported":' + b"[" * 5000 + b"]" * 5000 + b"}}", T0)
    assert not r.accepted and r.error is not None and r.error.code in (400, 413)


# --- malformed requests --------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ([], "Invalid JSON: the update request must be a JSON object"),
        (None, "Invalid JSON: the update request must be a JSON object"),
        (42, "Invalid JSON: the update request must be a JSON object"),
        ({}, "Missing required node: state"),
        ({"desired": {"a": 1}}, "Missing required node: state"),
        ({"state": None}, "State node must be an object"),
        ({"state": [1]}, "State node must be an object"),
        ({"state": "on"}, "State node must be an object"),
        ({"state": {"desired": [1]}}, "Desired node must be an object"),
        ({"state": {"desired": "ON"}}, "Desired node must be an object"),
        ({"state": {"desired": 1}}, "Desired node must be an object"),
        ({"state": {"reported": True}}, "Reported node must be an object"),
        ({"state": {"reported": {}, "delta": {}}}, "State contains an invalid node: 'delta'"),
        ({"state": {"powerState": "ON"}}, "State contains an invalid node: 'powerState'"),
        (desired({"a": 1}, version="1"), "Invalid version"),
        (desired({"a": 1}, version=1.0), "Invalid version"),
        (desired({"a": 1}, version=True), "Invalid version"),
        (desired({"a": 1}, version=-1), "Invalid version"),
        (desired({"a": float("nan")}), "Invalid JSON: state.desired.a is nan"),
        (desired({"a": float("inf")}), "Invalid JSON: state.desired.a is inf"),
        (desired({"a": {1, 2}}), "Invalid JSON: state.desired.a has type set"),
        (desired({"a": b"x"}), "Invalid JSON: state.desired.a has type bytes"),
        (desired({"a": (1, 2)}), "Invalid JSON: state.desired.a has type tuple"),
        (desired({"a": object()}), "Invalid JSON: state.desired.a has type object"),
        ({"state": {"desired": {1: "x"}}}, "Invalid JSON: object keys must be text"),
        (desired({"a": [1, None]}), "Invalid JSON: arrays cannot contain null"),
        (desired({"a": [{"b": None}]}), "Invalid JSON: arrays cannot contain null"),
        (desired({"a": 2**63}), "Invalid JSON: state.desired.a is an integer outside"),
        (desired({"a": "\ud800"}), "Invalid JSON: state.desired.a is not valid Unicode"),
        (desired({"\udfff": 1}), "Invalid JSON: object keys must be text"),
        ({"state": {}, "extra": float("nan")}, "Invalid JSON: extra is nan"),
    ],
)
def test_malformed_requests_are_rejected_400_with_a_clear_message(light, request_, message):
    r = apply_update(light, request_, T2)
    err = rejected(r, 400)
    assert err.message.startswith(message), err.message
    assert r.shadow is light
    assert r.delta == light.delta


def test_largest_64_bit_integers_are_accepted():
    s = ok(apply_report(None, {"max": 2**63 - 1, "min": -(2**63)}, T0))
    assert s.reported == {"max": 2**63 - 1, "min": -(2**63)}


def test_unknown_top_level_fields_are_ignored():
    r = apply_update(None, {**desired({"a": 1}), "timestamp": 5, "metadata": {}}, T0)
    assert ok(r).desired == {"a": 1}


def test_cyclic_python_objects_are_rejected_not_looped_on():
    loop: dict[str, Any] = {}
    loop["self"] = loop
    assert not apply_update(None, reported(loop), T0).accepted
    wide: dict[str, Any] = {}
    wide["a"] = wide["b"] = wide["c"] = wide
    assert not apply_update(None, reported(wide), T0).accepted


def test_dict_and_str_subclasses_are_stored_as_plain_json():
    class Tagged(str):
        pass

    class Doc(dict):
        pass

    s = ok(apply_update(None, Doc(state=Doc(reported=Doc(mode=Tagged("heat")))), T0))
    assert type(s.reported) is dict and type(s.reported["mode"]) is str


# --- raw payloads -------------------------------------------------------------------


def test_raw_json_bytes_and_text_are_parsed():
    s = ok(apply_update(None, b'{"state":{"desired":{"on":true}},"clientToken":"b"}', T0))
    assert s.desired == {"on": True}
    s = ok(apply_update(s, '{"state":{"reported":{"on":true}}}', T1))
    assert s.delta == {}


@pytest.mark.parametrize(
    ("payload", "code", "message"),
    [
        (b"", 400, "Invalid JSON"),
        (b"{not json", 400, "Invalid JSON"),
        (b'{"state":{"desired":{"a":NaN}}}', 400, "Invalid JSON"),
        (b'{"state":{"desired":{"a":Infinity}}}', 400, "Invalid JSON"),
        (b'{"state":{"desired":{"a":1e999}}}', 400, "Invalid JSON"),
        (b"\xff\xfe{}", 415, "Unsupported documented encoding; supported encoding is UTF-8"),
        (b"[1]", 400, "Invalid JSON: the update request must be a JSON object"),
        (b" " * 8193 + b"{}", 413, "The payload exceeds the maximum size allowed"),
    ],
)
def test_bad_raw_payloads_are_rejected(payload, code, message):
    assert rejected(apply_update(None, payload, T0), code).message.startswith(message)


def test_raw_payload_limit_counts_bytes_as_received():
    body = json.dumps(reported({"pad": ""}), indent=1)
    padded = body + " " * (8192 - len(body))
    assert len(padded.encode()) == 8192
    ok(apply_update(None, padded.encode(), T0))
    rejected(apply_update(None, (padded + " ").encode(), T0), 413)


# --- apply_report -----------------------------------------------------------------


def test_apply_report_is_an_update_of_state_reported(light):
    via_report = apply_report(light, {"brightness": 10}, T2, client_token="x")
    via_update = apply_update(light, reported({"brightness": 10}, clientToken="x"), T2)
    assert via_report == via_update


@pytest.mark.parametrize("bad", [None, [], "ON", 5])
def test_apply_report_rejects_anything_but_an_object(light, bad):
    r = apply_report(light, bad, T2, client_token="hub")
    assert rejected(r, 400).message == "Reported node must be an object"
    assert r.shadow is light and light.reported  # a None report never wipes reported
    assert r.rejected_response is not None and r.rejected_response["clientToken"] == "hub"


def test_apply_report_on_no_shadow_creates_it():
    s = ok(apply_report(None, {"temperature": 21.5}, T0))
    assert s.version == 1 and s.reported == {"temperature": 21.5} and s.desired == {}


# --- documents, get, round trips ----------------------------------------------------


def test_to_document_has_the_aws_get_shape(light):
    assert light.to_document() == {
        "state": {
            "desired": {"powerState": "ON", "brightness": 80},
            "reported": {
                "powerState": "OFF",
                "brightness": 80,
                "color": {"hue": 120, "saturation": 100},
            },
            "delta": {"powerState": "ON"},
        },
        "metadata": {
            "desired": {"powerState": {"timestamp": T0}, "brightness": {"timestamp": T0}},
            "reported": {
                "powerState": {"timestamp": T1},
                "brightness": {"timestamp": T1},
                "color": {"hue": {"timestamp": T1}, "saturation": {"timestamp": T1}},
            },
        },
        "version": 2,
        "timestamp": T1,
    }


def test_document_round_trips_through_json(light):
    doc = json.loads(json.dumps(light.to_document()))
    assert Shadow.from_document(doc) == light
    assert Shadow.from_document(Shadow.empty().to_document()) == Shadow.empty()


def test_from_document_ignores_delta_and_tolerates_missing_sections():
    doc = {"state": {"reported": {"a": 1}, "delta": {"bogus": 1}}, "version": 4}
    s = Shadow.from_document(doc)
    assert s.reported == {"a": 1} and s.desired == {} and s.delta == {}
    assert s.metadata == {"desired": {}, "reported": {}} and (s.version, s.timestamp) == (4, 0)


@pytest.mark.parametrize(
    "doc",
    [
        [],
        {"state": []},
        {"state": {"desired": 1}},
        {"metadata": {"reported": "x"}},
        {"version": -1},
        {"version": "1"},
        {"timestamp": 1.5},
        {"state": {"reported": {"a": float("nan")}}},
    ],
)
def test_from_document_rejects_what_is_not_a_shadow_document(doc):
    with pytest.raises(ValueError):
        Shadow.from_document(doc)


def test_documents_returned_share_nothing_with_the_shadow(light):
    doc = light.to_document()
    doc["state"]["reported"]["color"]["hue"] = 0
    doc["metadata"]["reported"]["color"]["hue"]["timestamp"] = 0
    assert light.reported["color"]["hue"] == 120
    assert light.metadata["reported"]["color"]["hue"] == {"timestamp": T1}


def test_mutating_the_request_afterwards_does_not_touch_the_shadow():
    req = reported({"color": {"hue": 1}, "list": [1]})
    r = apply_update(None, req, T0)
    req["state"]["reported"]["color"]["hue"] = 2
    req["state"]["reported"]["list"].append(2)
    assert r.shadow.reported == {"color": {"hue": 1}, "list": [1]}
    assert r.accepted_response is not None
    assert r.accepted_response["state"]["reported"] == {"color": {"hue": 1}, "list": [1]}


def test_get_document_of_an_existing_shadow(light):
    doc = get_document(light, "g-1", now=T2)
    assert doc == {**light.to_document(), "timestamp": T2, "clientToken": "g-1"}


def test_get_document_of_a_missing_shadow_is_404():
    assert get_document(None, now=T0) == {
        "code": 404,
        "message": "No shadow exists",
        "timestamp": T0,
    }
    assert get_document(Shadow.empty(), now=T0, name="lamp-1") == {
        "code": 404,
        "message": "No shadow exists with name: 'lamp-1'",
        "timestamp": T0,
    }


def test_empty_shadow_shape():
    e = Shadow.empty()
    assert (e.version, e.timestamp, e.exists) == (0, 0, False)
    assert e.to_document() == {"state": {}, "metadata": {}, "version": 0, "timestamp": 0}
    assert Shadow.empty(now=T0).timestamp == T0


def test_a_full_shadow_round_trips_although_its_metadata_is_twice_as_big():
    # ~4000 array elements: the most values 8 KB can hold, each with its own metadata entry
    s = ok(apply_report(None, {"v": [0] * 4000}, T0))
    doc = json.loads(json.dumps(s.to_document()))
    assert Shadow.from_document(doc) == s


def test_a_broken_shadow_object_gives_a_500_not_an_exception():
    broken = Shadow(desired="not an object", reported={})
    r = apply_update(broken, desired({"a": 1}), T0)
    assert rejected(r, 500).message == "Internal service failure"
    assert r.delta == {}


def test_shadow_error_payload():
    assert ShadowError(409, "Version conflict").payload(T0, "c") == {
        "code": 409,
        "message": "Version conflict",
        "timestamp": T0,
        "clientToken": "c",
    }


def test_json_equal():
    assert json_equal(1, 1.0) and json_equal({"a": [1]}, {"a": [1.0]})
    assert not json_equal(True, 1) and not json_equal(1, True) and not json_equal(0, False)
    assert not json_equal({"a": 1}, {"a": 1, "b": 2}) and not json_equal([1], [1, 1])
    assert json_equal(None, None) and not json_equal(None, 0) and not json_equal("1", 1)


# --- never raises -------------------------------------------------------------------


def test_an_internal_bug_becomes_a_500_rejection_not_an_exception(monkeypatch, light):
    def boom(*_args: Any) -> Any:
        raise RuntimeError("bug")

    monkeypatch.setattr(sh, "diff", boom)
    r = apply_update(light, desired({"a": 1}), T2)
    assert rejected(r, 500).message == "Internal service failure"
    assert r.shadow is light
