"""The schema's SDL, as docs/schema.graphql keeps it: ``python -m gateway.graphql.sdl``
rewrites the file (``make graphql-schema``); a unit test fails when it drifts."""

from __future__ import annotations

import sys
from pathlib import Path

SDL_FILE = Path(__file__).resolve().parents[2] / "docs" / "schema.graphql"


def sdl() -> str:
    from gateway.graphql.schema import schema

    return schema.as_str() + "\n"


def main() -> int:
    SDL_FILE.write_text(sdl())
    print(f"wrote {SDL_FILE}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
