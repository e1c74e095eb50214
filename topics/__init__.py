"""homestream: topics."""
