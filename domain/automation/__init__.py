"""The automation engine's pure core: Home Assistant's automation model, decided without
I/O, clocks or Kafka, so a stream processor can call it and keep what it returns.

- ``parse`` / ``model``: a document (JSON, or YAML through ``yamldoc``) into typed,
  validated structures, or every problem as ``(path, message)``; ``references`` lists
  the devices, groups and scenes it names. ``durations``: the spellings of durations,
  times of day and weekdays.
- ``home``: the home's place (time zone, location) and a read-only view of its devices.
- ``schedule``: when time, time_pattern and sun triggers fire next (DST-correct).
- ``conditions``: whether conditions hold, with a trace.
- ``triggers``: which triggers an event fires, with the trigger state and timers.
- ``runner``: a run as a state machine (start, advance, resume, abort...) returning
  effects as plain data; ``modes``: single/restart/queued/parallel admission.

Time is always given, as epoch milliseconds; every function is deterministic, and ids
derive from inputs. What a caller keeps between calls (trigger states, runs) is plain
JSON, so it can be stored and restored after a crash. docs/automations.md shows how a
processor drives it.
"""
