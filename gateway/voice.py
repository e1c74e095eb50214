"""What the voice route keeps in the gateway process: each home's vocabulary, conversation
contexts, and the speech-to-text pool.

A home's :class:`~domain.voice.vocabulary.Vocabulary` (its slot lists, the costly part) is
kept under the fingerprint of its registry, groups and scenes
(``domain.voice.vocabulary.fingerprint``): any change there - a device added, renamed or
removed, a group or scene saved - makes a new one on the next request. Device state is read
fresh on every request. Contexts are per (home, user, session_id), forgotten after
``SESSION_TTL_S`` of silence; they live in this process (a session that moves to another
gateway process starts afresh). The STT pool starts on the first audio request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from domain.voice.understand import Context, understand
from domain.voice.vocabulary import Device, Vocabulary, fingerprint

SESSION_TTL_S = 300.0
MAX_SESSIONS = 10_000
MAX_HOMES = 1_000


def default_transcriber() -> Any:
    from speech.stt import Transcriber

    return Transcriber()


class VoiceState:
    def __init__(self, stt_factory: Any = default_transcriber) -> None:
        self._vocab: OrderedDict[str, tuple[str, Vocabulary]] = OrderedDict()
        self._sessions: OrderedDict[tuple[str, str, str], tuple[float, Context]] = OrderedDict()
        self._lock = threading.Lock()
        self._stt: Any = None
        self._stt_factory = stt_factory
        self.builds = 0  # vocabularies built (a test sees the cache work)

    # -- vocabularies -------------------------------------------------------------------
    def vocabulary(
        self,
        home: str,
        devices: list[Mapping[str, Any]],
        groups: Iterable[Mapping[str, Any]],
        scenes: Iterable[Mapping[str, Any]],
    ) -> Vocabulary:
        groups, scenes = list(groups), list(scenes)
        key = fingerprint(devices, groups, scenes)
        with self._lock:
            hit = self._vocab.get(home)
            if hit is not None and hit[0] == key:
                self._vocab.move_to_end(home)
                vocab = hit[1]
                fresh = {d.device_id: d for d in (Device.of(e) for e in devices)}
                return replace(vocab, devices=fresh)
        vocab = Vocabulary.build(devices, groups, scenes)
        with self._lock:
            self.builds += 1
            self._vocab[home] = (key, vocab)
            while len(self._vocab) > MAX_HOMES:
                self._vocab.popitem(last=False)
        return vocab

    def warm(self) -> None:
        """Parse the grammar and fill hassil's caches (the first sentence costs ~0.3 s)."""
        understand("turn on the lights", Vocabulary.build([]))

    # -- sessions -----------------------------------------------------------------------
    def context(self, home: str, user: str, session_id: str) -> Context:
        now = time.monotonic()
        with self._lock:
            found = self._sessions.get((home, user, session_id))
            if found is None or now - found[0] > SESSION_TTL_S:
                return Context()
            return found[1]

    def remember(self, home: str, user: str, session_id: str, ctx: Context) -> None:
        with self._lock:
            self._sessions[(home, user, session_id)] = (time.monotonic(), ctx)
            self._sessions.move_to_end((home, user, session_id))
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)

    # -- speech-to-text -----------------------------------------------------------------
    def stt(self) -> Any:
        """The speech-to-text pool, started on first use (RuntimeError when not installed)."""
        with self._lock:
            if self._stt is None:
                if self._stt_factory is None:
                    raise RuntimeError("speech-to-text is not configured in this gateway")
                self._stt = self._stt_factory()
            return self._stt

    def close(self) -> None:
        if self._stt is not None:
            self._stt.close()
