"""GET /v1/me, DELETE /v1/homes/{h} and the owners' hub login routes (in-memory backend;
tests/integration/test_manage.py and test_mqtt_acl.py drive the real stores and broker)."""

from __future__ import annotations

import httpx
import pytest

from gateway.app import create_app
from gateway.auth import issue_token
from gateway.memory import memory_backend


@pytest.fixture
def backend():
    b = memory_backend()
    b.store.add_user("owner1", "password-1")
    b.store.add_user("member1", "password-1")
    b.store.add_home("h1", "owner1", name="Flat")
    b.store.add_home("h2", "owner1")
    b.store.roles[("h1", "member1")] = "member"
    return b


async def call(backend, method, path, user="owner1", **kwargs):
    headers = {"Authorization": "Bearer " + issue_token(backend.token_secret, user)[0]}
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        return await client.request(method, path, headers=headers, **kwargs)


async def test_me_names_the_caller_and_their_homes(backend):
    resp = await call(backend, "GET", "/v1/me", "member1")
    assert resp.status_code == 200
    assert resp.json() == {
        "username": "member1",
        "homes": [
            {"home_id": "h1", "name": "Flat", "role": "member", "permissions": ["view", "control"]}
        ],
    }


async def test_a_user_changes_their_own_password(backend):
    path = "/v1/me/password"
    wrong = await call(
        backend,
        "PUT",
        path,
        "member1",
        json={"current_password": "nope-nope", "new_password": "long-enough-2"},
    )
    assert wrong.status_code == 403
    short = await call(
        backend,
        "PUT",
        path,
        "member1",
        json={"current_password": "password-1", "new_password": "short"},
    )
    assert short.status_code == 422 and short.json()["error"]["details"][0]["path"] == (
        "new_password"
    )
    done = await call(
        backend,
        "PUT",
        path,
        "member1",
        json={"current_password": "password-1", "new_password": "long-enough-2"},
    )
    assert done.status_code == 204
    assert backend.store.authenticate("member1", "long-enough-2")
    assert not backend.store.authenticate("member1", "password-1")


async def test_owner_adds_lists_rotates_and_revokes_hub_logins(backend):
    added = (await call(backend, "POST", "/v1/homes/h1/hubs")).json()
    assert added["home_id"] == "h1" and added["password"]
    name = added["username"]
    listed = (await call(backend, "GET", "/v1/homes/h1/hubs")).json()
    assert [(h["username"], h["revoked"]) for h in listed["hubs"]] == [(name, False)]
    assert (await call(backend, "GET", "/v1/homes/h2/hubs")).json()["hubs"] == []
    rotated = await call(backend, "POST", f"/v1/homes/h1/hubs/{name}/rotate")
    assert rotated.status_code == 200 and rotated.json()["password"] != added["password"]
    # Another home's path does not reach this login.
    assert (await call(backend, "DELETE", f"/v1/homes/h2/hubs/{name}")).status_code == 404
    assert (await call(backend, "DELETE", f"/v1/homes/h1/hubs/{name}")).status_code == 204
    again = await call(backend, "DELETE", f"/v1/homes/h1/hubs/{name}")
    assert again.status_code == 409 and "revoked" in again.json()["error"]["message"]
    assert backend.admin.syncs == 3  # add, rotate, revoke each reloaded the broker


async def test_members_cannot_manage_hubs_or_remove_the_home(backend):
    for method, path in (("GET", "/v1/homes/h1/hubs"), ("DELETE", "/v1/homes/h1")):
        resp = await call(backend, method, path, "member1")
        assert resp.status_code == 403 and "manage" in resp.json()["error"]["message"]


async def test_owner_removes_a_home_and_only_that_home(backend):
    resp = await call(backend, "DELETE", "/v1/homes/h1")
    assert resp.status_code == 200 and resp.json()["removed"] is True
    assert (await call(backend, "GET", "/v1/homes/h1")).status_code == 404
    homes = (await call(backend, "GET", "/v1/me")).json()["homes"]
    assert [h["home_id"] for h in homes] == ["h2"]


async def test_without_a_broker_hook_the_routes_say_where_to_do_it(backend):
    backend.admin = None
    resp = await call(backend, "GET", "/v1/homes/h1/hubs")
    assert resp.status_code == 503 and "homestream hubs" in resp.json()["error"]["message"]


async def test_docs_serves_swagger_ui_from_the_gateway(backend):
    transport = httpx.ASGITransport(app=create_app(backend=backend))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        page = await client.get("/docs")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        assert "http" not in page.text.replace("http-equiv", "")  # nothing from a CDN
        for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css",
                      "/static/api-docs.js"):  # fmt: skip
            assert f'"{asset}"' in page.text
            got = await client.get(asset)
            assert got.status_code == 200 and len(got.content) > 100, asset
        assert "/openapi.json" in (await client.get("/static/api-docs.js")).text
