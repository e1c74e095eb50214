"""runtime.metrics: every service's /metrics (prometheus_client) and /ready."""

from __future__ import annotations

import urllib.error
import urllib.request
from collections import Counter

import pytest
from prometheus_client.parser import text_string_to_metric_families

from compose.process import free_port
from runtime.metrics import FastHistogram, ServiceMetrics, ready_at


def families(text: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(text)}


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


@pytest.fixture
def served():
    m = ServiceMetrics({"worker": "worker-1"}, "homestream_test_ready", "Ready to work.")
    port = free_port()
    server = m.serve("127.0.0.1", port)
    yield m, f"http://127.0.0.1:{port}"
    server.shutdown()
    server.server_close()


def test_metrics_parse_with_counters_gauges_and_histogram_buckets(served):
    m, base = served
    counts = m.outcomes("homestream_test_events_total", "Events by outcome.", Counter())
    counts["noop"] += 9
    counts["applied"] += 1
    m.gauge("homestream_test_partitions", "Partitions owned.", lambda: 3)
    batch = m.histogram("homestream_test_transaction_seconds", "A batch's transaction.")
    batch.observe(0.003)
    batch.observe(0.2)
    fast = m.fast_histogram("homestream_test_lag_seconds", "Record to commit.")
    for seconds in (0.0004, 0.001, 0.004, 99.0):
        fast.observe(seconds)

    status, text = get(f"{base}/metrics")
    assert status == 200
    f = families(text)
    # Outcome counters: one series per key, the process's labels on each.
    assert {(s.labels["outcome"], s.value) for s in f["homestream_test_events"]} == {
        ("applied", 1),
        ("noop", 9),
    }
    assert all(s.labels["worker"] == "worker-1" for s in f["homestream_test_events"])
    assert [s.value for s in f["homestream_test_partitions"]] == [3]
    # The readiness gauge is a gauge like any other.
    assert [(s.labels, s.value) for s in f["homestream_test_ready"]] == [
        ({"worker": "worker-1"}, 0)
    ]
    # prometheus_client's Histogram: cumulative buckets, count and sum.
    buckets = {
        s.labels["le"]: s.value
        for s in f["homestream_test_transaction_seconds"]
        if s.name.endswith("_bucket")
    }
    assert buckets["0.0025"] == 0 and buckets["0.005"] == 1 and buckets["0.25"] == 2
    assert buckets["+Inf"] == 2
    # The fast histogram has the same shape: le bounds inclusive, +Inf equals the count.
    samples = f["homestream_test_lag_seconds"]
    fast_buckets = {s.labels["le"]: s.value for s in samples if s.name.endswith("_bucket")}
    assert fast_buckets["0.0005"] == 1
    assert fast_buckets["0.001"] == 2
    assert fast_buckets["0.005"] == 3
    assert fast_buckets["30.0"] == 3
    assert fast_buckets["+Inf"] == 4
    by_name = {s.name: s.value for s in samples if not s.name.endswith("_bucket")}
    assert by_name["homestream_test_lag_seconds_count"] == 4
    assert by_name["homestream_test_lag_seconds_sum"] == pytest.approx(99.0054)

    # Counters are read at scrape time.
    counts["noop"] += 1
    counts["new"] += 2
    f = families(get(f"{base}/metrics")[1])
    assert {s.labels["outcome"]: s.value for s in f["homestream_test_events"]} == {
        "applied": 1,
        "noop": 10,
        "new": 2,
    }


def test_ready_flips_from_503_to_200(served):
    m, base = served
    host, port = base.removeprefix("http://").split(":")
    assert get(f"{base}/ready")[0] == 503
    assert not ready_at(host, int(port))
    m.set_ready(True)
    assert get(f"{base}/ready") == (200, "ready\n")
    assert ready_at(host, int(port))
    m.set_ready(False)
    assert get(f"{base}/ready")[0] == 503


