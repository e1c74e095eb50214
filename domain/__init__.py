"""The domain rules every service shares: pure, typed, no I/O.

Each module is one concept: ``strictjson`` (the one JSON reader for every input from
outside), ``ids`` (which home, device and document ids can exist), ``timerange`` (times
and spans people and apps ask for); ``automation`` is a package of its own: the automation
engine's pure core (docs/automations.md).
"""
