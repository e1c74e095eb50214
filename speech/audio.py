"""Audio bodies: only WAV is taken; it is decoded to 16 kHz mono float32 by PyAV (through
faster-whisper's ``decode_audio``), which also resamples and mixes down."""

from __future__ import annotations

import io
import struct
from typing import Any

SAMPLE_RATE = 16_000


class AudioRejected(ValueError):
    """The body is not audio we take; ``status`` is the HTTP status that says so."""

    def __init__(self, message: str, status: int = 415) -> None:
        super().__init__(message)
        self.status = status


def wav_duration_s(data: bytes) -> float:
    """The duration a WAV header declares (without decoding it); AudioRejected (415) when
    the body is not RIFF/WAVE, 400 when its header is broken."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioRejected("send the audio as WAV (RIFF/WAVE); other formats are not taken")
    pos, rate, block = 12, 0, 0
    while pos + 8 <= len(data):
        chunk, size = data[pos : pos + 4], struct.unpack("<I", data[pos + 4 : pos + 8])[0]
        body = pos + 8
        if chunk == b"fmt " and size >= 16 and body + 16 <= len(data):
            _fmt, _channels, rate, _bps, block = struct.unpack("<HHIIH", data[body : body + 14])
        elif chunk == b"data":
            if not rate or not block:
                raise AudioRejected("the WAV has no format chunk before its data", 400)
            available = min(size, len(data) - body)
            return available / block / rate
        pos = body + size + (size & 1)
    raise AudioRejected("the WAV has no data chunk", 400)


def decode(data: bytes) -> Any:
    """WAV bytes -> float32 numpy samples at 16 kHz mono."""
    wav_duration_s(data)  # refuses what is not WAV before PyAV guesses a format
    from faster_whisper import decode_audio

    try:
        return decode_audio(io.BytesIO(data), sampling_rate=SAMPLE_RATE)
    except Exception as exc:  # PyAV's errors for a truncated or odd file
        raise AudioRejected(f"the WAV could not be decoded: {exc}", 400) from None
