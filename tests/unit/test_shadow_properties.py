"""Property tests for domain.shadow: invariants over random documents and update sequences."""

from __future__ import annotations

import json
from functools import reduce
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.shadow import (
    Shadow,
    apply_report,
    apply_update,
    delta,
    depth,
    diff,
    json_equal,
    merge,
)

# Per test, not a global profile, so other test modules keep their own settings.
quick = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

NOW = 1_700_000_000

# A small key alphabet so updates collide with what earlier ones wrote.
keys = st.sampled_from(["a", "b", "c", "hue", "sat", "timestamp"])
scalars = st.one_of(
    st.booleans(),
    st.integers(min_value=-3, max_value=3),
    st.sampled_from([0.0, 1.0, 2.5, -0.0]),
    st.sampled_from(["", "ON", "OFF"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner.filter(lambda v: not isinstance(v, dict)), max_size=3),
        st.dictionaries(keys, inner, max_size=3),
    ),
    max_leaves=8,
)
# A patch is a section update: values, nested patches, and nulls that delete.
patches = st.recursive(
    st.dictionaries(keys, st.one_of(values, st.none()), max_size=4),
    lambda inner: st.dictionaries(keys, st.one_of(values, st.none(), inner), max_size=4),
    max_leaves=12,
).filter(lambda p: depth(p) <= 6)  # deeper patches are rejected: tested in test_shadow.py
states = st.recursive(
    st.dictionaries(keys, values, max_size=4),
    lambda inner: st.dictionaries(keys, st.one_of(values, inner), max_size=4),
    max_leaves=12,
).filter(lambda p: depth(p) <= 6)
updates = st.fixed_dictionaries(
    {},
    optional={
        "desired": st.one_of(patches, st.none()),
        "reported": st.one_of(patches, st.none()),
    },
).map(lambda state: {"state": state})

# Anything at all, for "never raises": JSON-ish junk plus values JSON cannot carry.
junk_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.binary(max_size=4),
    st.sampled_from([object(), {1, 2}, (1, 2), 1j]),
)
junk = st.recursive(
    junk_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), inner, max_size=4),
    ),
    max_leaves=20,
)
junk_requests = st.one_of(
    junk,
    st.fixed_dictionaries(
        {"state": junk}, optional={"clientToken": junk, "version": junk, "extra": junk}
    ),
    st.fixed_dictionaries(
        {"state": st.fixed_dictionaries({}, optional={"desired": junk, "reported": junk})},
        optional={"clientToken": st.text(max_size=70), "version": st.integers(-1, 3)},
    ),
    st.binary(max_size=64),
    st.text(max_size=64),
)


