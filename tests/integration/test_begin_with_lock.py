"""A unit of work that begins holding its stream's lock: BEGIN and the lock in one round trip,
the very lock the lock helpers take, whatever the key holds."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from commands.handlers import cart as cart_handlers
from commands.store import literals
from commands.store.driver import asyncpg_of
from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container

META = MessageMetadata(actor="admin:test")
TRY_LOCK = "SELECT pg_try_advisory_xact_lock(hashtextextended($1, 0))"
# Keys that quoting must not break: quotes, backslashes (read as escapes in E'' strings), a
# statement's end, a non-ASCII letter.
AWKWARD_KEYS = ("cart-'; SELECT 1; --", "back\\slash\\'x", "üñí-\\\\", "plain-key")


async def _free_elsewhere(container: Container, key: str) -> bool:
    """Whether another session could take ``key``'s lock now (and let it go at once)."""
    async with container.engine.connect() as conn:
        driver = await asyncpg_of(conn)
        async with driver.transaction():
            return bool(await driver.fetchval(TRY_LOCK, key))


@pytest.mark.parametrize("key", AWKWARD_KEYS)
async def test_the_lock_taken_with_begin_is_the_keys_own_lock(container: Container, key: str) -> None:
    async with UnitOfWork(container.connections, META, lock=key) as uow:
        assert uow.holds_lock(key) and not uow.holds_lock(key + "x")
        driver = await asyncpg_of(uow.conn)
        assert driver.is_in_transaction()
        assert not await _free_elsewhere(container, key), "held from BEGIN on, under its own name"
        await uow.commit()
    assert await _free_elsewhere(container, key), "released with the transaction"


async def test_a_lock_holder_queues_the_next_unit_of_work_on_the_same_key(container: Container) -> None:
    cart_id = str(uuid.uuid4())
    key = cart_handlers.stream_id(cart_id)
    order: list[str] = []
    async with UnitOfWork(container.connections, META, lock=key) as first:
        order.append("first in")

        async def second() -> None:
            async with UnitOfWork(container.connections, META) as uow:
                await cart_handlers.lock_cart(uow, cart_id)  # not begun with it: takes it now
                order.append("second in")
                await uow.commit()

        waiting = asyncio.create_task(second())
        await asyncio.sleep(0.2)
        assert order == ["first in"], "the second waits on the lock taken with the first's BEGIN"
        await cart_handlers.lock_cart(first, cart_id)  # held already: no second statement needed
        order.append("first out")
        await first.commit()
    await asyncio.wait_for(waiting, 5)
    assert order == ["first in", "first out", "second in"]


def test_a_key_with_a_nul_character_is_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="NUL"):
        literals.text("bad\x00key")
    assert literals.text("it's") == "E'it''s'"
    assert literals.text("a\\b") == "E'a\\\\b'"


async def test_several_locks_begin_together_and_end_with_the_transaction(container: Container) -> None:
    first, second = f"order-{uuid.uuid4()}", f"cart-{uuid.uuid4()}"
    async with UnitOfWork(container.connections, META, lock=[first, second]) as uow:
        assert uow.holds_lock(first) and uow.holds_lock(second)
        assert not await _free_elsewhere(container, first)
        assert not await _free_elsewhere(container, second)
        await uow.commit()
    assert not uow.holds_lock(first), "held no more once the unit of work is closed"
    assert await _free_elsewhere(container, first) and await _free_elsewhere(container, second)
