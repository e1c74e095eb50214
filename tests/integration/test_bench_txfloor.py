"""`homestream bench txfloor` against the test stack's broker: the transactional echo and
the plain one each deliver every record, and the transactional one commits."""

from __future__ import annotations

from bench.txfloor import run_bench


def test_both_echoes_deliver_every_record(settings) -> None:
    lines: list[str] = []
    points = run_bench(settings, [200], 2.0, 1, lines.append)
    assert [(p.mode, p.rate_per_s) for p in points] == [("transactions", 200), ("plain", 200)]
    for p in points:
        assert p.records == p.expected == 400, p
        assert 0 < p.p50_ms <= p.p99_ms <= p.max_ms
    tx, plain = points
    assert tx.transactions > 0 and plain.transactions == 0
    assert any("round 1:" in line for line in lines)
