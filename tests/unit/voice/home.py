"""The labelled set's home: the demo floor plan with the corpus's states, groups, scenes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from domain.voice.vocabulary import Vocabulary
from hub.sim.floorplan import demo_registry

CORPUS = Path(__file__).with_name("corpus.yaml")


def load() -> dict[str, Any]:
    return yaml.safe_load(CORPUS.read_text(encoding="utf-8"))


def devices(corpus: dict[str, Any]) -> list[dict[str, Any]]:
    return demo_registry(corpus.get("states") or {})


def vocabulary(corpus: dict[str, Any]) -> Vocabulary:
    return Vocabulary.build(devices(corpus), corpus["groups"], corpus["scenes"])


def cases(corpus: dict[str, Any]) -> list[tuple[str | None, str, list[Any]]]:
    """(said before, utterance, [intent, devices, parameters]) for every utterance."""
    return [(c.get("after"), text, c["expect"]) for c in corpus["cases"] for text in c["say"]]
