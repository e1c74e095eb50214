"""The automation engine: each home's automations run in the stream, in the transaction of
the event that fires them.

The rules are ``domain.automation``'s (triggers, conditions, runs, modes); this module
keeps their state and carries out what they decide. Per home, two state keys:

- ``<home>/#automation-docs``: the automation documents (JSON text, as the gateway stored
  them on ``homestream.homes.config``), the home's mode and place (time zone, location),
  the hub's last status;
- ``<home>/#automation/<id>``, one per automation: its trigger state, its runs in flight,
  its queue, and every pending timer (``for:``, delays, waits, schedules) with ``due_at``,
  the earliest, so the partition's ticks visit the home when one comes due
  (``streams.due``). One key per automation keeps what an event copies and writes (and the
  changelog carries) to the automations it touches. All of it is JSON in the partition's
  store and changelog, so a worker killed with timers pending resumes them, each firing
  once.

Inputs: the StateChanges the home processor emits (chained: the trigger sees the state the
change came from), device events, hub status, configuration, ticks. Outputs: commands
and scene runs (handed over in the same transaction, ``fold.handover``: to the home
processor's command handler, or the scenes processor's for a group or a scene run),
notifications and an AutomationFired per run as it starts and ends (its trace).
"""

from __future__ import annotations

import functools
import json
from typing import Any

from domain.automation import modes, runner, triggers
from domain.automation.home import HomeView
from domain.automation.model import Automation, watched_devices
from domain.automation.parse import AutomationInvalid, parse
from domain.automation.triggers import DeviceEvent, Event, HubStatus, StateChanged, TimerFired
from streams.due import timer_key
from streams.fold import handover, home_docs
from streams.fold.context import Context
from streams.fold.declaration import Processor, Table
from topics import catalogue as t
from topics import jsontext
from topics.state_change import state_of

# A tick delivers at most this many timers per automation; the rest wait for the next tick
# (one automation cannot hold up the partition).
MAX_TIMERS_PER_TICK = 1_000


def docs_key(home: str) -> str:
    return timer_key(home, "automation-docs")


def state_key(home: str, automation_id: str) -> str:
    return timer_key(home, f"automation/{automation_id}")


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> Automation:
    """Documents are parsed once per process, not once per event (keyed by their text)."""
    return parse(json.loads(text))


@functools.lru_cache(maxsize=4096)
def _watched(text: str) -> frozenset[str] | None:
    return watched_devices(_parsed(text))


# -- state -------------------------------------------------------------------------------
class _Home:
    """One home while one input is handled: its documents, mode and place, and the state of
    the automations the input touches."""

    def __init__(self, ctx: Context, home: str) -> None:
        self.ctx, self.home = ctx, home
        self.docs: dict[str, Any] = ctx.store.get(docs_key(home)) or {"automations": {}}
        self._view: HomeView | None = None
        self._automations: dict[str, Automation] | None = None
        self._states: dict[str, _Auto] = {}

    def view(self) -> HomeView:
        if self._view is None:
            self._view = home_docs.home_view(
                self.ctx,
                self.home,
                self.docs.get("place") or {},
                str(self.docs.get("mode") or "home"),  # what PUT .../mode last set
            )
        return self._view

    def automations(self) -> dict[str, Automation]:
        """The enabled automations, by id."""
        if self._automations is None:
            self._automations = {}
            for aid, text in sorted((self.docs.get("automations") or {}).items()):
                automation = _parsed(text)
                if automation.enabled:
                    self._automations[aid] = automation
        return self._automations

    def auto(self, aid: str) -> _Auto:
        if aid not in self._states:
            self._states[aid] = _Auto(self, aid)
        return self._states[aid]

    def put_docs(self, docs: dict[str, Any]) -> None:
        self.docs = docs
        self._automations = None
        self._view = None
        self.ctx.store.put(docs_key(self.home), docs)

    def save(self) -> None:
        for a in self._states.values():
            a.save()


