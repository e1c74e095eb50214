"""The stream worker's Prometheus counters."""

import urllib.request
from collections import Counter

from compose.process import free_port
from runtime.metrics import gauge, render, serve, snapshot


def test_render_is_prometheus_text_with_one_series_per_outcome():
    text = render(Counter({"noop": 9, "applied": 1}), "worker-1")
    lines = text.splitlines()
    assert lines[0].startswith("# HELP homestream_streams_events_total ")
    assert lines[1] == "# TYPE homestream_streams_events_total counter"
    assert lines[2:] == [
        'homestream_streams_events_total{worker="worker-1",outcome="applied"} 1',
        'homestream_streams_events_total{worker="worker-1",outcome="noop"} 9',
    ]


def test_served_on_metrics_only():
    counters = Counter({"reports": 3})
    port = free_port()
    server = serve("127.0.0.1", port, lambda: render(snapshot(counters), "w"))
    try:
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        assert 'outcome="reports"} 3' in body
        counters["reports"] += 1
        body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics").read().decode()
        assert 'outcome="reports"} 4' in body
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/other")
            raise AssertionError("expected 404")
        except urllib.error.HTTPError as err:
            assert err.code == 404
    finally:
        server.shutdown()


def test_gauges_render_and_read_back():
    text = render(
        Counter({"reports": 3}),
        "worker-2",
        {"homestream_streams_ready": 0, "homestream_streams_restoring": 2},
    )
    assert "# TYPE homestream_streams_ready gauge" in text
    assert 'homestream_streams_restoring{worker="worker-2"} 2' in text
    assert gauge(text, "homestream_streams_ready") == 0
    assert gauge(text, "homestream_streams_restoring") == 2
    assert gauge(text, "homestream_streams_partitions") is None
