"""The automation engine: each home's automations run in the stream, in the transaction of
the event that fires them.

The rules are ``domain.automation``'s (triggers, conditions, runs, modes); this module
keeps their state and carries out what they decide. Per home, two state keys:

- ``<home>/#automation-docs``: the automation documents (JSON text, as the gateway stored
  them on ``homestream.homes.config``), the home's mode and place (time zone, location);
- ``<home>/#automations``: each automation's trigger state, the runs in flight, the
  queues, and every pending timer (``for:``, delays, waits, schedules) with ``due_at``,
  the earliest, so the partition's ticks visit the home when one comes due
  (``streams.due``). All of it is JSON in the partition's store and changelog, so a worker
  killed with timers pending resumes them, each firing once.

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
from domain.automation.home import HomeView, Place, PlaceError, parse_place
from domain.automation.model import Automation
from domain.automation.parse import AutomationInvalid, parse
from domain.automation.triggers import DeviceEvent, Event, HubStatus, StateChanged, TimerFired
from streams.due import timer_key
from streams.fold import handover
from streams.fold.context import Context
from streams.fold.declaration import Processor, Table
from topics import catalogue as t
from topics.state_change import state_of

# A tick delivers at most this many timers per home; the rest wait for the next tick (a
# home cannot hold up the partition).
MAX_TIMERS_PER_TICK = 1_000


def docs_key(home: str) -> str:
    return timer_key(home, "automation-docs")


def state_key(home: str) -> str:
    return timer_key(home, "automations")


@functools.lru_cache(maxsize=4096)
def _parsed(text: str) -> Automation:
    """Documents are parsed once per process, not once per event (keyed by their text)."""
    return parse(json.loads(text))


# -- the home's view ---------------------------------------------------------------------
class _Home:
    """One home's automation state while one input is handled; ``save`` writes back what
    changed."""

    def __init__(self, ctx: Context, home: str) -> None:
        self.ctx, self.home = ctx, home
        self.docs = ctx.store.get(docs_key(home)) or {"automations": {}}
        stored = ctx.store.get(state_key(home))
        self.state: dict[str, Any] = (
            json.loads(json.dumps(stored))  # a copy: handlers never change stored values
            if stored
            else {"triggers": {}, "runs": {}, "queues": {}, "timers": {}, "hub_online": None}
        )
        self.dirty = False

    def place(self) -> Place:
        try:
            return parse_place(self.docs.get("place") or {})
        except PlaceError:
            return Place()

    def view(self) -> HomeView:
        return HomeView(self.place(), self._reported)

    def _reported(self, device: str) -> dict[str, Any] | None:
        found = self.ctx.device_state(self.home, device)
        if not found or not found.get("shadow"):
            return None
        reported: dict[str, Any] = found["shadow"]["reported"]
        return reported

    def automations(self) -> dict[str, Automation]:
        out = {}
        for aid, text in sorted(self.docs["automations"].items()):
            automation = _parsed(text)
            if automation.enabled:
                out[aid] = automation
        return out

    def save(self) -> None:
        if not self.dirty:
            return
        timers = self.state["timers"]
        if timers:
            self.state["due_at"] = min(timers.values())
        else:
            self.state.pop("due_at", None)
        self.ctx.store.put(state_key(self.home), self.state)


# -- inputs ------------------------------------------------------------------------------
def on_config(ctx: Context, rec: dict[str, Any]) -> None:
    """An automation saved or deleted, or the home's mode or place changed."""
    kind, doc_id, text = rec.get("kind"), str(rec.get("doc_id") or ""), rec.get("document")
    if kind not in ("automation", "home"):
        return
    h = _Home(ctx, ctx.home)
    docs = {**h.docs, "automations": dict(h.docs.get("automations") or {})}
    if kind == "automation":
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
        old = docs["automations"].get(doc_id)
        if old == text:
            return
        _stop(h, doc_id, "the automation was changed" if text else "the automation was removed")
        if text is None:
            docs["automations"].pop(doc_id, None)
        else:
            docs["automations"][doc_id] = text
        h.docs = docs
        ctx.store.put(docs_key(ctx.home), docs)
        automation = h.automations().get(doc_id)
        if automation is not None:
            _arm(h, doc_id, automation)
    else:
        document = json.loads(text) if text else {}
        if doc_id == "mode":
            docs["mode"] = document.get("mode", "home")
            h.docs = docs
            ctx.store.put(docs_key(ctx.home), docs)
            return
        if doc_id != "settings":
            return
        docs["place"] = {k: document.get(k) for k in ("time_zone", "latitude", "longitude")}
        h.docs = docs
        ctx.store.put(docs_key(ctx.home), docs)
        # Schedules depend on the zone and the sun on the place: arm every trigger anew.
        for aid, automation in h.automations().items():
            _disarm(h, aid)
            _arm(h, aid, automation)
    h.save()


