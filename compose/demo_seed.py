"""The demo home's place, scenes, automations and webhook channel, put in through the
gateway's REST API on every `homestream up` (documents: ``hub.sim.demo_docs``).

Through the API rather than the database, so each document is checked and published to
the stream workers exactly as a user's PUT is. Idempotent, and it never undoes what a
user did: a scene or automation that exists (the user may have edited it) is left alone,
the place is set only while the home has none, the channel only while the demo user has
none. The automations name devices, which the gateway only accepts once it knows them: the
seeding waits until the simulated hub's devices have come through the pipeline.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from hub.sim import demo_docs

Say = Callable[[str], None]


class SeedError(RuntimeError):
    """The demo could not be seeded; the message says why and what to do."""


class Api(Protocol):
    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, decoded JSON body or None)."""
        ...


class HttpApi:
    """The gateway over HTTP (urllib: no dependency beyond the standard library)."""

    def __init__(self, base_url: str, timeout: float = 10.0, context: Any = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.context = context  # an ssl.SSLContext trusting the stack's CA, for HTTPS
        self.token: str | None = None

    def sign_in(self, username: str, password: str) -> None:
        status, body = self.call(
            "POST", "/v1/auth/token", {"username": username, "password": password}
        )
        if status != 200:
            raise SeedError(f"could not sign in as {username!r}: {_message(status, body)}")
        self.token = body["access_token"]

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        headers = {"Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.base_url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(
                request, timeout=self.timeout, context=self.context
            ) as resp:
                return resp.status, _json(resp.read())
        except urllib.error.HTTPError as exc:
            return exc.code, _json(exc.read())
        except OSError as exc:
            raise SeedError(f"the gateway at {self.base_url} did not answer: {exc}") from None


@dataclass
class Seeded:
    """What one seeding did: ``created`` (kind/id), ``kept`` (already there), ``notes``."""

    created: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def seed_demo(
    api: Api,
    home: str,
    *,
    webhook_port: int | None = None,
    wait_s: float = 90.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> Seeded:
    """Put what is missing of the demo's documents into ``home``; raises SeedError."""
    done = Seeded()
    base = f"/v1/homes/{home}"
    _wait_for_devices(api, base, demo_docs.device_ids(), wait_s, sleep, clock)

    _, settings = _expect(api, "GET", f"{base}/settings", (200,))
    if settings.get("latitude") is None:
        _expect(api, "PUT", f"{base}/settings", (200,), demo_docs.SETTINGS)
        done.created.append("settings")
    else:
        done.kept.append("settings")

    for kind, plural, docs in (
        ("scene", "scenes", demo_docs.SCENES),
        ("automation", "automations", demo_docs.AUTOMATIONS),
    ):
        for doc_id, doc in docs.items():
            status, _ = _expect(api, "GET", f"{base}/{plural}/{doc_id}", (200, 404))
            if status == 200:
                done.kept.append(f"{kind} {doc_id}")
                continue
            _expect(api, "PUT", f"{base}/{plural}/{doc_id}", (200, 201), doc)
            done.created.append(f"{kind} {doc_id}")

    if webhook_port is not None:
        _channels(api, base, webhook_port, done)
    return done


def _channels(api: Api, base: str, port: int, done: Seeded) -> None:
    """The webhook channel, where the gateway has channels (a route of its own, newer)."""
    status, current = _expect(api, "GET", f"{base}/notifications/channels", (200, 404))
    if status == 404:
        done.notes.append("no notification channels on this gateway (404): webhook not set")
        return
    listed = current if isinstance(current, list) else (current or {}).get("channels", [])
    if listed:
        done.kept.append("webhook channel")
        return
    _expect(api, "PUT", f"{base}/notifications/channels", (200, 201, 204),
            demo_docs.webhook_channels(port))  # fmt: skip
    done.created.append("webhook channel")


def _wait_for_devices(
    api: Api,
    base: str,
    wanted: set[str],
    wait_s: float,
    sleep: Callable[[float], None],
    clock: Callable[[], float],
) -> None:
    deadline = clock() + wait_s
    while True:
        _, body = _expect(api, "GET", f"{base}/devices", (200,))
        known = {d.get("device_id") for d in (body or {}).get("devices", [])}
        missing = sorted(wanted - known)
        if not missing:
            return
        if clock() >= deadline:
            raise SeedError(
                f"the gateway does not know {len(missing)} of the demo's devices yet "
                f"({', '.join(missing[:5])}{', ...' if len(missing) > 5 else ''}) after "
                f"{wait_s:.0f} s; is the simulator running (`homestream status`)? Run "
                "`homestream up` again to add the demo's scenes and automations"
            )
        sleep(1.0)


def _expect(
    api: Api, method: str, path: str, statuses: tuple[int, ...], body: Any = None
) -> tuple[int, Any]:
    status, reply = api.call(method, path, body)
    if status not in statuses:
        raise SeedError(f"{method} {path}: {_message(status, reply)}")
    return status, reply


def _message(status: int, body: Any) -> str:
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict):
        details = "; ".join(
            f"{d.get('path')}: {d.get('message')}" for d in error.get("details") or []
        )
        return f"{status} {error.get('message')}" + (f" ({details})" if details else "")
    return f"{status}"


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
