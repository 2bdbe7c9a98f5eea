"""Bulk catalog import: ``commerce-gateway catalog import FILE.jsonl`` and the ``catalogImport``
mutation, through the same command handlers; bad lines reported, good ones kept, twice = once."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from gateway.bootstrap.container import Container
from gateway.cli import catalog as catalog_cli
from gateway.cli.outcome import PartlyRefused
from gateway.edge.auth import JwtAuthenticator
from tests.helpers import error_codes, gql
from tests.support.catalog import ledger_types

LINES: list[Any] = [
    {
        "handle": "trail-runner",
        "title": "Trail Runner",
        "brand": "Kestrel",
        "categories": ["Running Shoes"],
        "currencyCode": "USD",
        "variants": [
            {"sku": "TR-9", "title": "9", "price": "120.00", "onHand": 12},
            {"sku": "TR-10", "title": "10", "price": "120.00", "onHand": 0},
        ],
    },
    "not json at all",
    {"handle": "Bad Handle", "title": "Bad", "variants": [{"sku": "BAD-1", "title": "x", "price": "1.00"}]},
    {
        "handle": "no-price",
        "title": "No Price",
        "variants": [{"sku": "NP-1", "title": "x", "price": "cheap"}],
    },
    {
        "handle": "down-jacket",
        "title": "Down Jacket",
        "variants": [{"sku": "DJ-M", "title": "M", "price": "250"}],
    },
    {"handle": "thief", "title": "Thief", "variants": [{"sku": "TR-9", "title": "9", "price": "1.00"}]},
]


def _write(path: Path, lines: list[Any]) -> Path:
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n\n")
    return path


async def _import(container: Container, path: Path) -> str:
    args = argparse.Namespace(command="catalog", catalog_command="import", file=path, concurrency=4)
    return await catalog_cli.execute(args, container.settings)


async def _stock(container: Container) -> dict[str, int]:
    async with container.engine.connect() as conn:
        rows = await conn.execute(text("SELECT sku, on_hand FROM inventory_items ORDER BY sku"))
        return {row.sku: row.on_hand for row in rows}


async def test_the_cli_imports_good_lines_reports_bad_ones_and_is_idempotent(
    container: Container, tmp_path: Path
) -> None:
    path = _write(tmp_path / "catalog.jsonl", LINES)
    with pytest.raises(PartlyRefused) as refused:  # the CLI exits 1, the report on stdout
        await _import(container, path)
    summary, *errors = refused.value.report.splitlines()
    assert "2 products imported" in summary and "2 created" in summary
    assert "stock set for 1 SKUs" in summary  # TR-10 at 0 is where a new SKU already is
    assert "4 lines refused" in summary
    assert [error.split(":")[0].split(" (")[0] for error in errors] == [
        "line 2",
        "line 3",
        "line 4",
        "line 6",
    ]
    assert any("line 4 (variants.0.price)" in error for error in errors)
    assert any("line 6" in error and "TR-9" in error for error in errors)
    assert await _stock(container) == {"TR-9": 12}
    events = await ledger_types(container)
    # Twice = once: nothing appended, nothing changed (an interrupted import resumes this way).
    with pytest.raises(PartlyRefused) as again:
        await _import(container, path)
    second = again.value.report
    assert "2 unchanged" in second and "stock set for 0 SKUs" in second
    assert await ledger_types(container) == events
    # A changed line updates only its product and stock.
    changed = [dict(LINES[0], title="Trail Runner II"), LINES[4]]
    changed[0]["variants"] = [dict(v, onHand=5) for v in LINES[0]["variants"]]
    third = await _import(container, _write(tmp_path / "changed.jsonl", changed))
    assert "1 updated, 1 unchanged" in third and "stock set for 2 SKUs" in third
    assert "0 lines refused" in third  # and no exception: the CLI exits 0
    assert await _stock(container) == {"TR-10": 5, "TR-9": 5}


IMPORT = """
mutation($products: [CatalogImportProductInput!]!) {
  catalogImport(products: $products) {
    created updated unchanged stockSet failed position
    userErrors { field message code }
  }
}
"""


def _batch(count: int) -> list[dict[str, Any]]:
    return [
        {
            "handle": f"batch-item-{i}",
            "title": f"Batch Item {i}",
            "variants": [
                {"sku": f"BI-{i}-{k}", "title": str(k), "price": "9.50", "onHand": 3 + k} for k in range(2)
            ],
        }
        for i in range(count)
    ]


async def test_an_admin_imports_a_batch_over_graphql(
    client: httpx.AsyncClient, running: Container, tokens: JwtAuthenticator
) -> None:
    admin = tokens.mint("admin-1", ["admin"])
    products = _batch(50)
    products[7]["variants"][0]["price"] = "-1"
    body = await gql(client, IMPORT, {"products": products}, token=admin)
    payload = body["data"]["catalogImport"]
    assert (payload["created"], payload["failed"], payload["stockSet"]) == (49, 1, 98)
    assert [e["field"] for e in payload["userErrors"]] == [["products", "7", "variants", "0", "price"]]
    found = await gql(
        client,
        "query($p: Position) { products(first: 100, consistentWith: $p) { totalCount } }",
        {"p": payload["position"]},
    )
    assert found["data"]["products"]["totalCount"] == 49
    again = (await gql(client, IMPORT, {"products": products}, token=admin))["data"]["catalogImport"]
    assert (again["created"], again["unchanged"], again["stockSet"], again["position"]) == (0, 49, 0, None)
    customer = tokens.mint("cust-1", ["customer"])
    refused = await gql(client, IMPORT, {"products": products[:1]}, token=customer)
    assert error_codes(refused) == ["FORBIDDEN"]
