"""Route declarations and the one dispatcher every REST route goes through.

Each route is an :class:`Endpoint`: method, path, the permission it needs, its query
parameters and body schema, its responses. The same declarations make the Starlette routes,
the role checks and /openapi.json, so what is documented is what is enforced.

A request goes: token (401) -> rate limit (429) -> role in the home of the path (404 when
the caller is not a member, 403 when the role lacks the permission) -> query parameters and
body (400 malformed, 413 too large, 415 a content type it does not take, 422 invalid,
naming the field path) -> handler.

A body is JSON, or one of the route's ``body_content_types``: raw bytes for the handler
(``audio/wav``), or, with a reader in ``body_readers``, parsed into the same structure
(an automation in YAML) and then validated exactly as JSON would be. A reader may also
say where each field path stands in the text; 422 details then carry its ``line``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from domain import strictjson
from domain.strictjson import text_problem
from gateway import auth
from gateway.backend import Backend
from gateway.errors import ApiError, unauthorized, validation_error
from gateway.ratelimit import LimiterUnavailable
from gateway.roles import Permission, allowed
from gateway.schema import validate

PUBLIC = "public"  # no token needed
AUTHENTICATED = "authenticated"  # any valid token, no home

Access = Permission | str

# Path parameters: what they match (also their OpenAPI schema). Every id has its rule in
# domain.ids (the schema's "format"); patterns are there for OpenAPI readers.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
_DOC_ID = {"type": "string", "format": "doc-id", "pattern": ID_PATTERN}
PATH_PARAMS: dict[str, dict[str, Any]] = {
    "home_id": {
        "type": "string",
        "format": "home-id",
        "pattern": r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$",
    },
    # Device ids come from hubs: any text that is one MQTT topic level.
    "device_id": {"type": "string", "format": "device-id", "minLength": 1, "maxLength": 128},
    "command_id": {"type": "string", "format": "command-id", "minLength": 1, "maxLength": 128},
    "group_id": _DOC_ID,
    "scene_id": _DOC_ID,
    "automation_id": _DOC_ID,
    "username": {
        "type": "string",
        "format": "username",
        "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.@-]{2,63}$",
    },
    "hub_username": {"type": "string", "pattern": r"^hub-[A-Za-z0-9_-]{1,64}-[0-9a-f]{6}$"},
    "area_id": {"type": "string", "pattern": r"^[a-z0-9][a-z0-9_]{0,63}$"},
}
_PATH_PARAM = re.compile(r"{([a-z_]+)}")
# Ids a PUT creates (or names, for a member): a bad one there is a 422, not a 404.
PUT_PATH_PARAMS = ("group_id", "scene_id", "automation_id", "username")


def check_path_params(method: str, path: dict[str, str]) -> None:
    """An id that cannot exist: 422 when a PUT would create it, else 404. Runs before any
    store sees the id (NUL or a lone surrogate cannot even be sent to PostgreSQL)."""
    for name, value in path.items():
        schema = PATH_PARAMS.get(name)
        problems = validate(value, schema, name) if schema else []
        if not problems:
            continue
        if method == "PUT" and name in PUT_PATH_PARAMS:
            raise validation_error(problems)
        raise ApiError(404, f"{name.removesuffix('_id')} {value!r} not found")


@dataclass(frozen=True)
class Param:
    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False


@dataclass(frozen=True)
class Reply:
    description: str
    schema: dict[str, Any] | None = None  # None: no body
    headers: tuple[str, ...] = ()
    content_type: str = "application/json"


@dataclass
class Ctx:
    request: Request
    backend: Backend
    user: str | None
    role: str | None
    path: dict[str, str]
    query: dict[str, Any]
    body: Any

    @property
    def home_id(self) -> str:
        return self.path["home_id"]


Handler = Callable[[Ctx], Awaitable[Response]]


@dataclass(frozen=True)
class ParsedBody:
    """What a body reader made of a text body: the value (validated next, as JSON is),
    and optionally where a field path stands in the text (a line number, 1-based)."""

    value: Any
    locate: Callable[[str], int | None] | None = None


BodyReader = Callable[[bytes], ParsedBody]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Handler
    access: Access
    summary: str
    tag: str
    responses: dict[int, Reply]
    body: dict[str, Any] | None = None
    body_required: bool = True
    body_content_types: tuple[str, ...] = ("application/json",)
    # Content type -> reader, for text bodies parsed into the body schema's structure.
    body_readers: dict[str, BodyReader] = field(default_factory=dict)
    query: tuple[Param, ...] = ()
    max_body_bytes: int | None = None  # None: the backend's (JSON bodies); audio needs more
    description: str = ""
    operation_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path_params(self) -> list[str]:
        return _PATH_PARAM.findall(self.path)

    @property
    def op_id(self) -> str:
        return self.operation_id or self.handler.__name__

    def error_statuses(self) -> list[int]:
        """The error statuses this route can answer with (documented in OpenAPI)."""
        codes: set[int] = set()
        if self.access != PUBLIC:
            codes |= {401, 429}
        if isinstance(self.access, Permission):
            codes |= {403, 404}
        if self.path_params:
            codes.add(404)
        if self.query:
            codes.add(422)
        if self.body is not None:
            codes |= {400, 413, 415, 422}
        codes |= set(self.extra.get("errors", ()))
        return sorted(codes - set(self.responses))


def ok(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(body, status_code=status, headers=headers)


def no_content() -> Response:
    return Response(status_code=204)


# -- the dispatcher ----------------------------------------------------------------------
def _coerce_query(param: Param, raw: str) -> Any:
    t = param.schema.get("type")
    if t == "integer":
        try:
            return int(raw)
        except ValueError:
            raise validation_error([(param.name, f"must be a whole number, got {raw!r}")]) from None
    if t == "number":
        try:
            return float(raw)
        except ValueError:
            raise validation_error([(param.name, f"must be a number, got {raw!r}")]) from None
    if t == "boolean":
        if raw.lower() in ("true", "1", "yes"):
            return True
        if raw.lower() in ("false", "0", "no"):
            return False
        raise validation_error([(param.name, f"must be true or false, got {raw!r}")])
    return raw


def parse_query(endpoint: Endpoint, params: Mapping[str, str]) -> dict[str, Any]:
    """The route's query parameters from their text (``request.query_params``)."""
    out: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    for param in endpoint.query:
        raw = params.get(param.name)
        if raw is None:
            if param.required:
                problems.append((param.name, "is required"))
            continue
        problem = text_problem(raw)
        if problem is not None:
            problems.append((param.name, problem))
            continue
        value = _coerce_query(param, raw)
        problems += validate(value, param.schema, param.name)
        out[param.name] = value
    if problems:
        raise validation_error(problems)
    return out


