"""schema.graphql is the printed schema, and it keeps the public contract."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from graphql import build_schema
from graphql.utilities import find_breaking_changes

from gateway.cli.print_schema import schema_sdl

ROOT = Path(__file__).resolve().parents[2]
# The public contract lives beside the repository (`../shared/contract/`); a checkout elsewhere
# points at it with COMMERCE_CONTRACT_SCHEMA.
CONTRACT = Path(
    os.environ.get("COMMERCE_CONTRACT_SCHEMA", ROOT.parent / "shared" / "contract" / "schema.graphql")
)


def test_schema_file_matches_the_code() -> None:
    assert (ROOT / "schema.graphql").read_text() == schema_sdl(), (
        "run `make schema` and commit schema.graphql"
    )


def test_schema_keeps_the_public_contract() -> None:
    if not CONTRACT.is_file():
        pytest.skip(f"the public contract is not at {CONTRACT}: set COMMERCE_CONTRACT_SCHEMA to check it")
    contract = build_schema(CONTRACT.read_text())
    ours = build_schema((ROOT / "schema.graphql").read_text())
    assert [c.description for c in find_breaking_changes(contract, ours)] == []
