"""Helpers for stream-worker tests: real worker processes, Avro in, Avro out."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterable
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from runtime.config import Settings
from streams.worker import worker_argv
from topics import catalogue as t
from topics.codec import SingleObjectCodec
from topics.errors import CodecError
from topics.partitioning import partition_for
from topics.producer import EventProducer
from topics.schemas import SchemaStore

CODEC = SingleObjectCodec(SchemaStore())


class Worker:
    """One `homestream streams worker` process."""

    def __init__(
        self,
        env: dict[str, str],
        name: str,
        data_dir: Path,
        metrics_port: int | None = None,
    ):
        self.log = data_dir / f"{name}.log"
        data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [
                *worker_argv(name, data_dir, metrics_port=metrics_port),
            ],
            env={**os.environ, **env},
            stdout=open(self.log, "ab"),  # noqa: SIM115 - the process owns it
            stderr=subprocess.STDOUT,
        )

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def alive(self) -> bool:
        return self.proc.poll() is None


class Feed(EventProducer):
    """Events for one test's homes."""

    def __init__(self, settings: Settings):
        super().__init__(settings.kafka_bootstrap, settings.partitions, CODEC)
        self.settings = settings

    def discover(self, home: str, device: str, caps: Iterable[str], type_: str) -> dict:
        return self.send(
            t.DEVICE_DISCOVERY,
            "DeviceDiscovered",
            home,
            device_id=device,
            name=device.replace("-", " ").title(),
            type=type_,
            capabilities=list(caps),
        )

    def report(self, home: str, device: str, state: dict, received_at: int | None = None) -> dict:
        return self.send(
            t.DEVICE_REPORTS,
            "DeviceReport",
            home,
            device_id=device,
            state=state,
            received_at=received_at or _now(),
        )


def read_all(
    settings: Settings,
    topics: Iterable[str],
    homes: set[str],
    *,
    until,
    timeout: float = 90.0,
) -> list[tuple[str, dict]]:
    """Decoded records of ``homes`` (read_committed) until ``until(records)`` holds."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
        }
    )
    parts = sorted({partition_for(h, settings.partitions) for h in homes})
    consumer.assign([TopicPartition(tp, p, 0) for tp in topics for p in parts])
    out: list[tuple[str, dict]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                if msg.error() or msg.value() is None:  # tombstones on compacted topics
                    continue
                try:
                    decoded = CODEC.decode(msg.value())
                except CodecError:  # other tests' poison records share these topics
                    continue
                if decoded.record.get("home_id") in homes:
                    out.append((decoded.name, decoded.record))
            if until(out):
                return out
    finally:
        consumer.close()
    return out


def _now() -> int:
    return int(time.time() * 1000)
