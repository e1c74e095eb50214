"""The one role matrix of the gateway (CONTRACT.md section 5).

Every route declares the permission it needs (``gateway.api.Endpoint.permission``); the
dispatcher checks it against the caller's role in the home of the path before the handler
runs. Nothing else decides who may do what.

| permission | what it covers | owner | admin | member | guest |
|---|---|---|---|---|---|
| view      | read devices, shadows, history, commands, groups, scenes, automations, members, notifications | yes | yes | yes | yes |
| control   | send commands (device, group), run scenes, voice | yes | yes | yes | no |
| configure | device registry changes, pairing, groups, scenes, automations | yes | yes | no | no |
| manage    | members and their roles, hub MQTT logins, removing the home | yes | no | no | no |
"""  # noqa: E501

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    VIEW = "view"
    CONTROL = "control"
    CONFIGURE = "configure"
    MANAGE = "manage"


ROLES = ("owner", "admin", "member", "guest")

MATRIX: dict[str, frozenset[Permission]] = {
    "owner": frozenset(Permission),
    "admin": frozenset({Permission.VIEW, Permission.CONTROL, Permission.CONFIGURE}),
    "member": frozenset({Permission.VIEW, Permission.CONTROL}),
    "guest": frozenset({Permission.VIEW}),
}


def allowed(role: str | None, permission: Permission) -> bool:
    return role is not None and permission in MATRIX.get(role, frozenset())


def permissions_of(role: str) -> list[str]:
    """The role's permissions, in the order of the enum (for API responses)."""
    granted = MATRIX.get(role, frozenset())
    return [p.value for p in Permission if p in granted]
