"""Which homes a tick has work for: the runtime's index over a partition's state.

A tick (``streams.fold.health``) times out commands whose deadline passed and scans
each home's health once per scan interval, at a phase of the home's own. Visiting every
home of a partition every second would cost O(homes) per tick, so the worker keeps a
``DueIndex`` per partition, updated by its store's puts and rebuilt from the state after
a restore, and a tick visits only what the index yields. It is derived from the state,
never stored itself; the fold reads it only through ``Store.due_homes``.

``scan_phase``/``scan_due`` decide when a home's scan slot begins; the fold asks
``scan_due`` too, so a store without an index (a dict, the Faust table) scans exactly the
same homes at the same ticks. ``ticked_key`` is the state key of a partition's last
tick time, which the scans count from.

Other processors keep a home's state under ``<home>/#<name>`` keys (``timer_key``); such
a value asks for a tick with ``due_at`` (epoch ms), and the index yields its home from
then on, until the value no longer asks.
"""

from __future__ import annotations

import bisect
import zlib
from collections.abc import Iterable, Mapping
from typing import Any

from domain.lifecycle import FINAL


def ticked_key(partition: int) -> str:
    """The state key of a partition's last tick time, which ``scan_due`` counts from: one
    per partition (a store may hold several), and neither a home nor a device of one
    (home ids have no "#")."""
    return f"#/ticked/{partition}"


def scan_phase(home: str, interval_ms: int) -> int:
    """Where in each scan interval this home's slot begins (spreads homes over it)."""
    return zlib.crc32(home.encode()) % interval_ms if interval_ms > 0 else 0


def scan_due(home: str, last_tick: int, now: int, interval_ms: int) -> bool:
    """Whether a tick at ``now`` scans ``home``'s health: when a slot of the home began
    since the last tick, so once per interval, at a phase of its own (from its id). The
    homes' scans spread over the interval instead of all landing in one tick, whose
    transaction would then hold up every event behind it (p99). No tick yet: scan now."""
    if interval_ms <= 0 or last_tick <= 0:
        return True
    phase = scan_phase(home, interval_ms)
    slot_start = now - (now + phase) % interval_ms
    return last_tick < slot_start


def timer_key(home: str, name: str) -> str:
    """A processor's per-home state key that may ask for ticks (``due_at``): under the
    home, beside its devices, but never a device (device ids have no "#")."""
    return f"{home}/#{name}"


def timer_home(key: str) -> str | None:
    """The home of a ``timer_key``, None for any other key."""
    home, sep, rest = key.partition("/")
    return home if sep and rest.startswith("#") and home != "#" else None


def next_deadline(record: Mapping[str, Any]) -> int | None:
    """The earliest deadline of a home's open commands, or None."""
    times = [
        int(e["deadline"]) for e in record.get("pending", {}).values() if e["status"] not in FINAL
    ]
    return min(times) if times else None


class DueIndex:
    """Which homes a tick has work for, kept up to date by the store's puts: those with an
    open command whose deadline passed, and those whose health-scan slot began since the
    last tick (``scan_due``). A tick visits these instead of every home of the partition:
    otherwise its cost grows with homes, not traffic, and holds up every event behind it.
    Derived from the state, never stored: rebuilt from it after a restore."""

    def __init__(self, interval_ms: int) -> None:
        self.interval_ms = interval_ms
        self.deadlines: dict[str, int] = {}  # only homes with an open command
        self.timers: dict[str, int] = {}  # timer_key -> its due_at, only those that ask
        self.phases: list[tuple[int, str]] = []  # (scan phase, home) of every home, sorted

    def update(self, key: str, value: Mapping[str, Any] | None) -> None:
        if "/" in key:  # a device (or the tick time), not a home
            if timer_home(key) is not None:
                self._timer(key, value)
            return
        entry = (scan_phase(key, self.interval_ms), key)
        i = bisect.bisect_left(self.phases, entry)
        known = i < len(self.phases) and self.phases[i] == entry
        if value is None:
            self.deadlines.pop(key, None)
            if known:
                del self.phases[i]
            return
        if not known:
            self.phases.insert(i, entry)
        deadline = next_deadline(value)
        if deadline is None:
            self.deadlines.pop(key, None)
        else:
            self.deadlines[key] = deadline

    def _timer(self, key: str, value: Mapping[str, Any] | None) -> None:
        at = None if value is None else value.get("due_at")
        if at is None:
            self.timers.pop(key, None)
        else:
            self.timers[key] = int(at)

    def rebuild(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> None:
        """From a partition's state, as (key, value) pairs: one sort, not an insertion
        per home."""
        self.deadlines, self.timers, phases = {}, {}, []
        for key, value in items:
            if "/" in key:
                if timer_home(key) is not None:
                    self._timer(key, value)
                continue
            phases.append((scan_phase(key, self.interval_ms), key))
            deadline = next_deadline(value)
            if deadline is not None:
                self.deadlines[key] = deadline
        self.phases = sorted(phases)

    def due(self, last_tick: int, now: int) -> set[str]:
        homes = {home for home, at in self.deadlines.items() if at <= now}
        # A scan of every timer per tick: cheap at a few per home; a heap when it is not.
        homes.update(key.partition("/")[0] for key, at in self.timers.items() if at <= now)
        homes.update(self.scan_window(last_tick, now))
        return homes

    def scan_window(self, last_tick: int, now: int) -> list[str]:
        """The homes ``scan_due`` says yes to: a slot of theirs began in (last_tick, now]."""
        interval = self.interval_ms
        if interval <= 0 or last_tick <= 0 or now - last_tick >= interval:
            return [home for _phase, home in self.phases]
        if now <= last_tick:
            return []
        # A slot of phase f begins at t when (t + f) % interval == 0: for t running over
        # (last_tick, now], f runs down over [-now, -(last_tick + 1)], modulo the interval.
        lo, hi = (-now) % interval, (-(last_tick + 1)) % interval
        if lo <= hi:
            return self._phase_range(lo, hi)
        return self._phase_range(lo, interval - 1) + self._phase_range(0, hi)

    def _phase_range(self, lo: int, hi: int) -> list[str]:
        i = bisect.bisect_left(self.phases, (lo, ""))
        j = bisect.bisect_left(self.phases, (hi + 1, ""))
        return [home for _phase, home in self.phases[i:j]]