class _Auto:
    """One automation's state: its trigger state, runs in flight, queue, pending timers and
    ``due_at`` (``streams.due``). Read in place; ``edit`` copies it before the first change
    (most events change nothing); ``save`` writes back what changed."""

    def __init__(self, h: _Home, aid: str) -> None:
        self.h, self.aid = h, aid
        self.key = state_key(h.home, aid)
        self.state: dict[str, Any] = h.ctx.store.get(self.key) or _fresh()
        self.dirty = False
        self.gone = False

    @property
    def ctx(self) -> Context:
        return self.h.ctx

    def edit(self) -> dict[str, Any]:
        if not self.dirty:
            # A copy: the stored value is the committed state until the batch commits.
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

    def save(self) -> None:
        if self.gone:
            self.ctx.store.put(self.key, None)
        elif self.dirty:
            timers = self.state["timers"]
            if timers:
                self.state["due_at"] = min(timers.values())
            else:
                self.state.pop("due_at", None)
            self.ctx.store.put(self.key, self.state)
        self.dirty = False


def _fresh() -> dict[str, Any]:
    return {"triggers": triggers.empty_state(), "runs": {}, "queue": [], "timers": {}}


# -- inputs ------------------------------------------------------------------------------
def on_config(ctx: Context, rec: dict[str, Any]) -> None:
    """An automation saved or deleted, or the home's mode or place changed."""
    kind, doc_id, text = rec.get("kind"), str(rec.get("doc_id") or ""), rec.get("document")
    if kind == "automation":
        _configure(ctx, rec, doc_id, text)
        return
    if kind != "home" or doc_id not in ("mode", "settings"):
        return
    h = _Home(ctx, ctx.home)
    document = json.loads(text) if text else {}
    docs = dict(h.docs)
    if doc_id == "mode":
        docs["mode"] = document.get("mode", "home")
        h.put_docs(docs)
        return
    docs["place"] = {k: document.get(k) for k in ("time_zone", "latitude", "longitude")}
    h.put_docs(docs)
    # Schedules depend on the zone and the sun on the place: every trigger listens anew.
    for aid, automation in h.automations().items():
        a = h.auto(aid)
        _disarm(a)
        _arm(a, automation)
    h.save()


def _configure(ctx: Context, rec: dict[str, Any], aid: str, text: str | None) -> None:
    if text is not None:
        try:
            _parsed(text)
        except (AutomationInvalid, ValueError) as exc:
            problems = getattr(exc, "problems", None) or [("", str(exc))]
            ctx.dead_letter(
                rec,
                "HomeConfig",
                "SCHEMA_VIOLATION",
                [f"{p or 'document'}: {m}" for p, m in problems],
            )
            text = None
    h = _Home(ctx, ctx.home)
    texts = dict(h.docs.get("automations") or {})
    old = texts.get(aid)
    if old == text or (
        old is not None and text is not None and _parsed(old).revision == _parsed(text).revision
    ):
        return  # the same automation (a republish, keys in another order): runs go on
    a = h.auto(aid)
    _stop(a, "the automation was changed" if text else "the automation was removed")
    if text is None:
        texts.pop(aid, None)
    else:
        texts[aid] = text
    h.put_docs({**h.docs, "automations": texts})
    automation = h.automations().get(aid)
    if automation is None:
        a.gone = True  # deleted or disabled: nothing of it is kept
    else:
        a.state, a.dirty, a.gone = _fresh(), True, False
        _arm(a, automation)
    h.save()


def on_state_change(ctx: Context, rec: dict[str, Any]) -> None:
    """A device's reported state changed (taken chained from the home processor)."""
    if rec.get("source") == "command":
        return  # a command changes desired state only: no trigger watches it
    st = state_of(rec)
    if not st.changed:
        return  # desired only: no trigger watches desired state
    new = st.reported
    old = dict(new)
    for attr, before in st.previous.items():
        if before is None:
            old.pop(attr, None)
        else:
            old[attr] = before
    device = str(rec["device_id"])
    if st.changed.get("contact") == "open":
        _security(ctx, device, "opened")
    _event(ctx, StateChanged(str(rec["event_id"]), device, old, new))


