"""How a processor is declared, the Faust way: the input topics it consumes and a
handler per record type each carries, the state tables it keeps, its timers.

The loop (``streams.txloop``) knows processors only through these
declarations (via ``streams.fold.dispatch.Fold``): which topics to subscribe to, which
handlers an input record goes to, whether to write ticks. A second processor, such as an
automation engine, is one more declaration in ``streams.fold.dispatch.PROCESSORS``.

Every handler is a deterministic function of its ``Context`` and the input record: no
clock, no I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from streams.fold.context import Context
from topics import catalogue as t

Handler = Callable[[Context, dict[str, Any]], None]

# Time passing, in the log: the worker writes one of these per owned partition every
# second (``streams.txloop.tick_time`` says which time it carries), and hands each to
# the timers of every processor.
TICK_TOPIC = t.STREAM_TICKS
TICK_RECORD = "StreamTick"


@dataclass(frozen=True)
class Table:
    """A kind of state key a processor keeps (in the partition's store and changelog)."""

    key: str  # its layout, e.g. "<home>/<device>"
    holds: str


@dataclass(frozen=True)
class Processor:
    name: str
    # input topic -> {record name -> handler}: what the processor consumes, and who
    # handles each record type the topic carries
    inputs: Mapping[str, Mapping[str, Handler]]
    tables: tuple[Table, ...] = ()
    # called on every tick of the partition, with the tick's time as ``ctx.now``
    timers: tuple[Handler, ...] = ()
    # topic -> {record name -> handler}: records the processors before this one emit while
    # handling an input, handed over in the same transaction (so what they read is the
    # state that record came from); the topic is not subscribed for them
    chained: Mapping[str, Mapping[str, Handler]] = field(default_factory=dict)
    handlers: Mapping[str, Handler] = field(init=False)  # record name -> handler

    def __post_init__(self) -> None:
        handlers: dict[str, Handler] = {}
        for topic, by_record in self.inputs.items():
            if topic == TICK_TOPIC:
                raise ValueError(f"{self.name}: ticks go to timers, not to an input")
            carried = t.topic(topic).value_schemas
            for record, handler in by_record.items():
                if record not in carried:
                    raise ValueError(f"{self.name}: {topic} carries no {record} records")
                if record in handlers:
                    raise ValueError(f"{self.name}: two handlers for {record}")
                handlers[record] = handler
        object.__setattr__(self, "handlers", handlers)
        for topic, by_record in self.chained.items():
            if topic in self.inputs:
                raise ValueError(f"{self.name}: {topic} is both an input and chained")
            carried = t.topic(topic).value_schemas
            for record in by_record:
                if record not in carried:
                    raise ValueError(f"{self.name}: {topic} carries no {record} records")
