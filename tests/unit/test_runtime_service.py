"""runtime.service: retries while the service runs, and only for the errors it names."""

from __future__ import annotations

import logging

import pytest

from runtime import kafka
from runtime.config import Settings
from runtime.service import retry_while_running

log = logging.getLogger("test")


class Down(Exception):
    pass


def test_retries_a_transient_error_until_it_succeeds():
    calls, seen = [], []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise Down("store down")
        return "stored"

    result = retry_while_running(
        flaky,
        running=lambda: True,
        retry_on=lambda e: isinstance(e, Down),
        log=log,
        what="write",
        first=0.001,
        longest=0.004,
        on_retry=lambda exc, delay: seen.append(delay),
    )
    assert result == "stored" and len(calls) == 4
    assert seen == [0.001, 0.002, 0.004]  # doubling, capped


def test_stops_retrying_when_the_service_stops():
    state = {"running": True, "calls": 0}
    seen: list[BaseException] = []

    def always_down() -> None:
        state["calls"] += 1
        if state["calls"] == 3:
            state["running"] = False
        raise Down("still down")

    result = retry_while_running(
        always_down,
        running=lambda: state["running"],
        retry_on=lambda e: isinstance(e, Down),
        log=log,
        what="write",
        first=0.001,
        on_retry=lambda exc, _d: seen.append(exc),
    )
    assert result is None and state["calls"] == 3
    assert len(seen) == 3  # the last one too, so the caller can clean up


def test_other_errors_propagate_at_once():
    calls = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError):
        retry_while_running(
            broken, running=lambda: True, retry_on=lambda e: isinstance(e, Down), log=log,
            what="write", first=0.001,
        )  # fmt: skip
    assert len(calls) == 1


def test_the_shared_kafka_settings_and_the_services_own():
    settings = Settings.from_env({"HOMESTREAM_KAFKA_BOOTSTRAP": "k:9092"})
    conf = kafka.consumer_config(settings, "g", {"auto.offset.reset": "latest"})
    assert conf["bootstrap.servers"] == "k:9092" and conf["group.id"] == "g"
    assert conf["isolation.level"] == "read_committed" and conf["enable.auto.commit"] is False
    assert conf["auto.offset.reset"] == "latest"  # the service's override wins
    prod = kafka.producer_config(settings, {"linger.ms": 5})
    assert prod["enable.idempotence"] is True and prod["acks"] == "all" and prod["linger.ms"] == 5


def test_a_service_command_line():
    import sys
    from pathlib import Path

    from runtime.cli import command_line

    argv = command_line(
        "sink", "history", name="h-1", data_dir=Path("/d"), group=None, rebuild=True
    )
    assert argv == [sys.executable, "-m", "homestream.cli", "sink", "history",
                    "--name", "h-1", "--data-dir", "/d", "--rebuild"]  # fmt: skip
