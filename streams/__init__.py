"""homestream: streams."""
