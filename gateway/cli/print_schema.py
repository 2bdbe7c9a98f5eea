"""Print the GraphQL schema (SDL) the gateway serves: ``python -m gateway.cli.print_schema``."""

from __future__ import annotations

from gateway.http.app import build_schema


def schema_sdl() -> str:
    return build_schema().as_str() + "\n"


if __name__ == "__main__":
    print(schema_sdl(), end="")
