"""The request context of ``/v1/graphql`` and the one way a resolver reaches the gateway.

Every resolver that touches a home goes through :func:`admitted` or :func:`invoke` with the
``op_id`` of the REST route it mirrors (``GET .../devices`` -> ``list_devices``): the route's
declared permission and ``gateway.api.admit`` decide, exactly as for REST, and a REST
handler's errors (``ApiError``) become GraphQL errors with the same ``code`` (and the HTTP
``status``) in ``extensions``. Mutations run the REST handler itself (:func:`invoke`), so a
body is validated by the same schema and the same checks.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLError
from starlette.requests import HTTPConnection
from strawberry.dataloader import DataLoader

from gateway import auth
from gateway.api import Ctx, Endpoint, admit, check_body, check_rate, parse_query, user_of
from gateway.backend import Backend
from gateway.errors import ApiError, unauthorized, unavailable_reason
from gateway.routes import all_endpoints
from stores.redis_state import Entry

log = logging.getLogger("homestream.gateway.graphql")

ENDPOINTS: dict[str, Endpoint] = {e.op_id: e for e in all_endpoints()}

DeviceKey = tuple[str, str]  # (home, device)


def graphql_error(exc: ApiError) -> GraphQLError:
    """An ApiError as a GraphQL error: the same code and message, the HTTP status."""
    extensions: dict[str, Any] = {"code": exc.code, "status": exc.status}
    if exc.details:
        extensions["details"] = exc.details
    return GraphQLError(exc.message, extensions=extensions)


@contextlib.contextmanager
def api_errors() -> Iterator[None]:
    """ApiError -> its GraphQL error; a backing server down -> ``unavailable``; anything
    else is logged and reported as ``internal_error`` (never its text)."""
    try:
        yield
    except GraphQLError:
        raise
    except ApiError as exc:
        raise graphql_error(exc) from None
    except Exception as exc:
        reason = unavailable_reason(exc)
        if reason is not None:
            log.warning("graphql: %s (%s)", reason, exc)
            raise graphql_error(ApiError(503, reason)) from None
        log.exception("graphql resolver failed")
        raise graphql_error(
            ApiError(500, "internal error; the gateway's log has the details")
        ) from None


@dataclass
class GraphQLContext:
    """One HTTP request, or one graphql-transport-ws connection."""

    connection: HTTPConnection
    backend: Backend
    token: str | None = None
    token_error: str | None = None
    connection_params: Any = None  # graphql-transport-ws: connection_init's payload
    _user: str | None = None
    _rated: bool = False
    devices: DataLoader[DeviceKey, Entry | None] = field(init=False)
    _roles: dict[tuple[str, str], asyncio.Task[str | None]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.devices = DataLoader(load_fn=self._load_devices)

    async def role_of(self, home: str, user: str) -> str | None:
        """The caller's role, looked up once per request: the resolvers of one query then
        go on together, and their dataloader reads are one batch."""
        key = (home, user)
        if key not in self._roles:
            self._roles[key] = asyncio.ensure_future(
                self.backend.run(self.backend.store.role_of, home, user)
            )
        return await self._roles[key]

    @classmethod
    def of(cls, connection: HTTPConnection, backend: Backend) -> GraphQLContext:
        ctx = cls(connection, backend)
        try:
            ctx.token = auth.token_from_scope(connection.headers, connection.query_params)
        except auth.TokenError as exc:
            ctx.token_error = str(exc)
        return ctx

    def use_token(self, token: str | None) -> None:
        """A token given later (``connection_init``'s payload of a WebSocket)."""
        if token:
            self.token, self.token_error, self._user = token, None, None

    async def user(self) -> str:
        """The caller (401 without a valid token); the per-user rate limit counts each
        HTTP request once, as REST does."""
        if self._user is None:
            if self.token_error is not None:
                raise unauthorized(self.token_error)
            self._user = user_of(self.backend, self.token)
        if not self._rated:
            self._rated = True
            await check_rate(self.backend, f"user:{self._user}", self.backend.rate_limit)
        return self._user

    async def _load_devices(self, keys: list[DeviceKey]) -> list[Entry | None]:
        """The dataloader's batch: one Redis round trip per home asked about."""
        by_home: dict[str, list[str]] = {}
        for home, dev in keys:
            by_home.setdefault(home, []).append(dev)
        found: dict[DeviceKey, Entry] = {}
        for home, ids in by_home.items():
            entries = await self.backend.run(self.backend.devices.entries, home, ids)
            found.update({(home, d): e for d, e in entries.items()})
        return [found.get(k) for k in keys]


async def admitted(info: Any, op_id: str, path: dict[str, str]) -> tuple[str, str | None]:
    """The caller and their role, when the REST route ``op_id`` would let them in."""
    ctx: GraphQLContext = info.context
    user = await ctx.user()
    role = await admit(ENDPOINTS[op_id], ctx.backend, user, path, ctx.role_of)
    return user, role


async def invoke(
    info: Any,
    op_id: str,
    path: dict[str, str],
    *,
    query: dict[str, str] | None = None,
    body: Any = None,
) -> Any:
    """Run the REST route ``op_id`` for a resolver: the same checks, the same handler; its
    JSON reply (None for 204)."""
    ctx: GraphQLContext = info.context
    endpoint = ENDPOINTS[op_id]
    user, role = await admitted(info, op_id, path)
    q = parse_query(endpoint, {k: v for k, v in (query or {}).items() if v is not None})
    if endpoint.body is not None and (body is not None or endpoint.body_required):
        body = check_body(endpoint, body)
    request = ctx.connection
    response = await endpoint.handler(Ctx(request, ctx.backend, user, role, path, q, body))  # type: ignore[arg-type]
    return json.loads(response.body) if response.body else None
