"""Apache Kafka in KRaft mode: one process that is both broker and controller."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from compose.errors import LauncherError
from compose.services.base import Service


class KafkaService(Service):
    name = "kafka"
    port_fields = (
        ("kafka", "HOMESTREAM_KAFKA_PORT"),
        ("kafka_controller", "HOMESTREAM_KAFKA_CONTROLLER_PORT"),
    )
    start_timeout = 120.0

    @property
    def data(self):
        return self.dir / "data"

    @property
    def props(self):
        return self.dir / "server.properties"

    def endpoint(self) -> str:
        return self.settings.kafka_bootstrap

    def _java(self) -> str:
        java = shutil.which("java")
        home = os.environ.get("JAVA_HOME")
        if home and os.path.exists(os.path.join(home, "bin", "java")):
            java = os.path.join(home, "bin", "java")
        if not java:
            raise LauncherError(
                "Java is missing: Kafka needs a Java 17 runtime. Install it with "
                "`apt-get install openjdk-17-jre-headless` or set JAVA_HOME, then `homestream up`."
            )
        return java

    def _classpath(self) -> str:
        libs = self.settings.kafka_libs
        if not any(libs.glob("kafka_2.13-*.jar")):
            raise LauncherError(f"Kafka jars missing in {libs}: run `homestream up` to fetch them")
        return f"{libs}/*"

    def prepare(self) -> None:
        s = self.settings
        host, port, ctl = s.host, s.ports.kafka, s.ports.kafka_controller
        self.props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    "node.id=1",
                    f"controller.quorum.voters=1@{host}:{ctl}",
                    f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{ctl}",
                    f"advertised.listeners=PLAINTEXT://{host}:{port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.data}",
                    f"num.partitions={s.partitions}",
                    # The catalogue creates every topic; a typo must not make a new one.
                    "auto.create.topics.enable=false",
                    "offsets.topic.replication.factor=1",
                    "offsets.topic.num.partitions=12",
                    "transaction.state.log.replication.factor=1",
                    "transaction.state.log.min.isr=1",
                    "transaction.state.log.num.partitions=12",
                    # KIP-890's check that a transactional write's partition was added to
                    # its transaction costs a coordinator round trip per produce request,
                    # and librdkafka sends one request per partition: ~10 per worker
                    # transaction, one after another on its connection. Off, the worker's
                    # transactions took 5 ms at p50 instead of 16 (BENCHMARKS.md). Why it
                    # is safe to skip with our clients, and how to clear a hanging
                    # transaction: docs/streams.md.
                    "transaction.partition.verification.enable=false",
                    "group.initial.rebalance.delay.ms=0",
                    "num.network.threads=2",
                    "num.io.threads=4",
                    "log.retention.check.interval.ms=60000",
                    "",
                ]
            )
        )
        (self.dir / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, stdout\n"
            "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
            "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
            "log4j.logger.kafka.server.KafkaRaftServer=INFO\n"
            "log4j.logger.kafka.server.BrokerServer=INFO\n"
        )
        self._format_storage()

    def _format_storage(self) -> None:
        meta = self.data / "meta.properties"
        cluster_id = self.secrets.kafka_cluster_id
        if meta.exists():
            found = dict(
                line.split("=", 1) for line in meta.read_text().splitlines() if "=" in line
            )
            if found.get("cluster.id") != cluster_id:
                raise LauncherError(
                    f"{meta} belongs to Kafka cluster {found.get('cluster.id')!r}, not this "
                    "stack's: the state directory is corrupt or mixed. Wipe it with "
                    "`homestream down --purge` (loses all data), then `homestream up`."
                )
            return
        if self.data.exists() and any(self.data.iterdir()):
            raise LauncherError(
                f"{self.data} holds data but no meta.properties: the state directory is corrupt. "
                "Wipe it with `homestream down --purge`, then `homestream up`."
            )
        proc = subprocess.run(
            [
                self._java(),
                "-cp",
                self._classpath(),
                *self._jvm_flags(),
                "kafka.tools.StorageTool",
                "format",
                "--ignore-formatted",
                # One argument: a generated id may start with '-' (base64url).
                f"--cluster-id={cluster_id}",
                "-c",
                str(self.props),
            ],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise LauncherError(f"formatting Kafka storage failed:\n{proc.stdout}{proc.stderr}")

    def _jvm_flags(self) -> list[str]:
        return [f"-Dlog4j.configuration=file:{self.dir / 'log4j.properties'}"]

    def argv(self) -> Sequence[str]:
        heap = self.settings.kafka_heap
        return [
            self._java(),
            f"-Xms{heap}",
            f"-Xmx{heap}",
            "-XX:+UseG1GC",
            "-XX:MaxGCPauseMillis=20",
            "-Djava.awt.headless=true",
            *self._jvm_flags(),
            "-cp",
            self._classpath(),
            "kafka.Kafka",
            str(self.props),
        ]

    def healthy(self) -> bool:
        from confluent_kafka.admin import AdminClient

        try:
            admin = AdminClient({"bootstrap.servers": self.endpoint(), "log_level": 0})
            md = admin.list_topics(timeout=2)
            return bool(md.brokers)
        except Exception:  # KafkaException, or the client failing to connect
            return False