def leaves(obj: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """(path, value) for every leaf; arrays are leaves, empty objects have none."""
    out = []
    for key, value in obj.items():
        if isinstance(value, dict):
            out.extend(leaves(value, (*path, key)))
        else:
            out.append(((*path, key), value))
    return out


def lookup(obj: Any, path: tuple[str, ...]) -> tuple[bool, Any]:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return False, None
        obj = obj[key]
    return True, obj


def mirrors(state: Any, meta: Any) -> bool:
    """Metadata has the state's shape with a {"timestamp": int} per scalar."""
    if isinstance(state, dict):
        return (
            isinstance(meta, dict)
            and meta.keys() == state.keys()
            and all(mirrors(v, meta[k]) for k, v in state.items())
        )
    if isinstance(state, list):
        return isinstance(meta, list) and len(meta) == len(state) and all(map(mirrors, state, meta))
    return (
        isinstance(meta, dict) and set(meta) == {"timestamp"} and isinstance(meta["timestamp"], int)
    )


def timestamps(meta: Any) -> list[int]:
    """Every timestamp in a leaf's metadata (an array has one entry per element)."""
    if isinstance(meta, list):
        return [t for m in meta for t in timestamps(m)]
    return [meta["timestamp"]]


def has_empty_object(obj: Any) -> bool:
    if isinstance(obj, dict):
        return not obj or any(has_empty_object(v) for v in obj.values())
    return False


@quick
@given(shadow=st.one_of(st.none(), st.builds(Shadow.empty)), request=junk_requests)
def test_any_input_gives_a_result_never_an_exception(shadow, request):
    r = apply_update(shadow, request, NOW)
    assert r.accepted is (r.error is None)
    assert (r.accepted_response is None) is not r.accepted
    assert (r.rejected_response is None) is r.accepted
    if r.error is not None:
        assert r.error.code in (400, 409, 413, 415), r.error  # never an internal failure
        assert r.error.message
        assert r.shadow == Shadow.empty()
    json.dumps([r.accepted_response, r.rejected_response, r.documents_message], allow_nan=False)


@quick
@given(shadow=st.one_of(st.none(), st.builds(Shadow.empty)), report=junk)
def test_any_report_gives_a_result_never_an_exception(shadow, report):
    r = apply_report(shadow, report, NOW, client_token="t")
    assert r.error is None or r.error.code in (400, 413)


@quick
@given(sequence=st.lists(updates, min_size=1, max_size=8))
def test_version_rises_by_exactly_one_per_accepted_change_and_never_otherwise(sequence):
    s: Shadow | None = None
    for i, request in enumerate(sequence):
        before = s.version if s is not None else 0
        r = apply_update(s, request, NOW + i)
        assert r.accepted, r.error
        assert r.shadow.version == before + (1 if r.changed else 0)
        assert r.changed is bool(r.changed_desired or r.changed_reported)
        assert (r.documents_message is not None) is r.changed
        if not r.changed:
            assert s is None or r.shadow is s
        s = r.shadow


@quick
@given(sequence=st.lists(updates, min_size=1, max_size=6), again=updates)
def test_applying_the_same_update_twice_is_a_no_op_the_second_time(sequence, again):
    s: Shadow | None = None
    for request in sequence:
        s = apply_update(s, request, NOW).shadow
    first = apply_update(s, again, NOW + 1)
    assert first.accepted
    second = apply_update(first.shadow, again, NOW + 2)
    assert second.accepted and not second.changed
    assert second.shadow is first.shadow
    assert second.delta_message is None and second.documents_message is None


@quick
@given(sequence=st.lists(updates, min_size=1, max_size=6))
def test_shadow_stays_well_formed(sequence):
    s: Shadow | None = None
    for i, request in enumerate(sequence):
        s = apply_update(s, request, NOW + i).shadow
        for section in ("desired", "reported"):
            state = getattr(s, section)
            assert mirrors(state, s.metadata[section])
            assert not any(has_empty_object(v) for v in state.values())
            assert "None" not in repr(leaves(state))  # nulls delete, they are never stored
        doc = json.loads(json.dumps(s.to_document(), allow_nan=False))
        assert Shadow.from_document(doc) == s


@quick
@given(desired=states, reported=states)
def test_delta_is_empty_iff_every_desired_leaf_equals_reported(desired, reported):
    all_equal = True
    for path, value in leaves(desired):
        found, have = lookup(reported, path)
        all_equal &= found and json_equal(have, value)
    assert (delta(desired, reported) == {}) is all_equal


@quick
@given(desired=states, reported=states)
def test_delta_never_holds_a_key_absent_from_desired(desired, reported):
    d = delta(desired, reported)
    for path, value in leaves(d):
        found, want = lookup(desired, path)
        assert found and json_equal(want, value)
        found, have = lookup(reported, path)
        assert not found or not json_equal(have, value)


@quick
@given(desired=states, reported=states)
def test_a_shadow_whose_reported_catches_up_has_no_delta(desired, reported):
    s = apply_update(None, {"state": {"desired": desired, "reported": reported}}, NOW).shadow
    caught_up = apply_report(s, s.desired, NOW + 1).shadow
    assert caught_up.delta == {}


@quick
@given(reports=st.lists(patches, max_size=8))
def test_folding_reports_gives_the_same_reported_state_as_merging_them(reports):
    s: Shadow | None = None
    for i, report in enumerate(reports):
        r = apply_report(s, report, NOW + i)
        assert r.accepted, r.error
        s = r.shadow
    folded = s.reported if s is not None else {}
    assert folded == reduce(merge, reports, {})


@quick
@given(old=states, new=states)
def test_diff_is_the_patch_merge_needs(old, new):
    old, new = merge({}, old), merge({}, new)  # stored states are pruned of empty objects
    assert json_equal(merge(old, diff(old, new)), new)
    assert (diff(old, new) == {}) is json_equal(old, new)


@quick
@given(base=states, patch=patches)
def test_merge_is_idempotent_and_pure(base, patch):
    snapshot = json.dumps([base, patch], sort_keys=True)
    once = merge(base, patch)
    assert merge(once, patch) == once
    assert json.dumps([base, patch], sort_keys=True) == snapshot


@quick
@given(shadow_updates=st.lists(updates, min_size=1, max_size=4), report=patches)
def test_metadata_moves_only_for_changed_reported_leaves(shadow_updates, report):
    s: Shadow | None = None
    for request in shadow_updates:
        s = apply_update(s, request, NOW).shadow
    assert s is not None
    r = apply_report(s, report, NOW + 100)
    new = r.shadow
    assert new.metadata["desired"] == s.metadata["desired"]
    for path, _value in leaves(new.reported):
        _, stamp = lookup(new.metadata["reported"], path)
        changed, _ = lookup(r.changed_reported, path)
        # a changed leaf may sit under a replaced parent; then all of it is new
        replaced = any(
            lookup(r.changed_reported, path[:n])[0]
            and not isinstance(lookup(r.changed_reported, path[:n])[1], dict)
            for n in range(1, len(path))
        )
        expected = NOW + 100 if (changed or replaced) else NOW
        assert all(t == expected for t in timestamps(stamp)), (path, stamp)
