"""A unit of work's writes at commit: applied together with the COMMIT, or not at all."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from commands.store.unit_of_work import MessageMetadata, UnitOfWork
from gateway.bootstrap.container import Container

META = MessageMetadata(actor="admin:test")
_INSERT = "INSERT INTO customer_carts (cart_id, customer_id, status) VALUES ($1, $2, 'ACTIVE')"
_STATUS = "UPDATE customer_carts SET status = $2 WHERE cart_id = $1"


async def _carts(container: Container, *cart_ids: str) -> dict[str, str]:
    async with container.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT cart_id, status FROM customer_carts WHERE cart_id = ANY(:ids)"),
            {"ids": list(cart_ids)},
        )
        return {row.cart_id: row.status for row in rows}


async def _inserted_at_commit(container: Container, *carts: tuple[str, str]) -> None:
    """A unit of work that inserts each (cart id, customer) with its COMMIT, and commits."""
    async with UnitOfWork(container.connections, META) as uow:
        for cart_id, customer in carts:
            uow.write_at_commit(_INSERT, cart_id, customer)
        await uow.commit()


async def test_writes_at_commit_land_with_the_commit_in_one_statement(container: Container) -> None:
    first, second, third = (str(uuid.uuid4()) for _ in range(3))
    async with UnitOfWork(container.connections, META) as uow:
        await uow.conn.execute(
            text("INSERT INTO customer_carts (cart_id, customer_id, status) VALUES (:c, 'x', 'ACTIVE')"),
            {"c": third},
        )
        uow.write_at_commit(_INSERT, first, "cust-1")
        uow.write_at_commit(_INSERT, second, "cust-2")
        uow.write_at_commit(_STATUS, third, "CHECKED_OUT")
        assert await _carts(container, first, second, third) == {}, "nothing is sent before the commit"
        await uow.commit()
    assert await _carts(container, first, second, third) == {
        first: "ACTIVE",
        second: "ACTIVE",
        third: "CHECKED_OUT",
    }


async def test_writes_at_commit_of_a_unit_rolled_back_are_never_sent(container: Container) -> None:
    cart = str(uuid.uuid4())
    with pytest.raises(LookupError):
        async with UnitOfWork(container.connections, META) as uow:
            uow.write_at_commit(_INSERT, cart, "cust-1")
            raise LookupError("refused")
    async with UnitOfWork(container.connections, META) as uow:  # the same kept connection, clean
        await uow.commit()
    assert await _carts(container, cart) == {}


async def test_a_write_at_commit_that_fails_fails_the_commit_and_rolls_back_the_rest(
    container: Container,
) -> None:
    cart, duplicate = str(uuid.uuid4()), str(uuid.uuid4())
    await _inserted_at_commit(container, (duplicate, "cust-1"))
    with pytest.raises(Exception, match="duplicate key"):
        await _inserted_at_commit(container, (cart, "cust-2"), (duplicate, "cust-3"))
    assert await _carts(container, cart, duplicate) == {duplicate: "ACTIVE"}


async def test_writes_at_commit_asked_for_in_a_savepoint_rolled_back_are_forgotten(
    container: Container,
) -> None:
    kept, dropped = str(uuid.uuid4()), str(uuid.uuid4())
    async with UnitOfWork(container.connections, META) as uow:
        uow.write_at_commit(_INSERT, kept, "cust-1")
        mark = uow.at_commit_mark()
        uow.write_at_commit(_INSERT, dropped, "cust-2")
        uow.forget_at_commit(mark)
        await uow.commit()
    assert await _carts(container, kept, dropped) == {kept: "ACTIVE"}


async def test_text_written_in_with_the_commit_lands_exactly_as_sent(container: Container) -> None:
    awkward = ["it's", "back\\slash\\'", "dollar $1 $2", "üñí 🛒", "semi; COMMIT; --"]
    carts = [str(uuid.uuid4()) for _ in awkward]
    await _inserted_at_commit(container, *zip(carts, awkward, strict=True))
    async with container.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT cart_id, customer_id FROM customer_carts WHERE cart_id = ANY(:ids)"), {"ids": carts}
        )
        stored = {row.cart_id: row.customer_id for row in rows}
    assert stored == dict(zip(carts, awkward, strict=True))


async def test_a_write_at_commit_with_an_argument_not_written_in_goes_with_its_parameters(
    container: Container,
) -> None:
    cart = str(uuid.uuid4())
    await _inserted_at_commit(container, (cart, "cust-1"))
    long_ago = datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC)
    async with UnitOfWork(container.connections, META) as uow:
        uow.write_at_commit("UPDATE customer_carts SET updated_at = $2 WHERE cart_id = $1", cart, long_ago)
        await uow.commit()
    async with container.engine.connect() as conn:
        updated = (
            await conn.execute(text("SELECT updated_at FROM customer_carts WHERE cart_id = :c"), {"c": cart})
        ).scalar_one()
    assert abs(updated - long_ago) < timedelta(microseconds=1)


async def test_steps_after_commit_run_once_it_committed_and_never_on_a_rollback(container: Container) -> None:
    ran: list[str] = []
    with pytest.raises(LookupError):
        async with UnitOfWork(container.connections, META) as uow:
            uow.after_commit(lambda: ran.append("rolled back"))
            raise LookupError("refused")
    cart, duplicate = str(uuid.uuid4()), str(uuid.uuid4())
    await _inserted_at_commit(container, (duplicate, "cust-1"))
    with pytest.raises(Exception, match="duplicate key"):
        async with UnitOfWork(container.connections, META) as uow:
            uow.write_at_commit(_INSERT, duplicate, "cust-2")
            uow.after_commit(lambda: ran.append("commit failed"))
            await uow.commit()
    async with UnitOfWork(container.connections, META) as uow:
        uow.write_at_commit(_INSERT, cart, "cust-3")
        uow.after_commit(lambda: ran.append("kept"))
        mark = uow.at_commit_mark()
        uow.after_commit(lambda: ran.append("forgotten with its savepoint"))
        uow.forget_at_commit(mark)
        assert ran == [], "nothing runs before the commit"
        await uow.commit()
    assert ran == ["kept"]
    assert await _carts(container, cart) == {cart: "ACTIVE"}


async def test_a_step_after_commit_that_fails_is_logged_and_the_commit_and_other_steps_stand(
    container: Container, caplog: pytest.LogCaptureFixture
) -> None:
    cart = str(uuid.uuid4())
    ran: list[str] = []

    def failing() -> None:
        raise ValueError("a broken step")

    async with UnitOfWork(container.connections, META) as uow:
        uow.write_at_commit(_INSERT, cart, "cust-1")
        uow.after_commit(failing)
        uow.after_commit(lambda: ran.append("after the broken one"))
        await uow.commit()
    assert ran == ["after the broken one"]
    assert await _carts(container, cart) == {cart: "ACTIVE"}
    assert any("step after a commit failed" in r.getMessage() and r.exc_info for r in caplog.records)


async def test_a_unit_of_work_without_a_transaction_refuses_steps_after_commit(container: Container) -> None:
    async with UnitOfWork(container.connections, META, transaction=False) as uow:
        with pytest.raises(RuntimeError, match="no commit to follow"):
            uow.after_commit(lambda: None)
