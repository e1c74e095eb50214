"""``homestream up|init|down|status``: the local stack's commands."""

from __future__ import annotations

import argparse
import json

from runtime.cli import Commands, out
from runtime.config import Settings


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from compose.stack import DEMO_HOME, Stack
    from runtime.secrets import DEMO_USER

    if args.brokers:
        settings = settings.model_copy(update={"kafka_brokers": args.brokers})
    secrets = Stack(settings, out).up(
        install=not args.no_install, demo=not args.no_demo, monitoring=args.monitoring
    )
    s = settings
    out("\nhomestream is up. Endpoints:")
    out(f"  MQTT        mqtt://{s.host}:{s.ports.mqtt}")
    out(f"  MQTT TLS    mqtts://{s.mqtt_tls_bind}:{s.ports.mqtt_tls}  (CA: {s.mqtt_ca_file})")
    out(f"  Kafka       {s.kafka_bootstrap}")
    out(f"  PostgreSQL  postgresql://{s.pg_user}@{s.host}:{s.ports.postgres}/{s.pg_database}")
    out(f"  Redis       redis://{s.host}:{s.ports.redis}/0")
    out(f"  Secrets     {s.secrets_file} (database, Redis and broker passwords)")
    if s.gateway:
        out(f"  Dashboard   {s.gateway_url}/  (REST and WebSocket: /v1)")
    if args.monitoring:
        out(f"  Prometheus  http://{s.host}:{s.ports.prometheus}/  (alerts: /alerts)")
    if not args.no_demo:
        out(f"  Webhook     http://{s.host}:{s.ports.demo_webhook}/demo-webhook  (demo alerts)")
        out(f"\nDemo login:  {DEMO_USER} / {secrets.demo_password}   (home {DEMO_HOME!r})")
    return 0


def cmd_init(args: argparse.Namespace, settings: Settings) -> int:
    from compose.stack import Stack
    from compose.tls import ensure_certificates
    from runtime.secrets import ensure_secrets

    settings.state_dir.mkdir(parents=True, exist_ok=True)
    ensure_certificates(
        settings.mqtt_ca_file.parent,
        settings.service_dir("mosquitto") / "tls",
        settings.mqtt_tls_sans,
    )
    Stack(settings, out).provision(ensure_secrets(settings), demo=not args.no_demo)
    return 0


def cmd_down(args: argparse.Namespace, settings: Settings) -> int:
    from compose.stack import Stack

    out(f"stopping the stack in {settings.state_dir}")
    Stack(settings, out).down(purge=args.purge)
    return 0


