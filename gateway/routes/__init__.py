"""Every REST route of the gateway, declared once (``gateway.api.Endpoint``)."""

from __future__ import annotations

from gateway.api import Endpoint
from gateway.routes import (
    account,
    areas,
    auth,
    automations,
    commands,
    devices,
    groups,
    home_settings,
    homes,
    logbook,
    members,
    misc,
    notifications,
    scenes,
    system,
    voice,
)


def all_endpoints() -> list[Endpoint]:
    return [
        *system.ENDPOINTS,
        *auth.ENDPOINTS,
        *homes.ENDPOINTS,
        *account.ENDPOINTS,
        *home_settings.ENDPOINTS,
        *devices.ENDPOINTS,
        *areas.ENDPOINTS,
        *logbook.ENDPOINTS,
        *commands.ENDPOINTS,
        *groups.ENDPOINTS,
        *scenes.ENDPOINTS,
        *automations.ENDPOINTS,
        *members.ENDPOINTS,
        *notifications.ENDPOINTS,
        *misc.ENDPOINTS,
        *voice.ENDPOINTS,
    ]
