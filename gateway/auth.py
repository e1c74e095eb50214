"""Access tokens: standard JWTs (RFC 7519), HS256, stateless.

A token is a compact JWS signed with HMAC-SHA256 and the stack's ``token_secret``
(``<state dir>/secrets.json``), with the claims ``sub`` (username), ``iat`` and ``exp``
(epoch seconds) and ``jti`` (a random id). Any JWT library holding the secret can verify
one. Verification accepts HS256 only: a token that names another algorithm (``none``,
HS512, RS256 ...) is refused, whatever its signature. Changing the secret ends every token.

Requests carry a token as ``Authorization: Bearer <token>``; WebSocket clients that cannot
set headers (browsers) may use ``?access_token=<token>`` instead (``token_from_scope``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt

ALGORITHM = "HS256"
DEFAULT_TTL_S = 3600
MAX_TOKEN_LENGTH = 2048
EXPIRED = "token expired: request a new one at POST /v1/auth/token"

# Expiry is checked below against ``now`` rather than by PyJWT's own clock, so that one
# code path serves requests and the tests' fixed clocks; the claims must be present.
_DECODE_OPTIONS: Any = {
    "require": ["sub", "iat", "exp"],
    "verify_exp": False,
    "verify_iat": False,
    "verify_nbf": False,
}


class TokenError(ValueError):
    """The token is malformed, tampered with or expired; the message says which."""


@dataclass(frozen=True)
class Claims:
    username: str
    issued_at: int
    expires_at: int
    token_id: str


def issue_token(
    secret: str, username: str, ttl_s: int = DEFAULT_TTL_S, now: float | None = None
) -> tuple[str, int]:
    """A new token for ``username`` and its lifetime in seconds."""
    if not secret:
        raise ValueError("token secret is empty")
    iat = int(time.time() if now is None else now)
    claims = {"sub": username, "iat": iat, "exp": iat + ttl_s, "jti": secrets.token_hex(8)}
    return jwt.encode(claims, secret, algorithm=ALGORITHM), ttl_s


def verify_token(secret: str, token: str, now: float | None = None) -> Claims:
    """The token's claims, or TokenError."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise TokenError("malformed token")
    try:
        payload = jwt.decode(token, secret, algorithms=[ALGORITHM], options=_DECODE_OPTIONS)
    except jwt.InvalidSignatureError:  # a subclass of DecodeError: before it
        raise TokenError("invalid token signature") from None
    except jwt.InvalidAlgorithmError:
        raise TokenError(f"token not signed with {ALGORITHM}") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"malformed token: no '{exc.claim}' claim") from None
    except jwt.InvalidTokenError:  # bad segments, base64, JSON, header or claim types
        raise TokenError("malformed token") from None
    sub, iat, exp = payload.get("sub"), payload.get("iat"), payload.get("exp")
    if not isinstance(sub, str) or not sub or not _is_int(iat) or not _is_int(exp):
        raise TokenError("malformed token")
    current = time.time() if now is None else now
    if current >= exp:
        raise TokenError(EXPIRED)
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
