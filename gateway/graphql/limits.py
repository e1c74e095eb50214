"""Depth and cost limits: an abusive query is refused before it runs, with a clear error.

Both are this validation rule. Depth counts every field, introspection's too (its types
nest without end: ``__type { fields { type { fields ...``); the standard introspection
query, 15 deep, passes. Cost: a field costs 1,
plus what it asks for below it; a list multiplies that by its expected length (a home's
devices: ``ROOT_LIST``; lists inside a device: ``INNER_LIST``); a field that runs a query
of its own per parent (``history``) costs ``EXPENSIVE``. Fragments count where they are
spread. Aliases asking for the same thing twice pay twice.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    InlineFragmentNode,
    OperationDefinitionNode,
    SchemaMetaFieldDef,
    SelectionSetNode,
    TypeMetaFieldDef,
    ValidationRule,
)

MAX_DEPTH = 16
MAX_COST = 50_000
MAX_ALIASES = 30
ROOT_LIST = 100  # devicesByHome, scenes ...: a big home
INNER_LIST = 5  # capabilities, attributes, points per device ...: a few
EXPENSIVE = {"history": 250}  # a PostgreSQL query per device

COST_CODE = "query_too_costly"
DEPTH_CODE = "query_too_deep"


_SCHEMA_FIELD = SchemaMetaFieldDef
_TYPE_FIELD = TypeMetaFieldDef


def _unwrap(t: Any) -> tuple[Any, bool]:
    is_list = False
    while isinstance(t, GraphQLNonNull | GraphQLList):
        if isinstance(t, GraphQLList):
            is_list = True
        t = t.of_type
    return t, is_list


class CostRule(ValidationRule):
    """Refuses an operation whose cost is over ``MAX_COST``."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
        schema = self.context.schema
        root = schema.get_root_type(node.operation)
        if root is None:
            return
        self.deepest = 0
        cost = self._cost(node.selection_set, root, depth=0, seen=frozenset())
        if self.deepest > MAX_DEPTH:
            self.report_error(
                GraphQLError(
                    f"query depth {self.deepest} is over the limit of {MAX_DEPTH}: nest "
                    "fewer fields (docs/graphql.md)",
                    node,
                    extensions={"code": DEPTH_CODE, "status": 400, "depth": self.deepest},
                )
            )
        elif cost > MAX_COST:
            self.report_error(
                GraphQLError(
                    f"query cost {cost:,} is over the limit of {MAX_COST:,}: ask for fewer "
                    "fields, fewer aliases or less history per query (docs/graphql.md)",
                    node,
                    extensions={"code": COST_CODE, "status": 400, "cost": cost},
                )
            )

    def _cost(
        self, sel: SelectionSetNode | None, parent: Any, depth: int, seen: frozenset[str]
    ) -> int:
        if sel is None or not isinstance(parent, GraphQLObjectType):
            return 0
        self.deepest = max(self.deepest, depth)
        if depth > MAX_DEPTH:  # deep enough to refuse: no need to go further
            return 0
        total = 0
        for node in sel.selections:
            if isinstance(node, FieldNode):
                field = parent.fields.get(node.name.value)
                if field is None and node.name.value == "__schema":
                    field = _SCHEMA_FIELD
                elif field is None and node.name.value == "__type":
                    field = _TYPE_FIELD
                if field is None:
                    continue
                inner, is_list = _unwrap(field.type)
                below = self._cost(node.selection_set, inner, depth + 1, seen)
                own = EXPENSIVE.get(node.name.value, 1)
                factor = (ROOT_LIST if depth == 0 else INNER_LIST) if is_list else 1
                total += own + factor * below
            elif isinstance(node, InlineFragmentNode):
                cond = node.type_condition
                target = self.context.schema.get_type(cond.name.value) if cond else parent
                total += self._cost(node.selection_set, target, depth, seen)
            elif isinstance(node, FragmentSpreadNode):
                name = node.name.value
                frag = self.context.get_fragment(name)
                if frag is None or name in seen:  # a cycle is the validator's to report
                    continue
                target = self.context.schema.get_type(frag.type_condition.name.value)
                total += self._cost(frag.selection_set, target, depth, seen | {name})
        return total
