"""`up --monitoring`: Prometheus's scrape targets and config; the voice outcome labels."""

from __future__ import annotations

import json

from compose.services.prometheus import RULES, render_config, scrape_targets
from gateway.routes.voice import voice_status
from runtime.config import Settings


def test_every_process_up_runs_is_a_target():
    s = Settings.from_env(
        {
            "HOMESTREAM_STREAM_WORKERS": "2",
            "HOMESTREAM_BRIDGES": "1",
            "HOMESTREAM_STREAMS_METRICS_PORT": "7401",
            "HOMESTREAM_GATEWAY_PORT": "7080",
        }
    )
    targets = scrape_targets(s)
    assert targets["streams"] == ["127.0.0.1:7401", "127.0.0.1:7402"]
    assert targets["gateway"] == ["127.0.0.1:7080"]
    assert set(targets) == {"streams", "bridge", "sink-history", "sink-redis", "notify", "gateway"}
    off = Settings.from_env({"HOMESTREAM_SINKS": "0", "HOMESTREAM_GATEWAY": "0"})
    assert set(scrape_targets(off)) == {"streams", "bridge"}
    config = json.loads(render_config(s).split("\n", 1)[1])  # YAML is a superset of JSON
    assert config["rule_files"] == [str(RULES)]
    assert [j["job_name"] for j in config["scrape_configs"]] == list(targets)


def test_voice_outcomes():
    assert voice_status(None, [], None) == "not_understood"
    assert voice_status("HassTurnOn", ["an action"], None) == "success"
    assert voice_status("HassSceneOn", [], "movie") == "success"
    assert voice_status("HassTurnOn", [], None) == "failed"
