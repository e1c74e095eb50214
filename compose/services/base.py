"""What every server of the local stack offers the launcher."""

from __future__ import annotations

import os
import pwd
import shutil
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from compose.errors import LauncherError
from compose.process import PidFile, port_in_use, spawn, stop, tail
from compose.supervisor import Program, Supervisor
from runtime.config import Settings
from runtime.secrets import Secrets


class Service(ABC):
    name: str
    # (Ports field, env variable) of each port the service listens on.
    port_fields: tuple[tuple[str, str], ...] = ()
    # Unprivileged account the server runs as when we are root (None: as we are).
    run_as: str | None = None
    start_timeout = 60.0
    # homestream's own processes run under the stack's supervisord (compose/supervisor.py);
    # the servers are spawned directly and found by pid file.
    supervisor: Supervisor | None = None

    def __init__(self, settings: Settings, secrets: Secrets):
        self.settings = settings
        self.secrets = secrets
        self.dir = settings.service_dir(self.name)
        self.pidfile = PidFile(settings.run_dir / f"{self.name}.pid", marker=str(self.dir))
        self.log_path = settings.log_dir / f"{self.name}.log"

    # -- what each service defines -------------------------------------------------
    @abstractmethod
    def endpoint(self) -> str: ...

    @abstractmethod
    def prepare(self) -> None:
        """Write configuration and initialise data (idempotent)."""

    @abstractmethod
    def argv(self) -> Sequence[str]: ...

    @abstractmethod
    def healthy(self) -> bool:
        """A real request to the server succeeded."""

    def env(self) -> dict[str, str] | None:
        return None

    # -- shared behaviour ------------------------------------------------------------
    def account(self) -> str | None:
        """The account that owns the service's files (run_as, when we are root)."""
        return self.run_as if os.geteuid() == 0 else None

    def user(self) -> str | None:
        """The account the process is started as."""
        return self.account()

    def pid(self) -> int | None:
        if self.supervisor is not None:
            info = self.supervisor.info(self.name)
            return info.pid if info is not None else None
        return self.pidfile.live_pid()

    def program(self) -> Program:
        """What supervisord runs for this service; ``prepare()`` must have run."""
        return Program(self.name, list(self.argv()), self.dir, self.log_path, self.user())

    def check_ports(self) -> None:
        for field_name, var in self.port_fields:
            port = getattr(self.settings.ports, field_name)
            if port_in_use(self.settings.host, port):
                raise LauncherError(
                    f"{self.name}: port {port} on {self.settings.host} is already in use by "
                    f"another process. Stop that process, or pick a free port with {var}=<port> "
                    f"(then run `homestream up` again)."
                )

    def start(self) -> int:
        """Spawn the server; ``prepare()`` must have run."""
        if self.supervisor is not None:
            return self.supervisor.start(self.name)
        return spawn(
            self.argv(),
            pidfile=self.pidfile,
            log_path=self.log_path,
            env=self.env(),
            user=self.user(),
            cwd=self.dir,
        )

    def wait_healthy(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if not self._still_running():
                raise LauncherError(
                    f"{self.name} exited during start-up. Last lines of {self.log_path}:\n"
                    f"{tail(self.log_path)}"
                )
            if self.healthy():
                return
            time.sleep(0.25)
        raise LauncherError(
            f"{self.name} did not become healthy in time. Last lines of {self.log_path}:\n"
            f"{tail(self.log_path)}"
        )

    def _still_running(self) -> bool:
        if self.supervisor is not None:  # it retries a crash itself, until FATAL
            info = self.supervisor.info(self.name)
            return info is not None and info.state not in ("FATAL", "STOPPED", "EXITED")
        # Looked at twice, a moment apart: one look at /proc can miss a process mid-start.
        if self.pidfile.alive():
            return True
        time.sleep(0.5)
        return self.pidfile.alive()

    def stop(self) -> bool:
        if self.supervisor is not None:
            return self.supervisor.stop(self.name)
        return stop(self.pidfile)

    def give_to_run_user(self, *paths: Path) -> None:
        """chown paths to the service account and check it can reach them."""
        user = self.account()
        if user is None:
            return
        entry = pwd.getpwnam(user)
        for path in paths:
            for p in [path, *path.rglob("*")] if path.is_dir() else [path]:
                os.chown(p, entry.pw_uid, entry.pw_gid)
        _check_traversable(self.dir, user, self.name)


def _check_traversable(path: Path, user: str, service: str) -> None:
    # The service account must be able to walk from / down to its directory.
    entry = pwd.getpwnam(user)
    for parent in [*reversed(path.parents), path]:
        st = parent.stat()
        if st.st_uid == entry.pw_uid:
            continue
        if not st.st_mode & 0o001:
            raise LauncherError(
                f"{service} runs as user '{user}', which cannot enter {parent} (mode "
                f"{oct(st.st_mode & 0o777)}). Put the stack's state elsewhere, e.g. "
                "HOMESTREAM_STATE_DIR=/var/lib/homestream, or `chmod o+x` that directory."
            )


def require_binary(path: str | Path, hint: str) -> str:
    found = shutil.which(str(path)) if not Path(path).is_absolute() else str(path)
    if not found or not Path(found).exists():
        raise LauncherError(f"{path} not found: {hint}")
    return found
