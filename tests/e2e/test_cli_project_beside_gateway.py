"""Embedded mode split in two processes: ``serve`` with ``RUN_PROJECTORS=private`` keeps only the
read model in its own memory (carts, in the MongoDB stand-in) and a ``project`` worker, started
on the same data directory, borrows the gateway's servers and runs every other projector."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx

from gateway.bootstrap.settings import DEV_JWT_SECRET
from gateway.edge.auth import JwtAuthenticator
from tests.e2e.cli_harness import CLI, cli_env, serving

UPSERT = """mutation($input: ProductUpsertInput!) {
  productUpsert(input: $input) { position userErrors { message } } }"""
STOCK = """mutation($sku: String!) {
  inventorySet(sku: $sku, onHand: 7, idempotencyKey: $sku) { position userErrors { message } } }"""
CART = """mutation($sku: String!) {
  cartCreate(input: {lines: [{sku: $sku, quantity: 2}]}) { cartId position userErrors { message } } }"""
READ = """query($cart: ID!, $at: Position!) {
  products(query: "split", consistentWith: $at) {
    edges { node { handle variants { sku availability { available } } } } }
  cart(id: $cart, consistentWith: $at) { totalQuantity }
  inventory(sku: "SPLIT-1", consistentWith: $at) { available }
}"""
PROJECTIONS = "{ projections { name owner } }"
WAIT_SECONDS = 60.0


def _gql(base_url: str, query: str, variables: dict[str, Any], token: str) -> dict[str, Any]:
    response = httpx.post(
        f"{base_url}/graphql",
        json={"query": query, "variables": variables},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    )
    body: dict[str, Any] = response.json()
    assert not body.get("errors"), body
    data: dict[str, Any] = body["data"]
    return data


def _owners(base_url: str, token: str) -> dict[str, str | None]:
    rows = _gql(base_url, PROJECTIONS, {}, token)["projections"]
    return {row["name"]: row["owner"] for row in rows}


def _until_owned(base_url: str, token: str, names: set[str], role: str) -> dict[str, str | None]:
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        owners = _owners(base_url, token)
        if all(role in (owners.get(name) or "") for name in names):
            return owners
        assert time.monotonic() < deadline, f"not all of {names} owned by {role}: {owners}"
        time.sleep(0.3)


def test_a_project_worker_runs_the_shared_read_models_of_an_embedded_gateway(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    admin = JwtAuthenticator(DEV_JWT_SECRET).mint("split-test", ["admin"], 600)
    with serving(data_dir, RUN_PROJECTORS="private") as served:
        worker = subprocess.Popen(
            [*CLI, "project"], env=cli_env(data_dir), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        try:
            shared = {"search", "orders", "inventory", "timeline", "pricing"}
            owners = _until_owned(served.base_url, admin, shared, "project")
            assert "serve" in (owners["carts"] or ""), owners

            product = {
                "handle": "split-tee",
                "title": "Split tee",
                "variants": [{"sku": "SPLIT-1", "title": "One", "price": "12.00"}],
            }
            assert not _gql(served.base_url, UPSERT, {"input": product}, admin)["productUpsert"]["userErrors"]
            assert not _gql(served.base_url, STOCK, {"sku": "SPLIT-1"}, admin)["inventorySet"]["userErrors"]
            created = _gql(served.base_url, CART, {"sku": "SPLIT-1"}, admin)["cartCreate"]
            assert not created["userErrors"]

            # Read-your-writes across processes: the worker's checkpoints wake this gateway's reads.
            read = _gql(served.base_url, READ, {"cart": created["cartId"], "at": created["position"]}, admin)
            (found,) = read["products"]["edges"]
            assert found["node"]["handle"] == "split-tee"
            assert found["node"]["variants"][0]["availability"]["available"] == 7
            assert read["cart"]["totalQuantity"] == 2
            assert read["inventory"]["available"] == 7
        finally:
            worker.send_signal(signal.SIGTERM)
            output = worker.communicate(timeout=30)[0].decode()
        assert worker.returncode == 0, output
        assert "projector worker stopped" in output, output
        # Once the worker is gone its leases are free again; nobody else is configured to take them.
        assert "project" not in str(_owners(served.base_url, admin).values())
