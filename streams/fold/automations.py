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
from collections.abc import Collection
from typing import Any

from domain.automation import engine, runner
from domain.automation.home import HomeView
from domain.automation.model import Automation, watched_devices
from domain.automation.parse import AutomationInvalid, parse
from domain.automation.triggers import DeviceEvent, Event, HubStatus, StateChanged
from streams.due import timer_key
from streams.fold import handover, home_docs
from streams.fold.context import Context
from streams.fold.declaration import Processor, Table
from topics import catalogue as t
from topics import jsontext
from topics.state_change import state_of


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
    the automations the input touches; the engine's host (``domain.automation.engine``)."""

    def __init__(self, ctx: Context, home: str) -> None:
        self.ctx, self.home = ctx, home
        self.docs: dict[str, Any] = ctx.store.get(docs_key(home)) or {"automations": {}}
        self._view: HomeView | None = None
        self._automations: dict[str, Automation] | None = None
        self._states: dict[str, _Auto] = {}

    @property
    def now(self) -> int:
        return self.ctx.now

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

    def watched(self, aid: str) -> frozenset[str] | None:
        return _watched(self.docs["automations"][aid])

    def put_docs(self, docs: dict[str, Any]) -> None:
        self.docs = docs
        self._automations = None
        self._view = None
        self.ctx.store.put(docs_key(self.home), docs)

    def save(self) -> None:
        for a in self._states.values():
            a.save()

    # -- effects (engine.Host) -----------------------------------------------------------
    def report(self, run: dict[str, Any], *, started: bool) -> None:
        _report(self, run, started=started)

    def command(self, run: dict[str, Any], effect: dict[str, Any]) -> None:
        _command(self, run, effect)

    def scene(self, run: dict[str, Any], effect: dict[str, Any]) -> None:
        _scene(self, run, effect)

    def notify(self, run: dict[str, Any], effect: dict[str, Any]) -> None:
        _notify(self, run, effect)


class _Auto(engine.AutomationState):
    """One automation's engine state as the partition's store keeps it, with ``due_at``
    (``streams.due``); ``save`` writes back what changed."""

    def __init__(self, h: _Home, aid: str) -> None:
        self.h = h
        self.key = state_key(h.home, aid)
        super().__init__(aid, h.ctx.store.get(self.key))

    @property
    def ctx(self) -> Context:
        return self.h.ctx

    def save(self) -> None:
        if self.gone:
            self.ctx.store.put(self.key, None)
        elif self.dirty:
            due = self.due_at()
            if due is not None:
                self.state["due_at"] = due
            else:
                self.state.pop("due_at", None)
            self.ctx.store.put(self.key, self.state)
        self.dirty = False


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
        engine.disarm(a)
        engine.arm(h, a, automation)
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
    engine.stop(h, a, "the automation was changed" if text else "the automation was removed")
    if text is None:
        texts.pop(aid, None)
    else:
        texts[aid] = text
    h.put_docs({**h.docs, "automations": texts})
    automation = h.automations().get(aid)
    if automation is None:
        a.gone = True  # deleted or disabled: nothing of it is kept
    else:
        a.state, a.dirty, a.gone = engine.fresh(), True, False
        engine.arm(h, a, automation)
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
    # the hub ran these on this report while the cloud was away: not again here
    _event(ctx, StateChanged(str(rec["event_id"]), device, old, new), st.local_runs)


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
    engine.deliver(h, h.auto, HubStatus(str(rec["event_id"]), online, was))
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
                engine.due_timers(h, h.auto(aid), automation)
        if h is not None:
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
def _event(ctx: Context, event: Event, ran_elsewhere: Collection[str] = ()) -> None:
    h = _Home(ctx, ctx.home)
    if not h.docs.get("automations"):
        return  # the common case: a home without automations costs one read
    engine.deliver(h, h.auto, event, watched=h.watched, ran_elsewhere=ran_elsewhere)
    h.save()


# -- effects -----------------------------------------------------------------------------
def _report(h: _Home, run: dict[str, Any], *, started: bool = False) -> None:
    """An AutomationFired: the run's status and trace so far (apps see runs as they go)."""
    fields = runner.report(run, h.now)
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
            "trigger": jsontext.dumps(fields["trigger"], default=str),
            "status": fields["status"],
            "trace": jsontext.dumps(fields["trace"], default=str),
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
            "issued_at": h.now,
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
            "<home>/#automation/<id>",
            "its trigger state, runs in flight, queue, pending timers and due_at",
        ),
    ),
    timers=(on_tick,),
)
