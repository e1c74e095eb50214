"""homestream: hub."""
