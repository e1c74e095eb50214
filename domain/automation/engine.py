"""The automation engine's driver: events in, each automation's trigger state, runs, queue
and timers kept, effects out. One implementation for every place that runs automations:
the cloud's stream processor (streams/fold/automations.py) and a hub that runs the home's
local automations while the cloud is unreachable (hub/local.py).

A caller keeps one ``AutomationState`` per automation (plain JSON in ``state``: where and
how it is stored is the caller's) and gives the engine a ``Host``: the time, the home, its
enabled automations, and where effects go (a command, a scene, a notification, a run's
report). Everything here is pure; the host does the I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any, Protocol

from domain.automation import modes, runner, triggers
from domain.automation.home import HomeView
from domain.automation.model import Automation
from domain.automation.triggers import DeviceEvent, Event, StateChanged, TimerFired

# A tick delivers at most this many timers per automation; the rest wait for the next tick
# (one automation cannot hold up the others).
MAX_TIMERS_PER_TICK = 1_000
# A run's statuses while it waits for a delay or a trigger.
_SUSPENDED = frozenset({"delayed", "waiting"})

Run = dict[str, Any]


class Host(Protocol):
    """What the engine needs of its caller while one input is handled."""

    @property
    def now(self) -> int: ...

    def view(self) -> HomeView: ...

    def automations(self) -> Mapping[str, Automation]:
        """The enabled automations, by id."""
        ...

    def report(self, run: Run, *, started: bool) -> None:
        """A run's status and trace so far (``runner.report``; STARTED when ``started``)."""
        ...

    def command(self, run: Run, effect: dict[str, Any]) -> None: ...

    def scene(self, run: Run, effect: dict[str, Any]) -> None: ...

    def notify(self, run: Run, effect: dict[str, Any]) -> None: ...


def fresh() -> dict[str, Any]:
    return {"triggers": triggers.empty_state(), "runs": {}, "queue": [], "timers": {}}


class AutomationState:
    """One automation's state: its trigger state, runs in flight, queue and pending timers.
    Read in place; ``edit`` copies it before the first change (most events change
    nothing), so a caller can keep the stored value until it decides to write."""

    def __init__(self, aid: str, state: dict[str, Any] | None) -> None:
        self.aid = aid
        self.state: dict[str, Any] = state or fresh()
        self.dirty = False
        self.gone = False

    def edit(self) -> dict[str, Any]:
        if not self.dirty:
            # The tables are changed in place, what they hold never is (the runner and
            # the triggers return new runs and trigger states), so one level suffices.
            s = self.state
            self.state = {
                **s,
                "runs": dict(s["runs"]),
                "queue": list(s["queue"]),
                "timers": dict(s["timers"]),
            }
            self.dirty = True
        return self.state

    def due_at(self) -> int | None:
        """The earliest pending timer (ms), None without one."""
        timers: dict[str, int] = self.state["timers"]
        return min(timers.values()) if timers else None


# -- inputs ------------------------------------------------------------------------------
def deliver(
    host: Host,
    state_of: Callable[[str], AutomationState],
    event: Event,
    *,
    watched: Callable[[str], Collection[str] | None] = lambda _aid: None,
    ran_elsewhere: Collection[str] = (),
) -> None:
    """An event to every automation's triggers, then to its runs waiting for one; a
    device's state change or event only to the automations watching that device
    (``watched(aid)``: the devices it watches, None for all). An automation in
    ``ran_elsewhere`` already ran on this event (a hub ran it while the cloud was away):
    its trigger state follows the event, but it does not fire again."""
    device = event.device_id if isinstance(event, StateChanged | DeviceEvent) else None
    for aid, automation in host.automations().items():
        if device is not None:
            devices = watched(aid)
            if devices is not None and device not in devices:
                continue
        a = state_of(aid)
        handle_triggers(host, a, automation, event, fire=aid not in ran_elsewhere)
        for run_id in sorted(a.state["runs"]):
            run = a.state["runs"].get(run_id)
            if run is not None and run["status"] == "waiting":
                apply(host, a, *runner.resume(run, automation, event, host.now, host.view()))


def due_timers(host: Host, a: AutomationState, automation: Automation) -> None:
    """Timers that came due (``for:`` holds, delays, wait timeouts, schedules), each once:
    it leaves the state in the step that fires it."""
    now = host.now
    for _ in range(MAX_TIMERS_PER_TICK):
        due = [(at, key) for key, at in a.state["timers"].items() if at <= now]
        if not due:
            return
        at, key = min(due)
        del a.edit()["timers"][key]
        owner, ident = runner.timer_owner(key)
        fired = TimerFired(key, at)
        if owner == "automation":
            handle_triggers(host, a, automation, fired)
        elif (run := a.state["runs"].get(ident)) is not None:
            apply(host, a, *runner.resume(run, automation, fired, now, host.view()))