def cmd_status(args: argparse.Namespace, settings: Settings) -> int:
    from compose.stack import Stack

    rows = Stack(settings, out).status()
    if args.json:
        out(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0 if rows and all(r.healthy for r in rows) else 1
    if not rows:
        out(f"no stack in {settings.state_dir} (run `homestream up`)")
        return 1
    width = max(len("SERVICE"), *(len(r.name) for r in rows))
    out(f"{'SERVICE':<{width}} {'STATE':<8} {'PID':>7}  ENDPOINT")
    for r in rows:
        state = "healthy" if r.healthy else ("running" if r.running else "stopped")
        if r.state and not r.running:  # supervisord's word: BACKOFF, FATAL, STOPPED ...
            state = r.state
        detail = f"  ({r.detail})" if r.detail else ""
        out(f"{r.name:<{width}} {state:<8} {r.pid or '-':>7}  {r.endpoint}{detail}")
        if r.error:
            out(f"{'':<{width}} last error: {r.error}")
    return 0 if all(r.healthy for r in rows) else 1


def cmd_demo_login(args: argparse.Namespace, settings: Settings) -> int:
    from compose.stack import DEMO_HOME
    from runtime.secrets import DEMO_USER, load_secrets

    secrets = load_secrets(settings)  # SecretsMissing: "run homestream up first"
    s = settings
    if args.json:
        out(
            json.dumps(
                {
                    "username": DEMO_USER,
                    "password": secrets.demo_password,
                    "home_id": DEMO_HOME,
                    "dashboard": f"{s.gateway_url}/",
                }
            )
        )
        return 0
    out(f"{DEMO_USER} / {secrets.demo_password}   (home {DEMO_HOME!r})")
    out(f"dashboard: {s.gateway_url}/")
    return 0


def exec_psql(settings: Settings, psql_args: list[str], *, analyst: bool = False) -> int:
    """Replace this process with psql on the stack's database: as its owner, or as the
    read-only role ``analyst``; the password from the secrets file goes by environment,
    never on the command line (ps shows that)."""
    import os
    import shutil

    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from compose.install import PG_BIN
    from runtime.cli import CliError
    from runtime.secrets import load_secrets
    from stores.analyst import ANALYST_ROLE

    exe = shutil.which("psql") or str(PG_BIN / "psql")
    if not os.path.exists(exe):
        raise CliError("psql is not installed: apt-get install postgresql-client")
    s = settings
    env = dict(os.environ)
    if s.pg_dsn_override:
        params: dict[str, object] = dict(conninfo_to_dict(s.pg_dsn_override))
    else:
        params = {"host": s.host, "port": s.ports.postgres, "dbname": s.pg_database}
        params["user"], env["PGPASSWORD"] = s.pg_user, load_secrets(s).pg_password
    if analyst:
        password = load_secrets(s).analyst_password
        if not password:
            raise CliError("no analyst password yet: run `homestream up` (or `init`) once")
        params.pop("password", None)
        params["user"], env["PGPASSWORD"] = ANALYST_ROLE, password
    env["PGAPPNAME"] = "homestream-sql" if analyst else "homestream-psql"
    os.execve(exe, [exe, make_conninfo(**params), *psql_args], env)
    return 0  # not reached


def cmd_psql(args: argparse.Namespace, settings: Settings) -> int:
    return exec_psql(settings, args.psql_args)


def cmd_sql(args: argparse.Namespace, settings: Settings) -> int:
    from compose.stack import require_running

    require_running(settings)
    return exec_psql(settings, args.psql_args, analyst=True)


def register(commands: Commands) -> None:
    p = commands.add("up", cmd_up, "install what is missing and start the local stack (idempotent)")
    p.add_argument(
        "--no-install",
        action="store_true",
        help="do not run apt-get or mvn; fail if something is missing",
    )
    p.add_argument("--no-demo", action="store_true", help="do not create the demo user and home")
    p.add_argument(
        "--brokers",
        type=int,
        choices=(1, 3),
        help="Kafka brokers: 3 runs a KRaft cluster on this machine (three controllers, "
        "replication 3, min.insync.replicas 2), remembered for later commands; a new cluster "
        "needs a fresh state dir [HOMESTREAM_KAFKA_BROKERS, 1]",
    )
    p.add_argument(
        "--monitoring",
        action="store_true",
        help="also run Prometheus (Debian's) scraping every process's /metrics, with the alert "
        "rules of compose/prometheus/alerts.yml (HOMESTREAM_PROMETHEUS_PORT)",
    )
    p = commands.add(
        "init",
        cmd_init,
        "prepare servers the launcher does not run (docker compose): migrations, topics, "
        "Mosquitto's password file and ACL in the state dir",
    )
    p.add_argument("--no-demo", action="store_true", help="do not create the demo user and home")
    p = commands.add("down", cmd_down, "stop what `up` started (by pid file)")
    p.add_argument(
        "--purge",
        action="store_true",
        help="also delete the state directory: all data, logs and secrets",
    )
    p = commands.add(
        "demo-login",
        cmd_demo_login,
        "print the demo login that `up` created (its password is kept in the state dir's "
        "secrets.json)",
    )
    p.add_argument("--json", action="store_true", help="print it as JSON")
    p = commands.add(
        "psql",
        cmd_psql,
        "open psql on the stack's database (host, port, user and password filled in); "
        "arguments after -- go to psql",
    )
    p.add_argument("psql_args", nargs="*", help="passed to psql, e.g. -- -c 'SELECT 1'")
    p = commands.add(
        "sql",
        cmd_sql,
        "open psql on the history views as the read-only role 'analyst' (password from the "
        "secrets file); arguments after -- go to psql",
    )
    p.add_argument("psql_args", nargs="*", help="passed to psql, e.g. -- -c 'SELECT 1'")
    p = commands.add(
        "status",
        cmd_status,
        "show each service, its pid, health and endpoint, and which engine history runs on",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
