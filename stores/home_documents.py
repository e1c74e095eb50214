"""The gateway's stored documents (groups, scenes, automations, a home's mode and settings;
migration 0003) as the stream workers are told them: ``homestream.homes.config`` records.

One place for the record's shape, so the gateway's publishing and the operator's
``homestream topics republish-config`` send the same thing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


def config_key(home: str, kind: str, doc_id: str) -> str:
    """The record key: latest per document once the topic is compacted."""
    return f"{home}/{kind}:{doc_id}"


def config_fields(
    kind: str, doc_id: str, document: dict[str, Any] | None, by: str | None
) -> dict[str, Any]:
    """The HomeConfig record's own fields (a deletion is ``document`` None)."""
    return {
        "kind": kind,
        "doc_id": doc_id,
        "document": None if document is None else json.dumps(document, separators=(",", ":")),
        "by": by,
    }


# A user's name, room, icon and tags for a device (``device_overrides``) travel as the
# document of this kind, so a hub shows its devices as the app does, offline too.
DEVICE = "device"


def override_document(
    name: str | None, room: str | None, icon: str | None, tags: list[str] | None
) -> dict[str, Any]:
    """The fields a user set for a device, from its ``device_overrides`` row (NULL: not
    set; room "": "no room" chosen, shown as null)."""
    fields: dict[str, Any] = {}
    if name is not None:
        fields["name"] = name
    if room is not None:
        fields["room"] = room if room != "" else None
    if icon is not None:
        fields["icon"] = icon
    if tags is not None:
        fields["tags"] = list(tags)
    return fields


def stored_documents(
    conn: Any, home: str | None = None
) -> Iterator[tuple[str, str, str, dict[str, Any], str | None]]:
    """(home, kind, doc_id, document, updated_by) of every stored document, or one home's:
    the gateway's documents, then each device's user-set fields (kind ``device``)."""
    where, params = ("", ()) if home is None else (" WHERE home_id = %s", (home,))
    docs = "SELECT home_id, kind, doc_id, document, updated_by FROM gateway_documents"
    for row in conn.execute(docs + where + " ORDER BY home_id, kind, doc_id", params):
        yield row[0], row[1], row[2], row[3], row[4]
    devices = "SELECT home_id, device_id, name, room, icon, tags, updated_by FROM device_overrides"
    for h, device, name, room, icon, tags, by in conn.execute(
        devices + where + " ORDER BY home_id, device_id", params
    ):
        yield h, DEVICE, device, override_document(name, room, icon, tags), by