def on_state_change(ctx: Context, rec: dict[str, Any]) -> None:
    """A device's reported state changed (taken chained from the home processor)."""
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
    was = h.state.get("hub_online")
    h.state["hub_online"] = online
    h.dirty = True
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
        stored = ctx.store.get(state_key(home))
        if not stored or int(stored.get("due_at") or ctx.now + 1) > ctx.now:
            continue
        ctx.home = home
        h = _Home(ctx, home)
        automations = h.automations()
        timers = h.state["timers"]
        for _ in range(MAX_TIMERS_PER_TICK):
            due = [(at, key) for key, at in timers.items() if at <= ctx.now]
            if not due:
                break
            at, key = min(due)
            del timers[key]
            h.dirty = True
            owner, ident = runner.timer_owner(key)
            fired = TimerFired(key, at)
            if owner == "automation":
                if ident in automations:
                    _triggers(h, ident, automations[ident], fired)
            else:
                run = h.state["runs"].get(ident)
                if run is not None and run["automation_id"] in automations:
                    automation = automations[run["automation_id"]]
                    _apply(h, *runner.resume(run, automation, fired, ctx.now, h.view()))
        h.save()


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
    if not h.docs["automations"]:
        return  # the common case: a home without automations costs one read
    _deliver(h, event)
    h.save()


def _deliver(h: _Home, event: Event) -> None:
    """An event to every automation's triggers, then to every run waiting for one."""
    automations = h.automations()
    for aid, automation in automations.items():
        _triggers(h, aid, automation, event)
    for run_id in sorted(h.state["runs"]):
        run = h.state["runs"].get(run_id)
        if run is None or run["status"] != "waiting":
            continue
        waiting_for = automations.get(run["automation_id"])
        if waiting_for is not None:
            _apply(h, *runner.resume(run, waiting_for, event, h.ctx.now, h.view()))


def _triggers(h: _Home, aid: str, automation: Automation, event: Event) -> None:
    state = h.state["triggers"].get(aid) or triggers.empty_state()
    out = triggers.handle(
        automation.triggers,
        state,
        event,
        scope=runner.automation_scope(aid),
        now=h.ctx.now,
        home=h.view(),
    )
    if out.state != state or out.arm or out.cancel:
        h.state["triggers"][aid] = out.state
        _retime(h, out.cancel, out.arm)
    for fired in out.fired:
        _fire(h, aid, automation, fired)


def _fire(h: _Home, aid: str, automation: Automation, fired: dict[str, Any]) -> None:
    now = h.ctx.now
    run, effects = runner.start(automation, aid, fired, now, h.view())
    if effects:  # its conditions did not hold: over before it began
        _apply(h, run, effects)
        return
    runs = h.state["runs"]
    queue = h.state["queues"].setdefault(aid, [])
    active = [
        r for r in runs.values() if r["automation_id"] == aid and r["status"] in runner.ACTIVE
    ]
    queued = [runs[r] for r in queue if r in runs]
    decision = modes.admit(automation, active, queued, run)
    for other in decision.cancel:
        if other in runs:
            _apply(h, *runner.abort(runs[other], now, "restarted"))
    if decision.drop:
        _apply(h, *runner.skip(run, now, decision.drop, warn=decision.warn))
    elif decision.queue:
        queue.append(run["run_id"])
        _apply(h, *runner.queue(run, now))
        _report(h, run)
    else:
        _report(h, run, started=True)
        _apply(h, *runner.advance(run, automation, now, h.view()))


def _apply(h: _Home, run: dict[str, Any], effects: list[dict[str, Any]]) -> None:
    """Keep the run and carry out its effects."""
    h.dirty = True
    h.state["runs"][run["run_id"]] = run
    for effect in effects:
        kind = effect["kind"]
        if kind == "arm_timer":
            _retime(h, (), ((effect["key"], int(effect["at"])),))
        elif kind == "cancel_timer":
            _retime(h, (effect["key"],), ())
        elif kind == "command":
            _command(h, run, effect)
        elif kind == "scene":
            _scene(h, run, effect)
        elif kind == "notify":
            _notify(h, run, effect)
        elif kind == "finished":
            _finished(h, run)


