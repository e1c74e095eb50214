"""Session fixtures: one isolated stack of real servers for the integration tests.

The stack gets its own free ports and its own state directory under /tmp, so a
running demo (`make up`) is never touched. With a Docker engine available and
HOMESTREAM_TEST_BACKEND=docker (or auto), testcontainers runs the servers instead
(tests/docker_stack.py); without one, the local launcher starts them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

from compose.process import free_port
from runtime.config import PORT_VARS, REPO_ROOT, TIMESCALEDB_VERSION, Settings

VENDORED_TIMESCALEDB = (
    REPO_ROOT.parent / "shared" / "vendor" / f"timescaledb-{TIMESCALEDB_VERSION}.tar.gz"
)

# CI replays the same examples every run (a red CI is then about the change, not about luck);
# local runs keep exploring new ones. .ci/run sets HYPOTHESIS_PROFILE=ci.
hypothesis_settings.register_profile("ci", derandomize=True, print_blob=True)
hypothesis_settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _docker_available() -> bool:
    if not shutil.which("docker"):
        return False
    try:
        return subprocess.run(["docker", "info"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def isolated_env(state_dir: Path) -> dict[str, str]:
    """HOMESTREAM_* variables for a stack on free ports in ``state_dir``."""
    env = {var: str(free_port()) for var, _default, _desc in PORT_VARS.values()}
    env["HOMESTREAM_STATE_DIR"] = str(state_dir)
    env["HOMESTREAM_KAFKA_HEAP"] = os.environ.get("HOMESTREAM_KAFKA_HEAP", "512m")
    env["HOMESTREAM_PARTITIONS"] = "4"
    env["HOMESTREAM_STREAM_WORKERS"] = "0"  # tests run their own workers
    env["HOMESTREAM_BRIDGES"] = "0"  # ... and their own bridges
    env["HOMESTREAM_SINKS"] = "0"  # ... and sinks
    env["HOMESTREAM_GATEWAY"] = "0"  # ... and gateways
    # Every test signs in from 127.0.0.1 and many try wrong passwords on purpose: one
    # address's failed sign-ins would soon lock the whole suite out (tests of the
    # throttle set their own limits).
    env["HOMESTREAM_GATEWAY_FAILED_LOGIN_ADDR_LIMIT"] = "100000/900"
    env["HOMESTREAM_GATEWAY_LOGIN_LIMIT"] = "100000/60"
    for var in ("HOMESTREAM_CACHE_DIR", "HOMESTREAM_TIMESCALEDB"):
        if var in os.environ:
            env[var] = os.environ[var]
    # TimescaleDB's pinned source: the vendored copy beside a clean clone (../shared).
    env["HOMESTREAM_TIMESCALEDB_SOURCE"] = os.environ.get(
        "HOMESTREAM_TIMESCALEDB_SOURCE", str(VENDORED_TIMESCALEDB)
    )
    return env


@pytest.fixture(scope="session")
def stack_env() -> Iterator[dict[str, str]]:
    backend = os.environ.get("HOMESTREAM_TEST_BACKEND", "auto")
    if backend == "docker" or (backend == "auto" and _docker_available()):
        from tests.docker_stack import docker_stack

        with docker_stack() as env:
            yield env
        return

    from compose.stack import Stack

    state = Path(tempfile.mkdtemp(prefix="homestream-test-", dir="/tmp"))
    state.chmod(0o755)  # PostgreSQL and Mosquitto run as their own accounts
    env = isolated_env(state)
    settings = Settings.from_env(env)
    stack = Stack(settings, say=lambda line: print(line, file=sys.stderr))
    try:
        stack.up(install=True, demo=False)
        yield env
    finally:
        stack.down(purge=os.environ.get("HOMESTREAM_TEST_KEEP") != "1")


@pytest.fixture(scope="session")
def settings(stack_env: dict[str, str]) -> Settings:
    return Settings.from_env(stack_env)


@pytest.fixture
def run_cli(stack_env: dict[str, str]):
    """Run the real `homestream` console script against the test stack."""

    def run(
        *args: str, check: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).with_name("homestream")
        proc = subprocess.run(
            [str(exe), *args],
            env={**os.environ, **(stack_env if env is None else env)},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"homestream {args} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    return run


# -- history on both engines ---------------------------------------------------------------
NATIVE_DB = "homestream_native"


def _native_history_env(stack_env: dict[str, str], settings: Settings) -> dict[str, str]:
    """The test stack with a second database whose history runs on native partitioning,
    although the server preloads TimescaleDB (the migration honours the database's
    homestream.history_engine setting)."""
    import psycopg

    from runtime.secrets import load_secrets
    from stores import db
    from stores.analyst import ensure_analyst

    env = {**stack_env, "HOMESTREAM_PG_DATABASE": NATIVE_DB}
    with psycopg.connect(settings.pg_dsn("postgres"), autocommit=True) as conn:
        found = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (NATIVE_DB,))
        if found.fetchone() is None:
            conn.execute(f"CREATE DATABASE {NATIVE_DB}")
            conn.execute(f"ALTER DATABASE {NATIVE_DB} SET homestream.history_engine = 'native'")
    native = Settings.from_env(env)
    with db.connect(native) as conn:
        db.migrate(conn)
        ensure_analyst(conn, load_secrets(native).analyst_password)
    return env


@pytest.fixture(scope="session")
def native_history_env(stack_env: dict[str, str]) -> dict[str, str]:
    if "HOMESTREAM_PG_DSN" in stack_env:
        pytest.skip("PostgreSQL runs in a container: its native path is the main database's")
    return _native_history_env(stack_env, Settings.from_env(stack_env))


@pytest.fixture(scope="session", params=["timescaledb", "native"])
def history_env(request: pytest.FixtureRequest, stack_env: dict[str, str]) -> dict[str, str]:
    """The stack's environment for history tests, once per engine: the main database on
    TimescaleDB (the launcher built it), and a second database on native partitioning."""
    if request.param == "native":
        return request.getfixturevalue("native_history_env")
    from sinks.history_schema import engine
    from stores import db

    if os.environ.get("HOMESTREAM_TIMESCALEDB", "").lower() in ("off", "0", "false", "no"):
        pytest.skip("HOMESTREAM_TIMESCALEDB=off: the native path only")
    with db.connect(Settings.from_env(stack_env)) as conn:
        found = engine(conn)
    assert found == "timescaledb", (
        "the test stack's history is not on TimescaleDB: the launcher's build failed (see "
        "its WARNING above) or the extension is missing; HOMESTREAM_TIMESCALEDB=off skips it"
    )
    return stack_env


@pytest.fixture(scope="session")
def history_settings(history_env: dict[str, str]) -> Settings:
    return Settings.from_env(history_env)
