"""The hub's SQLite outbox: FIFO order, acks, the bound policy, reopen, kill -9."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from hub.hubclient import encode_payload
from hub.outbox import KIND_OTHER, KIND_RETAINED, KIND_STATE, Outbox, OutboxClosed, OutboxFull
from hub.outbox import row_kind as kind_of

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def box(tmp_path):
    b = Outbox(tmp_path / "outbox.db")
    yield b
    b.close()


def test_fifo_order_and_fields(box):
    ids = [box.put(f"hub/h/state/d{i % 3}", f"p{i}".encode(), False, 1) for i in range(10)]
    assert ids == sorted(ids) and len(set(ids)) == 10
    box.put("hub/h/status", b"online", True, 0)
    items = box.peek(100)
    assert [i.payload for i in items] == [f"p{i}".encode() for i in range(10)] + [b"online"]
    assert items[0].topic == "hub/h/state/d0" and items[0].qos == 1 and not items[0].retain
    assert items[-1].retain and items[-1].qos == 0
    assert items[0].enqueued_at <= items[-1].enqueued_at <= time.time()
    assert len(box) == 11
    assert [i.id for i in box.peek(3)] == ids[:3]
    assert [i.id for i in box.peek(3, after=ids[4])] == ids[5:8]
    assert box.peek(0) == []


def test_ack_and_remove(box):
    ids = [box.put("hub/h/state/d", str(i).encode(), False, 1) for i in range(6)]
    assert box.ack([ids[0], ids[2], 999_999]) == 2  # unknown ids are ignored
    assert box.remove(ids[5])
    assert not box.remove(ids[5])
    assert [i.id for i in box.peek(10)] == [ids[1], ids[3], ids[4]]
    assert len(box) == 3
    assert box.ack([]) == 0
    box.ack(range(ids[0], ids[-1] + 1))
    assert len(box) == 0 and box.peek(10) == []


def test_ids_never_reused_after_emptying(box):
    """A sender's cursor ("sent up to id N") must never skip a later put."""
    first = box.put("hub/h/state/d", b"a", False, 1)
    box.ack([first])
    assert len(box) == 0
    second = box.put("hub/h/state/d", b"b", False, 1)
    assert second > first
    assert [i.payload for i in box.peek(10, after=first)] == [b"b"]
    assert box.last_id() == second


def test_ack_many_in_chunks(box):
    ids = [box.put("hub/h/event/d", b"x", False, 1) for i in range(1_234)]
    assert box.ack(ids[:1_200]) == 1_200
    assert [i.id for i in box.peek(100)] == ids[1_200:]


def test_row_kinds():
    assert kind_of("hub/h/state/lamp", False) == KIND_STATE
    assert kind_of("hub/h/event/lamp", False) == KIND_OTHER
    assert kind_of("hub/h/ack/lamp", False) == KIND_OTHER
    assert kind_of("hub/h/shadow/state/update", False) == KIND_OTHER
    assert kind_of("hub/h/state/lamp", True) == KIND_RETAINED
    assert kind_of("hub/h/discovery/lamp", True) == KIND_RETAINED


def test_bound_drops_oldest_state_reports_first(tmp_path):
    box = Outbox(tmp_path / "o.db", max_rows=5)
    box.put("hub/h/discovery/d", b"desc", True, 1)  # retained: kept
    box.put("hub/h/event/d", b"e1", False, 1)  # non-retained, not state: 2nd tier
    for i in range(3):
        box.put("hub/h/state/d", f"s{i}".encode(), False, 1)
    assert len(box) == 5 and box.dropped == 0
    box.put("hub/h/state/d", b"s3", False, 1)  # full: the oldest state report goes
    assert [i.payload for i in box.peek(10)] == [b"desc", b"e1", b"s1", b"s2", b"s3"]
    assert box.dropped == 1 and len(box) == 5
    box.put("hub/h/availability/d", b"online", True, 1)
    box.put("hub/h/ack/d", b"a1", False, 1)
    box.put("hub/h/ack/d", b"a2", False, 1)
    # s1, s2, s3 went (oldest state first) and the event is next in line.
    assert [i.payload for i in box.peek(10)] == [b"desc", b"e1", b"online", b"a1", b"a2"]
    box.put("hub/h/ack/d", b"a3", False, 1)  # no state left: oldest non-retained (e1)
    assert [i.payload for i in box.peek(10)] == [b"desc", b"online", b"a1", b"a2", b"a3"]
    assert box.dropped == 5
    box.close()
    # The count survives a restart.
    again = Outbox(tmp_path / "o.db", max_rows=5)
    assert again.dropped == 5 and len(again) == 5
    again.close()


def test_bound_refuses_when_everything_is_retained(tmp_path):
    box = Outbox(tmp_path / "o.db", max_rows=3)
    for i in range(3):
        box.put(f"hub/h/discovery/d{i}", b"x", True, 1)
    with pytest.raises(OutboxFull):
        box.put("hub/h/state/d", b"s", False, 1)
    # Nothing changed, and the outbox still works after the refusal.
    assert len(box) == 3 and box.dropped == 0
    assert [i.topic for i in box.peek(10)] == [f"hub/h/discovery/d{i}" for i in range(3)]
    box.ack([box.peek(1)[0].id])
    box.put("hub/h/state/d", b"s", False, 1)
    assert len(box) == 3
    box.close()


