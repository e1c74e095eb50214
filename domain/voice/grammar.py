"""The sentence grammar: Home Assistant's English intents, then homestream's own templates.

``home-assistant-intents`` carries the sentences Home Assistant's Assist understands
(HassTurnOn, HassLightSet, HassGetState ...); ``sentences.yaml`` beside this module adds, in the
same hassil format, only what they lack. The two are merged once per process: intents' data
lists are appended (Home Assistant's first), lists and expansion rules added.
"""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import yaml
from hassil import Intents
from home_assistant_intents import get_intents

LANGUAGE = "en"
OWN_SENTENCES = "sentences.yaml"


def own_sentences() -> dict[str, Any]:
    """homestream's templates (``sentences.yaml``) as a dict."""
    text = resources.files(__package__).joinpath(OWN_SENTENCES).read_text(encoding="utf-8")
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Home Assistant's intents dict with ours added (neither input is changed)."""
    out = dict(base)
    intents = {name: dict(body) for name, body in base.get("intents", {}).items()}
    for name, body in extra.get("intents", {}).items():
        current = intents.setdefault(name, {"data": []})
        current["data"] = [*current.get("data", []), *body.get("data", [])]
    out["intents"] = intents
    for key in ("lists", "expansion_rules"):
        out[key] = {**base.get(key, {}), **extra.get(key, {})}
    return out


@functools.cache
def intents() -> Intents:
    """The merged grammar, parsed once per process."""
    base = get_intents(LANGUAGE)
    if base is None:  # the package always ships English; a broken install says so
        raise RuntimeError("home-assistant-intents has no English sentences: reinstall it")
    return Intents.from_dict(merge(base, own_sentences()))
