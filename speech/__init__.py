"""Speech-to-text for voice requests: WAV in, text out (docs/voice.md).

``speech.audio`` checks and decodes a WAV body (16 kHz mono float samples); ``speech.stt``
runs faster-whisper in its own process pool, the model loaded and warmed up once per
process, so no event loop ever waits on it. Both need the ``voice`` extra
(``pip install 'homestream[voice]'``); importing this package does not.
"""
