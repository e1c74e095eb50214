"""An automation pasted as YAML (one entry of Home Assistant's automations.yaml) -> the
JSON document ``domain.automation.parse`` reads.

PyYAML's safe loader, with three changes so a paste means what its author meant and
nothing a JSON document could not say gets through:

- YAML 1.1 reads ``07:30`` as the base-60 integer 450 and ``2024-05-01`` as a date;
  here both stay text, so times of day stay times of day;
- aliases (``*name``) are refused: they can make a small text expand without bound or
  refer to themselves, and automations do not need them;
- what JSON has no form for (non-text keys, NaN, infinities, dates, binary, sets) is
  refused with its path, and a key given twice in one mapping is refused (as the JSON
  reader does: which one did the author mean?).

Text that is not YAML raises :class:`YamlSyntaxError` with the line and column (1-based)
where the parser gave up, so an API can answer 400 pointing there. :func:`locate` finds
the line of a field path (``triggers[0].at``) in the text, so problems found later (by
``parse``) can point at the line too.

Pure except for the parser itself (no files, no network: the text is given).
"""

from __future__ import annotations

import math
import re
from typing import Any, Final, cast

import yaml

from domain.automation.parse import AutomationInvalid
from domain.strictjson import MAX_DEPTH, JsonRejected, join, scan, short

MAX_YAML_CHARS: Final = 256 * 1024


class YamlSyntaxError(AutomationInvalid):
    """The text is not YAML (or uses what is refused while reading: aliases, a repeated
    key); ``line`` and ``column`` are 1-based, None when the parser did not say."""

    def __init__(self, message: str, line: int | None, column: int | None) -> None:
        where = f"line {line}, column {column}: " if line is not None else ""
        super().__init__([("", f"not YAML: {where}{message}")])
        self.message = message
        self.line = line
        self.column = column


