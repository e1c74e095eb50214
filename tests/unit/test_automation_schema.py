"""/openapi.json types every automation trigger, condition and action kind, as the
automation engine's reader knows them (gateway.automation_schema)."""

from __future__ import annotations

from domain.automation import read_actions, read_conditions, read_triggers
from gateway import automation_schema as s
from gateway.openapi import document
from gateway.routes import all_endpoints


def test_every_kind_of_the_reader_is_typed():
    schemas = s.components()
    for prefix, kinds in (
        ("AutomationTrigger", read_triggers.TRIGGERS),
        ("AutomationCondition", read_conditions.CONDITIONS),
        ("AutomationAction", read_actions.ACTIONS),
    ):
        assert [r["$ref"] for r in schemas[prefix]["oneOf"]] == [
            f"{s.REF}{prefix}_{k}" for k in kinds
        ]
        for kind in kinds:
            for name, field in schemas[f"{prefix}_{kind}"]["properties"].items():
                assert field, f"{prefix}_{kind}.{name} has no type"


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
