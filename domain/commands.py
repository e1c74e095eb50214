"""Commands -> desired state, and when a command counts as done.

``plan_command`` turns an app's ``{capability, command, parameters}`` into the desired-state patch
that goes into the shadow and the hub's command message, or raises ``CommandRejected`` with a
sentence the app can show. Only the stream worker plans: it alone holds the device's current
state, which ``toggle`` reads, and the hub applies the ``desired`` it sends. ``validate_command``
is the same check without the plan, for whoever must refuse a bad request before it is sent
(the gateway). ``desired_satisfied`` says whether the reported state has come to match a patch
(the COMPLETED rule of CONTRACT.md section 3).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from domain.capabilities import (
    CAPABILITIES,
    Command,
    FromParameter,
    SetValue,
    Toggle,
    format_value,
    known_capabilities,
)
from domain.capabilities import capability as lookup_capability
from domain.dedupe import covers
from domain.validate import INVALID, ErrorCode, check_value, did_you_mean, received


class CommandRejected(Exception):
    """The command cannot be planned; ``reason`` is for people, ``code`` for programs."""

    def __init__(self, reason: str, code: ErrorCode, path: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code
        self.path = path  # the offending parameter, when there is one

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code.value, "message": self.reason}


def validate_command(
    capabilities: Iterable[str],
    capability: str,
    command: str,
    parameters: Mapping[str, Any] | None,
) -> None:
    """Raise ``CommandRejected`` exactly when ``plan_command`` would, with the same code, reason
    and path; otherwise return.

    No current state is needed: the only effect that reads it (``toggle``) cannot fail, so
    whether a command is acceptable never depends on the device's state.
    """
    _check(capabilities, capability, command, parameters)


def plan_command(
    capabilities: Iterable[str],
    capability: str,
    command: str,
    parameters: Mapping[str, Any] | None,
    reported: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The desired-state patch for ``command`` of ``capability`` on a device with
    ``capabilities`` and current ``reported`` state (only ``toggle`` looks at it).

    Raises ``CommandRejected`` (and nothing else, whatever the input) when the device lacks the
    capability, the command does not exist, or a parameter is missing, unknown, of the wrong
    type or out of range. A null optional parameter counts as absent.
    """
    cmd, params = _check(capabilities, capability, command, parameters)
    current = reported if isinstance(reported, Mapping) else {}

    patch: dict[str, Any] = {}
    for effect in cmd.effects:
        if isinstance(effect, SetValue):
            value: Any = effect.value
        elif isinstance(effect, FromParameter):
            if effect.parameter not in params:
                continue  # an optional parameter that was not given
            value = params[effect.parameter]
        elif isinstance(effect, Toggle):
            value = effect.off if _get_path(current, effect.path) == effect.on else effect.on
        else:  # pragma: no cover - the Effect union is closed
            raise CommandRejected(f"{cmd.name} cannot be planned", ErrorCode.UNKNOWN_COMMAND)
        _set_path(patch, effect.path, value)
    return patch


def _check(
    capabilities: Iterable[str], capability: Any, command: Any, parameters: Any
) -> tuple[Command, dict[str, Any]]:
    """The command and its checked, normalised parameters; one check for both entry points,
    so the gateway and the worker cannot disagree on what is acceptable."""
    device_caps = known_capabilities(capabilities)
    supported = ", ".join(c.name for c in device_caps) or "no capabilities"

    if not isinstance(capability, str):
        raise CommandRejected(
            f"capability must be a capability name such as 'ON_OFF', got {received(capability)}",
            ErrorCode.WRONG_TYPE,
            "capability",
        )
    cap = lookup_capability(capability)
    if cap is None:
        raise CommandRejected(
            f"'{capability}' is not a capability"
            + (did_you_mean(capability, CAPABILITIES) or f"; known: {', '.join(CAPABILITIES)}"),
            ErrorCode.UNKNOWN_CAPABILITY,
            "capability",
        )
    if cap not in device_caps:
        raise CommandRejected(
            f"device has no {cap.name} capability; it supports {supported}",
            ErrorCode.UNSUPPORTED_CAPABILITY,
            "capability",
        )

    if not isinstance(command, str):
        raise CommandRejected(
            f"command must be a command name, got {received(command)}",
            ErrorCode.WRONG_TYPE,
            "command",
        )
    cmd = cap.command(command)
    if cmd is None:
        if not cap.commands:
            reason = f"{cap.name} has no commands; it only reports state"
        else:
            names = [c.name for c in cap.commands]
            reason = f"{cap.name} has no command '{command}'; try {', '.join(names)}"
            # A command of another capability the device has is a common mix-up.
            for other in device_caps:
                if other is not cap and other.command(command) is not None:
                    reason += f" (or use capability {other.name} for '{command}')"
                    break
        raise CommandRejected(reason, ErrorCode.UNKNOWN_COMMAND, "command")

    return cmd, _check_parameters(cmd, parameters)


def _check_parameters(cmd: Command, parameters: Any) -> dict[str, Any]:
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, Mapping):
        raise CommandRejected(
            f"parameters must be an object, got {received(parameters)}",
            ErrorCode.WRONG_TYPE,
            "parameters",
        )
    takes = [p.name for p in cmd.parameters]
    takes_text = f"it takes {', '.join(takes)}" if takes else "it takes no parameters"
    for key in parameters:
        if not isinstance(key, str) or cmd.parameter(key) is None:
            hint = did_you_mean(key, takes) if isinstance(key, str) else ""
            raise CommandRejected(
                f"{cmd.name} has no parameter {format_value(key)}; {takes_text}{hint}",
                ErrorCode.UNKNOWN_PARAMETER,
                str(key),
            )
    out: dict[str, Any] = {}
    for p in cmd.parameters:
        value = parameters.get(p.name)
        if value is None:
            if p.required:
                raise CommandRejected(
                    f"{cmd.name} needs parameter '{p.name}' ({p.shape_text()})",
                    ErrorCode.MISSING,
                    p.name,
                )
            continue
        checked, errors = check_value(p, value, p.name)
        if checked is INVALID:
            first = errors[0]
            raise CommandRejected(first.reason, first.code, first.path)
        out[p.name] = checked
    return out


def _get_path(doc: Mapping[str, Any], path: str) -> Any:
    node: Any = doc
    for part in path.split("."):
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _set_path(doc: dict[str, Any], path: str, value: Any) -> None:
    parts = path.split(".")
    node = doc
    for part in parts[:-1]:
        node = node.setdefault(part, {})
    node[parts[-1]] = value


def desired_satisfied(desired_patch: Mapping[str, Any], reported: Mapping[str, Any]) -> bool:
    """True when ``reported`` matches every leaf of ``desired_patch``.

    Same equality as ``domain.dedupe`` (1 == 1.0, booleans are not numbers, objects leaf by
    leaf) but without deadbands: a thermostat set to 21 is done at 21, not at 20.6.
    """
    if not isinstance(desired_patch, Mapping):
        return False
    return covers(reported if isinstance(reported, Mapping) else {}, desired_patch)
