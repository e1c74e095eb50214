"""The DueIndex lets a tick visit only the homes it has work for. It must change nothing
else: the same events give the same outputs and the same state as visiting every home."""

from __future__ import annotations

import copy
import random

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.lifecycle import FINAL
from streams.due import DueIndex, next_deadline, scan_due, timer_home, timer_key
from streams.fold.config import ProcessorConfig
from streams.fold.dispatch import Fold
from streams.fold.store import DictStore
from streams.txloop import PartitionStore
from tests.unit.test_processor import T0, ack, command, discovered, report, tick

CONFIG = ProcessorConfig(offline_after_ms=10_000, park_ttl_ms=8_000, scan_interval_ms=30_000)


def _in(home: str, event: tuple[str, dict]) -> tuple[str, dict]:
    name, rec = event
    return name, {**rec, "home_id": home}


def _events(seed: int, homes: int = 12, seconds: int = 150) -> list[tuple[str, dict]]:
    """Discoveries, reports, commands with short timeouts, acks, reports of unknown devices
    (parked, then expired), silence; and a tick every second."""
    rng = random.Random(seed)
    ids = [f"home-{seed}-{i}" for i in range(homes)]
    out: list[tuple[str, dict]] = []
    for h in ids:
        out.append(_in(h, discovered(ts=T0)))
    n = 0
    for s in range(1, seconds):
        now = T0 + s * 1_000
        for h in rng.sample(ids, k=rng.randint(0, 3)):
            roll = rng.random()
            if roll < 0.4:
                out.append(_in(h, report({"powerState": rng.choice(["ON", "OFF"])}, ts=now)))
            elif roll < 0.7:
                n += 1
                cid = f"c{n}"
                out.append(_in(h, command("turnOn", ts=now, cid=cid, timeout_ms=3_000)))
                if rng.random() < 0.5:
                    out.append(_in(h, ack(cid, "ACKNOWLEDGED", ts=now + 100)))
            elif roll < 0.8:
                out.append(_in(h, report({"powerState": "ON"}, dev="ghost", ts=now)))
            # else: silence, so devices go offline
        out.append(tick(now))
    return out


def _run(store, events) -> tuple[list, dict]:
    proc = Fold(store, copy.deepcopy(CONFIG))
    emitted = []
    for name, rec in events:
        emitted.extend((e.topic, e.key, e.record_name, e.record) for e in proc.handle(name, rec))
    return emitted, store.data


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(min_value=0, max_value=10**6))
def test_ticks_over_the_index_do_exactly_what_ticks_over_every_home_do(seed):
    events = _events(seed)
    plain_out, plain_state = _run(DictStore(), events)
    index = DueIndex(CONFIG.scan_interval_ms)
    indexed_out, indexed_state = _run(PartitionStore({}, index), events)
    assert indexed_out == plain_out
    assert indexed_state == plain_state
    # The scenario did exercise the tick: timeouts, offline devices, expired parked reports.
    names = {(topic, name) for topic, _k, name, _r in plain_out}
    assert any(n == "Availability" for _t, n in names)
    statuses = {r.get("status") for _t, _k, n, r in plain_out if n == "CommandStatus"}
    assert "TIMEOUT" in statuses


def test_index_rebuilt_from_state_matches_the_one_kept_by_puts():
    events = _events(7)
    index = DueIndex(CONFIG.scan_interval_ms)
    _out, state = _run(PartitionStore({}, index), events)
    rebuilt = DueIndex(CONFIG.scan_interval_ms)
    rebuilt.rebuild(state.items())
    assert (rebuilt.deadlines, rebuilt.phases) == (index.deadlines, index.phases)
    assert {home for _phase, home in index.phases} == {k for k in state if "/" not in k}
    for key in list(state):  # removing every home empties it
        index.update(key, None)
    assert (index.deadlines, index.phases) == ({}, [])


@settings(max_examples=300)
@given(
    homes=st.sets(st.text(alphabet="abcdefgh-0123", min_size=1, max_size=8), max_size=40),
    interval=st.integers(min_value=1, max_value=120_000),
    last_tick=st.integers(min_value=0, max_value=10**13),
    step=st.integers(min_value=-5_000, max_value=300_000),
)
def test_scan_window_is_exactly_the_homes_scan_due_says_yes_to(homes, interval, last_tick, step):
    now = max(1, last_tick + step)
    index = DueIndex(interval)
    index.rebuild((home, {"pending": {}}) for home in homes)
    window = index.scan_window(last_tick, now)
    assert len(window) == len(set(window))
    assert set(window) == {h for h in homes if scan_due(h, last_tick, now, interval)}


def test_next_deadline_is_the_first_open_commands():
    record = {
        "pending": {
            "a": {"status": "SENT", "deadline": T0 + 4_000},
            "c": {"status": "PENDING", "deadline": T0 + 6_000},
            "b": {"status": "COMPLETED", "deadline": T0 + 1_000},  # final: no timeout to run
        },
    }
    assert next_deadline(record) == T0 + 4_000
    assert next_deadline({"pending": {}}) is None
    assert "COMPLETED" in FINAL


def test_processor_timer_keys_ask_for_ticks_until_they_stop_asking():
    """A ``home/#name`` value with ``due_at`` makes its home due from then on; the index
    kept by puts, the one rebuilt from state and a plain dict store agree."""
    index = DueIndex(0)
    store = PartitionStore({}, index)
    key = timer_key("h9", "automations")
    assert timer_home(key) == "h9" and timer_home("h9/lamp") is None
    assert timer_home("#/ticked/3") is None
    store.put(key, {"due_at": 5_000, "timers": {"x": 5_000}})
    store.put(timer_key("h8", "automations"), {"timers": {}})  # asks for nothing
    assert "h9" not in index.due(1_000, 4_999)
    assert "h9" in index.due(4_999, 5_000) and "h8" not in index.due(4_999, 5_000)
    rebuilt = DueIndex(0)
    rebuilt.rebuild(store.data.items())
    assert rebuilt.timers == index.timers == {key: 5_000}
    assert "h9" in set(DictStore(dict(store.data)).due_homes(4_999, 5_000))
    store.put(key, {"timers": {}})
    assert "h9" not in index.due(4_999, 6_000) and index.timers == {}
