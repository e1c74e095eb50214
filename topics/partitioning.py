"""The home -> partition rule, identical to Kafka's Java default partitioner.

Every record about a home goes to ``partition_for(home_id, n)`` in every topic, including
compacted topics keyed ``home_id/device_id`` (only the home part counts), so one consumer
task sees all of a home's streams and per-home order holds across topics. Java clients and
aiokafka/Faust hash keys the same way for home-keyed topics; confluent-kafka (librdkafka
defaults to CRC32) and every producer of home/device keys must pass ``partition=`` explicitly.
"""

from __future__ import annotations

import functools

from topics.keys import home_of

_M = 0x5BD1E995
_SEED = 0x9747B28C
_MASK32 = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2): a signed 32-bit int."""
    length = len(data)
    h = (_SEED ^ length) & _MASK32
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK32
        k ^= k >> 24
        k = (k * _M) & _MASK32
        h = ((h * _M) & _MASK32) ^ k
    tail = length % 4
    # Java's switch falls through from case 3 to case 1.
    if tail == 3:
        h ^= data[whole + 2] << 16
    if tail >= 2:
        h ^= data[whole + 1] << 8
    if tail >= 1:
        h ^= data[whole]
        h = (h * _M) & _MASK32
    h ^= h >> 13
    h = (h * _M) & _MASK32
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def to_positive(n: int) -> int:
    """Kafka's Utils.toPositive: clear the sign bit (not abs(), which differs for MIN_VALUE)."""
    return n & 0x7FFFFFFF


@functools.lru_cache(maxsize=65_536)  # hot path of every producer; homes repeat
def partition_for(home_id: str, partitions: int) -> int:
    """Partition of every record about ``home_id`` in a topic with ``partitions`` partitions."""
    if partitions < 1:
        raise ValueError(f"partitions must be >= 1, got {partitions}")
    return to_positive(murmur2(home_id.encode("utf-8"))) % partitions


def partition_for_key(key: str | bytes, partitions: int) -> int:
    """Partition of a record key of any catalogue topic (``home`` or ``home/device``)."""
    return partition_for(home_of(key), partitions)
