"""What every homestream service runs on: settings, secrets, structured logs, metrics and
dead letters. Above ``domain``/``topics``, below every service (streams, hub, sinks,
gateway), which import it and never each other.
"""
