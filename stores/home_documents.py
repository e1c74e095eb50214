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


def stored_documents(
    conn: Any, home: str | None = None
) -> Iterator[tuple[str, str, str, dict[str, Any], str | None]]:
    """(home, kind, doc_id, document, updated_by) of every stored document, or one home's."""
    sql = "SELECT home_id, kind, doc_id, document, updated_by FROM gateway_documents"
    params: tuple[Any, ...] = ()
    if home is not None:
        sql += " WHERE home_id = %s"
        params = (home,)
    sql += " ORDER BY home_id, kind, doc_id"
    for row in conn.execute(sql, params):
        yield row[0], row[1], row[2], row[3], row[4]
