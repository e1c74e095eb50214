"""Processors are declarations: a second one plugs into the fold (and so into the
worker loops, which know only the Fold) without touching the loop or the first one."""

from __future__ import annotations

from typing import Any

import pytest

from streams.fold.context import Context
from streams.fold.declaration import TICK_RECORD, Processor, Table
from streams.fold.dispatch import INPUT_TOPICS, PROCESSORS, Fold, fold, input_topics
from streams.fold.home import HOME
from streams.fold.store import DictStore
from streams.txloop import PartitionStore
from tests.unit.test_processor import T0, discovered, report, tick
from topics import catalogue as t


def _automation() -> tuple[Processor, list[tuple[str, Any]]]:
    """A toy second processor: counts reports per home in a table of its own, and says
    so on every tick."""
    seen: list[tuple[str, Any]] = []

    def on_report(ctx: Context, rec: dict[str, Any]) -> None:
        key = f"automation/{rec['home_id']}"
        count = int((ctx.store.get(key) or {}).get("reports", 0)) + 1
        ctx.store.put(key, {"reports": count})
        ctx.emit(t.AUTOMATIONS_RUNS, ctx.home, "AutomationRun", {"count": count})
        seen.append(("report", count))

    def on_tick(ctx: Context, rec: dict[str, Any]) -> None:
        seen.append(("tick", ctx.now))

    return (
        Processor(
            name="automation",
            inputs={t.DEVICE_REPORTS: {"DeviceReport": on_report}},
            tables=(Table("automation/<home>", "reports counted"),),
            timers=(on_tick,),
        ),
        seen,
    )


def test_the_worker_consumes_what_the_processors_declare():
    assert input_topics(PROCESSORS) == INPUT_TOPICS
    assert set(INPUT_TOPICS) == {
        t.DEVICE_DISCOVERY,
        t.DEVICE_REPORTS,
        t.DEVICE_AVAILABILITY,
        t.COMMANDS_REQUESTED,
        t.COMMANDS_ACKS,
        t.SHADOW_REQUESTS,
        t.STREAM_TICKS,  # the home processor has a timer
        t.HOME_CONFIG,  # the automation engine's and the scenes processor's documents
        t.DEVICE_EVENTS,
        t.HUB_STATUS,
    }
    assert Fold(DictStore()).timed
    assert not Fold(DictStore(), processors=()).timed
    assert t.STREAM_TICKS not in input_topics(())


def test_a_second_processor_sees_its_events_after_the_first_with_distinct_event_ids():
    automation, seen = _automation()
    both = Fold(PartitionStore({}), processors=(HOME, automation))
    alone = fold([discovered(), report({"powerState": "ON"}), tick(T0 + 1_000)])
    events = [discovered(), report({"powerState": "ON"}), tick(T0 + 1_000)]
    outs = [both.handle(name, rec) for name, rec in events]

    # The first processor's outputs and state are what they are without the second.
    home_only = [[e for e in out if e.record_name != "AutomationRun"] for out in outs]
    assert [e.record_name for e in home_only[1]] == ["StateChange", "ShadowDocument"]
    assert {k: v for k, v in both.store.data.items() if not k.startswith("automation/")} == (
        alone.store.data
    )
    # The second ran after it, on the same event, with ids of the same sequence.
    assert outs[1][-1].record_name == "AutomationRun"
    ids = [e.record["event_id"] for out in outs for e in out]
    assert len(ids) == len(set(ids))
    assert seen == [("report", 1), ("tick", T0 + 1_000)]
    assert both.store.data["automation/h1"] == {"reports": 1}
    assert input_topics((HOME, automation)) == input_topics((HOME,))


def test_declarations_are_checked():
    def noop(ctx: Context, rec: dict[str, Any]) -> None:
        pass

    with pytest.raises(ValueError, match="carries no"):
        Processor("p", {t.DEVICE_REPORTS: {"HubAck": noop}})
    with pytest.raises(ValueError, match="timers"):
        Processor("p", {t.STREAM_TICKS: {TICK_RECORD: noop}})
    with pytest.raises(ValueError, match="two handlers"):
        Processor(
            "p",
            {
                t.DEVICE_DISCOVERY: {"DeviceRemoved": noop},
                t.DEVICE_REGISTRY: {"DeviceRemoved": noop},
            },
        )
    twin = Processor("home", {t.DEVICE_REPORTS: {"DeviceReport": noop}})
    with pytest.raises(ValueError, match="names repeat"):
        Fold(DictStore(), processors=(HOME, twin))
    squatter = Processor("other", {}, tables=(Table("<home>", "mine too"),))
    with pytest.raises(ValueError, match="both keep"):
        Fold(DictStore(), processors=(HOME, squatter))


def test_a_chained_processor_takes_what_the_first_emits_in_the_same_handling():
    """A StateChange the home processor emits reaches a processor that takes it chained,
    while the input is being handled: no subscription, same outputs, same id sequence."""
    took: list[tuple[int, dict[str, Any] | None]] = []

    def on_change(ctx: Context, rec: dict[str, Any]) -> None:
        took.append((rec["version"], ctx.device_state("h1", rec["device_id"])))
        ctx.emit(t.AUTOMATIONS_RUNS, ctx.home, "AutomationFired", {"version": rec["version"]})

    watcher = Processor("watcher", {}, chained={t.STATE_CHANGES: {"StateChange": on_change}})
    both = Fold(DictStore(), processors=(HOME, watcher))
    assert both.input_topics == input_topics((HOME,))  # state.changes is not subscribed
    both.handle(*discovered())
    out = both.handle(*report({"powerState": "ON"}))
    names = [e.record_name for e in out]
    assert names == ["StateChange", "ShadowDocument", "AutomationFired"]
    # It read the state the change came from (the new shadow is already stored).
    [(version, device)] = took
    assert version == 1 and device is not None
    assert device["shadow"]["reported"] == {"powerState": "ON"}
    ids = [e.record["event_id"] for e in out]
    assert len(ids) == len(set(ids))


def test_a_chained_topic_cannot_also_be_an_input():
    def noop(ctx: Context, rec: dict[str, Any]) -> None:
        pass

    with pytest.raises(ValueError, match="both an input and chained"):
        Processor(
            "p",
            {t.DEVICE_REPORTS: {"DeviceReport": noop}},
            chained={t.DEVICE_REPORTS: {"DeviceReport": noop}},
        )
    with pytest.raises(ValueError, match="carries no"):
        Processor("p", {}, chained={t.STATE_CHANGES: {"HubAck": noop}})