def on_device_event(ctx: Context, rec: dict[str, Any]) -> None:
    data = rec.get("data")
    try:
        parsed = json.loads(data) if isinstance(data, str) and data else {}
    except ValueError:
        parsed = {}
    event = DeviceEvent(
        str(rec["event_id"]),
        str(rec.get("device_id") or ""),
        str(rec.get("event") or ""),
        parsed if isinstance(parsed, dict) else {},
    )
    if event.event in SECURITY_EVENTS:
        _security(ctx, event.device_id, SECURITY_EVENTS[event.event])
    _event(ctx, event)


def on_hub_status(ctx: Context, rec: dict[str, Any]) -> None:
    h = _Home(ctx, ctx.home)
    online = bool(rec.get("online"))
    was = h.docs.get("hub_online")
    if was != online:
        h.put_docs({**h.docs, "hub_online": online})
    if was is not False and not online:  # a hub going offline is news; a repeat is not
        _notice(ctx, "SYSTEM", "WARNING", "The hub is offline",
                "The hub lost its connection: devices cannot be controlled or heard from "
                "until it is back.", None)  # fmt: skip
    elif was is False and online:
        _notice(ctx, "SYSTEM", "INFO", "The hub is back online", "The hub is connected again.",
                None)  # fmt: skip
    _deliver(h, HubStatus(str(rec["event_id"]), online, was))
    h.save()


def on_tick(ctx: Context, rec: dict[str, Any]) -> None:
    """Timers that came due: ``for:`` holds, delays, wait timeouts, schedules. Each fires
    once: it leaves the stored state in the transaction that fires it."""
    for home in sorted(ctx.store.due_homes(ctx.now, ctx.now)):
        docs = ctx.store.get(docs_key(home))
        if not docs or not docs.get("automations"):
            continue
        h = None
        for aid in sorted(docs["automations"]):
            stored = ctx.store.get(state_key(home, aid))
            if not stored or int(stored.get("due_at") or ctx.now + 1) > ctx.now:
                continue
            if h is None:
                ctx.home = home
                h = _Home(ctx, home)
            automation = h.automations().get(aid)
            if automation is not None:
                _due_timers(h.auto(aid), automation)
        if h is not None:
            h.save()


def _due_timers(a: _Auto, automation: Automation) -> None:
    now = a.ctx.now
    for _ in range(MAX_TIMERS_PER_TICK):
        due = [(at, key) for key, at in a.state["timers"].items() if at <= now]
        if not due:
            return
        at, key = min(due)
        del a.edit()["timers"][key]
        owner, ident = runner.timer_owner(key)
        fired = TimerFired(key, at)
        if owner == "automation":
            _triggers(a, automation, fired)
        elif (run := a.state["runs"].get(ident)) is not None:
            _apply(a, *runner.resume(run, automation, fired, now, a.h.view()))


# -- security ----------------------------------------------------------------------------
# Device events that are news when nobody should be home: event -> what the device saw.
SECURITY_EVENTS = {"person_detected": "saw a person"}


def _security(ctx: Context, device: str, what: str) -> None:
    """A door opened or a person seen while the home is in away mode: a SECURITY alert."""
    docs = ctx.store.get(docs_key(ctx.home)) or {}
    if docs.get("mode") != "away":
        return
    found = ctx.device_state(ctx.home, device) or {}
    name = (found.get("descriptor") or {}).get("name") or device
    _notice(ctx, "SECURITY", "CRITICAL", f"{name} {what}",
            f"{name} {what} while the home is in away mode.", device)  # fmt: skip


def _notice(
    ctx: Context, kind: str, severity: str, title: str, message: str, device: str | None
) -> None:
    ctx.emit(
        t.NOTIFICATIONS,
        ctx.home,
        "Notification",
        {"kind": kind, "severity": severity, "title": title, "message": message,
         "device_id": device, "automation_id": None, "data": None},
    )  # fmt: skip


# -- the pipeline ------------------------------------------------------------------------
def _event(ctx: Context, event: Event) -> None:
    h = _Home(ctx, ctx.home)
    if not h.docs.get("automations"):
        return  # the common case: a home without automations costs one read
    _deliver(h, event)
    h.save()


