"""The carts read model in MongoDB: outage and catch-up, version guard, rebuild and promote."""

from __future__ import annotations

import pytest

from commands.messages.cart import AddCartLines, AttachCartToCustomer, CreateCart, LineRequest
from gateway.bootstrap.container import Container
from projections import checkpoints
from projections.carts import CartsProjection
from queries.carts import CartStoreUnavailable
from tests.support.cart import (
    GUEST,
    META,
    cart_stream,
    customer,
    document_state,
    expected_document,
    folded,
    seed_catalog,
)
from tests.support.waiting import eventually


async def _checkpoint_state(container: Container) -> checkpoints.CheckpointRow:
    async with container.engine.connect() as conn:
        row = await checkpoints.load(conn, "carts")
    assert row is not None
    return row


async def test_cart_writes_succeed_with_the_read_store_down_and_the_projector_catches_up(
    running: Container,
) -> None:
    await seed_catalog(running)
    queries = running.services.carts
    first = await running.bus.dispatch(CreateCart(customer("cust-1"), lines=(LineRequest("MUG", 1),)), META)
    assert first.position is not None
    await running.freshness.wait_for("carts", first.position, timeout=5)

    running.mongo_client.set_available(False)
    try:
        positions = [first.position]
        guest = await running.bus.dispatch(CreateCart(GUEST, lines=(LineRequest("CAP", 2),)), META)
        for _ in range(3):
            added = await running.bus.dispatch(
                AddCartLines(guest.cart_id, GUEST, (LineRequest("MUG", 1),)), META
            )
            positions.append(added.position or 0)
        merged = await running.bus.dispatch(AttachCartToCustomer(guest.cart_id, customer("cust-1")), META)
        assert merged.cart_id == first.cart_id and merged.version == 2
        positions += [guest.position or 0, merged.position or 0]
        with pytest.raises(CartStoreUnavailable):
            await queries.get(first.cart_id)

        async def failed() -> bool:
            return (await _checkpoint_state(running)).state == "FAILED"

        await eventually(failed, message="the carts projector never reported FAILED")
        state = await _checkpoint_state(running)
        assert state.state == "FAILED" and "ServerSelectionTimeoutError" in (state.last_error or "")
        lag = await running.freshness.freshness("carts")
        assert lag.lag_events >= 6 and lag.position < max(positions)
    finally:
        running.mongo_client.set_available(True)

    for position in positions:
        await running.freshness.wait_for("carts", position, timeout=10)
    for cart_id in (first.cart_id, guest.cart_id):
        doc = await running.mongo["carts"].find_one({"_id": cart_id})
        assert doc is not None
        assert document_state(doc) == expected_document(await folded(running, cart_id))
    view = await queries.active_for_customer("cust-1")
    assert view is not None and view.cart_id == first.cart_id
    assert {line.sku: line.quantity for line in view.lines} == {"MUG": 4, "CAP": 2}
    assert (await _checkpoint_state(running)).state == "RUNNING"


async def test_version_guard_reloads_on_a_jump_and_skips_redeliveries(container: Container) -> None:
    await seed_catalog(container)
    cart = (await container.bus.dispatch(CreateCart(GUEST), META)).cart_id
    for sku in ("MUG", "CAP", "MUG"):
        await container.bus.dispatch(AddCartLines(cart, GUEST, (LineRequest(sku, 1),)), META)
    events = await cart_stream(container, cart)
    projection = CartsProjection(container.mongo, "carts_probe")
    await projection.setup()
    async with container.engine.connect() as conn:
        await projection.apply(events[-1:], conn)
        await projection.apply(events, conn)
    doc = await container.mongo["carts_probe"].find_one({"_id": cart})
    assert doc is not None
    assert document_state(doc) == expected_document(await folded(container, cart))


async def test_rebuild_builds_a_new_collection_and_promotes_it(container: Container) -> None:
    await seed_catalog(container)
    carts = []
    for i in range(3):
        created = await container.bus.dispatch(
            CreateCart(customer(f"cust-{i}"), lines=(LineRequest("MUG", i + 1),)), META
        )
        carts.append(created.cart_id)
    runner = container.runner("carts")
    await runner.catch_up()
    # Damage the live model: the rebuild must replace it with the ledger's truth.
    await container.mongo["carts"].update_one({"_id": carts[0]}, {"$set": {"lines": []}})

    await container.rebuilder.run(runner)

    names = await container.mongo.list_collection_names()
    assert [name for name in names if name.startswith("carts")] == ["carts"]
    indexes = await container.mongo["carts"].index_information()
    assert "customer_status_updated" in indexes
    for cart_id in carts:
        doc = await container.mongo["carts"].find_one({"_id": cart_id})
        assert doc is not None
        assert document_state(doc) == expected_document(await folded(container, cart_id))
    # The live projector goes on from the copy's checkpoint.
    await container.bus.dispatch(AddCartLines(carts[1], customer("cust-1"), (LineRequest("CAP", 1),)), META)
    await runner.catch_up()
    doc = await container.mongo["carts"].find_one({"_id": carts[1]})
    assert doc is not None and doc["version"] == 2
