"""homestream: compose."""
