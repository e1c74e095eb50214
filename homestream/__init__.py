"""homestream: homestream."""