async def read_body(endpoint: Endpoint, request: Request, limit: int) -> Any:
    if endpoint.body is None:
        return None
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise ApiError(413, f"request body over {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, f"request body over {limit} bytes")
        chunks.append(chunk)
    raw = b"".join(chunks)
    reader = endpoint.body_readers.get(ctype)
    if not raw:
        if endpoint.body_required:
            kind = "a" if reader is not None else "a JSON"
            raise validation_error([("", f"{kind} body is required")])
        return None
    if reader is not None:
        parsed = reader(raw)  # raises ApiError (400) for text it cannot read
        body = parsed.value
        request.state.locate = parsed.locate  # for the 422s to come (see _serve)
    elif ctype and ctype != "application/json" and not ctype.endswith("+json"):
        if ctype in endpoint.body_content_types:
            return raw  # e.g. audio/wav for voice
        accepted = " or ".join(endpoint.body_content_types)
        raise ApiError(415, f"send the body as {accepted}, not {ctype}")
    else:
        try:
            body = strictjson.loads(raw)
        except strictjson.JsonRejected as exc:
            raise ApiError(
                400, f"the body is not valid JSON: {exc.message}", "invalid_json"
            ) from None
    return check_body(endpoint, body)


def check_body(endpoint: Endpoint, body: Any) -> Any:
    """The body, when it is what the route's schema asks for (else 422 naming each path)."""
    problems = validate(body, endpoint.body)
    if problems:
        raise validation_error(problems)
    return body


async def authenticate(request: Request, backend: Backend) -> str:
    try:
        token = auth.bearer_token(request.headers)
    except auth.TokenError as exc:
        raise unauthorized(str(exc)) from None
    return user_of(backend, token)


def user_of(backend: Backend, token: str | None) -> str:
    """The user a token names: 401 when there is none, or a bad or expired one."""
    if token is None:
        raise unauthorized(
            "sign in first: send Authorization: Bearer <token> from POST /v1/auth/token"
        )
    try:
        return auth.verify_token(backend.token_secret, token).username
    except auth.TokenError as exc:
        raise unauthorized(str(exc)) from None


async def check_rate(backend: Backend, key: str, limit: Any, *, count: bool = True) -> None:
    """429 when ``key`` is over ``limit``; ``count``: this request counts as one more."""
    try:
        check = backend.limiter.hit if count else backend.limiter.peek
        decision = await backend.run(check, key, limit)
    except LimiterUnavailable:
        raise ApiError(
            503,
            "the rate limiter's store (Redis) is unavailable; try again shortly",
            headers={"Retry-After": "5"},
        ) from None
    if not decision.allowed:
        raise ApiError(
            429,
            f"too many requests: at most {limit.requests} per {limit.window_s} s; "
            f"retry in {decision.retry_after} s",
            headers={"Retry-After": str(decision.retry_after)},
        )


RoleOf = Callable[[str, str], Awaitable[str | None]]


async def authorize(
    backend: Backend,
    user: str,
    home_id: str,
    permission: Permission,
    role_of: RoleOf | None = None,
) -> str:
    """The caller's role in the home: 404 when not a member, 403 when not allowed.
    ``role_of(home, user)``: where to look it up (default: the store, now)."""
    if role_of is not None:
        role = await role_of(home_id, user)
    else:
        role = await backend.run(backend.store.role_of, home_id, user)
    if role is None:
        raise ApiError(404, f"home {home_id!r} not found")
    if not allowed(role, permission):
        raise ApiError(
            403,
            f"your role in {home_id!r} is {role}; this needs the '{permission.value}' permission",
        )
    return role


async def admit(
    endpoint: Endpoint,
    backend: Backend,
    user: str | None,
    path: dict[str, str],
    role_of: RoleOf | None = None,
) -> str | None:
    """The checks of a route after the token, in order: ids that cannot exist (404/422),
    then the caller's role for the route's permission. Returns that role (None for a route
    of no home). REST and GraphQL (``gateway.graphql``) both go through here."""
    check_path_params(endpoint.method, path)
    if isinstance(endpoint.access, Permission):
        if user is None:
            raise unauthorized("sign in first")
        return await authorize(backend, user, path["home_id"], endpoint.access, role_of)
    return None


async def _serve(endpoint: Endpoint, request: Request) -> Response:
    backend: Backend = request.app.state.backend
    started = time.perf_counter()
    try:
        user = None
        path = {k: str(v) for k, v in request.path_params.items()}
        if endpoint.access != PUBLIC:
            user = await authenticate(request, backend)
            await check_rate(backend, f"user:{user}", backend.rate_limit)
        role = await admit(endpoint, backend, user, path)
        query = parse_query(endpoint, request.query_params)
        body = await read_body(endpoint, request, endpoint.max_body_bytes or backend.max_body_bytes)
        ctx = Ctx(request, backend, user, role, path, query, body)
        response = await endpoint.handler(ctx)
    except ApiError as exc:
        _add_lines(exc, getattr(request.state, "locate", None))
        response = exc.response()
    backend.metrics.observe(
        endpoint.method, endpoint.path, response.status_code, time.perf_counter() - started
    )
    return response


def _add_lines(exc: ApiError, locate: Callable[[str], int | None] | None) -> None:
    """A body read from text (YAML): each problem's detail also says its line."""
    if locate is None or exc.status != 422 or not exc.details:
        return
    for detail in exc.details:
        if "line" not in detail and (line := locate(str(detail.get("path", "")))) is not None:
            detail["line"] = line


def make_routes(endpoints: list[Endpoint]) -> list[Route]:
    """One Starlette route per path, serving each of its methods: a 405 then lists every
    method the path takes in ``Allow``, not only those of the first route matched."""
    by_path: dict[str, dict[str, Endpoint]] = {}
    for endpoint in endpoints:
        by_path.setdefault(endpoint.path, {})[endpoint.method] = endpoint
    routes = []
    for path, methods in by_path.items():

        async def serve(request: Request, methods: dict[str, Endpoint] = methods) -> Response:
            method = "GET" if request.method == "HEAD" else request.method
            return await _serve(methods[method], request)

        name = "+".join(e.op_id for e in methods.values())
        serve.__name__ = name
        routes.append(Route(path, serve, methods=list(methods), name=name))
    return routes


# -- shared schema pieces ----------------------------------------------------------------
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["path", "message"],
                        "properties": {
                            "path": {"type": "string"},
                            "message": {"type": "string"},
                            "line": {
                                "type": "integer",
                                "description": "where it is in a text body (YAML), 1-based",
                            },
                            "column": {"type": "integer"},
                        },
                    },
                },
            },
        }
    },
}

ERROR_DESCRIPTIONS = {
    400: "Malformed request (e.g. the body is not JSON, or not YAML)",
    401: "No token, or a bad or expired one",
    403: "Your role in this home does not allow this",
    404: "Not found (or not a home of yours)",
    409: "Conflict with the current state",
    413: "Request body too large",
    415: "Unsupported content type",
    422: "Invalid input; error.details names each field path",
    429: "Rate limited; see Retry-After",
    501: "Not implemented yet",
    503: "A backing service is unavailable",
}