def _deliver(h: _Home, event: Event) -> None:
    """An event to every automation's triggers, then to its runs waiting for one; a
    device's state change or event only to the automations watching that device."""
    device = event.device_id if isinstance(event, StateChanged | DeviceEvent) else None
    for aid, automation in h.automations().items():
        if device is not None:
            watched = _watched(h.docs["automations"][aid])
            if watched is not None and device not in watched:
                continue
        a = h.auto(aid)
        _triggers(a, automation, event)
        for run_id in sorted(a.state["runs"]):
            run = a.state["runs"].get(run_id)
            if run is not None and run["status"] == "waiting":
                _apply(a, *runner.resume(run, automation, event, h.ctx.now, h.view()))


def _triggers(a: _Auto, automation: Automation, event: Event) -> None:
    state = a.state["triggers"]
    out = triggers.handle(
        automation.triggers,
        state,
        event,
        scope=runner.automation_scope(a.aid),
        now=a.ctx.now,
        home=a.h.view(),
    )
    if out.arm or out.cancel or out.state is not state:  # a change copies the state
        a.edit()["triggers"] = out.state
        _retime(a, out.cancel, out.arm)
    for fired in out.fired:
        _fire(a, automation, fired)


def _fire(a: _Auto, automation: Automation, fired: dict[str, Any]) -> None:
    now = a.ctx.now
    run, effects = runner.start(automation, a.aid, fired, now, a.h.view())
    if effects:  # its conditions did not hold: over before it began
        _apply(a, run, effects)
        return
    runs = a.edit()["runs"]
    queue = a.state["queue"]
    decision = modes.admit(automation, _active(runs), [runs[r] for r in queue if r in runs], run)
    for other in decision.cancel:
        if other in runs:
            _apply(a, *runner.abort(runs[other], now, "restarted"))
    if decision.drop:
        _apply(a, *runner.skip(run, now, decision.drop, warn=decision.warn))
    elif decision.queue:
        queue.append(run["run_id"])
        _apply(a, *runner.queue(run, now))
        _report(a, run)
    else:
        _report(a, run, started=True)
        _apply(a, *runner.advance(run, automation, now, a.h.view()))


def _apply(a: _Auto, run: dict[str, Any], effects: list[dict[str, Any]]) -> None:
    """Keep the run and carry out its effects."""
    a.edit()["runs"][run["run_id"]] = run
    for effect in effects:
        kind = effect["kind"]
        if kind == "arm_timer":
            _retime(a, (), ((effect["key"], int(effect["at"])),))
        elif kind == "cancel_timer":
            _retime(a, (effect["key"],), ())
        elif kind == "command":
            _command(a, run, effect)
        elif kind == "scene":
            _scene(a, run, effect)
        elif kind == "notify":
            _notify(a, run, effect)
        elif kind == "finished":
            _finished(a, run)
    if run["status"] in _SUSPENDED and any(e["kind"] in ("wait", "arm_timer") for e in effects):
        _report(a, run)  # it waits now: apps see the trace so far, not only at the end


# A run's statuses while it waits for a delay or a trigger.
_SUSPENDED = frozenset({"delayed", "waiting"})


def _finished(a: _Auto, run: dict[str, Any]) -> None:
    state = a.edit()
    state["runs"].pop(run["run_id"], None)
    if run["run_id"] in state["queue"]:
        state["queue"].remove(run["run_id"])
    for key in runner.timers(run):
        state["timers"].pop(key, None)
    _report(a, run)
    automation = a.h.automations().get(a.aid)
    if automation is None:
        return
    runs = state["runs"]
    nxt = modes.dequeue(automation, _active(runs), [runs[r] for r in state["queue"] if r in runs])
    if nxt is not None:
        state["queue"].remove(nxt)
        _report(a, runs[nxt], started=True)
        _apply(a, *runner.advance(runs[nxt], automation, a.ctx.now, a.h.view()))


def _active(runs: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in runs.values() if r["status"] in runner.ACTIVE]


