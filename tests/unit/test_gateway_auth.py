"""Access tokens: standard HS256 JWTs; sign, verify, expiry, tampering; the header."""

from __future__ import annotations

import base64
import json

import jwt
import pytest

from gateway import auth

SECRET = "s3cret-for-tests-s3cret-for-tests"  # >= 32 bytes: RFC 7518 3.2 for HS256


def test_issue_and_verify_round_trip():
    token, ttl = auth.issue_token(SECRET, "alice", 600, now=1_000_000)
    assert ttl == 600
    assert token.count(".") == 2
    claims = auth.verify_token(SECRET, token, now=1_000_100)
    assert claims.username == "alice"
    assert claims.issued_at == 1_000_000 and claims.expires_at == 1_000_600
    assert claims.token_id


def test_pyjwt_verifies_our_token_with_the_secret():
    # What any other tool holding the secret does: standard header and claims.
    token, _ = auth.issue_token(SECRET, "alice", 600)
    assert jwt.get_unverified_header(token) == {"alg": "HS256", "typ": "JWT"}
    claims = jwt.decode(token, SECRET, algorithms=["HS256"], options={"require": ["exp"]})
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 600
    with pytest.raises(jwt.InvalidSignatureError):
        jwt.decode(token, "another-secret-another-secret-xx", algorithms=["HS256"])


def test_we_verify_a_token_pyjwt_issued():
    token = jwt.encode({"sub": "bob", "iat": 10, "exp": 70}, SECRET, algorithm="HS256")
    claims = auth.verify_token(SECRET, token, now=20)
    assert (claims.username, claims.issued_at, claims.expires_at) == ("bob", 10, 70)


def test_tokens_are_unique():
    a, _ = auth.issue_token(SECRET, "alice", now=1)
    b, _ = auth.issue_token(SECRET, "alice", now=1)
    assert a != b


def test_expired_token_is_refused():
    token, _ = auth.issue_token(SECRET, "alice", 60, now=1_000_000)
    auth.verify_token(SECRET, token, now=1_000_059)
    with pytest.raises(auth.TokenError, match="expired"):
        auth.verify_token(SECRET, token, now=1_000_060)


def test_expiry_uses_the_real_clock_by_default():
    token, _ = auth.issue_token(SECRET, "alice", 60, now=1_000_000)  # long past
    with pytest.raises(auth.TokenError, match="expired"):
        auth.verify_token(SECRET, token)
    fresh, _ = auth.issue_token(SECRET, "alice", 60)
    assert auth.verify_token(SECRET, fresh).username == "alice"


def test_other_secret_is_refused():
    token, _ = auth.issue_token(SECRET, "alice")
    with pytest.raises(auth.TokenError, match="signature"):
        auth.verify_token("another-secret-another-secret-xx", token)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unsigned(header: dict, claims: dict, signature: str = "") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{signature}"


@pytest.mark.parametrize("alg", ["none", "None"])
def test_unsigned_none_token_is_refused(alg):
    claims = {"sub": "alice", "iat": 1, "exp": 9_999_999_999}
    with pytest.raises(auth.TokenError, match="HS256"):
        auth.verify_token(SECRET, _unsigned({"alg": alg, "typ": "JWT"}, claims))


@pytest.mark.parametrize("alg", ["HS512", "HS384"])
def test_token_of_another_algorithm_is_refused_even_with_our_secret(alg):
    claims = {"sub": "alice", "iat": 1, "exp": 9_999_999_999}
    other = jwt.encode(claims, SECRET + SECRET, algorithm=alg)  # a genuine signature
    with pytest.raises(auth.TokenError, match="HS256"):
        auth.verify_token(SECRET + SECRET, other)


def _swap_payload(token: str, **changes) -> str:
    header, body, sig = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    payload.update(changes)
    return f"{header}.{_b64(json.dumps(payload).encode())}.{sig}"


@pytest.mark.parametrize("changes", [{"sub": "mallory"}, {"exp": 9_999_999_999}])
def test_tampered_payload_is_refused(changes):
    token, _ = auth.issue_token(SECRET, "alice")
    with pytest.raises(auth.TokenError, match="signature"):
        auth.verify_token(SECRET, _swap_payload(token, **changes))


def test_tampered_signature_is_refused():
    token, _ = auth.issue_token(SECRET, "alice")
    head, _, sig = token.rpartition(".")
    flipped = ("A" if sig[0] != "A" else "B") + sig[1:]
    with pytest.raises(auth.TokenError, match="signature"):
        auth.verify_token(SECRET, f"{head}.{flipped}")


@pytest.mark.parametrize(
    "token",
    ["", "abc", "a.b", "a..", "..", "!!!.!!!.sig", "x" * 5000, "a.b.c.d", "hs1.e30.sig"],
)
def test_malformed_tokens_are_refused(token):
    with pytest.raises(auth.TokenError, match="malformed"):
        auth.verify_token(SECRET, token)


@pytest.mark.parametrize(
    "claims, why",
    [
        ({"iat": 1, "exp": 9_999_999_999}, "'sub'"),
        ({"sub": "alice", "iat": 1}, "'exp'"),
        ({"sub": "alice", "exp": 9_999_999_999}, "'iat'"),
        ({"sub": "", "iat": 1, "exp": 9_999_999_999}, "malformed"),
        ({"sub": 7, "iat": 1, "exp": 9_999_999_999}, "malformed"),
        ({"sub": "alice", "iat": 1, "exp": "never"}, "malformed"),
        ({"sub": "alice", "iat": True, "exp": 9_999_999_999}, "malformed"),
    ],
)
def test_correctly_signed_tokens_with_bad_claims_are_refused(claims, why):
    token = jwt.encode(claims, SECRET, algorithm="HS256")
    with pytest.raises(auth.TokenError, match=why):
        auth.verify_token(SECRET, token)


def test_signed_garbage_payload_is_refused():
    # A correctly signed payload that is not a claims object is still refused.
    token = jwt.api_jws.encode(b"[1,2]", SECRET, algorithm="HS256")
    with pytest.raises(auth.TokenError, match="malformed"):
        auth.verify_token(SECRET, token)


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
