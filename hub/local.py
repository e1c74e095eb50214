"""Local control: the hub keeps the home working while the cloud broker is unreachable.

The hub keeps, in ``local.sqlite`` under its state dir,

* the registry of its own devices (descriptor and last reported state, from its adapters);
* the home's documents the cloud keeps retained for it on ``hub/{home}/config/{kind}/{id}``
  (automations, scenes, the home's mode and place), updated whenever they change;
* each local automation's engine state (triggers, runs, timers), so a restart resumes.

An automation is *local* when everything it names is this hub's: devices it owns, scenes
whose actions are all its devices; no group (groups live in the cloud) and no notify (no
way out without the cloud). While the cloud is unreachable the hub runs the local ones with
the cloud's own engine (``domain.automation.engine``: one implementation) on the reports of
its devices: commands go straight to the adapters. Each run is reported on
``hub/{home}/automation/{id}`` and each state report names the automations the hub ran on
it (``local_runs``), both through the outbox: when the cloud is back it replays them in
order, keeps the runs in its history and does not run those automations again on those
reports. While the cloud is reachable the hub only follows the triggers' state (the cloud
decides), so the first report after an outage is judged from the right "before".
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from domain import scenes
from domain.automation import engine, runner
from domain.automation.home import HomeView, Place, PlaceError, parse_place
from domain.automation.model import Automation, NotifyAction, references, watched_devices
from domain.automation.parse import AutomationInvalid, parse
from domain.automation.triggers import StateChanged
from hub.adapters.common import merge_state

log = logging.getLogger("homestream.hub.local")

Execute = Callable[[str, str, str, Mapping[str, Any]], Awaitable[None]]
Publish = Callable[[str, Any], None]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS docs (
    kind TEXT NOT NULL, doc_id TEXT NOT NULL, text TEXT NOT NULL, PRIMARY KEY (kind, doc_id)
);
CREATE TABLE IF NOT EXISTS devices (
    device_id TEXT PRIMARY KEY, descriptor TEXT NOT NULL, state TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS engine (aid TEXT PRIMARY KEY, state TEXT NOT NULL);
"""


