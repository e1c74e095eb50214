"""Access tokens: sign, verify, expiry, tampering; the Authorization header."""

from __future__ import annotations

import base64
import json

import pytest

from gateway import auth

SECRET = "s3cret-for-tests"


def test_issue_and_verify_round_trip():
    token, ttl = auth.issue_token(SECRET, "alice", 600, now=1_000_000)
    assert ttl == 600
    assert token.startswith("hs1.") and token.count(".") == 2
    claims = auth.verify_token(SECRET, token, now=1_000_100)
    assert claims.username == "alice"
    assert claims.issued_at == 1_000_000 and claims.expires_at == 1_000_600
    assert claims.token_id


def test_tokens_are_unique():
    a, _ = auth.issue_token(SECRET, "alice", now=1)
    b, _ = auth.issue_token(SECRET, "alice", now=1)
    assert a != b


def test_expired_token_is_refused():
    token, _ = auth.issue_token(SECRET, "alice", 60, now=1_000_000)
    auth.verify_token(SECRET, token, now=1_000_059)
    with pytest.raises(auth.TokenError, match="expired"):
        auth.verify_token(SECRET, token, now=1_000_060)


def test_other_secret_is_refused():
    token, _ = auth.issue_token(SECRET, "alice")
    with pytest.raises(auth.TokenError, match="signature"):
        auth.verify_token("another-secret", token)


def _swap_payload(token: str, **changes) -> str:
    prefix, body, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    new_body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"{prefix}.{new_body}.{sig}"


@pytest.mark.parametrize("changes", [{"sub": "mallory"}, {"exp": 9_999_999_999}])
def test_tampered_payload_is_refused(changes):
    token, _ = auth.issue_token(SECRET, "alice")
    with pytest.raises(auth.TokenError, match="signature"):
        auth.verify_token(SECRET, _swap_payload(token, **changes))


def test_tampered_signature_is_refused():
    token, _ = auth.issue_token(SECRET, "alice")
    head, _, sig = token.rpartition(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    with pytest.raises(auth.TokenError):
        auth.verify_token(SECRET, f"{head}.{flipped}")


@pytest.mark.parametrize(
    "token",
    ["", "abc", "hs1.x", "hs2.a.b", "hs1..", "hs1.!!!.sig", "x" * 5000, "hs1.a.b.c"],
)
def test_malformed_tokens_are_refused(token):
    with pytest.raises(auth.TokenError):
        auth.verify_token(SECRET, token)


def test_signed_garbage_payload_is_refused():
    # A correctly signed payload that is not the claims object is still refused.
    body = base64.urlsafe_b64encode(b"[1,2]").decode().rstrip("=")
    sig = auth._sign(SECRET, f"hs1.{body}")
    with pytest.raises(auth.TokenError, match="malformed"):
        auth.verify_token(SECRET, f"hs1.{body}.{sig}")


def test_bearer_header_parsing():
    assert auth.bearer_token({}) is None
    assert auth.bearer_token({"authorization": "Bearer abc"}) == "abc"
    assert auth.bearer_token({"authorization": "bearer  abc "}) == "abc"
    with pytest.raises(auth.TokenError):
        auth.bearer_token({"authorization": "Basic dXNlcjpwYXNz"})
    with pytest.raises(auth.TokenError):
        auth.bearer_token({"authorization": "Bearer"})


def test_websocket_token_from_header_or_query():
    assert auth.token_from_scope({"authorization": "Bearer h"}, {"access_token": "q"}) == "h"
    assert auth.token_from_scope({}, {"access_token": "q"}) == "q"
    assert auth.token_from_scope({}, {}) is None