def _retime(a: _Auto, cancel: Any, arm: Any) -> None:
    timers = a.edit()["timers"]
    for key in cancel:
        timers.pop(key, None)
    for key, at in arm:
        timers[key] = int(at)


def _arm(a: _Auto, automation: Automation) -> None:
    out = triggers.arm(automation.triggers, runner.automation_scope(a.aid), a.ctx.now, a.h.view())
    a.edit()["triggers"] = out.state
    _retime(a, out.cancel, out.arm)


def _disarm(a: _Auto) -> None:
    _retime(a, triggers.disarm(a.state["triggers"]), ())
    a.edit()["triggers"] = triggers.empty_state()


def _stop(a: _Auto, why: str) -> None:
    """An automation changed or went: its triggers stop listening, its runs end."""
    _disarm(a)
    for _run_id, run in sorted(a.state["runs"].items()):
        _apply(a, *runner.abort(run, a.ctx.now, why))
    a.edit()["queue"] = []


# -- effects -----------------------------------------------------------------------------
def _report(a: _Auto, run: dict[str, Any], *, started: bool = False) -> None:
    """An AutomationFired: the run's status and trace so far (apps see runs as they go)."""
    fields = runner.report(run, a.ctx.now)
    if started:
        fields["status"] = "STARTED"
    a.ctx.emit(
        t.AUTOMATIONS_RUNS,
        a.h.home,
        "AutomationFired",
        {
            "automation_id": fields["automation_id"],
            "run_id": fields["run_id"],
            "alias": fields["alias"],
            "trigger": jsontext.dumps(fields["trigger"], default=str),
            "status": fields["status"],
            "trace": jsontext.dumps(fields["trace"], default=str),
            "error": fields["error"],
        },
    )


def _command(a: _Auto, run: dict[str, Any], effect: dict[str, Any]) -> None:
    send_command(
        a.ctx,
        {
            "command_id": effect["command_id"],
            "device_id": effect.get("device_id"),
            "group_id": effect.get("group_id"),
            "capability": effect["capability"],
            "command": effect["command"],
            "parameters": effect.get("parameters") or {},
            "requested_by": f"automation:{run['automation_id']}",
            "timeout_ms": a.ctx.config.default_timeout_ms,
            "issued_at": a.ctx.now,
            "request_id": None,
            "parent_command_id": None,
        },
    )


def _scene(a: _Auto, run: dict[str, Any], effect: dict[str, Any]) -> None:
    handover.request_scene(
        a.ctx,
        {
            "scene_id": effect["scene_id"],
            "run_id": effect["request_id"],
            "requested_by": f"automation:{run['automation_id']}",
            "request_id": None,
        },
    )


def _notify(a: _Auto, run: dict[str, Any], effect: dict[str, Any]) -> None:
    a.ctx.emit(
        t.NOTIFICATIONS,
        a.h.home,
        "Notification",
        {
            "kind": "AUTOMATION",
            "severity": "INFO",
            "message": effect["message"],
            "title": effect.get("title") or run.get("alias"),
            "device_id": None,
            "automation_id": run["automation_id"],
            "data": json.dumps(
                {"run_id": run["run_id"], "notification_id": effect["notification_id"]}
            ),
        },
    )


def send_command(ctx: Context, record: dict[str, Any]) -> None:
    """A command of an automation, handed over in this transaction (``fold.handover``): to
    the home processor's command handler, or the scenes processor's for a group."""
    handover.send_command(ctx, record)


AUTOMATIONS = Processor(
    name="automations",
    inputs={
        t.HOME_CONFIG: {"HomeConfig": on_config},
        t.DEVICE_EVENTS: {"DeviceEvent": on_device_event},
        t.HUB_STATUS: {"HubStatus": on_hub_status},
    },
    chained={t.STATE_CHANGES: {"StateChange": on_state_change}},
    tables=(
        Table("<home>/#automation-docs", "the home's automations (JSON text), mode and place"),
        Table(
            "<home>/#automation/<id>",
            "its trigger state, runs in flight, queue, pending timers and due_at",
        ),
    ),
    timers=(on_tick,),
)
