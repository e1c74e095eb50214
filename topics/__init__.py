"""homestream topics: the Avro event catalogue and the shared Kafka topic contract.

- ``topics.schemas``: SchemaStore over avro/<Name>/v<N>.avsc, with CRC-64-AVRO fingerprints.
- ``topics.codec``: Avro single-object and Confluent wire-format codecs (``make_codec``).
- ``topics.catalogue``: every topic, its key, partitions, cleanup policy and record types.
- ``topics.keys`` / ``topics.partitioning``: record keys and the home -> partition rule.
- ``topics.compat``: Avro schema-resolution (BACKWARD) checks between schema versions.
- ``topics.admin``: create / describe the catalogue's topics on a broker.

See docs/topics.md.
"""