class LocalStore:
    """The hub's local copy of the home (SQLite, WAL: a commit survives the process)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    def _write(self, sql: str, args: tuple[Any, ...]) -> None:
        with self._lock:
            self._db.execute(sql, args)

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    def put_doc(self, kind: str, doc_id: str, text: str | None) -> None:
        if text is None:
            self._write("DELETE FROM docs WHERE kind = ? AND doc_id = ?", (kind, doc_id))
        else:
            self._write("INSERT OR REPLACE INTO docs VALUES (?, ?, ?)", (kind, doc_id, text))

    def docs(self, kind: str) -> dict[str, str]:
        return dict(self._rows("SELECT doc_id, text FROM docs WHERE kind = ?", (kind,)))

    def put_device(self, device_id: str, descriptor: Mapping[str, Any] | None, state: Any) -> None:
        if descriptor is None:
            self._write("DELETE FROM devices WHERE device_id = ?", (device_id,))
        else:
            self._write(
                "INSERT OR REPLACE INTO devices VALUES (?, ?, ?)",
                (device_id, json.dumps(descriptor), json.dumps(state)),
            )

    def devices(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        rows = self._rows("SELECT device_id, descriptor, state FROM devices")
        return {d: (json.loads(desc), json.loads(st)) for d, desc, st in rows}

    def put_engine(self, aid: str, state: Mapping[str, Any] | None) -> None:
        if state is None:
            self._write("DELETE FROM engine WHERE aid = ?", (aid,))
        else:
            self._write("INSERT OR REPLACE INTO engine VALUES (?, ?)", (aid, json.dumps(state)))

    def engine_states(self) -> dict[str, dict[str, Any]]:
        return {a: json.loads(s) for a, s in self._rows("SELECT aid, state FROM engine")}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def not_local(
    automation: Automation, owns: Callable[[str], bool], scene_docs: Mapping[str, Any]
) -> str | None:
    """Why the hub cannot run ``automation`` by itself (None: it can)."""
    for ref in references(automation):
        if ref.kind == "group":
            return f"{ref.path} names group {ref.id!r}: groups live in the cloud"
        if ref.kind == "device" and not owns(ref.id):
            return f"{ref.path} names device {ref.id!r}, which is not this hub's"
        if ref.kind == "scene":
            why = scene_not_local(scene_docs.get(ref.id), owns)
            if why is not None:
                return f"{ref.path}: scene {ref.id!r} {why}"
    for action in automation.actions:
        if isinstance(action, NotifyAction):
            return f"{action.path} notifies: notifications need the cloud"
    return None


def scene_not_local(scene: Any, owns: Callable[[str], bool]) -> str | None:
    if not isinstance(scene, Mapping) or not isinstance(scene.get("actions"), list):
        return "is not known to the hub"
    if scene.get("conditions"):
        return "has conditions"
    for i, action in enumerate(scene["actions"]):
        if not isinstance(action, Mapping) or action.get("conditions"):
            return f"action {i} has conditions"
        device = action.get("device_id")
        if not isinstance(device, str) or not owns(device):
            return f"action {i} is not on this hub's devices"
    return None


class LocalControl:
    """The hub's local store and engine. Every method runs on the hub's loop."""

    def __init__(
        self,
        path: Path,
        *,
        owns: Callable[[str], bool],
        execute: Execute,
        publish: Publish,
        online: Callable[[], bool],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = LocalStore(path)
        self._owns = owns
        self._execute = execute
        self._publish = publish
        self._online = online
        self._clock = clock
        self._devices = self.store.devices()
        self._states: dict[str, engine.AutomationState] = {
            aid: engine.AutomationState(aid, s) for aid, s in self.store.engine_states().items()
        }
        self._automations: dict[str, Automation] | None = None
        self._pending: list[tuple[str, dict[str, Any]]] = []  # run reports, after the state
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts = {"runs": 0, "commands": 0, "failed": 0}

    # -- what the cloud syncs ------------------------------------------------------------
    def on_config(self, kind: str, doc_id: str, payload: bytes) -> None:
        text = payload.decode("utf-8", "replace") if payload else None
        if self.store.docs(kind).get(doc_id) == text:
            return  # the retained copy again, at a reconnect: runs go on
        self.store.put_doc(kind, doc_id, text)
        if kind in ("automation", "scene", "home"):
            self._automations = None  # judged again at the next input
        if kind == "automation":
            a = self._states.pop(doc_id, None)
            if a is not None:
                engine.stop(_Step(self), a, "the automation was changed")
            self.store.put_engine(doc_id, None)
        log.info("home document synced", extra={"kind": kind, "doc_id": doc_id, "gone": not text})

    def automations(self) -> dict[str, Automation]:
        """The enabled automations the hub can run by itself, by id."""
        if self._automations is None:
            scene_docs = {k: _loads(v) for k, v in self.store.docs("scene").items()}
            found: dict[str, Automation] = {}
            for aid, text in sorted(self.store.docs("automation").items()):
                try:
                    automation = parse(json.loads(text))
                except (AutomationInvalid, ValueError) as exc:
                    log.warning("automation not usable", extra={"aid": aid, "err": str(exc)})
                    continue
                why = not_local(automation, self.owns, scene_docs)
                if automation.enabled and why is None:
                    found[aid] = automation
                elif why is not None:
                    log.debug("automation stays in the cloud", extra={"aid": aid, "why": why})
            self._automations = found
        return self._automations

    def owns(self, device_id: str) -> bool:
        return device_id in self._devices or self._owns(device_id)

    # -- the registry --------------------------------------------------------------------
    def on_descriptor(self, device_id: str, descriptor: Mapping[str, Any] | None) -> None:
        if descriptor is None:
            self._devices.pop(device_id, None)
        else:
            state = self._devices.get(device_id, ({}, {}))[1]
            self._devices[device_id] = (dict(descriptor), state)
        self.store.put_device(device_id, descriptor, self._devices.get(device_id, ({}, {}))[1])
        self._automations = None

    def devices(self) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
        return dict(self._devices)

    def shown(self) -> list[dict[str, Any]]:
        """The registry as the home's app shows it: the name, room, icon and tags a user set
        in the cloud (its ``device`` documents) over what the device's descriptor says."""
        mine = self.store.docs("device")
        out = []
        for device_id, (descriptor, state) in sorted(self._devices.items()):
            user = _loads(mine.get(device_id))
            out.append(
                {
                    "device_id": device_id,
                    "name": user.get("name", descriptor.get("name")),
                    "room": user.get("room", descriptor.get("room")),
                    "icon": user.get("icon"),
                    "tags": list(user.get("tags") or []),
                    "descriptor": descriptor,
                    "state": state,
                }
            )
        return out

    def view(self) -> HomeView:
        home = self.store.docs("home")
        settings = _loads(home.get("settings"))
        try:
            place = parse_place(
                {k: settings[k] for k in ("time_zone", "latitude", "longitude") if k in settings}
            )
        except PlaceError:
            place = Place()
        mode = str(_loads(home.get("mode")).get("mode") or "home")
        return HomeView(place, lambda d: self._devices.get(d, ({}, None))[1], mode)

    # -- reports -------------------------------------------------------------------------
    def on_state(self, device_id: str, patch: Mapping[str, Any]) -> list[str]:
        """A device reported: keep it, and (cloud away) run what it triggers. Returns the
        automations that ran on it (the report's ``local_runs``)."""
        descriptor, old = self._devices.get(device_id, ({}, {}))
        new = dict(old)
        merge_state(new, patch)
        self._devices[device_id] = (descriptor, new)
        self.store.put_device(device_id, descriptor or {"name": device_id}, new)
        automations = self.automations()
        if not automations or new == old:
            return []
        step = _Step(self)
        offline = not self._online()
        event = StateChanged(str(uuid.uuid4()), device_id, old, new)
        engine.deliver(
            step,
            self._state,
            event,
            watched=lambda aid: watched_devices(automations[aid]),
            # online the cloud decides: the triggers only follow the change
            ran_elsewhere=() if offline else tuple(automations),
        )
        self._save()
        return sorted(step.ran)

    def flush(self) -> None:
        """Publish the run reports of the last input (after the report that caused them)."""
        pending, self._pending = self._pending, []
        for aid, body in pending:
            self._publish(f"automation/{aid}", body)

    def tick(self) -> None:
        """Timers that came due (``for:``, delays, waits): only while runs are the hub's."""
        now = int(self._clock() * 1000)
        automations = self.automations()
        step = _Step(self)
        for aid, a in list(self._states.items()):
            due = a.due_at()
            automation = automations.get(aid)
            if due is None or due > now or automation is None:
                continue
            if self._online() and not a.state["runs"]:
                continue  # the cloud runs what fires now; a run the hub began, it finishes
            engine.due_timers(step, a, automation)
        self._save()
        self.flush()

    def _state(self, aid: str) -> engine.AutomationState:
        if aid not in self._states:
            a = engine.AutomationState(aid, None)
            automation = self.automations().get(aid)
            if automation is not None:
                engine.arm(_Step(self), a, automation)
            self._states[aid] = a
        return self._states[aid]

    def _save(self) -> None:
        for aid, a in self._states.items():
            if a.dirty:
                self.store.put_engine(aid, a.state)
                a.dirty = False

    # -- effects -------------------------------------------------------------------------
    def command(self, device_id: str, capability: str, command: str, params: Any) -> None:
        task = asyncio.get_running_loop().create_task(
            self._run_command(device_id, capability, command, params or {})
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run_command(
        self, device_id: str, capability: str, command: str, params: Mapping[str, Any]
    ) -> None:
        self.counts["commands"] += 1
        try:
            await self._execute(device_id, capability, command, params)
        except Exception as exc:
            self.counts["failed"] += 1
            log.warning("local command failed", extra={"device_id": device_id, "err": str(exc)})

    async def run_scene(self, scene_id: str) -> dict[str, Any]:
        """A scene by the hub alone: its steps at their delays (domain.scenes)."""
        scene = _loads(self.store.docs("scene").get(scene_id))
        why = scene_not_local(scene if scene else None, self.owns)
        if why is not None:
            raise LookupError(f"scene {scene_id!r} {why}")
        started = time.monotonic()
        actions = scene["actions"]
        ok = failed = 0
        elapsed = 0
        for offset, indexes in scenes.steps(actions):
            await asyncio.sleep(max(0, offset - elapsed) / 1000)
            elapsed = offset
            results = await asyncio.gather(
                *(
                    self._execute(
                        actions[i]["device_id"],
                        actions[i]["capability"],
                        actions[i]["command"],
                        actions[i].get("parameters") or {},
                    )
                    for i in indexes
                ),
                return_exceptions=True,
            )
            failed += sum(isinstance(r, BaseException) for r in results)
            ok += sum(not isinstance(r, BaseException) for r in results)
        return {
            "status": scenes.run_status(ok, failed),
            "actions_succeeded": ok,
            "actions_failed": failed,
            "execution_time_ms": round((time.monotonic() - started) * 1000),
        }

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        self.store.close()


class _Step:
    """The engine's host for one input (``domain.automation.engine.Host``)."""

    def __init__(self, local: LocalControl) -> None:
        self.local = local
        self.now = int(local._clock() * 1000)
        self.ran: set[str] = set()
        self._view: HomeView | None = None

    def view(self) -> HomeView:
        if self._view is None:
            self._view = self.local.view()
        return self._view

    def automations(self) -> Mapping[str, Automation]:
        return self.local.automations()

    def report(self, run: dict[str, Any], *, started: bool) -> None:
        fields = runner.report(run, self.now)
        if started:
            fields["status"] = "STARTED"
            self.local.counts["runs"] += 1
        self.ran.add(run["automation_id"])
        body = {k: fields[k] for k in ("run_id", "alias", "trigger", "status", "trace", "error")}
        self.local._pending.append(
            (run["automation_id"], json.loads(json.dumps({**body, "ts": self.now}, default=str)))
        )

    def command(self, run: dict[str, Any], effect: dict[str, Any]) -> None:
        device = effect.get("device_id")
        if device is None:  # a group: not local (not_local keeps these in the cloud)
            return
        self.local.command(device, effect["capability"], effect["command"], effect["parameters"])

    def scene(self, run: dict[str, Any], effect: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._scene(effect["scene_id"]))
        self.local._tasks.add(task)
        task.add_done_callback(self.local._tasks.discard)

    async def _scene(self, scene_id: str) -> None:
        with contextlib.suppress(LookupError):
            await self.local.run_scene(scene_id)

    def notify(self, run: dict[str, Any], effect: dict[str, Any]) -> None:
        log.warning("a local automation cannot notify", extra={"aid": run["automation_id"]})


def _loads(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
