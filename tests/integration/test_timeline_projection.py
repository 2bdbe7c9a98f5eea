"""The support timeline read model: ownership, backfill on attach, order independence, rebuild."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import text

from commands.events import cart as cart_ev
from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import load_stream
from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container
from tests.support.order_ledger import append as append_order
from tests.support.orders import happy_path, new_order_id, placed

META = MessageMetadata(actor="test")


def _line(sku: str, quantity: int) -> cart_ev.CartLineSnapshot:
    return cart_ev.CartLineSnapshot(f"line-{sku}", sku, quantity, Decimal("9.99"))


async def _cart(container: Container, cart_id: str, *events: Any, expected: int | None = None) -> None:
    async with UnitOfWork(container.engine, META) as uow:
        await uow.append("cart", f"cart-{cart_id}", list(events), expected_version=expected)
        await uow.commit()


async def _rows(container: Container, table: str = "timeline_entries") -> list[tuple[Any, ...]]:
    async with container.engine.connect() as conn:
        result = await conn.execute(
            text(
                "SELECT position, customer_id, cart_id, order_id, kind, type, summary, data, at "
                f"FROM {table} ORDER BY 1"
            )
        )
        return [tuple(r) for r in result]


async def test_guest_history_joins_the_customer_timeline_on_attach(container: Container) -> None:
    await _cart(container, "g1", cart_ev.CartCreated(cart_id="g1", currency_code="USD"))
    await _cart(container, "g1", cart_ev.CartLinesAdded(lines=(_line("TEE", 2),)))
    runner = container.runner("timeline")
    await runner.catch_up()
    queries = container.services.timeline
    assert (await queries.for_customer("cust-1", kinds=None, first=10, before_position=None)).entries == []

    await _cart(container, "g1", cart_ev.CartCustomerAttached(customer_id="cust-1"))
    await runner.catch_up()
    page = await queries.for_customer("cust-1", kinds=None, first=10, before_position=None)
    assert [e.type for e in page.entries] == ["CartCustomerAttached", "CartLinesAdded", "CartCreated"]
    assert all(e.cart_id == "g1" for e in page.entries)
    assert page.entries[1].summary == "Cart now has 2 x TEE"


async def test_order_events_follow_the_order_owner_with_kinds_and_paging(container: Container) -> None:
    order_id = new_order_id()
    place = placed(order_id, "cust-2")
    await append_order(container.engine, order_id, place, *happy_path(order_id, place.total))
    await container.runner("timeline").catch_up()
    queries = container.services.timeline
    everything = await queries.for_customer("cust-2", kinds=None, first=50, before_position=None)
    assert [e.type for e in reversed(everything.entries)] == [
        "OrderPlaced",
        "PaymentOutcomeUnknown",
        "PaymentAuthorized",
        "OrderConfirmed",
        "FulfillmentRequested",
        "PaymentCaptured",
        "OrderShipped",
        "OrderDelivered",
    ]
    assert all(e.order_id == order_id for e in everything.entries)
    payments = await queries.for_customer("cust-2", kinds=["PAYMENT"], first=50, before_position=None)
    assert {e.type for e in payments.entries} == {
        "PaymentOutcomeUnknown",
        "PaymentAuthorized",
        "PaymentCaptured",
    }
    first_page = await queries.for_customer("cust-2", kinds=None, first=3, before_position=None)
    second_page = await queries.for_customer(
        "cust-2", kinds=None, first=10, before_position=first_page.entries[-1].position
    )
    assert first_page.has_next_page and not second_page.has_next_page
    assert [e.position for e in first_page.entries + second_page.entries] == [
        e.position for e in everything.entries
    ]


async def test_owner_learned_after_later_events_were_applied_still_backfills(container: Container) -> None:
    order_id = new_order_id()
    place = placed(order_id, "cust-3")
    # The placing event arrives in a later batch than the payment event on the same stream.
    async with UnitOfWork(container.engine, META) as uow:
        await uow.append("order", f"order-{order_id}", [place])
        await uow.commit()
    runner = container.runner("timeline")
    async with container.engine.begin() as conn:
        await conn.execute(text("INSERT INTO projection_checkpoints (name) VALUES ('timeline')"))
    await append_order(container.engine, order_id, *happy_path(order_id, place.total)[:2])
    projection = runner.projection
    async with container.engine.begin() as conn:
        events = await load_stream(conn, f"order-{order_id}")
        await projection.apply(events[1:], await asyncpg_of(conn))
        await projection.apply(events[:1], await asyncpg_of(conn))
    rows = await _rows(container)
    assert {r[1] for r in rows} == {"cust-3"} and len(rows) == 3


async def test_rebuild_equals_the_incrementally_built_timeline(container: Container) -> None:
    for n in range(3):
        cart_id = f"c{n}"
        await _cart(container, cart_id, cart_ev.CartCreated(cart_id=cart_id, currency_code="USD"))
        await _cart(container, cart_id, cart_ev.CartLinesAdded(lines=(_line(f"SKU{n}", n + 1),)))
        if n != 1:
            await _cart(container, cart_id, cart_ev.CartCustomerAttached(customer_id=f"cust-{n}"))
        order_id = new_order_id()
        place = placed(order_id, f"cust-{n}")
        await append_order(container.engine, order_id, place, *happy_path(order_id, place.total)[: n + 2])
    runner = container.runner("timeline")
    await runner.catch_up()
    incremental = await _rows(container)
    assert len(incremental) > 15
    await container.rebuilder.run(runner)
    assert await _rows(container) == incremental
    async with container.engine.connect() as conn:
        leftovers = (
            await conn.execute(
                text(
                    "SELECT count(*) FROM pg_tables "
                    "WHERE tablename LIKE 'timeline_entries_%' OR tablename LIKE 'timeline_owners_%'"
                )
            )
        ).scalar_one()
        state = (
            await conn.execute(text("SELECT state FROM projection_checkpoints WHERE name = 'timeline'"))
        ).scalar_one()
    assert leftovers == 0 and state == "RUNNING"
