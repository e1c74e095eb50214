"""homestream: gateway."""