def test_lowering_the_bound_on_reopen(tmp_path):
    box = Outbox(tmp_path / "o.db")
    for i in range(10):
        box.put("hub/h/state/d", str(i).encode(), False, 1)
    box.close()
    small = Outbox(tmp_path / "o.db", max_rows=4)
    small.put("hub/h/state/d", b"10", False, 1)
    assert [i.payload for i in small.peek(10)] == [b"7", b"8", b"9", b"10"]
    assert small.dropped == 7
    small.close()


def test_reopen_keeps_everything_in_order(tmp_path):
    path = tmp_path / "o.db"
    with Outbox(path) as box:
        ids = [box.put("hub/h/state/d", str(i).encode(), False, 1) for i in range(50)]
        box.ack(ids[:10])
    with Outbox(path) as box:
        assert len(box) == 40
        assert [int(i.payload) for i in box.peek(100)] == list(range(10, 50))
        assert box.put("hub/h/state/d", b"50", False, 1) > ids[-1]


def test_wal_mode_and_synchronous(tmp_path):
    with Outbox(tmp_path / "a.db") as box:
        assert box._conn is not None
        assert box._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert box._conn.execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    with Outbox(tmp_path / "b.db", synchronous="full") as box:
        assert box._conn is not None
        assert box._conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    with pytest.raises(ValueError):
        Outbox(tmp_path / "c.db", synchronous="OFF")
    with pytest.raises(ValueError):
        Outbox(tmp_path / "d.db", max_rows=0)


def test_closed_outbox_refuses(tmp_path):
    box = Outbox(tmp_path / "o.db")
    box.put("hub/h/state/d", b"x", False, 1)
    box.close()
    box.close()  # idempotent
    assert box.closed
    with pytest.raises(OutboxClosed):
        box.put("hub/h/state/d", b"y", False, 1)
    with pytest.raises(OutboxClosed):
        box.peek(1)


def test_bad_qos_is_refused(box):
    with pytest.raises(ValueError):
        box.put("hub/h/state/d", b"x", False, 3)
    assert len(box) == 0


def test_writer_and_network_threads(box):
    """One thread puts, another peeks and acks (as the sender does): nothing is lost,
    nothing is acked twice, everything comes out in order."""
    n = 2_000
    seen: list[int] = []
    done = threading.Event()

    def writer():
        for i in range(n):
            box.put("hub/h/state/d", str(i).encode(), False, 1)
        done.set()

    def sender():
        cursor = 0
        while len(seen) < n:
            items = box.peek(50, after=cursor)
            if not items:
                if done.is_set() and len(box) == 0:
                    break
                time.sleep(0.001)
                continue
            seen.extend(int(i.payload) for i in items)
            cursor = items[-1].id
            box.ack([i.id for i in items])

    threads = [threading.Thread(target=writer), threading.Thread(target=sender)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert seen == list(range(n))
    assert len(box) == 0


_WRITER = textwrap.dedent(
    """
    import sys
    from hub.outbox import Outbox

    box = Outbox(sys.argv[1])
    i = 0
    while True:
        box.put(f"hub/h/state/d{i % 3}", str(i).encode(), False, 1)
        # A line per committed put: what the parent sees was committed.
        sys.stdout.write(f"{i}\\n")
        sys.stdout.flush()
        i += 1
    """
)


def test_survives_kill_9(tmp_path):
    path = tmp_path / "outbox.db"
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.stdout is not None
    committed = -1
    try:
        for line in proc.stdout:
            committed = int(line)
            if committed >= 3_000:
                break
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # no chance to close or checkpoint
        proc.wait(timeout=10)
    # Lines the child wrote before it died but we had not read yet.
    for line in proc.stdout.read().splitlines():
        if line.strip().isdigit():
            committed = int(line)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL
    assert committed >= 3_000
    assert Path(f"{path}-wal").exists()  # the rows are (at least partly) only in the WAL

    with Outbox(path) as box:
        values = [int(i.payload) for i in box.peek(1_000_000)]
        # Every put the child reported is there, in order, with nothing missing
        # between; at most the one put in progress when it died may follow.
        assert values[: committed + 1] == list(range(committed + 1))
        assert values == list(range(len(values)))
        assert len(values) - (committed + 1) <= 1
        assert len(box) == len(values)
        assert [i.topic for i in box.peek(3)] == [
            "hub/h/state/d0",
            "hub/h/state/d1",
            "hub/h/state/d2",
        ]
    # And the file is sound.
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_encode_payload():
    assert encode_payload(None) == b""
    assert encode_payload(b"\x00\x01") == b"\x00\x01"
    assert encode_payload(bytearray(b"ab")) == b"ab"
    assert encode_payload("online") == b"online"
    assert encode_payload({"state": {"seq": 1}, "ts": 5}) == b'{"state":{"seq":1},"ts":5}'
    assert encode_payload({"name": "Küche"}) == '{"name":"Küche"}'.encode()
    with pytest.raises(TypeError):
        encode_payload(3)  # type: ignore[arg-type]