def handle_triggers(
    host: Host, a: AutomationState, automation: Automation, event: Event, *, fire: bool = True
) -> None:
    state = a.state["triggers"]
    out = triggers.handle(
        automation.triggers,
        state,
        event,
        scope=runner.automation_scope(a.aid),
        now=host.now,
        home=host.view(),
    )
    if out.arm or out.cancel or out.state is not state:  # a change copies the state
        a.edit()["triggers"] = out.state
        retime(a, out.cancel, out.arm)
    if fire:
        for fired in out.fired:
            start(host, a, automation, fired)


def start(host: Host, a: AutomationState, automation: Automation, fired: dict[str, Any]) -> None:
    now = host.now
    run, effects = runner.start(automation, a.aid, fired, now, host.view())
    if effects:  # its conditions did not hold: over before it began
        apply(host, a, run, effects)
        return
    runs = a.edit()["runs"]
    queue = a.state["queue"]
    decision = modes.admit(automation, _active(runs), [runs[r] for r in queue if r in runs], run)
    for other in decision.cancel:
        if other in runs:
            apply(host, a, *runner.abort(runs[other], now, "restarted"))
    if decision.drop:
        apply(host, a, *runner.skip(run, now, decision.drop, warn=decision.warn))
    elif decision.queue:
        queue.append(run["run_id"])
        apply(host, a, *runner.queue(run, now))
        host.report(run, started=False)
    else:
        host.report(run, started=True)
        apply(host, a, *runner.advance(run, automation, now, host.view()))


def apply(host: Host, a: AutomationState, run: Run, effects: list[dict[str, Any]]) -> None:
    """Keep the run and carry out its effects."""
    a.edit()["runs"][run["run_id"]] = run
    for effect in effects:
        kind = effect["kind"]
        if kind == "arm_timer":
            retime(a, (), ((effect["key"], int(effect["at"])),))
        elif kind == "cancel_timer":
            retime(a, (effect["key"],), ())
        elif kind == "command":
            host.command(run, effect)
        elif kind == "scene":
            host.scene(run, effect)
        elif kind == "notify":
            host.notify(run, effect)
        elif kind == "finished":
            _finished(host, a, run)
    if run["status"] in _SUSPENDED and any(e["kind"] in ("wait", "arm_timer") for e in effects):
        host.report(run, started=False)  # it waits now: the trace so far, not only at the end


def _finished(host: Host, a: AutomationState, run: Run) -> None:
    state = a.edit()
    state["runs"].pop(run["run_id"], None)
    if run["run_id"] in state["queue"]:
        state["queue"].remove(run["run_id"])
    for key in runner.timers(run):
        state["timers"].pop(key, None)
    host.report(run, started=False)
    automation = host.automations().get(a.aid)
    if automation is None:
        return
    runs = state["runs"]
    nxt = modes.dequeue(automation, _active(runs), [runs[r] for r in state["queue"] if r in runs])
    if nxt is not None:
        state["queue"].remove(nxt)
        host.report(runs[nxt], started=True)
        apply(host, a, *runner.advance(runs[nxt], automation, host.now, host.view()))


def _active(runs: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in runs.values() if r["status"] in runner.ACTIVE]


def retime(a: AutomationState, cancel: Iterable[str], arm: Iterable[tuple[str, int]]) -> None:
    timers = a.edit()["timers"]
    for key in cancel:
        timers.pop(key, None)
    for key, at in arm:
        timers[key] = int(at)


# -- configuration -----------------------------------------------------------------------
def arm(host: Host, a: AutomationState, automation: Automation) -> None:
    """Its triggers start listening (schedules armed)."""
    out = triggers.arm(automation.triggers, runner.automation_scope(a.aid), host.now, host.view())
    a.edit()["triggers"] = out.state
    retime(a, out.cancel, out.arm)


def disarm(a: AutomationState) -> None:
    retime(a, triggers.disarm(a.state["triggers"]), ())
    a.edit()["triggers"] = triggers.empty_state()


def stop(host: Host, a: AutomationState, why: str) -> None:
    """An automation changed or went: its triggers stop listening, its runs end."""
    disarm(a)
    for _run_id, run in sorted(a.state["runs"].items()):
        apply(host, a, *runner.abort(run, host.now, why))
    a.edit()["queue"] = []
