"""Rendering Mosquitto's password file and ACL from hub logins."""

from hypothesis import given, settings
from hypothesis import strategies as st

from stores.mosquitto_auth import (
    HubLogin,
    hash_password,
    render_acl,
    render_passwd,
    verify_password,
)


def test_hash_is_mosquitto_pbkdf2_sha512_and_salted():
    a, b = hash_password("secret"), hash_password("secret")
    assert a.startswith("$7$") and a != b
    _, _kind, iterations, _salt, _digest = a.split("$")
    assert int(iterations) >= 1000
    assert verify_password("secret", a) and verify_password("secret", b)
    assert not verify_password("Secret", a)


@settings(max_examples=25, deadline=None)
@given(st.text(min_size=1, max_size=40), st.text(max_size=40))
def test_only_the_right_password_verifies(password, other):
    encoded = hash_password(password, iterations=10)
    assert verify_password(password, encoded)
    assert verify_password(other, encoded) == (other == password)


def test_verify_rejects_garbage():
    for junk in ["", "$7$", "$6$1$a$b", "plain", "$7$x$y$z"]:
        assert not verify_password("pw", junk)


def test_acl_confines_each_hub_to_its_home():
    hubs = [HubLogin("hub-a-1", "a", "$7$h1"), HubLogin("hub-b-1", "b", "$7$h2")]
    acl = render_acl("bridge", hubs)
    blocks = [b.strip().splitlines() for b in acl.split("\n\n") if b.strip()]
    users = {b[0] if not b[0].startswith("#") else b[1]: b for b in blocks}
    assert users["user bridge"][-1] == "topic readwrite #"
    assert users["user hub-a-1"] == ["user hub-a-1", "topic readwrite hub/a/#"]
    assert users["user hub-b-1"] == ["user hub-b-1", "topic readwrite hub/b/#"]
    assert render_passwd("bridge", "$7$x", hubs).splitlines() == [
        "bridge:$7$x",
        "hub-a-1:$7$h1",
        "hub-b-1:$7$h2",
    ]
