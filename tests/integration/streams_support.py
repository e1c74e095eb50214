"""Helpers for stream-worker tests: real worker processes, Avro in, Avro out."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
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

    def config(self, home: str, kind: str, doc_id: str, document: dict | None) -> dict:
        """A scene, group or settings document, as the gateway publishes it."""
        return self.send(
            t.HOME_CONFIG,
            "HomeConfig",
            home,
            key=f"{home}/{kind}:{doc_id}",
            kind=kind,
            doc_id=doc_id,
            document=None if document is None else json.dumps(document),
        )


class Hub:
    """A hub for some homes that completes every command dispatched to them (read
    committed, from now on), except to the devices in ``silent``."""

    def __init__(self, settings: Settings, homes: set[str], silent: Iterable[str] = ()):
        self.settings, self.homes, self.silent = settings, homes, set(silent)
        self.acked: list[tuple[float, dict]] = []  # (wall time, CommandDispatched)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(30), "the hub could not assign its partitions"

    def _run(self) -> None:
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": f"hub-{uuid.uuid4().hex}",
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
            }
        )
        feed = Feed(self.settings)
        parts = sorted({partition_for(h, self.settings.partitions) for h in self.homes})
        ends = []
        for p in parts:  # from the end as it is now: nothing dispatched later is missed
            _low, high = consumer.get_watermark_offsets(
                TopicPartition(t.COMMANDS_DISPATCHED, p), timeout=10
            )
            ends.append(TopicPartition(t.COMMANDS_DISPATCHED, p, high))
        consumer.assign(ends)
        self._ready.set()
        try:
            while not self._stop.is_set():
                for msg in consumer.consume(num_messages=100, timeout=0.2):
                    if msg.error() or msg.value() is None:
                        continue
                    try:
                        rec = CODEC.decode(msg.value()).record
                    except CodecError:
                        continue
                    if rec["home_id"] not in self.homes or rec["device_id"] in self.silent:
                        continue
                    self.acked.append((time.time(), rec))
                    feed.send(
                        t.COMMANDS_ACKS,
                        "HubAck",
                        rec["home_id"],
                        device_id=rec["device_id"],
                        command_id=rec["command_id"],
                        status="COMPLETED",
                    )
                    feed.flush()
        finally:
            consumer.close()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)


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
