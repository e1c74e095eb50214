"""``/v1/graphql`` (strawberry): schema in ``schema``, context in ``context``, view in ``view``."""
