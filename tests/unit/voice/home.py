"""The labelled set's home: the demo floor plan with the corpus's states, groups, scenes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from domain.voice.vocabulary import Vocabulary
from hub.sim.floorplan import demo_home

CORPUS = Path(__file__).with_name("corpus.yaml")


def load() -> dict[str, Any]:
    return yaml.safe_load(CORPUS.read_text(encoding="utf-8"))


def devices(corpus: dict[str, Any]) -> list[dict[str, Any]]:
    states = corpus.get("states") or {}
    return [
        {
            "device_id": s.device_id,
            "name": s.name,
            "room": s.room,
            "type": s.type,
            "capabilities": list(s.capabilities),
            "state": dict(states.get(s.device_id) or {}),
        }
        for s in demo_home()
    ]


def vocabulary(corpus: dict[str, Any]) -> Vocabulary:
    return Vocabulary.build(devices(corpus), corpus["groups"], corpus["scenes"])


def cases(corpus: dict[str, Any]) -> list[tuple[str | None, str, list[Any]]]:
    """(said before, utterance, [intent, devices, parameters]) for every utterance."""
    return [(c.get("after"), text, c["expect"]) for c in corpus["cases"] for text in c["say"]]
