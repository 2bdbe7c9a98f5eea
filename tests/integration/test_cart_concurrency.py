"""Concurrent cart edits: version conflicts, no lost updates, and documents equal to the ledger fold."""

from __future__ import annotations

import asyncio
import random
from collections import Counter

from commands.errors import DomainError, VersionConflict
from commands.messages.cart import (
    AddCartLines,
    CartResult,
    CreateCart,
    LineRequest,
    QuantityChange,
    RemoveCartLines,
    UpdateCartLines,
)
from gateway.bootstrap.container import Container
from tests.support.cart import CATALOG, GUEST, META, document_state, expected_document, folded, seed_catalog

USD_SKUS = [sku for sku, (_, currency) in CATALOG.items() if currency == "USD"]


async def _create(container: Container) -> str:
    return (await container.bus.dispatch(CreateCart(GUEST), META)).cart_id


async def _assert_documents_equal_folds(container: Container, cart_ids: list[str]) -> None:
    docs = {doc["_id"]: doc async for doc in container.mongo["carts"].find({})}
    assert set(docs) == set(cart_ids)
    for cart_id in cart_ids:
        assert document_state(docs[cart_id]) == expected_document(await folded(container, cart_id))


async def test_two_devices_with_expected_version_exactly_one_wins_each_round(container: Container) -> None:
    await seed_catalog(container)
    cart = await _create(container)
    for version in range(1, 5):
        outcomes = await asyncio.gather(
            *(
                container.bus.dispatch(AddCartLines(cart, GUEST, (LineRequest(sku, 1),), version), META)
                for sku in ("MUG", "CAP")
            ),
            return_exceptions=True,
        )
        wins = [o for o in outcomes if isinstance(o, CartResult)]
        conflicts = [o for o in outcomes if isinstance(o, VersionConflict)]
        assert len(wins) == 1 and len(conflicts) == 1, outcomes
        assert conflicts[0].code == "VERSION_CONFLICT" and wins[0].version == version + 1
    state = await folded(container, cart)
    assert state.version == 5 and sum(line.quantity for line in state.lines) == 4


async def test_two_devices_without_expected_version_both_edits_land(container: Container) -> None:
    await seed_catalog(container)
    cart = await _create(container)

    async def device(sku: str) -> None:
        for _ in range(10):
            await container.bus.dispatch(AddCartLines(cart, GUEST, (LineRequest(sku, 1),)), META)

    await asyncio.gather(device("MUG"), device("CAP"), device("MUG"))
    state = await folded(container, cart)
    assert state.version == 31
    assert {line.sku: line.quantity for line in state.lines} == {"MUG": 20, "CAP": 10}
    await container.runner("carts").catch_up()
    await _assert_documents_equal_folds(container, [cart])


async def test_many_writers_across_many_carts_while_the_projector_runs(running: Container) -> None:
    await seed_catalog(running)
    carts = [await _create(running) for _ in range(8)]
    # Half the carts only grow, so their final quantities are known exactly.
    expected_adds: dict[str, Counter[str]] = {cart: Counter() for cart in carts[:4]}
    positions: list[int] = []

    async def writer(seed: int) -> None:
        rng = random.Random(seed)
        for _ in range(8):
            cart = rng.choice(carts)
            sku = rng.choice(USD_SKUS)
            if cart in expected_adds:
                command: AddCartLines | UpdateCartLines | RemoveCartLines = AddCartLines(
                    cart, GUEST, (LineRequest(sku, rng.randint(1, 3)),)
                )
            else:
                line_id = str(rng.randint(1, 4))
                choices: list[AddCartLines | UpdateCartLines | RemoveCartLines] = [
                    AddCartLines(cart, GUEST, (LineRequest(sku, 1),)),
                    UpdateCartLines(cart, GUEST, (QuantityChange(line_id, rng.randint(0, 5)),)),
                    RemoveCartLines(cart, GUEST, (line_id,)),
                ]
                command = rng.choice(choices)
            try:
                result = await running.bus.dispatch(command, META)
            except DomainError as err:
                assert err.code == "NOT_FOUND"  # a line another writer removed
                continue
            assert result.position is not None
            positions.append(result.position)
            if isinstance(command, AddCartLines) and cart in expected_adds:
                expected_adds[cart][command.lines[0].sku] += command.lines[0].quantity
            await asyncio.sleep(0)  # yield, so the writers interleave

    await asyncio.gather(*(writer(i) for i in range(16)))
    for position in positions:
        await running.freshness.wait_for("carts", position, timeout=10)
    await _assert_documents_equal_folds(running, carts)
    for cart, adds in expected_adds.items():
        doc = await running.mongo["carts"].find_one({"_id": cart})
        assert doc is not None
        assert Counter({line["sku"]: line["quantity"] for line in doc["lines"]}) == adds
