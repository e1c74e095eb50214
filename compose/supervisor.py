"""homestream's own processes under supervisord (PyPI ``supervisor``), started by `up`.

One supervisord per stack, itself started like the servers (pid file with a marker: its
config path), runs every worker, bridge, sink, the gateway and the demo's processes. A
process that dies after it started is started again at once (``autorestart``); one that
dies within ``STARTSECS`` of its start is retried after 1, 2, 3 ... s and, after
``STARTRETRIES`` such tries, left ``FATAL``, which `homestream status` shows with the last
line its log holds. `up` talks to supervisord over its XML-RPC unix socket (mode 0700).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
import time
import xmlrpc.client
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compose.errors import LauncherError
from compose.process import PidFile, spawn, stop
from runtime.config import Settings

# A process must stay up this long to count as started; dying sooner is a crash loop.
STARTSECS = 10
STARTRETRIES = 3
STOP_WAIT_S = 20  # SIGTERM, then SIGKILL after this long


@dataclass(frozen=True)
class Program:
    name: str
    argv: Sequence[str]
    directory: Path
    log_path: Path
    user: str | None = None


@dataclass(frozen=True)
class ProgramState:
    state: str  # supervisord's: STARTING, RUNNING, BACKOFF, FATAL, EXITED, STOPPED ...
    pid: int | None
    error: str  # the last line of the log when the program is down, else ""


def settings_env(settings: Settings) -> dict[str, str]:
    """Every HOMESTREAM_* setting as a variable, so the processes see the settings `up`
    used even when `up` ran in-process with a mapping (the tests)."""
    env: dict[str, str] = {}
    for name, var, _info in Settings.variables():
        value = getattr(settings, name)
        if value is None:
            continue
        if isinstance(value, bool):
            value = "1" if value else "0"
        elif isinstance(value, tuple):
            value = ",".join(value)
        env[var] = str(value)
    return env


def _ini(value: str) -> str:
    # supervisord's config expands %(name)s: a literal % must be doubled.
    return value.replace("%", "%%")


def render(settings: Settings, programs: Sequence[Program], sock: Path) -> str:
    """supervisord.conf for ``programs`` (pure; tested)."""
    lines = [
        "; written by `homestream up`: edits are overwritten",
        "[unix_http_server]",
        f"file={_ini(str(sock))}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_ini(str(settings.log_dir / 'supervisord.log'))}",
        "logfile_maxbytes=10MB",
        f"pidfile={_ini(str(settings.service_dir('supervisor') / 'supervisord.pid'))}",
        f"childlogdir={_ini(str(settings.service_dir('supervisor')))}",
        "nodaemon=true",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_ini(str(sock))}",
    ]
    for p in programs:
        lines += [
            "",
            f"[program:{p.name}]",
            f"command={_ini(shlex.join(p.argv))}",
            f"directory={_ini(str(p.directory))}",
            f"stdout_logfile={_ini(str(p.log_path))}",
            "stdout_logfile_maxbytes=50MB",
            "stdout_logfile_backups=2",
            "redirect_stderr=true",
            "autostart=false",  # `up` starts each in order and waits for its health
            "autorestart=true",
            f"startsecs={STARTSECS}",
            f"startretries={STARTRETRIES}",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT_S}",
            "stopasgroup=true",
            "killasgroup=true",
        ]
        if p.user:
            lines.append(f"user={p.user}")
    return "\n".join(lines) + "\n"


def last_error(log_path: Path) -> str:
    """The last non-blank line of a log (a traceback's last line says what broke)."""
    try:
        with open(log_path, "rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - 8192))
            tail = f.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class _UnixTransport(xmlrpc.client.Transport):
    def __init__(self, sock: Path):
        super().__init__()
        self.sock = sock

    def make_connection(self, host: Any) -> Any:
        import http.client
        import socket

        sock_path = str(self.sock)

        class Conn(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(10)
                self.sock.connect(sock_path)

        return Conn("localhost")


class Supervisor:
    """The stack's supervisord: its config, its process and its XML-RPC interface."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.dir = settings.service_dir("supervisor")
        self.conf = self.dir / "supervisord.conf"
        self.sock = settings.run_dir / "supervisord.sock"
        self.pidfile = PidFile(settings.run_dir / "supervisord.pid", marker=str(self.conf))
        self.log_path = settings.log_dir / "supervisord.out"
        self._programs: dict[str, Program] = {}

    # -- the daemon ------------------------------------------------------------------------
    def running(self) -> bool:
        return self.pidfile.alive()

    def _rpc(self) -> Any:
        proxy = xmlrpc.client.ServerProxy("http://localhost", transport=_UnixTransport(self.sock))
        return proxy.supervisor

    def ensure(self, programs: Sequence[Program], env: Mapping[str, str] | None = None) -> None:
        """Write the config for ``programs`` and have supervisord run it: start the
        daemon, or make a running one load the change (added, changed, removed programs),
        as `supervisorctl update` does. Running programs that did not change keep running."""
        self.dir.mkdir(parents=True, exist_ok=True)
        self.conf.write_text(render(self.settings, programs, self.sock))
        self.conf.chmod(0o600)
        if not self.running():
            self.sock.unlink(missing_ok=True)
            argv = [sys.executable, "-m", "supervisor.supervisord", "-c", str(self.conf)]
            spawn(
                argv,
                pidfile=self.pidfile,
                log_path=self.log_path,
                env={**os.environ, **(env or {})},
                cwd=self.dir,
            )
            self._wait_socket()
            return
        rpc = self._rpc()
        [[added, changed, removed]] = rpc.reloadConfig()
        for name in removed + changed:
            with contextlib.suppress(xmlrpc.client.Fault):
                rpc.stopProcessGroup(name)
            rpc.removeProcessGroup(name)
        for name in added + changed:
            rpc.addProcessGroup(name)

    def _wait_socket(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                self._rpc().getState()
                return
            except OSError:
                time.sleep(0.1)
            if not self.running():
                time.sleep(0.5)  # one look at /proc can miss a process mid-start
                if not self.running():
                    break
        from compose.process import tail

        raise LauncherError(
            f"supervisord did not start. Last lines of {self.log_path}:\n{tail(self.log_path)}"
        )

    def shutdown(self) -> bool:
        """Stop every program (each with SIGTERM, then SIGKILL after 20 s) and the daemon."""
        stopped = stop(self.pidfile, timeout=60)
        self.sock.unlink(missing_ok=True)
        return stopped

    # -- programs ----------------------------------------------------------------------------
    def info(self, name: str) -> ProgramState | None:
        """The program's state, or None when supervisord is not running or lacks it."""
        if not self.running():
            return None
        try:
            raw = self._rpc().getProcessInfo(name)
        except (OSError, xmlrpc.client.Fault):
            return None
        state = str(raw["statename"])
        pid = int(raw["pid"]) or None
        error = ""
        if state in ("FATAL", "BACKOFF", "EXITED"):
            error = last_error(Path(raw["stdout_logfile"])) or str(raw.get("spawnerr") or "")
        return ProgramState(state, pid if state in ("RUNNING", "STARTING") else None, error)

    def start(self, name: str) -> int:
        """Start a program without waiting for STARTSECS; returns its pid."""
        rpc = self._rpc()
        try:
            rpc.startProcess(name, False)
        except xmlrpc.client.Fault as exc:
            if "ALREADY_STARTED" not in exc.faultString:
                msg = f"supervisord could not start {name}: {exc.faultString}"
                raise LauncherError(msg) from None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            info = self.info(name)
            if info is not None and info.pid is not None:
                return info.pid
            time.sleep(0.05)
        raise LauncherError(f"supervisord did not start {name}: see {self.log_path}")

    def stop(self, name: str) -> bool:
        info = self.info(name)
        if info is None or info.state in ("STOPPED", "EXITED", "FATAL"):
            return False
        # Not supervisord's own wait: a process deaf to SIGTERM holds that call for the
        # whole stop wait (then SIGKILL), longer than the socket's 10 s timeout.
        with contextlib.suppress(xmlrpc.client.Fault):
            self._rpc().stopProcess(name, False)
        deadline = time.monotonic() + STOP_WAIT_S + 15
        while time.monotonic() < deadline:
            info = self.info(name)
            if info is None or info.state in ("STOPPED", "EXITED", "FATAL"):
                return True
            time.sleep(0.1)
        raise LauncherError(f"supervisord did not stop {name}: see {self.log_path}")
