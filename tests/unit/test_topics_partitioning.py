"""murmur2 and the home -> partition rule agree with Kafka's Java client; keys."""

from __future__ import annotations

import pytest
from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given, settings
from hypothesis import strategies as st

from topics.keys import device_key, home_key, home_of, parse_key
from topics.partitioning import murmur2, partition_for, partition_for_key, to_positive

# Apache Kafka's own vectors: UtilsTest.testMurmur2 (clients/src/test/.../utils/UtilsTest.java).
KAFKA_UTILS_TEST = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
}

# Printed by the real Java client (kafka-clients 3.9.1): Utils.murmur2(key.getBytes(UTF_8)) and
# BuiltInPartitioner.partitionForKey(bytes, n), the default partitioner's keyed path.
JAVA_CLIENT = {
    "home-1": (153833579, {1: 0, 3: 2, 6: 5, 12: 11, 100: 79}),
    "home-2": (1254529952, {1: 0, 3: 2, 6: 2, 12: 8, 100: 52}),
    "h": (1489429165, {1: 0, 3: 1, 6: 1, 12: 1, 100: 65}),
    "": (275646681, {1: 0, 3: 0, 6: 3, 12: 9, 100: 81}),
    "casa-ñandú": (1739263389, {1: 0, 3: 0, 6: 3, 12: 9, 100: 89}),
    "家": (328317081, {1: 0, 3: 0, 6: 3, 12: 9, 100: 81}),
    "8f14e45f-ceea-467f-a8f5-0e3a4c1e2b7d": (-1439479934, {1: 0, 3: 0, 6: 0, 12: 6, 100: 14}),
    "demo": (684571411, {1: 0, 3: 1, 6: 1, 12: 7, 100: 11}),
    "a-home-with-a-rather-long-identifier-0123456789": (
        -1292398643,
        {1: 0, 3: 0, 6: 3, 12: 9, 100: 5},
    ),
}


@pytest.mark.parametrize(("data", "expected"), KAFKA_UTILS_TEST.items())
def test_murmur2_matches_kafka_utils_test(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


@pytest.mark.parametrize(("home", "expected"), JAVA_CLIENT.items())
def test_partition_matches_the_java_client(home: str, expected: tuple[int, dict]) -> None:
    hash_, partitions = expected
    assert murmur2(home.encode()) == hash_
    for n, partition in partitions.items():
        assert partition_for(home, n) == partition


def test_to_positive_is_not_abs() -> None:
    assert to_positive(-(2**31)) == 0
    assert to_positive(-1) == 2**31 - 1
    assert to_positive(5) == 5


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40), st.integers(1, 64))
def test_agrees_with_aiokafka_default_partitioner(home: str, n: int) -> None:
    # aiokafka (and so Faust) hash home keys the same way on their own.
    partitions = list(range(n))
    assert partition_for(home, n) == DefaultPartitioner()(home.encode(), partitions, partitions)


@settings(max_examples=200, deadline=None)
@given(
    st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters="/"), min_size=1, max_size=20
    ),
    st.text(
        st.characters(exclude_categories=("Cs",), exclude_characters="/"), min_size=1, max_size=20
    ),
    st.integers(1, 32),
)
def test_device_keys_land_on_their_homes_partition(home: str, device: str, n: int) -> None:
    key = device_key(home, device)
    assert parse_key(key) == (home, device)
    assert parse_key(key.encode()) == (home, device)
    assert partition_for_key(key, n) == partition_for_key(key.encode(), n) == partition_for(home, n)
    assert partition_for_key(home_key(home), n) == partition_for(home, n)


def test_partitions_must_be_positive() -> None:
    with pytest.raises(ValueError, match="partitions must be >= 1"):
        partition_for("h", 0)


def test_keys() -> None:
    assert home_key("h1") == "h1"
    assert home_key("") == ""  # dead letters of an unknown home
    assert device_key("h1", "lamp") == "h1/lamp"
    assert parse_key("h1") == ("h1", None)
    assert home_of("h1/lamp") == home_of(b"h1") == "h1"
    for bad in (("h/1", "d"), ("h", "d/1"), ("", "d"), ("h", "")):
        with pytest.raises(ValueError):
            device_key(*bad)
    with pytest.raises(ValueError):
        home_key("a/b")
    with pytest.raises(TypeError):
        home_key(7)  # type: ignore[arg-type]
    for bad_key in ("h/", "/d", "h/d/x"):
        with pytest.raises(ValueError, match="malformed key"):
            parse_key(bad_key)
