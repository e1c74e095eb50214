"""PostgreSQL 15: our own cluster in the state directory, not the system's."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence

import psycopg

from compose.errors import LauncherError
from compose.install import PG_BIN
from compose.services.base import Service, require_binary
from compose.timescaledb import installed as timescaledb_installed


class PostgresService(Service):
    name = "postgres"
    port_fields = (("postgres", "HOMESTREAM_PG_PORT"),)
    run_as = "postgres"  # the server refuses to run as root
    start_timeout = 60.0

    @property
    def data(self):
        return self.dir / "data"

    @property
    def socket_dir(self):
        return self.dir / "run"

    def endpoint(self) -> str:
        s = self.settings
        return f"postgresql://{s.pg_user}@{s.host}:{s.ports.postgres}/{s.pg_database}"

    def prepare(self) -> None:
        require_binary(PG_BIN / "initdb", "install postgresql-15 (apt-get install postgresql-15)")
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        if self.data.exists() and any(self.data.iterdir()):
            version = self.data / "PG_VERSION"
            if not version.exists():
                raise LauncherError(
                    f"{self.data} is not empty but holds no PostgreSQL cluster (no PG_VERSION): "
                    "the state directory is corrupt. Move it away, or wipe it with "
                    "`homestream down --purge`, then `homestream up`."
                )
            found = version.read_text().strip()
            if found != "15":
                raise LauncherError(
                    f"{self.data} was made by PostgreSQL {found}, this stack runs 15: "
                    "use another HOMESTREAM_STATE_DIR or `homestream down --purge`."
                )
            self.give_to_run_user(self.socket_dir)
            return
        self.data.mkdir(parents=True, exist_ok=True)
        pwfile = self.dir / ".initdb-pw"
        pwfile.write_text(self.secrets.pg_password + "\n")
        try:
            self.give_to_run_user(self.dir)
            proc = subprocess.run(
                [
                    str(PG_BIN / "initdb"),
                    "-D",
                    str(self.data),
                    "-U",
                    self.settings.pg_user,
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=peer",
                    "-E",
                    "UTF8",
                    "--locale=C.UTF-8",
                ],
                capture_output=True,
                text=True,
                user=self.user(),
                group=self.user(),
            )
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            raise LauncherError(f"initdb failed:\n{proc.stderr[-2000:]}")
        # Loopback only, password (SCRAM) for everyone.
        (self.data / "pg_hba.conf").write_text(
            "local all all peer\n"
            "host all all 127.0.0.1/32 scram-sha-256\n"
            "host all all ::1/128 scram-sha-256\n"
        )

    def argv(self) -> Sequence[str]:
        s = self.settings
        args = [
            str(PG_BIN / "postgres"),
            "-D",
            str(self.data),
            "-c",
            f"port={s.ports.postgres}",
            "-c",
            f"listen_addresses={s.host}",
            "-c",
            f"unix_socket_directories={self.socket_dir}",
            "-c",
            "unix_socket_permissions=0700",
            # 2 cores / 24 GB: modest buffers, room for COPY batches.
            "-c",
            "shared_buffers=256MB",
            "-c",
            "max_connections=200",
            "-c",
            "log_min_messages=warning",
        ]
        # Once a cluster ran with TimescaleDB, its databases may hold the extension, which
        # fails without the preload: HOMESTREAM_TIMESCALEDB=off counts for new clusters.
        sticky = self.dir / "timescaledb-preloaded"
        if timescaledb_installed() and (s.timescaledb or sticky.exists()):
            sticky.touch()
            args += [
                "-c",
                "shared_preload_libraries=timescaledb",
                "-c",
                "timescaledb.telemetry_level=off",
            ]
        return args

    def env(self) -> dict[str, str]:
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8"}

    def healthy(self) -> bool:
        try:
            with psycopg.connect(self.settings.pg_dsn("postgres"), connect_timeout=2) as conn:
                conn.execute("SELECT 1")
            return True
        except psycopg.Error:
            return False

    def ensure_database(self) -> bool:
        """Create the application database once. True if it was created now."""
        db = self.settings.pg_database
        with psycopg.connect(self.settings.pg_dsn("postgres"), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (db,)).fetchone()
            if exists:
                return False
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(db)))
            return True
