"""bench e2e's report: the markdown table, BENCHMARKS.md's section and a --json round trip."""

from __future__ import annotations

import json
from dataclasses import asdict

from bench.e2e import END, START, E2EResult, Step, markdown, result_from_json, write_section


def _result() -> E2EResult:
    step = Step(
        offered_per_s=1000, seconds=15.0, reports=16000, sent_per_s=1066, reports_per_s=1005,
        frames=900, app_p50_ms=40.0, app_p99_ms=180.0, app_max_ms=300.0, commands=60,
        commands_lost=0, command_to_device_p50_ms=20.0, command_to_device_p99_ms=90.0,
        command_to_completed_p50_ms=60.0, command_to_completed_p99_ms=150.0, noop_ratio=0.91,
        kafka_records_per_s=3000, history_rows_per_s=120, history_trail_p50_ms=400.0,
        history_trail_max_ms=900.0, load_average=(1.5, 1.2, 1.0),
        processes={"streams-1": {"cpu_pct": 12.0, "rss_mb": 90.0}},
        fractions={"mqtt": 0.1, "kafka": 0.2},
    )  # fmt: skip
    return E2EResult(
        homes=10, devices_per_home=5, app_clients=2, gateways=1, brokers=3, partitions=6,
        mqtt_ceiling_msgs_per_s=10000, kafka_ceiling={"records_per_s": 15000.0},
        ceilings_load_average=(1.0, 1.0, 1.0), steps=[step], max_sustained_reports_per_s=1005,
        saturated_by="nothing saturated up to the last step", started_at="2026-12-03 17:00 UTC",
    )  # fmt: skip


def test_the_table_has_a_row_per_step_with_its_figures_and_load():
    text = markdown(_result())
    row = next(line for line in text.splitlines() if line.startswith("| 1,000 |"))
    for figure in ("1,066", "1,005", "40.0 / 180.0 ms", "91%", "3,000 (20%)", "10%", "1.5"):
        assert figure in row
    assert "| streams-1 | 12.0 | 90.0 |" in text
    assert "3 broker(s)" in text


def test_the_section_replaces_only_what_lies_between_its_markers(tmp_path):
    md = tmp_path / "BENCHMARKS.md"
    md.write_text(f"# Benchmarks\n\nintro\n\n## E2E\n\n{START}\nold run\n{END}\n\nprose stays\n")
    write_section(_result(), md, tmp_path / "docs" / "e2e.png", tmp_path)
    text = md.read_text()
    assert "old run" not in text and "prose stays" in text and "intro" in text
    assert "](docs/e2e.png)" in text and text.count(START) == 1
    fresh = tmp_path / "NEW.md"
    write_section(_result(), fresh, tmp_path / "p.png", tmp_path)
    assert fresh.read_text().count("## End to end") == 1


def test_a_json_report_reads_back_as_the_same_result():
    r = _result()
    assert result_from_json(json.loads(json.dumps(asdict(r)))) == r
