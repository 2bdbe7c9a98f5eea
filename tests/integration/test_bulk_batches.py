"""The set-based path of bulk loads (``commands.batching``): ``UpsertProduct`` and ``SetStock``
batches decided with a few statements, with the outcomes, rows and events of one by one."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from commands.errors import DomainError, InvalidInput, NotFound, ValidationErrors
from commands.events.inventory import StockSet
from commands.handlers.catalog import upsert_product
from commands.handlers.inventory import set_stock
from commands.messages.catalog import UpsertProduct, UpsertProductResult
from commands.messages.inventory import SetStock, StockResult
from commands.store.ledger import writer
from commands.store.unit_of_work import UnitOfWork
from gateway.bootstrap.container import Container
from tests.support.catalog import ADMIN, product, upsert, variant
from tests.support.inventory import META, inventory_events, items, new_order, reserve


async def _many_products(container: Container, commands: list[UpsertProduct]) -> list[Any]:
    """The set-based path itself, in a committed unit of work."""
    async with UnitOfWork(container.engine, ADMIN) as uow:
        outcomes = await upsert_product.many(commands, uow)
        await uow.commit()
    return outcomes


async def _events(container: Container, stream_type: str) -> list[Any]:
    async with container.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT position, stream_id, stream_version, type, data, metadata FROM ledger_events "
                "WHERE stream_type = :t ORDER BY position"
            ),
            {"t": stream_type},
        )
        return list(rows)


async def _variants(container: Container) -> dict[str, tuple[str, str]]:
    async with container.engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT v.sku, p.handle, v.status FROM catalog_variants v "
                "JOIN catalog_products p ON p.id = v.product_id"
            )
        )
        return {r.sku: (r.handle, r.status) for r in rows}


async def test_a_batch_of_new_products_refuses_bad_ones_alone_and_appends_in_order(
    container: Container,
) -> None:
    owner = await upsert(container, product("owner", variants=[variant("OWNED-1")]))
    outcomes = await _many_products(
        container,
        [
            product("alpha", variants=[variant("A-1"), variant("A-2")], categories=('Say "hi"', "a\\b")),
            product("Bad Handle", variants=[variant("BAD-1")]),
            product("beta", variants=[variant("B-1")]),
            product("thief", variants=[variant("T-1"), variant("OWNED-1")]),
            product("gamma", variants=[variant("G-1")]),
        ],
    )

    assert isinstance(outcomes[1], ValidationErrors)
    assert isinstance(outcomes[3], ValidationErrors)
    assert [e.field for e in outcomes[3].errors] == [["variants", "1", "sku"]]
    created = [outcomes[0], outcomes[2], outcomes[4]]
    assert all(isinstance(r, UpsertProductResult) and r.created for r in created)
    events = await _events(container, "product")
    assert [(e.type, e.stream_version) for e in events] == [("ProductCreated", 1)] * 4
    assert [e.data["product"]["handle"] for e in events] == ["owner", "alpha", "beta", "gamma"]
    assert [e.position for e in events[1:]] == [r.position for r in created]
    assert all(e.metadata["actor"] == "admin:test" for e in events)
    assert events[1].data["product"]["categories"] == ['Say "hi"', "a\\b"]
    # Nothing of the refused products reached the tables; the owner kept its SKU.
    assert await _variants(container) == {
        "OWNED-1": ("owner", "active"),
        "A-1": ("alpha", "active"),
        "A-2": ("alpha", "active"),
        "B-1": ("beta", "active"),
        "G-1": ("gamma", "active"),
    }
    assert owner.position is not None and owner.position < events[1].position


async def test_a_batch_updates_changed_products_and_leaves_unchanged_ones(container: Container) -> None:
    first = await _many_products(
        container,
        [
            product("alpha", variants=[variant("A-1"), variant("A-2")]),
            product("beta", variants=[variant("B-1")]),
        ],
    )
    again = await _many_products(
        container,
        [
            product("alpha", title="Alpha Two", variants=[variant("A-2", price="12.50")]),
            product("beta", variants=[variant("B-1")]),
        ],
    )

    alpha, beta = again
    assert isinstance(alpha, UpsertProductResult) and isinstance(beta, UpsertProductResult)
    assert not alpha.created and alpha.position is not None
    assert beta.position is None and beta.read_position == first[1].position
    events = await _events(container, "product")
    assert [(e.type, e.stream_version) for e in events] == [
        ("ProductCreated", 1),
        ("ProductCreated", 1),
        ("ProductUpdated", 2),
    ]
    assert events[-1].position == alpha.position
    assert events[-1].data["changed"] == ["title", "variants"]
    assert await _variants(container) == {
        "A-1": ("alpha", "withdrawn"),
        "A-2": ("alpha", "active"),
        "B-1": ("beta", "active"),
    }
    async with container.engine.connect() as conn:
        row = (
            await conn.execute(
                text(
                    "SELECT p.title, v.price FROM catalog_products p JOIN catalog_variants v "
                    "ON v.product_id = p.id WHERE v.sku = 'A-2'"
                )
            )
        ).one()
    assert (row.title, str(row.price)) == ("Alpha Two", "12.5000")


async def test_a_batch_repeating_a_handle_runs_one_by_one_and_the_later_line_wins(
    container: Container,
) -> None:
    results = await container.bus.dispatch_batch(
        [
            product("alpha", variants=[variant("A-1")]),
            product("alpha", title="Alpha Later", variants=[variant("A-1")]),
        ],
        ADMIN,
    )
    first, later = results
    assert isinstance(first, UpsertProductResult) and isinstance(later, UpsertProductResult)
    assert first.created and not later.created and first.product_id == later.product_id
    events = await _events(container, "product")
    assert [(e.type, e.stream_version) for e in events] == [("ProductCreated", 1), ("ProductUpdated", 2)]
    assert events[-1].data["product"]["title"] == "Alpha Later"


async def test_a_batch_of_stock_levels_refuses_bad_ones_alone(stocked: Container) -> None:
    await reserve(stocked, new_order(), [("INV-B", 3)])
    commands = [
        SetStock("INV-A", 7),
        SetStock("NO-SUCH-SKU", 1),
        SetStock("INV-B", 2),  # below the 3 reserved
        SetStock("INV-UNTRACKED", -1),
        SetStock("INV-UNTRACKED-2", 4),  # not a variant either
        SetStock("INV-C", 9),
    ]
    before = await inventory_events(stocked)
    async with UnitOfWork(stocked.engine, META) as uow:
        outcomes = await set_stock.many(commands, uow)
        await uow.commit()

    assert isinstance(outcomes[1], NotFound) and isinstance(outcomes[4], NotFound)
    assert isinstance(outcomes[2], InvalidInput) and "3 units reserved" in outcomes[2].message
    assert isinstance(outcomes[3], InvalidInput) and outcomes[3].field == ["onHand"]
    a, c = outcomes[0], outcomes[5]
    assert isinstance(a, StockResult) and isinstance(c, StockResult)
    assert (a.on_hand, a.available, c.on_hand) == (7, 7, 9)
    assert a.position is not None and c.position is not None and a.position < c.position
    levels = await items(stocked)
    assert {sku: (level.on_hand, level.reserved) for sku, level in levels.items()} == {
        "INV-A": (7, 0),
        "INV-B": (5, 3),
        "INV-C": (9, 0),
    }
    new = [e for e in await inventory_events(stocked) if e not in before]
    assert sorted((e.stream_id, e.stream_version, e.type) for e in new) == [
        ("inventory-INV-A", 2, "StockSet"),
        ("inventory-INV-C", 2, "StockSet"),
    ]
    set_a = next(e for e in new if e.stream_id == "inventory-INV-A")
    assert set_a.data["previous_on_hand"] == 10 and set_a.data["product_id"] is not None


async def test_dispatch_batch_runs_stock_set_based_with_the_same_outcomes(stocked: Container) -> None:
    results = await stocked.bus.dispatch_batch(
        [SetStock("INV-A", 3), SetStock("INV-UNTRACKED", 6), SetStock("", 1)], META
    )
    assert isinstance(results[2], DomainError) and results[2].field == ["sku"]
    assert [(r.sku, r.on_hand) for r in results[:2] if isinstance(r, StockResult)] == [
        ("INV-A", 3),
        ("INV-UNTRACKED", 6),
    ]
    assert (await items(stocked))["INV-UNTRACKED"].on_hand == 6


def _stock_set(sku: str, on_hand: int) -> StockSet:
    return StockSet(
        sku=sku, product_id=None, on_hand=on_hand, reserved=0, available=on_hand, previous_on_hand=0
    )


async def test_one_append_for_many_streams_continues_each_stream_in_the_order_given(
    container: Container,
) -> None:
    async with UnitOfWork(container.engine, ADMIN) as uow:
        await uow.append("inventory", "inventory-X", [_stock_set("X", 1)])
        await uow.commit()
    async with UnitOfWork(container.engine, ADMIN) as uow:
        recorded = await writer.append_to_streams(
            uow.conn,
            [
                ("inventory", "inventory-Y", _stock_set("Y", 2)),
                ("inventory", "inventory-X", _stock_set("X", 3)),
                ("inventory", "inventory-Z", _stock_set("Z", 4)),
            ],
            metadata={"actor": "admin:bulk"},
        )
        with pytest.raises(ValueError):
            await writer.append_to_streams(
                uow.conn,
                [("inventory", "inventory-Q", _stock_set("Q", 1))] * 2,
                metadata={},
            )
        await uow.commit()

    assert [(r.stream_id, r.stream_version, r.data["on_hand"]) for r in recorded] == [
        ("inventory-Y", 1, 2),
        ("inventory-X", 2, 3),
        ("inventory-Z", 1, 4),
    ]
    assert recorded[0].position < recorded[1].position < recorded[2].position
    assert all(r.metadata == {"actor": "admin:bulk"} for r in recorded)
    assert [e.stream_id for e in await _events(container, "inventory")] == [
        "inventory-X",
        "inventory-Y",
        "inventory-X",
        "inventory-Z",
    ]
