"""What the sinks write and the gateway reads, defined once: the Redis key layout with its
compare-and-set writers and reader (``redis_state``), and the queries over the history
views (``history_query``). Like ``topics/`` for Kafka, it sits below the services.
"""
