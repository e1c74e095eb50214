"""The worker's local RocksDB copy of a partition: only committed batches reach disk, the
cache never loses an uncommitted value, and a checkpoint says when the copy can be
brought up to date from the changelog."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.localstate import Checkpoint, RocksPartition, usable_checkpoint

CP = Checkpoint(offset=120, written_at_ms=1_000_000, topic_id="topic-a")


@pytest.fixture
def part(tmp_path):
    p = RocksPartition(tmp_path / "partition-0", cache_keys=3)
    yield p
    p.close()


def _enc(value):
    return None if value is None else json.dumps(value).encode()


def test_a_committed_batch_survives_a_reopen_and_an_uncommitted_one_does_not(tmp_path):
    part = RocksPartition(tmp_path / "p", cache_keys=10)
    part.put("home", {"devices": ["lamp"]})
    part.put("home/lamp", {"v": 1})
    part.commit({"home": _enc({"devices": ["lamp"]}), "home/lamp": _enc({"v": 1})}, CP)
    part.put("home/lamp", {"v": 2})  # a batch that never commits
    assert part.get("home/lamp") == {"v": 2}
    part.close()

    again = RocksPartition(tmp_path / "p", cache_keys=10)
    assert again.get("home/lamp") == {"v": 1}
    assert again.get("home") == {"devices": ["lamp"]}
    assert again.checkpoint == CP
    assert list(again.homes()) == ["home"]
    assert dict(again.home_items()) == {"home": {"devices": ["lamp"]}}
    again.close()


def test_rollback_reads_committed_values_again(part):
    part.commit({"h/a": _enc({"v": 1})}, None)
    part.put("h/a", {"v": 2})
    part.put("h/b", {"v": 9})
    part.rollback()
    assert part.get("h/a") == {"v": 1}
    assert part.get("h/b") is None


def test_deletes_and_absent_keys(part):
    part.commit({"h/a": _enc({"v": 1})}, None)
    assert part.get("nope") is None
    part.put("h/a", None)
    assert part.get("h/a") is None  # deleted in the open batch
    part.commit({"h/a": None}, None)
    part.rollback()
    assert part.get("h/a") is None
    assert dict(part.items()) == {}


def test_the_cache_is_trimmed_to_its_bound_after_a_commit(part):
    values = {f"h/{i}": {"v": i} for i in range(10)}
    for key, value in values.items():
        part.put(key, value)
    assert len(part.cache) == 10  # an open batch is never trimmed
    part.commit({k: _enc(v) for k, v in values.items()}, None)
    assert len(part.cache) == 3
    assert {k: part.get(k) for k in values} == values  # the rest is read from disk


def test_replay_applies_changelog_records_in_order_and_drops_stale_cache(part):
    part.commit({"h/a": _enc({"v": 1})}, None)
    assert part.get("h/a") == {"v": 1}  # cached
    n = part.replay([(b"h/a", _enc({"v": 5})), (b"h/b", _enc({"v": 6})), (b"h/b", None)])
    assert n == 3
    assert part.get("h/a") == {"v": 5}
    assert part.get("h/b") is None


def test_wipe_empties_the_copy_and_its_checkpoint(part):
    part.commit({"h/a": _enc({"v": 1})}, CP)
    part.wipe()
    assert part.get("h/a") is None and part.checkpoint is None
    part.commit({"h/b": _enc({"v": 2})}, None)
    assert dict(part.items()) == {"h/b": {"v": 2}}


def test_a_second_open_of_the_same_directory_is_refused(tmp_path):
    part = RocksPartition(tmp_path / "p", cache_keys=10)
    try:
        with pytest.raises(Exception, match=r"(?i)lock"):
            RocksPartition(tmp_path / "p", cache_keys=10)
    finally:
        part.close()


@pytest.mark.parametrize(
    ("cp", "low", "high", "now", "reason"),
    [
        (None, 0, 10, 0, "no local state"),
        (CP, 0, 500, CP.written_at_ms + 10, None),
        (CP, 0, 120, CP.written_at_ms, None),  # exactly at the end: nothing to replay
        (CP, 0, 100, CP.written_at_ms, "past the changelog's end"),
        (CP, 121, 500, CP.written_at_ms, "no longer starts"),
        (CP, 0, 500, CP.written_at_ms + 1001, "older than"),
        (Checkpoint(120, 1_000_000, "topic-b"), 0, 500, 1_000_000, "recreated"),
    ],
)
def test_when_a_checkpoint_can_be_caught_up(cp, low, high, now, reason):
    why = usable_checkpoint(cp, topic_id="topic-a", low=low, high=high, now_ms=now, max_age_ms=1000)
    if reason is None:
        assert why is None
    else:
        assert why is not None and reason in why


def test_a_damaged_checkpoint_reads_as_none():
    assert Checkpoint.decode(b"{not json") is None
    assert Checkpoint.decode(b'{"offset": 1}') is None
    assert Checkpoint.decode(CP.encode()) == CP


# A model: the committed dict and the open batch. Operations: put, delete, get, commit,
# rollback, reopen (a crash: the open batch is gone); a tiny cache forces disk reads.
_keys = st.sampled_from(["h", "h/a", "h/b", "g", "g/a"])
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), _keys, st.integers(0, 5)),
        st.tuples(st.just("del"), _keys, st.none()),
        st.tuples(st.just("get"), _keys, st.none()),
        st.tuples(st.sampled_from(["commit", "rollback", "reopen"]), st.none(), st.none()),
    ),
    max_size=60,
)


@settings(max_examples=60, deadline=None)
@given(ops=_ops)
def test_matches_a_model_of_committed_and_open_state(tmp_path_factory, ops):
    path = tmp_path_factory.mktemp("model") / "p"
    part = RocksPartition(path, cache_keys=2)
    committed: dict[str, dict] = {}
    batch: dict[str, dict | None] = {}
    try:
        for op, key, value in ops:
            if op == "put":
                part.put(key, {"v": value})
                batch[key] = {"v": value}
            elif op == "del":
                part.put(key, None)
                batch[key] = None
            elif op == "get":
                expected = batch[key] if key in batch else committed.get(key)
                assert part.get(key) == expected
            elif op == "commit":
                part.commit({k: _enc(v) for k, v in batch.items()}, None)
                for k, v in batch.items():
                    if v is None:
                        committed.pop(k, None)
                    else:
                        committed[k] = v
                batch = {}
            elif op == "rollback":
                part.rollback()
                batch = {}
            else:
                part.close()
                part = RocksPartition(path, cache_keys=2)
                batch = {}
        part.rollback()
        assert dict(part.items()) == committed
        assert sorted(part.homes()) == sorted(k for k in committed if "/" not in k)
    finally:
        part.close()


_WRITER = """
import json, sys
from pathlib import Path
from streams.localstate import Checkpoint, RocksPartition
part = RocksPartition(Path(sys.argv[1]), cache_keys=10)
filler = b"x" * 4000
flushed = False
for i in range(1, 10**9):
    writes = {"a": json.dumps(i).encode(), "b": json.dumps(i).encode()}
    writes.update({f"f/{i % 5000}": filler})  # fills memtables, so some flush mid-run
    part.commit(writes, Checkpoint(i, 0, "t"))
    if i % 500 == 0 and not flushed and any(f.suffix == ".sst" for f in part.path.iterdir()):
        flushed = True
        print("flushed", flush=True)
"""


def test_a_killed_writer_leaves_a_prefix_of_batches_with_its_own_checkpoint(tmp_path):
    """No write-ahead log: a SIGKILL loses the unflushed batches, but what survives is a
    prefix of whole batches together with the checkpoint they reached."""
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "p"
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"flushed\n"
    time.sleep(0.3)  # more batches, in the memtable only
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    part = RocksPartition(path, cache_keys=10)
    try:
        cp = part.checkpoint
        assert cp is not None  # the flushed batches survived
        assert part.get("a") == part.get("b") == cp.offset
    finally:
        part.close()
