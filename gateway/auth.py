"""Access tokens: signed, expiring, stateless.

Format: ``hs1.<payload>.<signature>``, where ``payload`` is the base64url (no padding) of
the compact JSON ``{"sub": username, "iat": issued (epoch s), "exp": expiry (epoch s),
"jti": random id}`` and ``signature`` the base64url of HMAC-SHA256 over ``hs1.<payload>``
with the stack's ``token_secret`` (``<state dir>/secrets.json``). Verification compares
signatures in constant time, then checks the expiry. Changing the secret ends every token.

Requests carry a token as ``Authorization: Bearer <token>``; WebSocket clients that cannot
set headers (browsers) may use ``?access_token=<token>`` instead (``token_from_scope``).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PREFIX = "hs1"
DEFAULT_TTL_S = 3600
MAX_TOKEN_LENGTH = 2048


class TokenError(ValueError):
    """The token is malformed, tampered with or expired; the message says which."""


@dataclass(frozen=True)
class Claims:
    username: str
    issued_at: int
    expires_at: int
    token_id: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: str, signing_input: str) -> str:
    return _b64(hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest())


def issue_token(
    secret: str, username: str, ttl_s: int = DEFAULT_TTL_S, now: float | None = None
) -> tuple[str, int]:
    """A new token for ``username`` and its lifetime in seconds."""
    if not secret:
        raise ValueError("token secret is empty")
    iat = int(time.time() if now is None else now)
    payload = {"sub": username, "iat": iat, "exp": iat + ttl_s, "jti": secrets.token_hex(8)}
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    signing_input = f"{PREFIX}.{body}"
    return f"{signing_input}.{_sign(secret, signing_input)}", ttl_s


def verify_token(secret: str, token: str, now: float | None = None) -> Claims:
    """The token's claims, or TokenError."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed token")
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != PREFIX:
        raise TokenError("malformed token")
    expected = _sign(secret, f"{parts[0]}.{parts[1]}")
    if not hmac.compare_digest(expected.encode(), parts[2].encode()):
        raise TokenError("invalid token signature")
    try:
        payload = json.loads(_unb64(parts[1]))
    except (ValueError, binascii.Error):
        raise TokenError("malformed token") from None
    if not isinstance(payload, dict):
        raise TokenError("malformed token")
    sub, iat, exp = payload.get("sub"), payload.get("iat"), payload.get("exp")
    if not isinstance(sub, str) or not sub or not isinstance(iat, int) or not _is_int(exp):
        raise TokenError("malformed token")
    if not isinstance(exp, int) or isinstance(exp, bool) or isinstance(iat, bool):
        raise TokenError("malformed token")
    current = time.time() if now is None else now
    if current >= exp:
        raise TokenError("token expired: request a new one at POST /v1/auth/token")
    return Claims(sub, iat, exp, str(payload.get("jti") or ""))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer`` header, or None when there is none.

    Raises TokenError for an Authorization header of another scheme."""
    value = headers.get("authorization")
    if value is None:
        return None
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise TokenError("Authorization header must be 'Bearer <token>'")
    return token.strip()


def token_from_scope(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
    """The token of a WebSocket handshake: the Bearer header, else ``?access_token=``."""
    token = bearer_token(headers)
    if token is None:
        token = query.get("access_token") or None
    return token
