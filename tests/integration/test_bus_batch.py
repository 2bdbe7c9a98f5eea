"""``CommandBus.dispatch_batch``: many commands in one transaction, each refused alone."""

from __future__ import annotations

from sqlalchemy import text

from commands.errors import DomainError
from commands.messages.catalog import UpsertProductResult
from gateway.bootstrap.container import Container
from tests.support.catalog import ADMIN, product, variant


async def test_a_refused_command_is_rolled_back_alone(container: Container) -> None:
    commands = [
        product("first", variants=[variant("B-1")]),
        product("broken", variants=[variant("B-1")]),  # B-1 belongs to "first": refused
        product("third", variants=[variant("B-3")]),
    ]
    results = await container.bus.dispatch_batch(commands, ADMIN)

    assert isinstance(results[1], DomainError)
    first, third = results[0], results[2]
    assert isinstance(first, UpsertProductResult) and isinstance(third, UpsertProductResult)
    assert first.created and third.created
    assert first.position is not None and third.position is not None and first.position < third.position
    async with container.engine.connect() as conn:
        handles = (await conn.execute(text("SELECT handle FROM catalog_products ORDER BY 1"))).scalars()
        assert list(handles) == ["first", "third"]
        events = (
            await conn.execute(text("SELECT type, position FROM ledger_events ORDER BY position"))
        ).all()
    # Nothing of the refused command reached the ledger; the others did, in order.
    assert [(e.type, e.position) for e in events] == [
        ("ProductCreated", first.position),
        ("ProductCreated", third.position),
    ]


async def test_running_a_batch_again_changes_nothing(container: Container) -> None:
    commands = [product(f"p-{i}", variants=[variant(f"S-{i}")]) for i in range(5)]
    await container.bus.dispatch_batch(commands, ADMIN)
    again = await container.bus.dispatch_batch(commands, ADMIN)
    assert all(isinstance(r, UpsertProductResult) and not r.created for r in again)
    async with container.engine.connect() as conn:
        count = (await conn.execute(text("SELECT count(*) FROM ledger_events"))).scalar_one()
    assert count == 5
