"""The local launcher itself: health, idempotence, and clear errors."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from compose.process import PidFile, stop
from tests.conftest import isolated_env

pytestmark = pytest.mark.integration

HOMESTREAM = str(Path(sys.executable).with_name("homestream"))


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [HOMESTREAM, *args], env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )


def _fingerprint(state: Path) -> dict[str, str]:
    """Hashes of the generated config files, to show a second `up` rewrites none."""
    files = [
        "secrets.json",
        "kafka/server.properties",
        "redis/redis.conf",
        "mosquitto/mosquitto.conf",
        "mosquitto/passwd",
        "mosquitto/acl",
        "tls/ca.crt",
        "postgres/data/pg_hba.conf",
    ]
    return {f: hashlib.sha256((state / f).read_bytes()).hexdigest() for f in files}


def _launcher_runs_everything(env: dict[str, str]) -> None:
    if "HOMESTREAM_KAFKA_BOOTSTRAP" in env:
        pytest.skip("servers run in containers (testcontainers), not by the launcher")


def test_status_reports_every_service_healthy(stack_env):
    _launcher_runs_everything(stack_env)
    proc = _cli(stack_env, "status", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)}
    assert set(rows) == {"postgres", "redis", "kafka", "mosquitto"}
    assert all(r["healthy"] and r["pid"] for r in rows.values())
    assert rows["kafka"]["endpoint"].endswith(f":{stack_env['HOMESTREAM_KAFKA_PORT']}")
    # Which engine history runs on (the test session's stack builds TimescaleDB).
    off = os.environ.get("HOMESTREAM_TIMESCALEDB", "").lower() in ("off", "0", "false", "no")
    expected = "history on native" if off else "history on timescaledb 2.28.3"
    assert rows["postgres"]["detail"] == expected
    text = _cli(stack_env, "status")
    assert f"({expected})" in text.stdout


def test_kafka_skips_the_transactional_partition_check(settings):
    """The broker runs as docs/streams.md says: without KIP-890's per-write check."""
    from confluent_kafka.admin import AdminClient, ConfigResource, ResourceType

    admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
    (future,) = admin.describe_configs([ConfigResource(ResourceType.BROKER, "1")]).values()
    entry = future.result(timeout=30)["transaction.partition.verification.enable"]
    assert entry.value == "false"


def test_second_up_changes_nothing(stack_env):
    _launcher_runs_everything(stack_env)
    state = Path(stack_env["HOMESTREAM_STATE_DIR"])
    before = json.loads(_cli(stack_env, "status", "--json").stdout)
    files_before = _fingerprint(state)
    proc = _cli(stack_env, "up", "--no-install", "--no-demo")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("already running") == 4
    assert "created" not in proc.stdout.replace("(0 created)", "")
    after = json.loads(_cli(stack_env, "status", "--json").stdout)
    assert [r["pid"] for r in before] == [r["pid"] for r in after]
    assert _fingerprint(state) == files_before


@pytest.fixture
def scratch_env():
    state = Path(tempfile.mkdtemp(prefix="homestream-scratch-", dir="/tmp"))
    state.chmod(0o755)
    env = isolated_env(state)
    yield env
    _cli(env, "down", "--purge")
    shutil.rmtree(state, ignore_errors=True)


def test_port_taken_names_the_variable_and_starts_nothing(scratch_env):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", int(scratch_env["HOMESTREAM_KAFKA_PORT"])))
        squatter.listen()
        proc = _cli(scratch_env, "up", "--no-install", "--no-demo")
    assert proc.returncode == 2
    assert "HOMESTREAM_KAFKA_PORT" in proc.stderr and "in use" in proc.stderr
    assert "Traceback" not in proc.stderr
    run_dir = Path(scratch_env["HOMESTREAM_STATE_DIR"]) / "run"
    assert not list(run_dir.glob("*.pid")), "nothing may be left running"


def test_corrupt_state_dir_is_explained(scratch_env):
    state = Path(scratch_env["HOMESTREAM_STATE_DIR"])
    (state / "secrets.json").write_text("{not json")
    proc = _cli(scratch_env, "up", "--no-install", "--no-demo")
    assert proc.returncode == 2
    assert "corrupt" in proc.stderr and "homestream down --purge" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_corrupt_kafka_storage_is_explained(scratch_env):
    state = Path(scratch_env["HOMESTREAM_STATE_DIR"])
    (state / "kafka" / "data").mkdir(parents=True)
    (state / "kafka" / "data" / "junk.log").write_text("x")
    proc = _cli(scratch_env, "up", "--no-install", "--no-demo")
    assert proc.returncode == 2
    assert "kafka" in proc.stderr and "corrupt" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_missing_java_is_explained(scratch_env):
    env = {**scratch_env, "PATH": "/nonexistent", "JAVA_HOME": ""}
    proc = subprocess.run(
        [sys.executable, "-m", "homestream.cli", "up", "--no-install", "--no-demo"],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert "Java 17 runtime" in proc.stderr and "openjdk-17-jre-headless" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_down_never_kills_a_process_that_is_not_ours(tmp_path):
    # A stranger whose pid sits in our pid file (pid reuse, or a hand-started server).
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        pidfile = PidFile(tmp_path / "redis.pid", marker=str(tmp_path / "redis"))
        pidfile.write(stranger.pid)
        assert pidfile.live_pid() is None
        assert stop(pidfile) is False
        assert stranger.poll() is None, "the stranger must still be running"
    finally:
        stranger.kill()
        stranger.wait()


def test_topics_commands_explain_an_unreachable_kafka(scratch_env):
    proc = _cli(scratch_env, "topics", "describe")
    assert proc.returncode == 2
    assert "not reachable" in proc.stderr and "homestream up" in proc.stderr
    assert "Traceback" not in proc.stderr and "FAIL|rdkafka" not in proc.stderr
