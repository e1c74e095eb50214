"""The stack's generated secrets: created once, private, never printed."""

import json
import stat

import pytest

from runtime.config import Settings
from runtime.secrets import SecretsMissing, ensure_secrets, load_secrets


def test_created_once_with_private_mode(tmp_path):
    s = Settings.from_env({"HOMESTREAM_STATE_DIR": str(tmp_path)})
    first = ensure_secrets(s)
    assert stat.S_IMODE(s.secrets_file.stat().st_mode) == 0o600
    assert ensure_secrets(s) == first  # a second up reuses them
    assert len(first.kafka_cluster_id) == 22
    assert first.pg_password not in repr(first)


def test_missing_and_corrupt_files_explain_the_fix(tmp_path):
    s = Settings.from_env({"HOMESTREAM_STATE_DIR": str(tmp_path)})
    with pytest.raises(SecretsMissing, match="homestream up"):
        load_secrets(s)
    s.secrets_file.write_text("{")
    with pytest.raises(SecretsMissing, match="down --purge"):
        load_secrets(s)
    s.secrets_file.write_text(json.dumps({"pg_password": "x"}))
    with pytest.raises(SecretsMissing, match="corrupt"):
        load_secrets(s)


def test_an_older_file_gets_the_analyst_password_and_keeps_the_rest(tmp_path):
    s = Settings.from_env({"HOMESTREAM_STATE_DIR": str(tmp_path)})
    first = ensure_secrets(s)
    assert first.analyst_password and first.analyst_password not in repr(first)
    old = json.loads(s.secrets_file.read_text())
    del old["analyst_password"]  # as written before the role existed
    s.secrets_file.write_text(json.dumps(old))
    assert load_secrets(s).analyst_password == ""
    again = ensure_secrets(s)
    assert again.analyst_password and again.pg_password == first.pg_password
    assert load_secrets(s) == again
    assert stat.S_IMODE(s.secrets_file.stat().st_mode) == 0o600
