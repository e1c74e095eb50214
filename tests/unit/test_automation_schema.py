"""/openapi.json types every automation trigger, condition and action kind, as the
automation engine's reader knows them (gateway.automation_schema)."""

from __future__ import annotations

from domain.automation import read_actions, read_conditions, read_triggers
from gateway import automation_schema as s
from gateway.openapi import document
from gateway.routes import all_endpoints


def test_the_kinds_and_fields_are_the_readers():
    assert s.TRIGGER_FIELDS == read_triggers._TRIGGER_FIELDS
    assert {k: v for k, v in read_triggers._TRIGGER_NEEDS.items() if v} == s.TRIGGER_NEEDS
    assert s.CONDITION_FIELDS == read_conditions._CONDITION_FIELDS
    assert {k: v for k, v in read_conditions._CONDITION_NEEDS.items() if v} == s.CONDITION_NEEDS
    assert set(s.ACTION_FIELDS) == set(read_actions.ACTIONS)
    for kind, names in read_actions._ACTION_FIELDS.items():
        # the reader also takes each kind's key as its spelling ("notify": "text")
        assert set(s.ACTION_FIELDS[kind]) >= set(names) - {kind, "scene"}, kind


def test_the_document_refers_only_to_schemas_it_has():
    doc = document(all_endpoints())
    schemas = doc["components"]["schemas"]
    refs: set[str] = set()

    def walk(node):
        if isinstance(node, dict):
            if "$ref" in node:
                refs.add(node["$ref"].removeprefix(s.REF))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(doc)
    assert refs and refs <= set(schemas)
    body = doc["paths"]["/v1/homes/{home_id}/automations/{automation_id}"]["put"]
    props = body["requestBody"]["content"]["application/json"]["schema"]["properties"]
    assert props["triggers"]["items"]["oneOf"] == [{"$ref": s.REF + "AutomationTrigger"}]
    kinds = [r["$ref"] for r in schemas["AutomationTrigger"]["oneOf"]]
    assert len(kinds) == len(read_triggers.TRIGGERS)
    state = schemas["AutomationTrigger_state"]
    assert state["required"] == ["trigger", "device_id"]
    assert state["properties"]["trigger"]["enum"] == ["state"]
