"""Start, find and stop the stack's server processes by pid file, never by name.

A pid file holds the pid and a marker (the service's state directory). Before we
signal a pid we check that its command line still carries the marker, so a reused
pid or a server somebody else started is never touched.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PidFile:
    path: Path
    marker: str

    def write(self, pid: int) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(f"{pid}\n{self.marker}\n")

    def read(self) -> int | None:
        try:
            first = self.path.read_text().split("\n", 1)[0]
            return int(first)
        except (FileNotFoundError, ValueError):
            return None

    def alive(self) -> bool:
        """Is the recorded process running and ours? (Changes nothing.)"""
        pid = self.read()
        return pid is not None and _cmdline_has(pid, self.marker)

    def live_pid(self) -> int | None:
        """The pid if that process is alive and is ours; stale files are removed."""
        pid = self.read()
        if pid is None:
            return None
        if _cmdline_has(pid, self.marker):
            return pid
        self.path.unlink(missing_ok=True)
        return None


def _cmdline_has(pid: int, marker: str) -> bool:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    # A zombie has exited; it only waits for its parent to reap it.
    if stat.rsplit(")", 1)[-1].split()[0] == "Z":
        return False
    return marker.encode() in raw


def spawn(
    argv: Sequence[str],
    *,
    pidfile: PidFile,
    log_path: Path,
    env: dict[str, str] | None = None,
    user: str | None = None,
    cwd: Path | None = None,
) -> int:
    """Start a server detached from our session; its output goes to ``log_path``."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            user=user,
            group=user,
            extra_groups=[] if user else None,
            start_new_session=True,  # survives `homestream up` exiting and Ctrl-C
        )
    pidfile.write(proc.pid)
    return proc.pid


def stop(pidfile: PidFile, *, timeout: float = 20.0, sig: int = signal.SIGTERM) -> bool:
    """Stop the process of ``pidfile`` if it is ours. Returns True if one was stopped."""
    pid = pidfile.live_pid()
    if pid is None:
        pidfile.path.unlink(missing_ok=True)
        return False
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not _cmdline_has(pid, pidfile.marker):
            break
        time.sleep(0.1)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
        _reap(pid)
    pidfile.path.unlink(missing_ok=True)
    return True


def _reap(pid: int) -> None:
    # Our own children (started in this process, e.g. by tests) must be reaped.
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def terminate(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    """SIGTERM a child process and reap it; SIGKILL when it outlasts ``timeout``."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"
