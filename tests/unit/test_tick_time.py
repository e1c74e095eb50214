"""A partition's tick runs at the time its input has reached, so that a worker catching up
on a backlog does not judge devices silent whose newer reports it has not read yet."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.txloop import QUIET_MS, tick_time
from topics import catalogue as t

WALL = 1_800_000_000_000
MIN = 60_000


def test_caught_up_partitions_tick_at_the_wall_clock():
    live = {t.DEVICE_REPORTS: (WALL - 5, WALL - 40)}  # read 40 ms after it was written
    assert tick_time(WALL, live, assigned_ms=0) == WALL - 35
    quiet = {t.DEVICE_REPORTS: (WALL - QUIET_MS, WALL - 20 * MIN)}  # nothing for a while
    assert tick_time(WALL, quiet, assigned_ms=0) == WALL


def test_a_backlog_holds_the_tick_back_to_the_time_it_has_reached():
    behind = {t.DEVICE_REPORTS: (WALL - 100, WALL - 20 * MIN)}
    assert tick_time(WALL, behind, assigned_ms=0) == WALL - 20 * MIN + 100


def test_the_most_delayed_topic_sets_the_time():
    # The worker's own availability, read back at once, must not hide a reports backlog.
    seen = {
        t.DEVICE_AVAILABILITY: (WALL - 10, WALL - 12),
        t.DEVICE_REPORTS: (WALL - 10, WALL - 5 * MIN),
    }
    assert tick_time(WALL, seen, assigned_ms=0) == WALL - 5 * MIN + 10


def test_a_partition_just_assigned_waits_for_its_first_input():
    assert tick_time(WALL, {}, assigned_ms=WALL - 100) is None
    assert tick_time(WALL, {}, assigned_ms=WALL - QUIET_MS) == WALL


def test_a_producer_clock_ahead_does_not_move_the_tick_forward():
    ahead = {t.DEVICE_REPORTS: (WALL - 10, WALL + 5 * MIN)}
    assert tick_time(WALL, ahead, assigned_ms=0) == WALL


@given(
    seen=st.dictionaries(
        st.sampled_from([t.DEVICE_REPORTS, t.DEVICE_AVAILABILITY, t.COMMANDS_ACKS]),
        st.tuples(st.integers(0, 10**7), st.integers(0, 10**7)).map(
            lambda pair: (WALL - pair[0], WALL - pair[1])
        ),
    ),
    assigned_ago=st.integers(0, 10**7),
)
def test_never_ahead_of_the_wall_clock_nor_behind_the_oldest_recent_input(seen, assigned_ago):
    now = tick_time(WALL, seen, assigned_ms=WALL - assigned_ago)
    if now is None:
        assert not seen and assigned_ago < QUIET_MS
        return
    assert now <= WALL
    recent = [newest for processed, newest in seen.values() if WALL - processed < QUIET_MS]
    if recent:  # no earlier than the oldest input still arriving
        assert now >= min(recent)
    else:  # everything caught up
        assert now == WALL