def test_ready_from_a_callback_and_other_paths_404():
    state = {"ready": False}
    m = ServiceMetrics({}, "homestream_test_ready", "Ready.", ready=lambda: state["ready"])
    port = free_port()
    server = m.serve("127.0.0.1", port)
    try:
        assert get(f"http://127.0.0.1:{port}/ready")[0] == 503
        state["ready"] = True
        assert get(f"http://127.0.0.1:{port}/ready")[0] == 200
        assert get(f"http://127.0.0.1:{port}/other")[0] == 404
    finally:
        server.shutdown()
        server.server_close()
    assert not ready_at("127.0.0.1", port)  # nothing serves there any more


def test_counter_and_histogram_with_labels_of_their_own():
    m = ServiceMetrics({}, "homestream_test_ready", "Ready.")
    requests = m.counter("homestream_test_requests", "Requests.", ("route", "status"))
    duration = m.histogram("homestream_test_request_duration_seconds", "Time.", ("route",))
    requests.labels("/a", "200").inc()
    duration.labels("/a").observe(0.01)
    f = families(m.exposition().decode())
    total = [s for s in f["homestream_test_requests"] if s.name.endswith("_total")]
    assert [(s.labels, s.value) for s in total] == [({"route": "/a", "status": "200"}, 1)]
    count = [s for s in f["homestream_test_request_duration_seconds"] if s.name.endswith("count")]
    assert [(s.labels, s.value) for s in count] == [({"route": "/a"}, 1)]


def test_registries_are_per_instance():
    a = ServiceMetrics({"sink": "a"}, "homestream_test_ready", "Ready.")
    b = ServiceMetrics({"sink": "b"}, "homestream_test_ready", "Ready.")
    a.set_ready(True)
    assert a.is_ready() and not b.is_ready()


def test_fast_histogram_bounds():
    h = FastHistogram((0.1, 1.0))
    for seconds in (0.1, 0.5, 1.0, 2.0):
        h.observe(seconds)
    assert h.buckets() == [("0.1", 1.0), ("1.0", 3.0), ("+Inf", 4.0)]
    assert h.sum == pytest.approx(3.6)


def test_consumer_lag_from_librdkafka_statistics_on_every_process():
    import json

    from runtime.metrics import CONSUMER_LAG, record_lag

    CONSUMER_LAG.clear()
    stats = {
        "type": "consumer",
        "client_id": "rdkafka",
        "cgrp": {"state": "up"},
        "topics": {
            "homestream.state.changes": {
                "partitions": {
                    "0": {"consumer_lag": 120, "fetch_state": "active"},
                    "1": {"consumer_lag": 30, "fetch_state": "active"},
                    "2": {"consumer_lag": -1, "fetch_state": "offset-query"},  # no end yet
                    # nothing read yet: from the committed offset to the last stable one
                    "4": {
                        "consumer_lag": -1,
                        "fetch_state": "active",
                        "ls_offset": 20,
                        "hi_offset": 25,
                        "app_offset": -1001,
                        "committed_offset": 12,
                        "next_offset": 0,
                    },
                    "3": {"consumer_lag": 999, "fetch_state": "none"},  # not ours
                    "-1": {"consumer_lag": -1},  # librdkafka's internal UA partition
                }
            },
            "homestream.commands.status": {"partitions": {"0": {"consumer_lag": -1}}},
        },
    }
    record_lag("homestream-history", json.dumps(stats))
    record_lag("homestream-history", json.dumps({"type": "producer", "topics": {}}))
    assert CONSUMER_LAG == {("homestream-history", "homestream.state.changes"): 158}
    m = ServiceMetrics({"sink": "history"}, "homestream_test_ready", "Ready.")
    samples = families(m.exposition().decode())["homestream_consumer_lag"]
    assert [(s.labels, s.value) for s in samples] == [
        (
            {"sink": "history", "group": "homestream-history", "topic": "homestream.state.changes"},
            158.0,
        )
    ]
    assert "process_start_time_seconds" in families(m.exposition().decode())
    CONSUMER_LAG.clear()
