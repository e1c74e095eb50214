"""Input rules for users and homes (pure, no database)."""

import pytest

from stores.accounts import (
    AccountError,
    check_user_password,
    hash_user_password,
    validate_home_id,
    validate_password,
    validate_username,
)


@pytest.mark.parametrize("home", ["h1", "demo-home", "Home_2", "a" * 64])
def test_good_home_ids(home):
    assert validate_home_id(home) == home


@pytest.mark.parametrize(
    "home", ["", "a/b", "a+b", "#", "-lead", "a" * 65, "with space", "ä", "h1\n"]
)
def test_home_ids_that_would_break_mqtt_topics_are_refused(home):
    with pytest.raises(AccountError, match="MQTT topic level"):
        validate_home_id(home)


@pytest.mark.parametrize("name", ["ab", "", "x" * 65, "bad name", "-x-", "alice\n"])
def test_bad_usernames(name):
    with pytest.raises(AccountError):
        validate_username(name)


def test_password_rules_and_argon2():
    with pytest.raises(AccountError, match="at least 8"):
        validate_password("1234567")
    encoded = hash_user_password("correct horse")
    assert encoded.startswith("$argon2id$")
    assert check_user_password("correct horse", encoded)
    assert not check_user_password("wrong horse", encoded)
    assert not check_user_password("x", "not-a-hash")
