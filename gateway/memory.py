"""In-memory stand-ins for the gateway's backing servers (unit tests, the WebSocket's tests).

``memory_backend()`` gives a :class:`gateway.backend.Backend` whose store, device state,
producer, rate limiter and command log live in this process. Produced events are kept in
``producer.sent`` as ``(topic, record_name, record)``. There is no Redis sink here: a test
that wants a status "kept by the sink" records it in ``fanout.commands`` itself.
"""

from __future__ import annotations

import copy
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from argon2 import PasswordHasher

from domain.lifecycle import FINAL_RANK, rank
from gateway.errors import ApiError
from gateway.fanout import Fanout
from gateway.ratelimit import Limit, MemoryRateLimiter
from gateway.store import _check_owners, doc_view
from stores.accounts import check_user_password
from stores.redis_state import Entry

# Cheap argon2id parameters: this store is for tests (the real one uses accounts.add_user).
_FAST = PasswordHasher(time_cost=1, memory_cost=64, parallelism=1)


class MemoryStore:
    def __init__(self) -> None:
        self.users: dict[str, str] = {}
        self.homes: dict[str, str] = {}
        self.roles: dict[tuple[str, str], str] = {}
        self.docs: dict[tuple[str, str, str], tuple[dict[str, Any], int]] = {}
        self.device_overrides: dict[tuple[str, str], dict[str, Any]] = {}
        self.history_rows: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.notification_rows: dict[str, list[dict[str, Any]]] | None = None
        self.channel_lists: dict[tuple[str, str], list[dict[str, Any]]] = {}
        # (home, username) -> event_id -> deliveries, as stores.notify_outbox.statuses shows them
        self.delivery_rows: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = {}
        self.area_rows: dict[tuple[str, str], str] = {}
        self.logbook_rows: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    # set-up helpers
    def add_user(self, username: str, password: str) -> None:
        self.users[username] = _FAST.hash(password)

    def add_home(self, home_id: str, owner: str, name: str | None = None) -> None:
        self.homes[home_id] = name or home_id
        self.roles[(home_id, owner)] = "owner"

    # Store
    def ping(self) -> bool:
        return True

    def authenticate(self, username: str, password: str) -> bool:
        h = self.users.get(username)
        return h is not None and check_user_password(password, h)

    def set_password(self, username: str, password: str) -> None:
        from stores.accounts import validate_password

        self.users[username] = _FAST.hash(validate_password(password))

    def homes_of(self, username: str) -> list[dict[str, Any]]:
        return [
            {"home_id": h, "name": self.homes[h], "role": r}
            for (h, u), r in sorted(self.roles.items())
            if u == username
        ]

    def home(self, home_id: str) -> dict[str, Any] | None:
        return {"home_id": home_id, "name": self.homes[home_id]} if home_id in self.homes else None

    def role_of(self, home_id: str, username: str) -> str | None:
        return self.roles.get((home_id, username))

    def members(self, home_id: str) -> list[dict[str, Any]]:
        order = ["owner", "admin", "member", "guest"]
        rows = [(u, r) for (h, u), r in self.roles.items() if h == home_id]
        rows.sort(key=lambda x: (order.index(x[1]), x[0]))
        return [{"username": u, "role": r, "since": None} for u, r in rows]

    def set_member(self, home_id: str, username: str, role: str) -> bool:
        with self._lock:
            if username not in self.users:
                raise ApiError(404, f"user {username!r} not found: create the login first")
            current = {u: r for (h, u), r in self.roles.items() if h == home_id}
            _check_owners(current, username, role)
            self.roles[(home_id, username)] = role
            return username not in current

    def remove_member(self, home_id: str, username: str) -> bool:
        with self._lock:
            current = {u: r for (h, u), r in self.roles.items() if h == home_id}
            if username not in current:
                return False
            _check_owners(current, username, None)
            del self.roles[(home_id, username)]
            return True

    def list_docs(self, home_id: str, kind: str) -> list[dict[str, Any]]:
        return [
            doc_view(kind, d, copy.deepcopy(doc), at)
            for (h, k, d), (doc, at) in sorted(self.docs.items())
            if h == home_id and k == kind
        ]

    def get_doc(self, home_id: str, kind: str, doc_id: str) -> dict[str, Any] | None:
        found = self.docs.get((home_id, kind, doc_id))
        return None if found is None else doc_view(kind, doc_id, copy.deepcopy(found[0]), found[1])

    def put_doc(
        self, home_id: str, kind: str, doc_id: str, document: dict[str, Any], by: str
    ) -> bool:
        created = (home_id, kind, doc_id) not in self.docs
        self.docs[(home_id, kind, doc_id)] = (copy.deepcopy(document), int(time.time() * 1000))
        return created

    def delete_doc(self, home_id: str, kind: str, doc_id: str) -> bool:
        return self.docs.pop((home_id, kind, doc_id), None) is not None

    def overrides(self, home_id: str) -> dict[str, dict[str, Any]]:
        return {d: dict(v) for (h, d), v in self.device_overrides.items() if h == home_id}

    def set_override(self, home_id: str, device_id: str, fields: dict[str, Any], by: str) -> None:
        self.device_overrides.setdefault((home_id, device_id), {}).update(fields)

    def delete_override(self, home_id: str, device_id: str) -> None:
        self.device_overrides.pop((home_id, device_id), None)

    def areas(self, home_id: str) -> list[dict[str, Any]]:
        rows = [{"area_id": a, "name": n} for (h, a), n in self.area_rows.items() if h == home_id]
        return sorted(rows, key=lambda r: r["name"].lower())

    def put_area(self, home_id: str, area_id: str, name: str) -> bool:
        for (h, a), n in self.area_rows.items():
            if h == home_id and a != area_id and n.lower() == name.lower():
                raise ApiError(409, f"area {a!r} is called {name!r} already")
        created = (home_id, area_id) not in self.area_rows
        self.area_rows[(home_id, area_id)] = name
        return created

    def logbook(self, home_id: str, **query: Any) -> list[dict[str, Any]]:
        return list(self.logbook_rows.get(home_id, []))

    def history(self, home_id: str, device_id: str, **query: Any) -> list[dict[str, Any]]:
        return list(self.history_rows.get((home_id, device_id), []))

    def notifications(self, home_id: str, limit: int) -> list[dict[str, Any]] | None:
        if self.notification_rows is None:
            return None
        return list(self.notification_rows.get(home_id, []))[:limit]

    def command_outcome(self, home_id: str, command_id: str) -> dict[str, Any] | None:
        return None

    def channels(self, home_id: str, username: str) -> list[dict[str, Any]]:
        return copy.deepcopy(self.channel_lists.get((home_id, username), []))

    def set_channels(self, home_id: str, username: str, channels: list[dict[str, Any]]) -> None:
        self.channel_lists[(home_id, username)] = [
            {k: v for k, v in c.items() if v is not None} for c in copy.deepcopy(channels)
        ]

    def deliveries(
        self, home_id: str, username: str, event_ids: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        mine = self.delivery_rows.get((home_id, username), {})
        return {e: copy.deepcopy(mine[e]) for e in event_ids if e in mine}


class MemoryDevices:
    """Device views as ``stores.redis_state.RedisState`` returns them."""

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], dict[str, Any]] = {}
        self.reads = 0

    def add(
        self,
        home: str,
        device_id: str,
        capabilities: list[str],
        *,
        name: str | None = None,
        type: str = "light.dimmer",
        room: str | None = "Living Room",
        state: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        view = {
            "home_id": home,
            "device_id": device_id,
            "name": name or device_id,
            "type": type,
            "room": room,
            "protocol": "zigbee",
            "manufacturer": None,
            "model": None,
            "capabilities": list(capabilities),
            "endpoint": None,
            "extra": None,
            "source": "discovery",
            "registered_at": 1,
            "online": True,
            "lastSeen": 1,
            "battery": None,
            "version": 1 if state else 0,
            "state": dict(state or {}),
            "desired": {},
            "delta": {},
        }
        self.items[(home, device_id)] = view
        return view

    def device(self, home: str, device: str) -> dict[str, Any] | None:
        found = self.items.get((home, device))
        return copy.deepcopy(found) if found else None

    def devices(self, home: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(v) for (h, _d), v in sorted(self.items.items()) if h == home]

    def shadow(self, home: str, device: str) -> dict[str, Any] | None:
        found = self.items.get((home, device))
        if found is None or not found["state"]:
            return None
        return {
            "state": {"reported": dict(found["state"])},
            "metadata": {"reported": {}},
            "version": found["version"],
            "timestamp": 1,
        }

    def version(self, home: str, device: str) -> int:
        found = self.items.get((home, device))
        return int(found["version"]) if found else 0

    def entries(self, home: str, ids: list[str] | None = None) -> dict[str, Entry]:
        self.reads += 1  # one "round trip", as RedisState.entries
        wanted = ids if ids is not None else [d for (h, d) in self.items if h == home]
        return {
            d: Entry(self.device(home, d), self.shadow(home, d))
            for d in wanted
            if (home, d) in self.items
        }


class MemoryCommandLog:
    """The command log's rule (stores.command_log.RECORD_LUA) in a dict: a status merges
    into the stored one unless that one is further along."""

    def __init__(self, maxsize: int = 10_000) -> None:
        self.items: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.maxsize = maxsize
        self._lock = threading.Lock()

    def record(self, status: Mapping[str, Any]) -> bool:
        cid = str(status["command_id"])
        r = rank(status.get("status"))
        with self._lock:
            cur = self.items.get(cid)
            if cur is not None:
                cr = cur["_rank"]
                if cr > r or cr == FINAL_RANK:
                    return False
                merged = {**cur, **{k: v for k, v in status.items() if v is not None}}
            else:
                merged = dict(status)
            merged["_rank"] = r
            self.items[cid] = merged
            self.items.move_to_end(cid)
            while len(self.items) > self.maxsize:
                self.items.popitem(last=False)
        return True

    def get(self, command_id: str) -> dict[str, Any] | None:
        with self._lock:
            cur = self.items.get(command_id)
            return None if cur is None else {k: v for k, v in cur.items() if k != "_rank"}


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict[str, Any]]] = []
        self.keys: list[str] = []

    def send(
        self, topic: str, record_name: str, home: str, /, key: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        record = {
            "event_id": str(uuid.uuid4()),
            "home_id": home,
            "ts": int(time.time() * 1000),
            **fields,
        }
        self.sent.append((topic, record_name, record))
        self.keys.append(key or home)
        return record

    def flush(self, timeout: float = 1.0) -> None:
        return None


class MemoryAccountAdmin:
    """gateway.account_admin.AccountAdmin over a MemoryStore; ``syncs`` counts broker
    reloads. Removing a home drops it from the store (there are no topics here)."""

    def __init__(self, store: MemoryStore) -> None:
        self.store = store
        self.hub_logins: dict[str, dict[str, Any]] = {}
        self.syncs = 0

    def remove_home(self, home: str, by: str) -> dict[str, Any]:
        self.store.homes.pop(home, None)
        for key in [k for k in self.store.roles if k[0] == home]:
            del self.store.roles[key]
        for name in [u for u, h in self.hub_logins.items() if h["home_id"] == home]:
            del self.hub_logins[name]
        self.syncs += 1
        return {"home_id": home, "removed": True, "devices": 0, "documents": 0, "tombstones": {}}

    def hubs(self, home: str) -> list[dict[str, Any]]:
        return [dict(h) for h in self.hub_logins.values() if h["home_id"] == home]

    def add_hub(self, home: str) -> dict[str, Any]:
        name = f"hub-{home}-{uuid.uuid4().hex[:6]}"
        self.hub_logins[name] = {"username": name, "home_id": home, "revoked": False}
        self.syncs += 1
        return {"username": name, "password": uuid.uuid4().hex, "home_id": home}

    def _live(self, home: str, username: str) -> dict[str, Any]:
        from stores.accounts import AccountError

        hub = self.hub_logins.get(username)
        if hub is None or hub["home_id"] != home:
            raise AccountError(f"hub login {username!r} not found")
        if hub["revoked"]:
            raise AccountError(f"hub login {username!r} is revoked")
        return hub

    def rotate_hub(self, home: str, username: str) -> dict[str, Any]:
        self._live(home, username)
        self.syncs += 1
        return {"username": username, "password": uuid.uuid4().hex, "home_id": home}

    def revoke_hub(self, home: str, username: str) -> None:
        self._live(home, username)["revoked"] = True
        self.syncs += 1


def memory_backend(
    *,
    # RFC 7518 3.2: an HS256 key at least as long as the hash, else PyJWT warns.
    secret: str = "test-secret-test-secret-test-secret",
    rate_limit: str = "10000/60",
    login_limit: str = "1000/60",
    failed_login_limit: str = "1000/900",
    failed_login_addr_limit: str = "1000/900",
) -> Any:
    from gateway.backend import Backend

    store = MemoryStore()
    return Backend(
        store=store,
        admin=MemoryAccountAdmin(store),
        devices=MemoryDevices(),
        producer=RecordingProducer(),
        fanout=Fanout(MemoryCommandLog()),
        limiter=MemoryRateLimiter(),
        token_secret=secret,
        rate_limit=Limit.parse(rate_limit, "rate_limit"),
        login_limit=Limit.parse(login_limit, "login_limit"),
        failed_login_limit=Limit.parse(failed_login_limit, "failed_login_limit"),
        failed_login_addr_limit=Limit.parse(failed_login_addr_limit, "failed_login_addr_limit"),
    )
