"""compose/supervisor.py against a real supervisord: a killed program is back at once, a
crash loop backs off and ends FATAL with its last error, shutdown stops only its own."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from compose.supervisor import STARTRETRIES, Program, Supervisor, render
from runtime.config import Settings

pytestmark = pytest.mark.integration


def _wait(pred, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out: {what}")


@pytest.fixture
def supervisor(tmp_path: Path):
    settings = Settings.from_env({"HOMESTREAM_STATE_DIR": str(tmp_path / "state")})
    settings.run_dir.mkdir(parents=True)
    settings.log_dir.mkdir(parents=True)
    sup = Supervisor(settings)
    yield settings, sup
    sup.shutdown()


def _program(settings: Settings, name: str, code: str) -> Program:
    d = settings.service_dir(name)
    d.mkdir(parents=True, exist_ok=True)
    return Program(name, [sys.executable, "-c", code], d, settings.log_dir / f"{name}.log")


def test_a_killed_program_is_back_and_a_crash_loop_ends_fatal(supervisor):
    settings, sup = supervisor
    steady = _program(settings, "steady", "import time; print('up', flush=True); time.sleep(600)")
    broken = _program(
        settings,
        "broken",
        "import sys; print('starting', flush=True); "
        "sys.exit('ConfigError: HOMESTREAM_X must be a number (got 100%)')",
    )
    sup.ensure([steady, broken], {"HOMESTREAM_MARK": "given"})
    first = sup.start("steady")
    sup.start("broken")

    # Counted as started after STARTSECS; then a SIGKILL is answered by a restart.
    _wait(lambda: (i := sup.info("steady")) and i.state == "RUNNING", 20, "steady RUNNING")
    os.kill(first, signal.SIGKILL)
    killed_at = time.monotonic()
    second = _wait(
        lambda: (i := sup.info("steady")) and i.pid not in (None, first) and i.pid, 5, "restart"
    )
    print(f"steady restarted in {time.monotonic() - killed_at:.2f} s")
    assert Path(f"/proc/{second}/environ").read_bytes().count(b"HOMESTREAM_MARK=given") == 1

    # The crash loop: retried with growing delays (1, 2, 3 s), then FATAL with its last words.
    info = _wait(lambda: (i := sup.info("broken")) and i.state == "FATAL" and i, 40, "FATAL")
    assert info.pid is None
    assert info.error == "ConfigError: HOMESTREAM_X must be a number (got 100%)"
    events = (settings.log_dir / "supervisord.log").read_text()
    assert events.count("spawned: 'broken'") == STARTRETRIES + 1  # the start, each retry
    assert "gave up: broken entered FATAL state, too many start retries" in events
    assert (settings.log_dir / "broken.log").read_text().count("starting") == STARTRETRIES + 1

    # Shutdown stops its programs and itself, and nothing else.
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        assert sup.shutdown()
        _wait(lambda: not Path(f"/proc/{second}").exists() or _zombie(second), 25, "steady gone")
        assert sup.info("steady") is None
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_a_second_ensure_keeps_unchanged_programs_running(supervisor):
    settings, sup = supervisor
    a = _program(settings, "a", "import time; time.sleep(600)")
    b = _program(settings, "b", "import time; time.sleep(600)")
    sup.ensure([a, b])
    pid_a, pid_b = sup.start("a"), sup.start("b")
    b2 = _program(settings, "b", "import time; time.sleep(601)")
    c = _program(settings, "c", "import time; time.sleep(600)")
    sup.ensure([a, b2, c])  # a unchanged, b changed, c added
    info_a = sup.info("a")
    assert info_a is not None and info_a.pid == pid_a
    assert sup.info("b") is not None and sup.info("b").pid is None  # replaced: stopped
    assert not Path(f"/proc/{pid_b}").exists() or _zombie(pid_b)
    assert sup.info("c") is not None and sup.info("c").state == "STOPPED"
    sup.ensure([a])  # b and c removed
    assert sup.info("c") is None and sup.info("a").pid == pid_a


def test_render_escapes_percent_and_quotes_arguments(tmp_path: Path):
    settings = Settings.from_env({"HOMESTREAM_STATE_DIR": str(tmp_path)})
    p = Program("x", ["prog", "a b", "100%"], tmp_path, tmp_path / "x.log")
    text = render(settings, [p], tmp_path / "s.sock")
    assert "command=prog 'a b' 100%%\n" in text
    assert "autorestart=true" in text and "[program:x]" in text