def _finished(h: _Home, run: dict[str, Any]) -> None:
    aid = run["automation_id"]
    h.state["runs"].pop(run["run_id"], None)
    queue = h.state["queues"].get(aid) or []
    if run["run_id"] in queue:
        queue.remove(run["run_id"])
    for key in runner.timers(run):
        h.state["timers"].pop(key, None)
    _report(h, run)
    automation = h.automations().get(aid)
    if automation is None:
        return
    runs = h.state["runs"]
    active = [
        r for r in runs.values() if r["automation_id"] == aid and r["status"] in runner.ACTIVE
    ]
    nxt = modes.dequeue(automation, active, [runs[r] for r in queue if r in runs])
    if nxt is not None:
        queue.remove(nxt)
        _report(h, runs[nxt], started=True)
        _apply(h, *runner.advance(runs[nxt], automation, h.ctx.now, h.view()))


def _active(runs: dict[str, Any], aid: str) -> list[dict[str, Any]]:
    return [r for r in runs.values() if r["automation_id"] == aid and r["status"] in runner.ACTIVE]


def _retime(h: _Home, cancel: Any, arm: Any) -> None:
    timers = h.state["timers"]
    for key in cancel:
        timers.pop(key, None)
    for key, at in arm:
        timers[key] = int(at)
    h.dirty = True


def _arm(h: _Home, aid: str, automation: Automation) -> None:
    out = triggers.arm(automation.triggers, runner.automation_scope(aid), h.ctx.now, h.view())
    h.state["triggers"][aid] = out.state
    _retime(h, out.cancel, out.arm)


def _disarm(h: _Home, aid: str) -> None:
    state = h.state["triggers"].pop(aid, None)
    if state is not None:
        _retime(h, triggers.disarm(state), ())


def _stop(h: _Home, aid: str, why: str) -> None:
    """An automation changed or went: its triggers stop listening, its runs end."""
    _disarm(h, aid)
    for _run_id, run in sorted(h.state["runs"].items()):
        if run["automation_id"] == aid:
            _apply(h, *runner.abort(run, h.ctx.now, why))
    h.state["queues"].pop(aid, None)
    h.dirty = True


# -- effects -----------------------------------------------------------------------------
def _report(h: _Home, run: dict[str, Any], *, started: bool = False) -> None:
    """An AutomationFired: the run's status and trace so far (apps see runs as they go)."""
    fields = runner.report(run, h.ctx.now)
    if started:
        fields["status"] = "STARTED"
    h.ctx.emit(
        t.AUTOMATIONS_RUNS,
        h.home,
        "AutomationFired",
        {
            "automation_id": fields["automation_id"],
            "run_id": fields["run_id"],
            "alias": fields["alias"],
            "trigger": json.dumps(fields["trigger"], default=str),
            "status": fields["status"],
            "trace": json.dumps(fields["trace"], default=str),
            "error": fields["error"],
        },
    )


def _command(h: _Home, run: dict[str, Any], effect: dict[str, Any]) -> None:
    send_command(
        h.ctx,
        {
            "command_id": effect["command_id"],
            "device_id": effect.get("device_id"),
            "group_id": effect.get("group_id"),
            "capability": effect["capability"],
            "command": effect["command"],
            "parameters": effect.get("parameters") or {},
            "requested_by": f"automation:{run['automation_id']}",
            "timeout_ms": h.ctx.config.default_timeout_ms,
            "issued_at": h.ctx.now,
            "request_id": None,
            "parent_command_id": None,
        },
    )


def _scene(h: _Home, run: dict[str, Any], effect: dict[str, Any]) -> None:
    handover.request_scene(
        h.ctx,
        {
            "scene_id": effect["scene_id"],
            "run_id": effect["request_id"],
            "requested_by": f"automation:{run['automation_id']}",
            "request_id": None,
        },
    )


def _notify(h: _Home, run: dict[str, Any], effect: dict[str, Any]) -> None:
    h.ctx.emit(
        t.NOTIFICATIONS,
        h.home,
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
            "<home>/#automations",
            "trigger states, runs in flight, queues, pending timers and due_at",
        ),
    ),
    timers=(on_tick,),
)
