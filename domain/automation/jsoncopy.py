"""A deep copy of JSON data (trigger states, runs, their details): everything the automation
core keeps is plain JSON by contract, and a JSON round trip copies such small nested dicts
several times faster than ``copy.deepcopy`` (measured in the worker's fold: it was half of
``triggers.handle``)."""

from __future__ import annotations

import json
from typing import TypeVar, cast

T = TypeVar("T")


def copy_json(value: T) -> T:
    return cast(T, json.loads(json.dumps(value)))