class _AutomationLoader(yaml.SafeLoader):
    """SafeLoader without sexagesimal numbers, timestamps, aliases and repeated keys."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = cast(Any, self).peek_event()  # untyped in the stubs
            raise yaml.composer.ComposerError(
                None,
                None,
                "aliases (*name) are not supported; write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            if key is not None and key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"{short(key)} is given twice in this mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# Resolvers are class-level lists shared with SafeLoader: build our own table. Numbers
# keep their decimal, octal, hex and binary forms; the base-60 ones ("7:30" = 450) and
# timestamps go, so those scalars stay text.
_NUMBER_TAGS: Final = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")
_AutomationLoader.yaml_implicit_resolvers = {
    first: [
        (tag, regexp)
        for tag, regexp in resolvers
        if tag not in (*_NUMBER_TAGS, "tag:yaml.org,2002:timestamp")
    ]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_AutomationLoader.add_implicit_resolver(
    "tag:yaml.org,2002:int",
    re.compile(
        r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0[0-7_]+
        |[-+]?(?:0|[1-9][0-9_]*)
        |[-+]?0x[0-9a-fA-F_]+)$""",
        re.X,
    ),
    list("-+0123456789"),
)
_AutomationLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(
        r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+][0-9]+)?
        |\.[0-9][0-9_]*(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""",
        re.X,
    ),
    list("-+0123456789."),
)


def parse_yaml(text: str) -> dict[str, Any]:
    """The automation document in ``text``, or AutomationInvalid saying why not."""
    if not isinstance(text, str):
        raise AutomationInvalid([("", "YAML must be given as text")])
    if len(text) > MAX_YAML_CHARS:
        raise AutomationInvalid([("", f"is {len(text)} characters; at most {MAX_YAML_CHARS}")])
    try:
        doc = yaml.load(text, Loader=_AutomationLoader)
    except yaml.YAMLError as exc:
        raise _syntax_error(exc) from None
    except RecursionError:
        raise AutomationInvalid([("", f"nests more than {MAX_DEPTH} levels deep")]) from None
    if isinstance(doc, list):
        raise AutomationInvalid(
            [
                (
                    "",
                    f"is a list of {len(doc)} items; automations.yaml holds a list of "
                    "automations: paste one of them (a mapping with alias, triggers, actions)",
                )
            ]
        )
    if not isinstance(doc, dict):
        raise AutomationInvalid(
            [("", f"must be a mapping (alias, triggers, actions), got {_yaml_kind(doc)}")]
        )
    _check_json(doc)
    return doc


def _check_json(doc: dict[str, Any]) -> None:
    problems: list[tuple[str, str]] = []
    stack: list[tuple[Any, str]] = [(doc, "")]
    while stack and len(problems) < 20:
        value, path = stack.pop()
        if isinstance(value, dict):
            for key, child in value.items():
                if not isinstance(key, str):
                    where = f"{path}[{short(key)}]" if path else short(key)
                    problems.append((where, f"a key must be text, got {_yaml_kind(key)}"))
                    continue
                stack.append((child, join(path, key)))
        elif isinstance(value, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append((path, "NaN and infinities are not numbers an automation can use"))
        elif value is not None and not isinstance(value, str | int | float | bool):
            problems.append((path, f"{_yaml_kind(value)} has no JSON form"))
    if problems:
        raise AutomationInvalid(sorted(problems))
    try:
        scan(doc)  # depth, NUL and unpaired surrogates, as for JSON input
    except JsonRejected as exc:
        raise AutomationInvalid([("", exc.message)]) from None


def _yaml_kind(value: Any) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()}: quote on/off/yes/no to keep them text)"
    if isinstance(value, str):
        return "text"
    if isinstance(value, int | float):
        return f"a number ({value})"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _syntax_error(exc: yaml.YAMLError) -> YamlSyntaxError:
    """The parser's complaint in one line, with where it was (1-based)."""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        what = exc.problem or ""
        if exc.context:
            # Where the construct it was reading began: often the line with the mistake
            # ("at: [22:00" is only found wanting at the next key).
            began = exc.context_mark
            at = f" at line {began.line + 1}" if began and began is not mark else ""
            what = f"{what} ({exc.context}{at})".strip()
        if mark is not None:
            return YamlSyntaxError(what[:300] or "unreadable", mark.line + 1, mark.column + 1)
    text = " ".join(line.strip() for line in str(exc).strip().splitlines()[:4])
    return YamlSyntaxError(text[:300], None, None)


# -- where a field path stands in the text --------------------------------------------------
_STEP = re.compile(r"\.?([A-Za-z0-9_-]+)|\[(\d+)\]")


def locate(text: str, path: str) -> int | None:
    """The 1-based line of ``path`` (``actions[2].parameters.brightness``) in YAML ``text``;
    the nearest enclosing field's line when the path goes further than the text (a missing
    field), None when the text is not YAML. ``[0]`` on a mapping is the mapping itself (a
    single object where a list is expected counts as a list of one)."""
    try:
        node = yaml.compose(text, Loader=_AutomationLoader)
    except (yaml.YAMLError, RecursionError):
        return None
    if node is None:
        return None
    line: int = node.start_mark.line + 1
    pos = 0
    while pos < len(path):
        step = _STEP.match(path, pos)
        if step is None:
            break  # an odd key ['a b']: the line reached so far
        pos = step.end()
        key, index = step.group(1), step.group(2)
        found: Any = None
        if index is not None and isinstance(node, yaml.SequenceNode):
            found = node.value[int(index)] if int(index) < len(node.value) else None
        elif index == "0" and isinstance(node, yaml.MappingNode):
            found = node
        elif key is not None and isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                    line = key_node.start_mark.line + 1
                    found = value_node
                    break
        if found is None:
            break
        node = found
        if not isinstance(node, yaml.MappingNode) or index is not None:
            line = node.start_mark.line + 1
    return line
