"""Apache Kafka in KRaft mode: each process is both broker and controller.

One broker by default; with HOMESTREAM_KAFKA_BROKERS=3 (`up --brokers 3`) three such
processes form a cluster: three controller voters, topics replicated three times with
``min.insync.replicas`` 2, and KIP-890's partition check on (docs/scaling.md).
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from compose.errors import LauncherError
from compose.services.base import Service


class KafkaService(Service):
    start_timeout = 120.0

    def __init__(self, settings, secrets, node: int = 1):
        self.node = node
        # Broker 1 keeps the one-broker stack's name, directory and pid file.
        self.name = "kafka" if node == 1 else f"kafka-{node}"
        super().__init__(settings, secrets)

    def check_ports(self) -> None:
        from compose.process import port_in_use

        for port in self.settings.kafka_node_ports(self.node):
            if port_in_use(self.settings.host, port):
                raise LauncherError(
                    f"{self.name}: port {port} on {self.settings.host} is already in use by "
                    "another process. Stop it, or move the brokers with "
                    "HOMESTREAM_KAFKA_PORT / HOMESTREAM_KAFKA_CONTROLLER_PORT (broker n uses "
                    "port+10(n-1)), then run `homestream up` again."
                )

    @property
    def data(self):
        return self.dir / "data"

    @property
    def props(self):
        return self.dir / "server.properties"

    def endpoint(self) -> str:
        return f"{self.settings.host}:{self.settings.kafka_node_ports(self.node)[0]}"

    @property
    def partition_check(self) -> bool:
        mode = self.settings.kafka_partition_check
        return mode == "on" or (mode == "auto" and self.settings.kafka_brokers > 1)

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
        host = s.host
        port, ctl = s.kafka_node_ports(self.node)
        voters = ",".join(
            f"{n}@{host}:{s.kafka_node_ports(n)[1]}" for n in range(1, s.kafka_brokers + 1)
        )
        rf, isr = s.kafka_replication
        self.props.write_text(
            "\n".join(
                [
                    "process.roles=broker,controller",
                    f"node.id={self.node}",
                    f"controller.quorum.voters={voters}",
                    f"listeners=PLAINTEXT://{host}:{port},CONTROLLER://{host}:{ctl}",
                    f"advertised.listeners=PLAINTEXT://{host}:{port}",
                    "controller.listener.names=CONTROLLER",
                    "inter.broker.listener.name=PLAINTEXT",
                    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                    f"log.dirs={self.data}",
                    f"num.partitions={s.partitions}",
                    # The catalogue creates every topic; a typo must not make a new one.
                    "auto.create.topics.enable=false",
                    f"default.replication.factor={rf}",
                    f"min.insync.replicas={isr}",
                    f"offsets.topic.replication.factor={rf}",
                    "offsets.topic.num.partitions=12",
                    f"transaction.state.log.replication.factor={rf}",
                    f"transaction.state.log.min.isr={isr}",
                    "transaction.state.log.num.partitions=12",
                    # KIP-890's check that a transactional write's partition was added to
                    # its transaction costs a coordinator round trip per produce request,
                    # and librdkafka sends one request per partition: ~10 per worker
                    # transaction, one after another on its connection. Off, the worker's
                    # transactions took 5 ms at p50 instead of 16 (BENCHMARKS.md). Why it
                    # is safe to skip on our own single broker, why a cluster keeps it on,
                    # and how to clear a hanging transaction: docs/streams.md.
                    f"transaction.partition.verification.enable={str(self.partition_check).lower()}",
                    "group.initial.rebalance.delay.ms=0",
                    "num.network.threads=2",
                    "num.io.threads=4",
                    "log.retention.check.interval.ms=60000",
                    # A killed broker is fenced (its partitions led elsewhere, its replicas
                    # out of the ISR) after 6 s instead of 9: writes with acks=all and the
                    # workers' 10 s transactions ride out the loss.
                    "broker.session.timeout.ms=6000",
                    "broker.heartbeat.interval.ms=1000",
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
            # This broker serves, and the cluster it belongs to has elected a controller.
            return self.node in md.brokers and md.controller_id >= 0
        except Exception:  # KafkaException, or the client failing to connect
            return False


def await_topics_everywhere(settings, topics: list[str], timeout: float = 60.0) -> None:
    """Wait until every broker of the launcher's cluster knows ``topics`` with a leader for
    each partition: a worker started on a topic one broker has not heard of yet fails."""
    import time

    from confluent_kafka.admin import AdminClient

    brokers = [
        f"{settings.host}:{settings.kafka_node_ports(n)[0]}"
        for n in range(1, settings.kafka_brokers + 1)
    ]
    deadline = time.monotonic() + timeout
    waiting = list(brokers)
    while waiting:
        broker = waiting[0]
        try:
            md = AdminClient({"bootstrap.servers": broker}).list_topics(timeout=5)
            known = all(
                name in md.topics
                and md.topics[name].partitions
                and all(p.leader >= 0 for p in md.topics[name].partitions.values())
                for name in topics
            )
        except Exception:  # KafkaException, or the client failing to connect
            known = False
        if known:
            waiting.pop(0)
            continue
        if time.monotonic() > deadline:
            raise LauncherError(
                f"Kafka broker {broker} does not know every topic after {timeout:.0f} s: see "
                "the brokers' logs (`homestream status`), then run `homestream up` again."
            )
        time.sleep(0.5)
