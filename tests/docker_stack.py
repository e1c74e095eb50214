"""The test stack on a machine with a Docker engine (testcontainers).

Kafka, TimescaleDB and Redis run in containers; their addresses reach homestream
through the override variables, so the local launcher starts only Mosquitto (from
Debian's package, where `hubs add` can reload it) and provisions everything.
Not exercised on the project's own machines, which have no Docker engine.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from runtime.config import Settings
from runtime.secrets import ensure_secrets


@contextmanager
def docker_stack() -> Iterator[dict[str, str]]:
    from testcontainers.kafka import KafkaContainer
    from testcontainers.postgres import PostgresContainer
    from testcontainers.redis import RedisContainer

    from compose.stack import Stack
    from tests.conftest import isolated_env

    state = Path(tempfile.mkdtemp(prefix="homestream-test-", dir="/tmp"))
    state.chmod(0o755)
    env = isolated_env(state)
    secrets = ensure_secrets(Settings.from_env(env))
    with ExitStack() as stack:
        pg = stack.enter_context(
            PostgresContainer(
                "timescale/timescaledb:latest-pg15",
                username="homestream",
                password=secrets.pg_password,
                dbname="homestream",
            )
        )
        kafka = stack.enter_context(
            KafkaContainer("confluentinc/cp-kafka:7.6.1")
            .with_kraft()
            # As the launcher's broker (docs/streams.md).
            .with_env("KAFKA_TRANSACTION_PARTITION_VERIFICATION_ENABLE", "false")
        )
        redis = stack.enter_context(RedisContainer("redis:7", password=secrets.redis_password))
        env["HOMESTREAM_PG_DSN"] = (
            f"host={pg.get_container_host_ip()} port={pg.get_exposed_port(5432)} "
            f"dbname=homestream user=homestream password={secrets.pg_password}"
        )
        env["HOMESTREAM_PG_PORT"] = str(pg.get_exposed_port(5432))
        env["HOMESTREAM_KAFKA_BOOTSTRAP"] = kafka.get_bootstrap_server()
        env["HOMESTREAM_REDIS_URL"] = (
            f"redis://:{secrets.redis_password}@{redis.get_container_host_ip()}:"
            f"{redis.get_exposed_port(6379)}/0"
        )
        launcher = Stack(Settings.from_env(env), say=lambda line: print(line, file=sys.stderr))
        launcher.up(install=True, demo=False)
        try:
            yield env
        finally:
            launcher.down(purge=True)
