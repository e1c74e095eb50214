"""The role matrix, route by route and role by role.

Every route declares its permission; this table pins each one, and each route is called
by an owner, admin, member and guest of the home, and by a user who is not a member:
allowed roles get past the role check (any answer but 401/403/5xx), the others get 403,
non-members 404, and no token 401.
"""

from __future__ import annotations

import re

import httpx
import pytest

from gateway.api import AUTHENTICATED, PUBLIC
from gateway.app import create_app
from gateway.auth import issue_token
from gateway.memory import memory_backend
from gateway.roles import MATRIX, ROLES, Permission, allowed, permissions_of
from gateway.routes import all_endpoints

V, C, F, M = Permission.VIEW, Permission.CONTROL, Permission.CONFIGURE, Permission.MANAGE
H = "/v1/homes/{home_id}"
EXPECTED = {
    ("GET", "/healthz"): PUBLIC,
    ("GET", "/metrics"): PUBLIC,
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/"): PUBLIC,
    ("POST", "/v1/auth/token"): PUBLIC,
    ("GET", "/v1/homes"): AUTHENTICATED,
    ("GET", "/v1/me"): AUTHENTICATED,
    ("PUT", "/v1/me/password"): AUTHENTICATED,
    ("GET", H): V,
    ("DELETE", H): M,
    ("GET", H + "/hubs"): M,
    ("POST", H + "/hubs"): M,
    ("POST", H + "/hubs/{hub_username}/rotate"): M,
    ("DELETE", H + "/hubs/{hub_username}"): M,
    ("GET", H + "/mode"): V,
    ("PUT", H + "/mode"): Permission.CONTROL,
    ("GET", H + "/settings"): V,
    ("PUT", H + "/settings"): Permission.CONFIGURE,
    ("GET", H + "/devices"): V,
    ("POST", H + "/devices"): F,
    ("GET", H + "/devices/{device_id}"): V,
    ("PATCH", H + "/devices/{device_id}"): F,
    ("DELETE", H + "/devices/{device_id}"): F,
    ("GET", H + "/devices/{device_id}/shadow"): V,
    ("GET", H + "/devices/{device_id}/history"): V,
    ("GET", H + "/areas"): V,
    ("POST", H + "/areas"): F,
    ("PATCH", H + "/areas/{area_id}"): F,
    ("GET", H + "/logbook"): V,
    ("POST", H + "/commands"): C,
    ("GET", H + "/commands/{command_id}"): V,
    ("GET", H + "/groups"): V,
    ("GET", H + "/groups/{group_id}"): V,
    ("PUT", H + "/groups/{group_id}"): F,
    ("DELETE", H + "/groups/{group_id}"): F,
    ("POST", H + "/groups/{group_id}/commands"): C,
    ("GET", H + "/scenes"): V,
    ("GET", H + "/scenes/{scene_id}"): V,
    ("PUT", H + "/scenes/{scene_id}"): F,
    ("DELETE", H + "/scenes/{scene_id}"): F,
    ("POST", H + "/scenes/{scene_id}/run"): C,
    ("GET", H + "/automations"): V,
    ("GET", H + "/automations/{automation_id}"): V,
    ("PUT", H + "/automations/{automation_id}"): F,
    ("DELETE", H + "/automations/{automation_id}"): F,
    ("GET", H + "/automations/{automation_id}/runs"): V,
    ("GET", H + "/members"): V,
    ("GET", H + "/members/{username}"): V,
    ("PUT", H + "/members/{username}"): M,
    ("DELETE", H + "/members/{username}"): M,
    ("POST", H + "/discovery/permit"): F,
    ("GET", H + "/notifications"): V,
    # per caller: any member sets and reads their own channels
    ("GET", H + "/notifications/channels"): V,
    ("PUT", H + "/notifications/channels"): V,
    ("POST", H + "/voice"): C,
}
ENDPOINTS = all_endpoints()
HOME_ENDPOINTS = [e for e in ENDPOINTS if isinstance(e.access, Permission)]


def test_matrix_is_the_contract():
    assert MATRIX["owner"] == set(Permission)
    assert MATRIX["admin"] == {V, C, F}
    assert MATRIX["member"] == {V, C}
    assert MATRIX["guest"] == {V}
    assert permissions_of("member") == ["view", "control"]
    assert not allowed(None, V)
    assert not allowed("stranger", V)


def test_every_route_declares_the_expected_permission():
    declared = {(e.method, e.path): e.access for e in ENDPOINTS}
    assert declared == EXPECTED


def _url(path: str) -> str:
    values = {
        "home_id": "h1",
        "username": "someone",
        "command_id": "c1",
        "hub_username": "hub-h1-abc123",
        "area_id": "kitchen",
    }
    return re.sub(r"{([a-z_]+)}", lambda m: values.get(m.group(1), "x1"), path)


@pytest.fixture
def backend():
    b = memory_backend()
    b.scene_wait_s = 0.05
    b.store.add_user("owner1", "password-1")
    b.store.add_home("h1", "owner1")
    for role in ("admin", "member", "guest"):
        b.store.add_user(f"{role}1", "password-1")
        b.store.roles[("h1", f"{role}1")] = role
    b.store.add_user("stranger", "password-1")
    b.store.add_user("someone", "password-1")
    b.store.add_home("h2", "stranger")
    b.devices.add("h1", "x1", ["ON_OFF"])
    return b


async def _call(backend, method: str, path: str, user: str | None):
    headers = {}
    if user is not None:
        headers["Authorization"] = "Bearer " + issue_token(backend.token_secret, user)[0]
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        kwargs = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        return await client.request(method, _url(path), headers=headers, **kwargs)


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("endpoint", HOME_ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
async def test_role_matrix(backend, endpoint, role):
    assert isinstance(endpoint.access, Permission)
    resp = await _call(backend, endpoint.method, endpoint.path, f"{role}1")
    if allowed(role, endpoint.access):
        assert resp.status_code not in (401, 403), resp.text
        assert resp.status_code < 500 or resp.status_code == 501, resp.text
    else:
        assert resp.status_code == 403, resp.text
        err = resp.json()["error"]
        assert err["code"] == "forbidden"
        assert role in err["message"] and endpoint.access.value in err["message"]


@pytest.mark.parametrize("endpoint", HOME_ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
async def test_non_members_get_404(backend, endpoint):
    resp = await _call(backend, endpoint.method, endpoint.path, "stranger")
    assert resp.status_code == 404, resp.text
    assert resp.json()["error"]["message"] == "home 'h1' not found"


@pytest.mark.parametrize(
    "endpoint",
    [e for e in ENDPOINTS if e.access != PUBLIC],
    ids=lambda e: f"{e.method} {e.path}",
)
async def test_no_token_gets_401(backend, endpoint):
    resp = await _call(backend, endpoint.method, endpoint.path, None)
    assert resp.status_code == 401
    assert resp.headers["www-authenticate"].startswith("Bearer")
    assert resp.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.access == PUBLIC], ids=lambda e: f"{e.method} {e.path}"
)
async def test_public_routes_need_no_token(backend, endpoint):
    resp = await _call(backend, endpoint.method, endpoint.path, None)
    assert resp.status_code in (200, 422), resp.text
