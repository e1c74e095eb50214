"""An automation pasted as YAML (one entry of Home Assistant's automations.yaml) -> the
JSON document ``domain.automation.parse`` reads.

PyYAML's safe loader, with three changes so a paste means what its author meant and
nothing a JSON document could not say gets through:

- YAML 1.1 reads ``07:30`` as the base-60 integer 450 and ``2024-05-01`` as a date;
  here both stay text, so times of day stay times of day;
- aliases (``*name``) are refused: they can make a small text expand without bound or
  refer to themselves, and automations do not need them;
- what JSON has no form for (non-text keys, NaN, infinities, dates, binary, sets) is
  refused with its path.

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


class _AutomationLoader(yaml.SafeLoader):
    """SafeLoader without sexagesimal numbers, timestamps and aliases."""

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
        raise AutomationInvalid([("", f"not YAML: {_first_line(exc)}")]) from None
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


def _first_line(exc: yaml.YAMLError) -> str:
    text = str(exc).strip().splitlines()
    return " ".join(line.strip() for line in text[:4])[:300]
