"""The launcher's TimescaleDB steps that need no build: the source check and the fallback.

The build itself runs in every test session (tests/conftest.py's stack, from the vendored
tarball) and is checked there by the engine the history tables got.
"""

from __future__ import annotations

import gzip

import pytest

from compose import timescaledb
from compose.errors import LauncherError
from runtime.config import TIMESCALEDB_SHA256, Settings
from tests.conftest import VENDORED_TIMESCALEDB


def settings(tmp_path, **env: str) -> Settings:
    return Settings.from_env(
        {
            "HOMESTREAM_STATE_DIR": str(tmp_path / "state"),
            "HOMESTREAM_CACHE_DIR": str(tmp_path / "cache"),
            **env,
        }
    )


def test_a_tarball_with_another_digest_is_refused_and_removed(tmp_path):
    fake = tmp_path / "timescaledb-2.28.3.tar.gz"
    fake.write_bytes(gzip.compress(b"not the release"))
    into = tmp_path / "work"
    into.mkdir()
    with pytest.raises(LauncherError, match=r"SHA-256 .* refusing to build") as err:
        timescaledb.fetch_source(str(fake), into, lambda _t: None)
    assert TIMESCALEDB_SHA256 in str(err.value)
    assert list(into.iterdir()) == []


def test_a_missing_file_and_an_unreachable_url_say_what_to_set(tmp_path):
    with pytest.raises(LauncherError, match="no such file"):
        timescaledb.fetch_source(str(tmp_path / "nope.tar.gz"), tmp_path, lambda _t: None)
    with pytest.raises(LauncherError, match="HOMESTREAM_TIMESCALEDB_SOURCE"):
        timescaledb.fetch_source("http://127.0.0.1:9/x.tar.gz", tmp_path, lambda _t: None)


@pytest.mark.skipif(not VENDORED_TIMESCALEDB.exists(), reason="no vendored tarball here")
def test_the_vendored_release_passes_the_check(tmp_path):
    said: list[str] = []
    got = timescaledb.fetch_source(f"file://{VENDORED_TIMESCALEDB}", tmp_path, said.append)
    assert timescaledb.sha256_of(got) == TIMESCALEDB_SHA256


def test_off_chooses_the_native_path_without_building(tmp_path):
    said: list[str] = []
    out = timescaledb.ensure_timescaledb(
        settings(tmp_path, HOMESTREAM_TIMESCALEDB="off"), said.append
    )
    assert out == timescaledb.Outcome("native", "HOMESTREAM_TIMESCALEDB=off")
    assert said == [] and not (tmp_path / "cache").exists()


def test_a_failed_build_warns_says_what_to_do_and_falls_back(tmp_path, monkeypatch):
    # As on a machine without the extension (this one may have it installed already).
    monkeypatch.setattr(timescaledb, "installed", lambda: False)
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"x")
    said: list[str] = []
    out = timescaledb.ensure_timescaledb(
        settings(tmp_path, HOMESTREAM_TIMESCALEDB_SOURCE=str(bad)), said.append
    )
    assert out.engine == "native" and "SHA-256" in out.why
    warning = [line for line in said if line.startswith("WARNING")]
    assert warning and "native PostgreSQL partitioning" in warning[0]
    assert "HOMESTREAM_TIMESCALEDB=off" in warning[0]
    assert not (timescaledb.build_dir(settings(tmp_path)) / ".complete").exists()


def test_without_install_a_missing_build_is_not_attempted(tmp_path, monkeypatch):
    monkeypatch.setattr(timescaledb, "installed", lambda: False)
    out = timescaledb.ensure_timescaledb(settings(tmp_path), lambda _t: None, install=False)
    assert out.engine == "native" and "--no-install" in out.why
