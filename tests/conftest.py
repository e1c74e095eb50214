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
from runtime.config import PORT_VARS, Settings

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
    if "HOMESTREAM_CACHE_DIR" in os.environ:
        env["HOMESTREAM_CACHE_DIR"] = os.environ["HOMESTREAM_CACHE_DIR"]
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

    def run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        exe = Path(sys.executable).with_name("homestream")
        proc = subprocess.run(
            [str(exe), *args],
            env={**os.environ, **stack_env},
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check and proc.returncode != 0:
            raise AssertionError(f"homestream {args} failed ({proc.returncode}):\n{proc.stderr}")
        return proc

    return run
