"""Speech made by espeak-ng (Debian's ``espeak-ng``), for the audio test set and the voice
benchmark: the same sentence in several voices and speeds, as WAV bytes."""

from __future__ import annotations

import shutil
import subprocess

# Two voices, two speeds (words per minute): the audio set's variants.
VOICES = ("en-us", "en-gb")
SPEEDS = (140, 185)


def available() -> bool:
    return shutil.which("espeak-ng") is not None


def speak(text: str, voice: str = "en-us", speed: int = 160) -> bytes:
    """``text`` spoken as a WAV (22.05 kHz mono, espeak-ng's own rate)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed: apt-get install espeak-ng")
    done = subprocess.run(
        [exe, "-v", voice, "-s", str(speed), "--stdout", text],
        check=True,
        capture_output=True,
        timeout=30,
    )
    return done.stdout
