"""The fan-out: per-home subscriptions, command statuses, the feed thread's handling."""

from __future__ import annotations

import asyncio

from gateway.fanout import Fanout
from gateway.feed import KafkaFeed
from gateway.frames import Event, to_events
from gateway.memory import MemoryCommandLog
from gateway.subscriptions import Subscriptions
from topics.codec import SingleObjectCodec
from topics.schemas import SchemaStore


async def test_subscriptions_are_per_home_and_bounded():
    fan = Fanout(MemoryCommandLog(), queue_size=2)
    a, b = fan.subscribe("h1"), fan.subscribe("h2")
    events = [Event("device.state", "h1", {"n": i}) for i in range(3)]
    fan.publish(events)
    assert a.queue.qsize() == 2 and a.overflowed and a.dropped == 1
    assert b.queue.qsize() == 0 and not b.overflowed
    assert (await a.get()).frame == {"n": 0}
    a.clear_overflow()
    fan.unsubscribe(a)
    fan.publish([Event("device.state", "h1", {"n": 9})])
    assert a.queue.qsize() == 1  # no longer delivered to
    assert fan.subscribers() == 1


async def test_events_cross_from_the_feed_thread():
    fan = Fanout(MemoryCommandLog())
    await fan.start()
    sub = fan.subscribe("h1")
    import threading

    t = threading.Thread(target=fan._from_thread, args=([Event("x", "h1", {})],))
    t.start()
    t.join()
    ev = await asyncio.wait_for(sub.get(), 1)
    assert ev.type == "x"


async def test_wait_status_wakes_on_final():
    fan = Fanout(MemoryCommandLog())
    fan.note_status({"command_id": "c1", "home_id": "h1", "status": "PENDING"})

    async def later():
        await asyncio.sleep(0.05)
        fan.publish(
            to_events("CommandStatus", {"home_id": "h1", "command_id": "c1", "status": "COMPLETED"})
        )

    task = asyncio.create_task(later())
    got = await fan.wait_status("c1", 2.0)
    await task
    assert got is not None and got["status"] == "COMPLETED"
    assert (await fan.wait_status("c2", 0.05)) is None


def test_command_log_never_goes_back():
    log = MemoryCommandLog()
    log.record({"command_id": "c", "status": "PENDING", "device_id": "d"})
    log.record({"command_id": "c", "status": "ACKNOWLEDGED", "device_id": None})
    assert not log.record({"command_id": "c", "status": "SENT"})
    assert log.get("c") == {"command_id": "c", "status": "ACKNOWLEDGED", "device_id": "d"}
    log.record({"command_id": "c", "status": "COMPLETED"})
    assert not log.record({"command_id": "c", "status": "TIMEOUT"})
    assert log.get("c")["status"] == "COMPLETED"


def test_feed_handles_encoded_records_and_garbage():
    codec = SingleObjectCodec(SchemaStore())
    feed = KafkaFeed("unused:1", codec)
    value = codec.encode(
        "CommandStatus",
        {
            "event_id": "00000000-0000-0000-0000-000000000001",
            "home_id": "h1",
            "ts": 1,
            "command_id": "c9",
            "status": "FAILED",
            "reason": "no such device",
        },
    )
    (ev,) = feed.handle(value)
    assert ev.frame["status"] == "FAILED" and ev.frame["reason"] == "no such device"
    assert feed.handle(b"\x00garbage") == []
    assert feed.consumed == 1


def test_subscriptions_deliver_and_count():
    subs = Subscriptions(queue_size=1)
    a, b = subs.subscribe("h1"), subs.subscribe("h1", maxsize=5)
    assert subs.count("h1") == 2 and subs.count("h2") == 0 and subs.count() == 2
    assert subs.deliver(Event("x", "h1", {})) == (2, 0)
    assert subs.deliver(Event("x", "h1", {})) == (1, 1)  # a is full
    assert a.overflowed and not b.overflowed and b.queue.qsize() == 2
    assert subs.deliver(Event("x", "h2", {})) == (0, 0)
    subs.unsubscribe(a)
    subs.unsubscribe(a)  # twice is harmless
    assert subs.count() == 1


async def test_fanout_stats_and_status_listeners():
    fan = Fanout(MemoryCommandLog(), queue_size=1)
    fan.subscribe("h1")
    heard = []
    fan.add_status_listener(heard.append)
    fan.add_status_listener(lambda _s: 1 / 0)  # a failing listener breaks nothing
    fan.publish(to_events("CommandStatus", {"home_id": "h1", "command_id": "c", "status": "SENT"}))
    fan.publish([Event("device.state", "h1", {})])
    assert (fan.stats.events, fan.stats.delivered, fan.stats.dropped) == (2, 1, 1)
    assert fan.stats.by_type == {"command.status": 1, "device.state": 1}
    assert [s["status"] for s in heard] == ["SENT"]
    fan.remove_status_listener(heard.append)
    fan.note_status({"command_id": "c", "status": "COMPLETED"})
    assert len(heard) == 1
    assert (await fan.status("c"))["status"] == "COMPLETED"


async def test_status_prefers_the_further_one():
    log = MemoryCommandLog()
    fan = Fanout(log)
    log.record({"command_id": "c", "status": "SENT", "device_id": "d"})
    assert (await fan.status("c")) == {"command_id": "c", "status": "SENT", "device_id": "d"}
    fan.note_status({"command_id": "c", "status": "ACKNOWLEDGED", "device_id": None})
    got = await fan.status("c")
    assert got == {"command_id": "c", "status": "ACKNOWLEDGED", "device_id": "d"}
    fan.note_status({"command_id": "c", "status": "PENDING"})  # never goes back
    assert (await fan.status("c"))["status"] == "ACKNOWLEDGED"


async def test_feed_statuses_reach_waiters_without_the_command_log():
    """The Redis sink keeps the log; a status from the feed alone answers GET and wait."""
    codec = SingleObjectCodec(SchemaStore())
    log = MemoryCommandLog()
    fan = Fanout(log, feed=KafkaFeed("unused:1", codec))
    fan.note_status({"command_id": "c7", "home_id": "h1", "status": "PENDING"})
    assert fan.feed is not None
    value = codec.encode(
        "CommandStatus",
        {
            "event_id": "00000000-0000-0000-0000-000000000003",
            "home_id": "h1",
            "ts": 2,
            "command_id": "c7",
            "status": "COMPLETED",
        },
    )
    # No polling to fall back on: only the feed's status can end the wait in time.
    waiting = asyncio.create_task(fan.wait_status("c7", 5.0, poll=10.0))
    await asyncio.sleep(0)  # the waiter is registered and looking at the log
    fan.publish(fan.feed.handle(value))
    got = await asyncio.wait_for(waiting, 1.0)
    assert got is not None and got["status"] == "COMPLETED"
    assert (await fan.status("c7"))["status"] == "COMPLETED"
    assert log.get("c7") is None  # the feed wrote nothing
