"""The voice server: speech-to-text and intent handling over the Wyoming protocol, so Home
Assistant's voice satellites and Assist pipelines can use homestream
(``homestream voice serve --wyoming tcp://0.0.0.0:10300``; docs/voice.md).

It transcribes with the same process pool as the gateway (``speech.stt``) and hands the
text to the gateway's ``POST /v1/homes/{h}/voice``, signed in as a member of the home:
understanding, roles and acting stay in one place.
"""
