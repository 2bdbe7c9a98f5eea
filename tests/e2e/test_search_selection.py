"""A product search asks the engine for facets and an exact total only when the query selects
them, however it selects them (fragments, aliases, directives), and answers the same either way."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gateway.bootstrap.container import Container
from gateway.bootstrap.seed import demo_catalog, seed_catalog
from tests.helpers import gql
from tests.support.catalog import CallCounter

PAGE = "pageInfo { hasNextPage endCursor } edges { cursor node { id handle } }"
FULL = f"""query {{ products(sort: TITLE_ASC, first: 5) {{
  totalCount facets {{ brands {{ value count }} categories {{ value count }} prices {{ from to count }} }}
  {PAGE} }} }}"""


@pytest.fixture
async def counter(running: Container) -> AsyncIterator[CallCounter]:
    await seed_catalog(running, demo_catalog(12, seed=5))
    async with running.engine.connect() as conn:
        head = (await conn.execute(text("SELECT max(position) FROM ledger_events"))).scalar_one()
    await running.freshness.wait_for("search", head, timeout=10)
    counted = CallCounter(running.search)
    yield counted
    counted.close()


def _last_search(counter: CallCounter) -> dict[str, Any]:
    """The body of the last search the engine was sent."""
    searched = [body for path, body in zip(counter.paths, counter.bodies, strict=True) if "_search" in path]
    assert searched, counter.paths
    body = searched[-1]
    return json.loads(body) if isinstance(body, (bytes, str)) else dict(body)


async def _products(client: httpx.AsyncClient, query: str, variables: dict[str, Any] | None = None) -> Any:
    body = await gql(client, query, variables)
    assert "errors" not in body, body
    return body["data"]["products"]


async def test_a_page_without_facets_or_total_is_searched_without_them(
    client: httpx.AsyncClient, counter: CallCounter
) -> None:
    full = await _products(client, FULL)
    asked = _last_search(counter)
    assert "aggs" in asked and asked["track_total_hits"] is True
    assert full["totalCount"] == 12 and full["facets"]["brands"], full

    page = await _products(client, f"query {{ products(sort: TITLE_ASC, first: 5) {{ {PAGE} }} }}")
    asked = _last_search(counter)
    assert "aggs" not in asked and asked["track_total_hits"] is False
    assert page == {"pageInfo": full["pageInfo"], "edges": full["edges"]}

    counted = await _products(client, "query { products(sort: TITLE_ASC, first: 4) { totalCount } }")
    asked = _last_search(counter)
    assert "aggs" not in asked and asked["track_total_hits"] is True
    assert counted == {"totalCount": 12}


@pytest.mark.parametrize(
    ("name", "document"),
    [
        (
            "named fragment, alias",
            """query { products(sort: TITLE_ASC, first: 3) { ...Listing n: totalCount } }
            fragment Listing on ProductSearchConnection {
              facets { brands { value count } categories { value count } prices { from to count } } }""",
        ),
        (
            "inline fragment, nested",
            """query { products(sort: TITLE_ASC, first: 3) {
              ... on ProductSearchConnection { ... { n: totalCount } facets {
                brands { value count } categories { value count } prices { from to count } } } } }""",
        ),
        (
            "fields under a directive",
            """query($show: Boolean!) { products(sort: TITLE_ASC, first: 3) {
              n: totalCount @include(if: $show)
              facets @skip(if: false) {
                brands { value count } categories { value count } prices { from to count } } } }""",
        ),
    ],
)
async def test_facets_and_total_selected_any_way_are_answered(
    client: httpx.AsyncClient, counter: CallCounter, name: str, document: str
) -> None:
    full = await _products(client, FULL)
    answer = await _products(client, document, {"show": True} if "$show" in document else None)
    assert answer == {"n": full["totalCount"], "facets": full["facets"]}, name


async def test_a_field_left_out_by_a_directive_is_left_out_of_the_answer(
    client: httpx.AsyncClient, counter: CallCounter
) -> None:
    document = """query($show: Boolean!) { products(sort: TITLE_ASC, first: 2) {
      totalCount @include(if: $show) facets @include(if: $show) { brands { value } } edges { cursor } } }"""
    hidden = await _products(client, document, {"show": False})
    shown = await _products(client, document, {"show": True})
    assert set(hidden) == {"edges"} and hidden["edges"] == shown["edges"]
    assert shown["totalCount"] == 12 and shown["facets"]["brands"]


async def test_a_next_page_without_facets_continues_the_first_and_has_a_page_before_it(
    client: httpx.AsyncClient, counter: CallCounter
) -> None:
    listing = "pageInfo { hasNextPage hasPreviousPage endCursor } edges { node { handle } }"
    everything = await _products(client, f"query {{ products(sort: TITLE_ASC, first: 12) {{ {listing} }} }}")
    first = await _products(
        client,
        FULL.replace(
            "pageInfo { hasNextPage endCursor }", "pageInfo { hasNextPage hasPreviousPage endCursor }"
        ),
    )
    assert first["pageInfo"]["hasPreviousPage"] is False and first["pageInfo"]["hasNextPage"] is True
    after = first["pageInfo"]["endCursor"]
    document = (
        f"query($after: String) {{ products(sort: TITLE_ASC, first: 7, after: $after) {{ {listing} }} }}"
    )
    rest = await _products(client, document, {"after": after})
    assert rest["pageInfo"]["hasPreviousPage"] is True and rest["pageInfo"]["hasNextPage"] is False
    handles = [e["node"]["handle"] for e in first["edges"]] + [e["node"]["handle"] for e in rest["edges"]]
    assert handles == [e["node"]["handle"] for e in everything["edges"]]
