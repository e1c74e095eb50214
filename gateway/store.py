"""What the gateway keeps in PostgreSQL: accounts (stores.accounts), its documents
(groups, scenes, automations; migration 0003_gateway.sql), device name/room overrides,
members' notification channels and their deliveries' statuses (stores.notify_channels,
stores.notify_outbox), and what it reads from the history schema (stores/history_query.py,
docs/history.md).

Every method is blocking; the app calls them from worker threads.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Protocol

import psycopg
from psycopg.types.json import Jsonb

from gateway.errors import ApiError
from stores import accounts
from stores.home_documents import override_document

DOC_KINDS = ("group", "scene", "automation", "home")


class Store(Protocol):
    def authenticate(self, username: str, password: str) -> bool: ...
    def homes_of(self, username: str) -> list[dict[str, Any]]: ...
    def set_password(self, username: str, password: str) -> None: ...
    def home(self, home_id: str) -> dict[str, Any] | None: ...
    def role_of(self, home_id: str, username: str) -> str | None: ...
    def members(self, home_id: str) -> list[dict[str, Any]]: ...
    def set_member(self, home_id: str, username: str, role: str) -> bool: ...
    def remove_member(self, home_id: str, username: str) -> bool: ...
    def list_docs(self, home_id: str, kind: str) -> list[dict[str, Any]]: ...
    def get_doc(self, home_id: str, kind: str, doc_id: str) -> dict[str, Any] | None: ...
    def put_doc(
        self, home_id: str, kind: str, doc_id: str, document: dict[str, Any], by: str
    ) -> bool: ...
    def delete_doc(self, home_id: str, kind: str, doc_id: str) -> bool: ...
    def overrides(self, home_id: str) -> dict[str, dict[str, Any]]: ...
    def set_override(
        self, home_id: str, device_id: str, fields: dict[str, Any], by: str
    ) -> None: ...
    def delete_override(self, home_id: str, device_id: str) -> None: ...
    def areas(self, home_id: str) -> list[dict[str, Any]]: ...
    def put_area(self, home_id: str, area_id: str, name: str) -> bool: ...
    def logbook(self, home_id: str, **query: Any) -> list[dict[str, Any]]: ...
    def history(self, home_id: str, device_id: str, **query: Any) -> list[dict[str, Any]]: ...
    def notifications(self, home_id: str, limit: int) -> list[dict[str, Any]] | None: ...
    def command_outcome(self, home_id: str, command_id: str) -> dict[str, Any] | None: ...
    def channels(self, home_id: str, username: str) -> list[dict[str, Any]]: ...
    def set_channels(self, home_id: str, username: str, channels: list[dict[str, Any]]) -> None: ...
    def deliveries(
        self, home_id: str, username: str, event_ids: list[str]
    ) -> dict[str, list[dict[str, Any]]]: ...
    def ping(self) -> bool: ...


def _ms(value: Any) -> int | None:
    if isinstance(value, dt.datetime):
        return int(value.timestamp() * 1000)
    return None


def doc_view(kind: str, doc_id: str, document: dict[str, Any], updated_at: Any) -> dict[str, Any]:
    """A stored document as the API shows it: its id field first, then the document."""
    out: dict[str, Any] = {f"{kind}_id": doc_id}
    out.update({k: v for k, v in document.items() if k != f"{kind}_id"})
    out["updated_at"] = _ms(updated_at) if not isinstance(updated_at, int) else updated_at
    return out


class PgStore:
    def __init__(self, conninfo: str, *, min_size: int = 1, max_size: int = 8) -> None:
        from psycopg_pool import ConnectionPool

        self.pool = ConnectionPool(
            conninfo,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            open=False,
            name="gateway",
        )
        self._relations: dict[str, bool] = {}

    def open(self) -> None:
        self.pool.open(wait=False)

    def close(self) -> None:
        self.pool.close()

    @contextmanager
    def conn(self) -> Iterator[psycopg.Connection]:
        with self.pool.connection(timeout=10) as conn:
            yield conn

    def ping(self) -> bool:
        try:
            with self.conn() as conn:
                conn.execute("SELECT 1")
            return True
        except Exception:
            return False

    # -- accounts -------------------------------------------------------------------------
    def authenticate(self, username: str, password: str) -> bool:
        with self.conn() as conn:
            return accounts.authenticate(conn, username, password)

    def set_password(self, username: str, password: str) -> None:
        with self.conn() as conn:
            accounts.set_password(conn, username, password)

    def homes_of(self, username: str) -> list[dict[str, Any]]:
        with self.conn() as conn:
            rows = conn.execute(
                "SELECT h.home_id, h.name, m.role FROM home_members m"
                " JOIN homes h USING (home_id) WHERE m.username = %s ORDER BY h.home_id",
                (username,),
            ).fetchall()
        return [{"home_id": h, "name": n, "role": r} for h, n, r in rows]

    def home(self, home_id: str) -> dict[str, Any] | None:
        with self.conn() as conn:
            row = conn.execute(
                "SELECT home_id, name FROM homes WHERE home_id = %s", (home_id,)
            ).fetchone()
        return {"home_id": row[0], "name": row[1]} if row else None

    def role_of(self, home_id: str, username: str) -> str | None:
        with self.conn() as conn:
            return accounts.role_of(conn, home_id, username)

    def members(self, home_id: str) -> list[dict[str, Any]]:
        with self.conn() as conn:
            rows = conn.execute(
                "SELECT username, role, created_at FROM home_members WHERE home_id = %s"
                " ORDER BY array_position(ARRAY['owner','admin','member','guest'], role),"
                " username",
                (home_id,),
            ).fetchall()
        return [{"username": u, "role": r, "since": _ms(c)} for u, r, c in rows]

    def set_member(self, home_id: str, username: str, role: str) -> bool:
        """Add or change a member; True when added. 404 for an unknown user, 409 when the
        home would be left without an owner."""
        with self.conn() as conn, conn.transaction():
            if (
                conn.execute("SELECT 1 FROM users WHERE username = %s", (username,)).fetchone()
                is None
            ):
                raise ApiError(404, f"user {username!r} not found: create the login first")
            rows = conn.execute(
                "SELECT username, role FROM home_members WHERE home_id = %s FOR UPDATE",
                (home_id,),
            ).fetchall()
            current = dict(rows)
            _check_owners(current, username, role)
            conn.execute(
                "INSERT INTO home_members (home_id, username, role) VALUES (%s, %s, %s)"
                " ON CONFLICT (home_id, username) DO UPDATE SET role = EXCLUDED.role",
                (home_id, username, role),
            )
            return username not in current

    def remove_member(self, home_id: str, username: str) -> bool:
        with self.conn() as conn, conn.transaction():
            rows = conn.execute(
                "SELECT username, role FROM home_members WHERE home_id = %s FOR UPDATE",
                (home_id,),
            ).fetchall()
            current = dict(rows)
            if username not in current:
                return False
            _check_owners(current, username, None)
            conn.execute(
                "DELETE FROM home_members WHERE home_id = %s AND username = %s",
                (home_id, username),
            )
            return True

    # -- documents ------------------------------------------------------------------------
    def list_docs(self, home_id: str, kind: str) -> list[dict[str, Any]]:
        with self.conn() as conn:
            rows = conn.execute(
                "SELECT doc_id, document, updated_at FROM gateway_documents"
                " WHERE home_id = %s AND kind = %s ORDER BY doc_id",
                (home_id, kind),
            ).fetchall()
        return [doc_view(kind, d, doc, u) for d, doc, u in rows]

    def get_doc(self, home_id: str, kind: str, doc_id: str) -> dict[str, Any] | None:
        with self.conn() as conn:
            row = conn.execute(
                "SELECT document, updated_at FROM gateway_documents"
                " WHERE home_id = %s AND kind = %s AND doc_id = %s",
                (home_id, kind, doc_id),
            ).fetchone()
        return doc_view(kind, doc_id, row[0], row[1]) if row else None

    def put_doc(
        self, home_id: str, kind: str, doc_id: str, document: dict[str, Any], by: str
    ) -> bool:
        with self.conn() as conn:
            row = conn.execute(
                "INSERT INTO gateway_documents (home_id, kind, doc_id, document, updated_by)"
                " VALUES (%s, %s, %s, %s, %s)"
                " ON CONFLICT (home_id, kind, doc_id) DO UPDATE SET document = EXCLUDED.document,"
                " updated_at = now(), updated_by = EXCLUDED.updated_by"
                " RETURNING (xmax = 0)",
                (home_id, kind, doc_id, Jsonb(document), by),
            ).fetchone()
        return bool(row and row[0])

    def delete_doc(self, home_id: str, kind: str, doc_id: str) -> bool:
        with self.conn() as conn:
            cur = conn.execute(
                "DELETE FROM gateway_documents WHERE home_id = %s AND kind = %s AND doc_id = %s",
                (home_id, kind, doc_id),
            )
            return cur.rowcount > 0

    # -- areas ----------------------------------------------------------------------------
    def areas(self, home_id: str) -> list[dict[str, Any]]:
        from stores.logbook import stored_areas

        with self.conn() as conn:
            return stored_areas(conn, home_id)

    def put_area(self, home_id: str, area_id: str, name: str) -> bool:
        """Create or rename a stored area; True when created. 409 when another area of
        the home has that name."""
        with self.conn() as conn, conn.transaction():
            taken = conn.execute(
                "SELECT area_id FROM areas WHERE home_id = %s AND lower(name) = lower(%s)"
                " AND area_id <> %s",
                (home_id, name, area_id),
            ).fetchone()
            if taken:
                raise ApiError(409, f"area {taken[0]!r} is called {name!r} already")
            row = conn.execute(
                "INSERT INTO areas (home_id, area_id, name) VALUES (%s, %s, %s)"
                " ON CONFLICT (home_id, area_id) DO UPDATE SET name = EXCLUDED.name"
                " RETURNING (xmax = 0)",
                (home_id, area_id, name),
            ).fetchone()
        return bool(row and row[0])

    def logbook(self, home_id: str, **query: Any) -> list[dict[str, Any]]:
        from stores.logbook import logbook

        with self.conn() as conn:
            return logbook(conn, home_id, **query)

    # -- device overrides -----------------------------------------------------------------
    def overrides(self, home_id: str) -> dict[str, dict[str, Any]]:
        with self.conn() as conn:
            rows = conn.execute(
                "SELECT device_id, name, room, icon, tags FROM device_overrides WHERE home_id = %s",
                (home_id,),
            ).fetchall()
        return {device: override_document(*fields) for device, *fields in rows}

    def set_override(self, home_id: str, device_id: str, fields: dict[str, Any], by: str) -> None:
        # room "" in the table = "no room" chosen by the user (NULL = not overridden)
        name = fields.get("name")
        room = fields.get("room", ...)
        room_value = None if room is ... else ("" if room is None else room)
        # icon and tags: a field left out (NULL) keeps the stored one
        icon, tags = fields.get("icon"), fields.get("tags")
        with self.conn() as conn:
            conn.execute(
                "INSERT INTO device_overrides"
                " (home_id, device_id, name, room, icon, tags, updated_by)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (home_id, device_id) DO UPDATE SET"
                " name = coalesce(EXCLUDED.name, device_overrides.name),"
                " room = coalesce(EXCLUDED.room, device_overrides.room),"
                " icon = coalesce(EXCLUDED.icon, device_overrides.icon),"
                " tags = coalesce(EXCLUDED.tags, device_overrides.tags),"
                " updated_at = now(), updated_by = EXCLUDED.updated_by",
                (home_id, device_id, name, room_value, icon, tags, by),
            )

    def delete_override(self, home_id: str, device_id: str) -> None:
        with self.conn() as conn:
            conn.execute(
                "DELETE FROM device_overrides WHERE home_id = %s AND device_id = %s",
                (home_id, device_id),
            )

    # -- history (read) -------------------------------------------------------------------
    def _has(self, conn: psycopg.Connection, relation: str) -> bool:
        if relation not in self._relations:
            row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (relation,)).fetchone()
            found = bool(row and row[0])
            if not found:
                return False  # not cached: the history migration may come later
            self._relations[relation] = True
        return self._relations[relation]

    def history(self, home_id: str, device_id: str, **query: Any) -> list[dict[str, Any]]:
        from stores.history_query import history

        with self.conn() as conn:
            if not self._has(conn, "history.state_history"):
                raise ApiError(503, "the history store is not set up (run the migrations)")
            return history(conn, home_id, device_id, **query)

    def notifications(self, home_id: str, limit: int) -> list[dict[str, Any]] | None:
        with self.conn() as conn:
            if not self._has(conn, "history.notifications"):
                return None
            rows = conn.execute(
                "SELECT time, kind, severity, title, message, device_id, automation_id, data,"
                " event_id FROM history.notifications WHERE home_id = %s"
                " ORDER BY time DESC LIMIT %s",
                (home_id, limit),
            ).fetchall()
        return [
            {
                "event_id": str(r[8]) if r[8] is not None else None,
                "home_id": home_id,
                "ts": _ms(r[0]),
                "kind": r[1],
                "severity": r[2],
                "title": r[3],
                "message": r[4],
                "device_id": r[5],
                "automation_id": r[6],
                "data": r[7] if not isinstance(r[7], str) else _loads(r[7]),
            }
            for r in rows
        ]

    # -- notification channels (their URLs are secrets: returned to their owner only) --------
    def channels(self, home_id: str, username: str) -> list[dict[str, Any]]:
        from stores.notify_channels import channel_view, member_channels

        with self.conn() as conn:
            return [channel_view(c) for c in member_channels(conn, home_id, username)]

    def set_channels(self, home_id: str, username: str, channels: list[dict[str, Any]]) -> None:
        from stores.notify_channels import channels_from, set_member_channels

        with self.conn() as conn:
            set_member_channels(conn, home_id, username, channels_from(home_id, username, channels))

    def deliveries(
        self, home_id: str, username: str, event_ids: list[str]
    ) -> dict[str, list[dict[str, Any]]]:
        from stores.notify_outbox import statuses

        with self.conn() as conn:
            if not self._has(conn, "notification_deliveries"):
                return {}
            return statuses(conn, home_id, username, event_ids)

    def command_outcome(self, home_id: str, command_id: str) -> dict[str, Any] | None:
        with self.conn() as conn:
            if not self._has(conn, "history.command_outcomes"):
                return None
            row = conn.execute(
                "SELECT command_id, device_id, group_id, capability, command, status, reason,"
                " requested_at, finished_at, parent_command_id, request_id"
                " FROM history.command_outcomes WHERE home_id = %s AND command_id = %s",
                (home_id, command_id),
            ).fetchone()
        if row is None:
            return None
        return {
            "command_id": str(row[0]),
            "home_id": home_id,
            "device_id": row[1],
            "group_id": row[2],
            "capability": row[3],
            "command": row[4],
            "status": row[5],
            "reason": row[6],
            "requested_at": _ms(row[7]),
            "ts": _ms(row[8]) or _ms(row[7]),
            "parent_command_id": str(row[9]) if row[9] is not None else None,
            "request_id": row[10],
        }


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _check_owners(current: dict[str, str], username: str, new_role: str | None) -> None:
    owners = {u for u, r in current.items() if r == "owner"}
    if username in owners and new_role != "owner" and len(owners) == 1:
        raise ApiError(
            409,
            f"{username!r} is the home's only owner: make another member owner first",
            "last_owner",
        )
