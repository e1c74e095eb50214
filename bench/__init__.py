"""Benchmarks: ``homestream bench streams|bridge|sinks|gateway`` run ``workers``, ``bridge``,
``sink_writes`` and ``fanout`` against a running stack; the other modules are scripts
(``.venv/bin/python bench/codec.py``). Results go to BENCHMARKS.md.
"""
