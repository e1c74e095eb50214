"""A deep copy of JSON data (trigger states, runs, their details): everything the automation
core keeps is plain JSON by contract, and a JSON round trip copies such small nested dicts
faster than ``copy.deepcopy`` (``topics.jsontext.copy``, by msgspec)."""

from __future__ import annotations

from topics.jsontext import copy as copy_json

__all__ = ["copy_json"]
