"""Voice: what people say -> what the home does (docs/voice.md).

Pure: ``grammar`` (Home Assistant's English sentences + ours, ``sentences.yaml``),
``vocabulary`` (a home's slot lists from its registry), ``understand`` (text + session
context -> an :class:`~domain.voice.understand.Interpretation`: the contract's intent, the
devices, the commands to send, the answer). Speech-to-text and acting are the services'.
"""
