"""The labelled voice set (tests/unit/voice/corpus.yaml): intent, device-set and parameter
accuracy over every utterance, each at least 97% (the design brief asks for over 95%)."""

from __future__ import annotations

from collections import Counter

import pytest

from domain.voice.understand import INTENTS, Context, understand, unsure_unlock
from tests.unit.voice import home

TARGET = 0.97


@pytest.fixture(scope="module")
def corpus():
    return home.load()


def run(corpus):
    vocab = home.vocabulary(corpus)
    rows = []
    for after, text, (intent, devices, parameters) in home.cases(corpus):
        ctx = understand(after, vocab).context if after else Context()
        got = understand(text, vocab, ctx)
        rows.append(
            {
                "text": text if not after else f"{after} / {text}",
                "intent": (intent, got.intent),
                "devices": (sorted(devices), sorted(got.devices)),
                "parameters": (parameters, dict(got.parameters)),
                "response": got.response,
            }
        )
    return rows


def test_the_set_covers_every_intent_and_failure(corpus):
    wanted = Counter(c["expect"][0] for c in corpus["cases"] for _ in c["say"])
    assert set(INTENTS) <= set(wanted) and wanted[None] >= 25
    assert sum(wanted.values()) >= 400
    assert any(c.get("after") for c in corpus["cases"])  # conversations


def test_accuracy(corpus, capsys):
    rows = run(corpus)
    n = len(rows)
    score = {
        key: sum(r[key][0] == r[key][1] for r in rows) / n
        for key in ("intent", "devices", "parameters")
    }
    exact = sum(all(r[k][0] == r[k][1] for k in ("intent", "devices", "parameters")) for r in rows)
    misses = [
        r for r in rows if any(r[k][0] != r[k][1] for k in ("intent", "devices", "parameters"))
    ]
    with capsys.disabled():
        print(
            f"\nvoice accuracy over {n} utterances: intent {score['intent']:.1%}, "
            f"devices {score['devices']:.1%}, parameters {score['parameters']:.1%}, "
            f"all three {exact / n:.1%}"
        )
        for r in misses:
            print(
                "  miss:",
                r["text"],
                {k: r[k] for k in ("intent", "devices", "parameters") if r[k][0] != r[k][1]},
            )
    assert min(score.values()) >= TARGET, score


def test_a_negation_is_never_dropped(corpus):
    vocab = home.vocabulary(corpus)
    assert understand("don't turn on the kitchen lights", vocab).intent is None
    # a misheard first word is: "Watch the temperature ..." was "What's the temperature ..."
    heard = understand("watch the temperature in the kitchen", vocab)
    assert heard.intent == "QueryState" and heard.confidence == 0.8


def test_an_unlock_that_may_be_misheard_does_nothing(corpus):
    vocab = home.vocabulary(corpus)
    said = understand("unlock the front door", vocab)
    assert unsure_unlock(said, ["unlock the front door"]).actions == said.actions != ()
    # the second reading, or a near name, is not sure enough to open a door
    second = unsure_unlock(said, ["lock the front door", "unlock the front door"])
    assert second.actions == () and "misheard" in second.response
    near = understand("unlock the frnt door", vocab)
    assert near.intent == "UnlockDevice" and unsure_unlock(near, [near.text]).actions == ()
    # locking is never held back
    lock = understand("lock the front door", vocab)
    assert unsure_unlock(lock, ["unlock it", "lock the front door"]) == lock
