"""Groups of devices: which members a group command reaches, and its members' command ids.

Both the gateway (to answer at once with the members it expects) and the stream worker
(which sends them) expand a group command with ``plan_group``, over their own view of the
home's devices, by the same rule: a member takes the command when it is in the home and
``validate_command`` accepts it; the others are skipped, each with a reason.

A member's command id is derived from the group command's id (``child_command_id``), so
the two agree on it without asking each other, and a replayed expansion names the same
commands (the worker drops those it already has).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from domain.commands import CommandRejected, validate_command

_CHILD_NS: Final = uuid.UUID("0b6f3d8e-2c1a-4f7e-9a55-7d2e4c1b9f30")


def child_command_id(parent: str, *parts: str) -> str:
    """The id of one share of command ``parent`` (a member device, a scene's action)."""
    return str(uuid.uuid5(_CHILD_NS, "/".join((parent, *parts))))


@dataclass(frozen=True)
class GroupPlan:
    targets: tuple[str, ...]  # members that take the command, in the group's order
    skipped: tuple[tuple[str, str], ...]  # (member, why not)
    # The first member's refusal, for a caller that reports it as the request's error.
    first_rejection: CommandRejected | None = None


def plan_group(
    members: Iterable[Any],
    capabilities_of: Callable[[str], Sequence[str] | None],
    capability: str,
    command: str,
    parameters: Mapping[str, Any] | None,
) -> GroupPlan:
    """Which ``members`` take the command; ``capabilities_of(device)`` is None for a device
    that is not in the home. A member listed twice is commanded once."""
    targets: list[str] = []
    skipped: list[tuple[str, str]] = []
    first: CommandRejected | None = None
    for member in dict.fromkeys(str(m) for m in members):
        caps = capabilities_of(member)
        if caps is None:
            skipped.append((member, "no longer in the home"))
            continue
        try:
            validate_command(caps, capability, command, parameters)
        except CommandRejected as exc:
            first = first or exc
            skipped.append((member, exc.reason))
            continue
        targets.append(member)
    return GroupPlan(tuple(targets), tuple(skipped), first)
