"""POST /v1/auth/token: username and password -> a signed, expiring access token."""

from __future__ import annotations

from starlette.responses import Response

from gateway import auth
from gateway.api import PUBLIC, Ctx, Endpoint, Reply, check_rate, ok
from gateway.errors import unauthorized

TOKEN_BODY = {
    "type": "object",
    "required": ["username", "password"],
    "additionalProperties": False,
    "properties": {
        "username": {"type": "string", "minLength": 1, "maxLength": 64},
        "password": {"type": "string", "minLength": 1, "maxLength": 1024},
    },
}
TOKEN_REPLY = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in"],
    "properties": {
        "access_token": {"type": "string"},
        "token_type": {"type": "string", "enum": ["bearer"]},
        "expires_in": {"type": "integer"},
    },
}


async def create_token(ctx: Ctx) -> Response:
    b = ctx.backend
    username, password = ctx.body["username"], ctx.body["password"]
    # Sign-in attempts are limited per username (password guessing), before argon2 runs;
    # failed ones also per username and per client address, over a longer window: after
    # a few wrong passwords that user, or that address, waits (429 with Retry-After).
    await check_rate(b, f"login:{username.lower()}", b.login_limit)
    client = ctx.request.client
    failures = (
        (f"login-failed:user:{username.lower()}", b.failed_login_limit),
        (f"login-failed:addr:{client.host if client else '?'}", b.failed_login_addr_limit),
    )
    for key, limit in failures:
        await check_rate(b, key, limit, count=False)
    if not await b.run(b.store.authenticate, username, password):
        for key, limit in failures:
            await b.run(b.limiter.hit, key, limit)
        raise unauthorized("wrong username or password")
    token, ttl = auth.issue_token(b.token_secret, username, b.token_ttl_s)
    return ok({"access_token": token, "token_type": "bearer", "expires_in": ttl})


ENDPOINTS = [
    Endpoint(
        "POST",
        "/v1/auth/token",
        create_token,
        PUBLIC,
        "Sign in: exchange a username and password for an access token",
        "auth",
        {200: Reply("A bearer token", TOKEN_REPLY)},
        body=TOKEN_BODY,
        extra={"errors": [401, 429]},
        description="Use the token as `Authorization: Bearer <token>` (REST and WebSocket) "
        "or `?access_token=<token>` (WebSocket). It expires after `expires_in` seconds.",
    )
]
