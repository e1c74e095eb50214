"""The automation engine's pure core: Home Assistant's automation model, decided
without I/O, clocks or Kafka, so a stream processor can call it and keep what it returns.

- ``parse`` / ``model``: a document (JSON, or YAML through ``yamldoc``) into typed,
  validated structures, or every problem as ``(path, message)``; ``references`` lists
  the devices, groups and scenes it names.
- ``home``: the home's place (time zone, location) and a read-only view of its devices.
- ``schedule``: when time, time_pattern and sun triggers fire next (DST-correct).
- ``conditions``: whether conditions hold, with a trace.

Time is always given, as epoch milliseconds; every function is deterministic. State a
caller keeps between calls is plain JSON (dicts, lists, text, numbers), so it can be
stored and restored after a crash.
"""
