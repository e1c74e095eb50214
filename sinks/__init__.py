"""homestream: sinks."""
