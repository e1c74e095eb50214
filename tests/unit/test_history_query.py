"""history(...) for the gateway: parameter validation and the SQL it builds (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from domain.timerange import parse_time
from stores.history_query import (
    HistoryQueryError,
    auto_bucket,
    build_query,
    shape,
)

NOW = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)


def q(**kw):
    return build_query("home-1", "dev-1", now=NOW, **kw)


def test_defaults_are_the_last_24_hours_in_one_minute_buckets():
    query = q()
    assert (query.start, query.end) == (NOW - dt.timedelta(hours=24), NOW)
    assert query.bucket == "1m"
    assert "history.state_rollup_1m" in query.sql
    assert query.params[:4] == ("home-1", "dev-1", query.start, query.end)


@pytest.mark.parametrize(
    "span, bucket",
    [
        (dt.timedelta(minutes=30), "raw"),
        (dt.timedelta(hours=6), "raw"),
        (dt.timedelta(hours=7), "1m"),
        (dt.timedelta(days=7), "1h"),
        (dt.timedelta(days=90), "1d"),
    ],
)
def test_auto_bucket(span, bucket):
    assert auto_bucket(span) == bucket


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2026-06-01T10:00:00Z", dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)),
        ("2026-06-01T12:00:00+02:00", dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)),
        ("2026-06-01T10:00:00", dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)),
        ("1780308000000", dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)),
        (1780308000000, dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)),
    ],
)
def test_times_as_iso_or_epoch_ms(value, expected):
    assert parse_time(value, "from") == expected


@pytest.mark.parametrize(
    "kw, param",
    [
        ({"start": "yesterday"}, "from"),
        ({"end": "not a time"}, "to"),
        ({"start": "2026-06-02T00:00:00Z", "end": "2026-06-01T00:00:00Z"}, "from"),
        ({"bucket": "5m"}, "bucket"),
        ({"attribute": ""}, "attribute"),
        ({"kind": "both"}, "kind"),
        ({"kind": "desired", "bucket": "1h"}, "bucket"),
        ({"limit": 0}, "limit"),
        ({"limit": 10**9}, "limit"),
        ({"start": True}, "from"),
    ],
)
def test_errors_name_the_parameter(kw, param):
    with pytest.raises(HistoryQueryError) as err:
        q(**kw)
    assert err.value.param == param
    assert str(err.value).startswith(f"{param}: ")


def test_ids_are_required():
    with pytest.raises(HistoryQueryError) as err:
        build_query("", "d")
    assert err.value.param == "home_id"


def test_raw_query_filters_attribute_and_kind_with_parameters():
    query = q(bucket="raw", attribute="temperature'; drop table x; --")
    assert "history.state_history" in query.sql
    assert "drop table" not in query.sql
    assert query.params[4:] == ("temperature'; drop table x; --", "reported", 10_000)
    assert "kind = %s" not in q(bucket="raw", kind=None).sql


def test_day_buckets_come_from_the_hour_rollup():
    query = q(bucket="1d", start="2026-05-01T00:00:00Z")
    assert "history.state_rollup_1h" in query.sql and "GROUP BY" in query.sql


def test_shape_gives_epoch_ms():
    t = dt.datetime(2026, 6, 1, 10, tzinfo=dt.UTC)
    raw = shape(q(bucket="raw"), [(t, "temperature", "reported", 21.5, 3, "report", None)])
    assert raw == [
        {
            "ts": 1780308000000,
            "attribute": "temperature",
            "kind": "reported",
            "value": 21.5,
            "version": 3,
            "source": "report",
            "command_id": None,
        }
    ]
    agg = shape(q(bucket="1h"), [(t, "temperature", 12, 20.0, 22.0, 21.0)])
    assert agg == [
        {
            "ts": 1780308000000,
            "bucket": "1h",
            "attribute": "temperature",
            "count": 12,
            "min": 20.0,
            "max": 22.0,
            "avg": 21.0,
        }
    ]
