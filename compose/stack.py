"""The local launcher: `homestream up | down | status` without Docker.

`up` installs what is missing, starts each server from the state directory, waits
for a real health check of each, then prepares the data plane (database and
migrations, Kafka topics, MQTT logins, the demo account), starts homestream's own
processes and gives the demo home its scenes and automations (``compose.demo_seed``,
through the gateway). Every step is idempotent: a second `up` finds everything running
and changes nothing.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass

from compose.errors import LauncherError
from compose.install import ensure_kafka_jars, install_debian_packages, missing_packages
from compose.services.base import Service
from compose.services.kafka import KafkaService
from compose.services.mosquitto import MosquittoService
from compose.services.postgres import PostgresService
from compose.services.redis import RedisService
from compose.supervisor import Supervisor, settings_env
from compose.timescaledb import ensure_timescaledb
from runtime.config import Settings
from runtime.secrets import DEMO_USER, Secrets, ensure_secrets, load_secrets
from stores import accounts, db
from stores.analyst import ANALYST_ROLE, ensure_analyst

DEMO_HOME = "demo-home"

Say = Callable[[str], None]


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    running: bool
    pid: int | None
    healthy: bool
    endpoint: str
    detail: str = ""  # e.g. which engine history runs on (postgres)
    state: str = ""  # supervisord's state of a homestream process (RUNNING, BACKOFF, FATAL ...)
    error: str = ""  # the last line of its log when it is down


class Stack:
    def __init__(self, settings: Settings, say: Say = print):
        self.settings = settings.with_recorded_cluster()
        self.say = say
        self.supervisor = Supervisor(settings)

    def services(self, secrets: Secrets) -> list[Service]:
        """The servers this launcher runs: those no override variable points elsewhere."""
        s = self.settings
        out: list[Service] = []
        if not s.pg_dsn_override:
            out.append(PostgresService(s, secrets))
        if not s.redis_url_override:
            out.append(RedisService(s, secrets))
        if not s.kafka_bootstrap_override:
            out.extend(KafkaService(s, secrets, n) for n in range(1, s.kafka_brokers + 1))
        out.append(MosquittoService(s, secrets))
        return out

    def app_services(self, secrets: Secrets, demo: bool | None = None) -> list[Service]:
        """homestream's own processes, started once the servers are provisioned. The demo
        home's simulator is one of them with ``demo``; ``None`` (status, down): if running."""
        from compose.services.bridge import BridgeService
        from compose.services.gateway import GatewayService
        from compose.services.notify import NotifyService
        from compose.services.redis_sink import RedisSinkService
        from compose.services.simulator import DemoSimulatorService
        from compose.services.sink import HistorySinkService
        from compose.services.streams import StreamWorkerService
        from compose.services.webhook import DemoWebhookService

        s = self.settings
        out: list[Service] = [
            *(StreamWorkerService(s, secrets, i) for i in range(1, s.stream_workers + 1)),
            *(BridgeService(s, secrets, i) for i in range(1, s.bridges + 1)),
            *(
                [
                    RedisSinkService(s, secrets),
                    HistorySinkService(s, secrets),
                    NotifyService(s, secrets),
                ]
                if s.sinks
                else []
            ),
            *([GatewayService(s, secrets)] if s.gateway else []),
        ]
        for extra in (DemoWebhookService(s, secrets), DemoSimulatorService(s, secrets)):
            extra.supervisor = self.supervisor
            if demo or (demo is None and extra.pid() is not None):
                out.append(extra)
        for svc in out:
            svc.supervisor = self.supervisor
        return out

    def _forget_retired_bridges(self) -> None:
        """Bridges beyond HOMESTREAM_BRIDGES (after a scale-down) still have sessions in the
        shared subscription, and Mosquitto would keep queueing their share for them."""
        from hub.bridge import forget_session

        for i in range(self.settings.bridges + 1, self.settings.bridges + 9):
            try:
                forget_session(self.settings, f"bridge-{i}")
            except OSError as exc:
                self._step(f"could not clear the session of bridge-{i}: {exc}")

    # -- up ---------------------------------------------------------------------------
    def up(
        self,
        *,
        install: bool = True,
        demo: bool = True,
        apps: bool = True,
        monitoring: bool = False,
    ) -> Secrets:
        s = self.settings
        t0 = time.monotonic()
        self.say(f"[1/5] prerequisites (state dir {s.state_dir})")
        missing = missing_packages()
        if missing and not install:
            raise LauncherError(
                "missing: "
                + ", ".join(f"{r.what} (Debian package {r.package})" for r in missing)
                + ". Run `homestream up` without --no-install, or apt-get install them."
            )
        if missing:
            install_debian_packages(missing, self._step)
        if install:
            ensure_kafka_jars(s.kafka_libs, self._step)
        if not s.pg_dsn_override:
            tsdb = ensure_timescaledb(s, self._step, install=install)
            self._step(f"history engine: {tsdb.engine} ({tsdb.why})")
        for d in (s.state_dir, s.run_dir, s.log_dir):
            d.mkdir(parents=True, exist_ok=True)
        s.state_dir.chmod(0o755)  # service accounts must be able to enter it
        self._record_cluster()
        secrets = ensure_secrets(s)

        self.say("[2/5] servers")
        services = self.services(secrets)
        self._start_all(services)

        self.provision(secrets, demo=demo)
        if apps:
            self.say("[5/5] homestream processes (under supervisord)")
            apps = self.app_services(secrets, demo=demo or None)  # a running demo stays
            if apps or self.supervisor.running():
                self.supervisor.ensure([a.program() for a in apps], settings_env(s))
            self._start_all(apps)
            self._forget_retired_bridges()
            if demo:
                self._seed_demo(secrets)
        if monitoring:
            self.say("      monitoring")
            self._start_monitoring(secrets)
        self.say(f"ready in {time.monotonic() - t0:.1f} s")
        return secrets

    def _record_cluster(self) -> None:
        """Remember the broker count for every later command; a one-broker Kafka's data
        (replication 1) cannot become a cluster's."""
        s = self.settings
        if s.kafka_bootstrap_override:
            return
        if (
            s.kafka_brokers > 1
            and not s.cluster_file.exists()
            and (s.service_dir("kafka") / "data" / "meta.properties").exists()
        ):
            raise LauncherError(
                f"{s.state_dir} holds a one-broker Kafka; a {s.kafka_brokers}-broker cluster "
                "starts from a fresh state directory: pick one with HOMESTREAM_STATE_DIR=<dir>, "
                "or wipe this one with `homestream down --purge` (loses all data)."
            )
        s.cluster_file.write_text(f"{s.kafka_brokers}\n")
        if s.kafka_brokers > 1:
            self._step(f"Kafka: a cluster of {s.kafka_brokers} brokers ({s.kafka_bootstrap})")

    def provision(self, secrets: Secrets, *, demo: bool = True) -> None:
        """Database, migrations, MQTT logins and Kafka topics on running servers.

        Also what `homestream init` runs against servers the launcher does not own
        (docker compose): there, no broker pid is known and the broker is reloaded
        by whoever runs it.
        """
        s = self.settings
        self.say("[3/5] database")
        if not s.pg_dsn_override and PostgresService(s, secrets).ensure_database():
            self._step(f"created database {s.pg_database}")
        with db.connect(s) as conn:
            for mig in db.migrate(conn):
                self._step(f"applied migration {mig.version:04d}_{mig.name}")
            ensure_analyst(conn, secrets.analyst_password)
            self._step(f"read-only role {ANALYST_ROLE!r} for the history views")
            hubs = accounts.active_hub_logins(conn)
            revoked = accounts.revoked_certificates(conn)
            if demo:
                self._ensure_demo(conn, secrets)
        MosquittoService(s, secrets).write_auth(hubs, revoked)
        self._step(f"MQTT logins: bridge + {len(hubs)} hub(s)")

        self.say("[4/5] Kafka topics")
        from streams.txloop import changelog_spec
        from topics.admin import ensure_topics
        from topics.catalogue import catalogue

        rf, isr = s.kafka_replication
        results = ensure_topics(
            s.kafka_bootstrap,
            [*catalogue(), changelog_spec(s.partitions)],
            partitions=s.partitions,
            replication_factor=rf,
            min_insync_replicas=isr,
        )
        created = [r for r in results if r[1] == "created"]
        problems = [r for r in results if r[1] not in ("created", "exists")]
        self._step(f"{len(results)} topics ({len(created)} created)")
        for name, outcome in problems:
            self._step(f"WARNING {name}: {outcome}")
        if s.kafka_brokers > 1 and not s.kafka_bootstrap_override:
            from compose.services.kafka import await_topics_everywhere

            await_topics_everywhere(s, [name for name, _ in results])

    def _start_monitoring(self, secrets: Secrets) -> None:
        """Prometheus scraping the processes this `up` runs; a running one reloads."""
        from compose.services.prometheus import PrometheusService

        prom = PrometheusService(self.settings, secrets)
        if prom.pid() is None:
            self._start_all([prom])
            return
        prom.prepare()
        prom.reload()
        self._step(f"prometheus: reloaded its targets (pid {prom.pid()})")

    def _start_all(self, services: list[Service]) -> None:
        """Check ports, then prepare, then spawn: a conflict or corrupt state is found
        before anything runs, and a failure stops what this call started."""
        todo = []
        for svc in services:
            pid = svc.pid()
            if pid is not None:
                self._step(f"{svc.name}: already running (pid {pid})")
            else:
                svc.check_ports()
                todo.append(svc)
        for svc in todo:
            svc.dir.mkdir(parents=True, exist_ok=True)
            svc.prepare()
        started: list[Service] = []
        try:
            for svc in todo:
                self._step(f"{svc.name}: started (pid {svc.start()})")
                started.append(svc)
            for svc in services:
                svc.wait_healthy(time.monotonic() + svc.start_timeout)
                self._step(f"{svc.name}: healthy at {svc.endpoint()}")
        except BaseException:
            for svc in reversed(started):
                svc.stop()
            raise

    def _step(self, text: str) -> None:
        self.say(f"      {text}")

    def _ensure_demo(self, conn, secrets: Secrets) -> None:
        exists = conn.execute("SELECT 1 FROM users WHERE username = %s", (DEMO_USER,)).fetchone()
        if not exists:
            accounts.add_user(conn, DEMO_USER, secrets.demo_password)
            self._step(f"created demo user {DEMO_USER!r}")
        if conn.execute("SELECT 1 FROM homes WHERE home_id = %s", (DEMO_HOME,)).fetchone() is None:
            accounts.add_home(conn, DEMO_HOME, DEMO_USER, name="Demo Home")
            self._step(f"created demo home {DEMO_HOME!r}")
        conn.commit()

    def _seed_demo(self, secrets: Secrets) -> None:
        """The demo home's place, scenes, automations and webhook channel, through the
        gateway. A failure is a warning: the stack is up, and the next `up` tries again."""
        from compose.demo_seed import HttpApi, SeedError, seed_demo

        s = self.settings
        off = [
            var
            for var, on in (
                ("HOMESTREAM_GATEWAY", s.gateway),
                ("HOMESTREAM_SINKS", s.sinks),
                ("HOMESTREAM_BRIDGES", s.bridges),
                ("HOMESTREAM_STREAM_WORKERS", s.stream_workers),
            )
            if not on
        ]
        if off:  # the demo's devices would never reach the gateway
            self._step(f"demo home: not seeded ({', '.join(off)} off)")
            return
        from compose.services.gateway import ca_context

        api = HttpApi(s.gateway_url, context=ca_context(s))
        try:
            api.sign_in(DEMO_USER, secrets.demo_password)
            done = seed_demo(api, DEMO_HOME, webhook_port=s.ports.demo_webhook)
        except SeedError as exc:
            self._step(f"WARNING demo home not seeded: {exc}")
            return
        made = ", ".join(done.created) if done.created else "nothing new"
        self._step(f"demo home: {made} ({len(done.kept)} already there)")
        for note in done.notes:
            self._step(f"demo home: {note}")

    # -- down / status ------------------------------------------------------------------
    def down(self, *, purge: bool = False) -> list[str]:
        stopped = []
        try:
            secrets = load_secrets(self.settings)
        except Exception:
            secrets = None
        if secrets is not None:
            for svc in reversed(self.app_services(secrets)):
                self._stop(svc, stopped)
            if self.supervisor.shutdown():  # its processes are down: then the supervisor
                self._step("supervisord: stopped")
            for svc in self._monitoring(secrets):
                self._stop(svc, stopped)
            for svc in reversed(self.services(secrets)):
                self._stop(svc, stopped)
        if purge and self.settings.state_dir.exists():
            shutil.rmtree(self.settings.state_dir)
            self._step(f"removed {self.settings.state_dir}")
        return stopped

    def _monitoring(self, secrets: Secrets) -> list[Service]:
        """Prometheus, when `up --monitoring` started it."""
        from compose.services.prometheus import PrometheusService

        prom = PrometheusService(self.settings, secrets)
        return [prom] if prom.pid() is not None else []

    def _stop(self, svc: Service, stopped: list[str]) -> None:
        if svc.stop():
            stopped.append(svc.name)
            self._step(f"{svc.name}: stopped")
        else:
            self._step(f"{svc.name}: not running")

    def status(self) -> list[ServiceStatus]:
        try:
            secrets = load_secrets(self.settings)
        except Exception:
            return []
        rows = []
        servers = [*self.services(secrets), *self._monitoring(secrets)]
        for svc in [*servers, *self.app_services(secrets, demo=None)]:
            info = self.supervisor.info(svc.name) if svc not in servers else None
            pid = info.pid if info is not None else svc.pid()
            rows.append(
                ServiceStatus(
                    name=svc.name,
                    running=pid is not None,
                    pid=pid,
                    healthy=pid is not None and svc.healthy(),
                    endpoint=svc.endpoint(),
                    detail=self._detail(svc) if pid is not None else "",
                    state=info.state if info is not None else "",
                    error=info.error if info is not None else "",
                )
            )
        return rows

    def _detail(self, svc: Service) -> str:
        if svc.name != "postgres":
            return ""
        return f"history on {history_engine(self.settings)}"

    def sync_mqtt_logins(self) -> int:
        """Re-render Mosquitto's passwd/ACL from PostgreSQL and reload a running broker."""
        secrets = load_secrets(self.settings)
        with db.connect(self.settings) as conn:
            hubs = accounts.active_hub_logins(conn)
            revoked = accounts.revoked_certificates(conn)
        MosquittoService(self.settings, secrets).write_auth(hubs, revoked)
        return len(hubs)


def history_engine(settings: Settings) -> str:
    """Which engine the history tables run on, as the migration chose it (and the
    TimescaleDB version), or why that is unknown."""
    import psycopg

    try:
        with db.connect(settings) as conn:
            row = conn.execute(
                "SELECT m.value, e.extversion FROM history.meta m"
                " LEFT JOIN pg_extension e ON e.extname = 'timescaledb'"
                " WHERE m.key = 'engine'"
            ).fetchone()
    except (psycopg.Error, db.DatabaseUnavailable) as exc:
        return f"unknown ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
    if row is None:
        return "unknown (no history schema: run `homestream up`)"
    engine, version = row
    return f"{engine} {version}" if engine == "timescaledb" and version else str(engine)


def require_running(settings: Settings) -> None:
    if not settings.secrets_file.exists() and not settings.pg_dsn_override:
        raise LauncherError(
            f"no local stack in {settings.state_dir}: run `homestream up` first "
            "(or set HOMESTREAM_STATE_DIR to the stack you mean)"
        )
