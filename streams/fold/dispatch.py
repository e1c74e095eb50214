"""The fold: each input event goes to the handlers the processors declared for it.

``Fold.handle(record_name, record)`` reads and writes state through a ``Store`` and
returns the events to emit. No clock, no I/O: times come from the events themselves (a
report's ``received_at``, a tick's ``ts``) and output event ids are derived from the
input's id. So replaying the same input over the same state gives the same state and
the same outputs, which makes shadows rebuilt from the topics equal to the live ones and
lets downstream consumers drop replayed duplicates by event id.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from streams.fold.automations import AUTOMATIONS
from streams.fold.config import ProcessorConfig
from streams.fold.context import Context, Emit
from streams.fold.declaration import TICK_RECORD, TICK_TOPIC, Handler, Processor
from streams.fold.home import HOME
from streams.fold.scenes import SCENES
from streams.fold.store import DictStore, Store

# The processors a worker runs. An event reaches those that handle it in this order,
# and their outputs share one sequence of derived event ids. Scenes come after the home
# processor: they read the devices it holds and follow the statuses it emits.
PROCESSORS: tuple[Processor, ...] = (HOME, AUTOMATIONS, SCENES)

# A chain that keeps emitting what it takes is a bug; stop it rather than spin.
_MAX_CHAINED_OUTPUTS = 100_000


class Fold:
    def __init__(
        self,
        store: Store,
        config: ProcessorConfig | None = None,
        processors: Sequence[Processor] = PROCESSORS,
    ):
        self.store = store
        self.config = config or ProcessorConfig()
        self.counters: Counter[str] = Counter()
        self.processors = tuple(processors)
        self.routes = _routes(self.processors)
        self.chained = _chained_routes(self.processors)

    @property
    def input_topics(self) -> tuple[str, ...]:
        return input_topics(self.processors)

    @property
    def timed(self) -> bool:
        """Whether some processor has timers, so the worker must write ticks."""
        return any(p.timers for p in self.processors)

    def handle(self, name: str, record: dict[str, Any]) -> list[Emit]:
        handlers = self.routes.get(name)
        if handlers is None:
            self.counters["ignored"] += 1
            return []
        source_id = str(record.get("event_id", ""))
        home = str(record.get("home_id", ""))
        now = int(record.get("received_at") or record.get("ts") or 0)
        out: list[Emit] = []
        for handler in handlers:  # each its own context, one list of outputs
            handler(
                Context(self.store, self.config, self.counters, source_id, home, now, out), record
            )
        if self.chained:
            self._chain(source_id, now, out)
        return out

    def _chain(self, source_id: str, now: int, out: list[Emit]) -> None:
        """Hand emitted records to the processors that take them chained, in order; what
        those emit joins the same outputs (and may be chained further)."""
        i = 0
        while i < len(out):
            emit = out[i]
            i += 1
            handlers = self.chained.get((emit.topic, emit.record_name), ())
            if i > _MAX_CHAINED_OUTPUTS:
                raise RuntimeError(f"chained handlers emitted over {_MAX_CHAINED_OUTPUTS} records")
            for handler in handlers:
                home = str(emit.record.get("home_id", ""))
                handler(
                    Context(self.store, self.config, self.counters, source_id, home, now, out),
                    emit.record,
                )


def _chained_routes(
    processors: tuple[Processor, ...],
) -> dict[tuple[str, str], tuple[Handler, ...]]:
    """(topic, record name) -> the handlers that take it chained, in processor order."""
    routes: dict[tuple[str, str], list[Handler]] = {}
    for p in processors:
        for topic, by_record in p.chained.items():
            for record, handler in by_record.items():
                routes.setdefault((topic, record), []).append(handler)
    return {k: tuple(v) for k, v in routes.items()}


def input_topics(processors: Iterable[Processor]) -> tuple[str, ...]:
    """The topics the processors consume (each worker engine subscribes to these)."""
    topics: dict[str, None] = {}
    timed = False
    for p in processors:
        topics.update(dict.fromkeys(p.inputs))
        timed = timed or bool(p.timers)
    if timed:
        topics[TICK_TOPIC] = None
    return tuple(topics)


def _routes(processors: tuple[Processor, ...]) -> dict[str, tuple[Handler, ...]]:
    names = [p.name for p in processors]
    if len(set(names)) != len(names):
        raise ValueError(f"processor names repeat: {names}")
    tables: dict[str, str] = {}
    for p in processors:
        for table in p.tables:
            if table.key in tables:
                raise ValueError(f"{p.name} and {tables[table.key]} both keep {table.key}")
            tables[table.key] = p.name
    routes: dict[str, list[Handler]] = {}
    for p in processors:
        for record, handler in p.handlers.items():
            routes.setdefault(record, []).append(handler)
        if p.timers:
            routes.setdefault(TICK_RECORD, []).extend(p.timers)
    return {record: tuple(handlers) for record, handlers in routes.items()}


INPUT_TOPICS = input_topics(PROCESSORS)


def fold(
    events: Iterable[tuple[str, dict[str, Any]]], config: ProcessorConfig | None = None
) -> Fold:
    """Fold events into a fresh in-memory fold: the reference a worker must match."""
    result = Fold(DictStore(), config)
    for name, record in events:
        result.handle(name, record)
    return result
