"""What a purchase costs in round trips to PostgreSQL, counted on the driver: each is a wait for
the database and a turn of both processes' loops, so the hot paths keep them few (issue 12;
docs/scaling.md section 9). Counted in the calling task only: projectors and webhooks run in
their own."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text

from commands.checkout import cart_reads
from commands.checkout.effects import stream_id as order_stream
from commands.domain import cart as cart_domain
from commands.errors import DomainError
from commands.events.order import AddressData, OrderPlaced
from commands.messages.cart import AddCartLines, CartActor, CreateCart, LineRequest
from commands.messages.orders import CompleteCheckout
from commands.store.driver import asyncpg_of
from commands.store.ledger.reader import load_stream
from commands.store.unit_of_work import MessageMetadata
from tests.support.checkout import Shop

pytestmark = pytest.mark.checkout_settings

META = MessageMetadata(actor="test")
OWNER = text("SELECT customer_id FROM customer_carts WHERE cart_id = :c")
ADDRESS = AddressData(
    name="Ada", line1="1 Loop St", line2=None, city="Springfield", postal_code="12345", country_code="US"
)


# The driver's own, once per connection and type (type introspection and its JIT switch).
DRIVER_SETUP = ("typeinfo_tree", "'jit'")


@contextmanager
def round_trips(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counter[str]]:
    """Statements sent by the current task, by their first words (a simple query counts once)."""
    counted: Counter[str] = Counter()
    task = asyncio.current_task()
    extended = asyncpg.Connection._do_execute
    simple = asyncpg.Connection.execute

    async def counting_extended(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if asyncio.current_task() is task and not any(mark in str(query) for mark in DRIVER_SETUP):
            counted[" ".join(str(query).split()[:3])] += 1
        return await extended(self, query, *args, **kwargs)

    async def counting_simple(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if not args and asyncio.current_task() is task:
            counted[" ".join(str(query).split()[:3])] += 1
        return await simple(self, query, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(asyncpg.Connection, "_do_execute", counting_extended)
        patched.setattr(asyncpg.Connection, "execute", counting_simple)
        yield counted


async def test_a_cart_is_created_in_two_round_trips_and_no_transaction(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    await shop.product("RT-TEE", "12.50", on_hand=10)
    command = CreateCart(CartActor(customer_id="rt-buyer"), lines=(LineRequest("RT-TEE", 2),))
    with round_trips(monkeypatch) as counted:
        result = await shop.container.bus.dispatch(command, META)
    assert sum(counted.values()) == 2, counted
    assert not any(words.startswith(("BEGIN", "COMMIT")) for words in counted), counted
    async with shop.container.engine.connect() as conn:
        owner = await conn.scalar(
            text("SELECT customer_id FROM customer_carts WHERE cart_id = :c"), {"c": result.cart_id}
        )
        recorded = await load_stream(conn, f"cart-{result.cart_id}")
    assert owner == "rt-buyer"
    assert [(r.stream_version, r.type) for r in recorded] == [(1, "CartCreated")]
    assert recorded[0].position == result.position


async def test_an_empty_cart_needs_no_price_read(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    with round_trips(monkeypatch) as counted:
        await shop.container.bus.dispatch(CreateCart(CartActor(customer_id=None)), META)
    assert sum(counted.values()) == 1, counted


async def test_a_cart_whose_row_cannot_be_written_leaves_no_event(shop: Shop) -> None:
    """The row and the event are one statement: one fails, neither is there."""
    cart_id = f"rt-{uuid.uuid4().hex[:12]}"
    async with shop.container.engine.begin() as conn:
        await conn.execute(
            text("INSERT INTO customer_carts (cart_id, customer_id, status) VALUES (:c, 'x', 'ACTIVE')"),
            {"c": cart_id},
        )
    with pytest.raises(asyncpg.UniqueViolationError):
        await shop.container.bus.dispatch(
            CreateCart(CartActor(customer_id="rt-buyer"), cart_id=cart_id), META
        )
    async with shop.container.engine.connect() as conn:
        assert await load_stream(conn, f"cart-{cart_id}") == []
        owner = await conn.scalar(
            text("SELECT customer_id FROM customer_carts WHERE cart_id = :c"), {"c": cart_id}
        )
    assert owner == "x"


async def _checkout(shop: Shop, sku: str, monkeypatch: pytest.MonkeyPatch) -> tuple[Counter[str], int]:
    """A one-line cart checked out: the round trips of the checkout alone, and the order's number."""
    await shop.product(sku, "8.00", on_hand=10)
    cart = await shop.container.bus.dispatch(
        CreateCart(CartActor(customer_id="rt-payer"), lines=(LineRequest(sku, 1),)), META
    )
    command = CompleteCheckout(
        cart_id=cart.cart_id,
        idempotency_key=f"rt-{uuid.uuid4()}",
        email="ada@example.com",
        shipping_address=ADDRESS,
        payment_token="tok_ok",
        customer_id="rt-payer",
    )
    with round_trips(monkeypatch) as counted:
        outcome = await shop.container.bus.dispatch(command, META)
    assert outcome.errors == ()
    async with shop.container.engine.connect() as conn:
        recorded = await load_stream(conn, order_stream(outcome.order_id))
    placed = recorded[0].decode()
    assert isinstance(placed, OrderPlaced) and int(placed.number) > 0
    assert [(line.sku, line.quantity, line.unit_price) for line in placed.lines] == [
        (sku, 1, Decimal("8.00"))
    ]
    assert [r.type for r in recorded][-1] == "OrderConfirmed", [r.type for r in recorded]
    return counted, int(placed.number)


async def test_a_checkout_places_and_settles_in_seven_round_trips(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    counted, _ = await _checkout(shop, "RT-MUG", monkeypatch)
    # Placing: BEGIN with the cart's lock, the cart's stream with what the order needs, the
    # order's records with OrderPlaced and the stock, COMMIT. Settling: BEGIN with the order's
    # lock, the events with the attempt checked as recorded, the rows with the COMMIT.
    assert sum(counted.values()) == 7, counted


@pytest.mark.parametrize(
    ("guessed", "misread"),
    [("$.lines[*].sku", "$.no_such_field[*].sku"), ("data ->> 'currency_code'", "'XXX'")],
    ids=["skus", "currency"],
)
async def test_a_cart_whose_events_the_guess_misreads_is_read_again_from_its_fold(
    shop: Shop, monkeypatch: pytest.MonkeyPatch, guessed: str, misread: str
) -> None:
    """The first read guesses the cart's SKUs and currency from its events' JSON; an event shape
    the guess does not know costs one more round trip, and the order is the same, with the next
    number (the read again takes none)."""
    _, before = await _checkout(shop, "RT-CUP", monkeypatch)
    missed = cart_reads._CART_AND_READS.replace(guessed, misread)
    assert missed != cart_reads._CART_AND_READS
    monkeypatch.setattr(cart_reads, "_CART_AND_READS", missed)
    counted, number = await _checkout(shop, "RT-BOWL", monkeypatch)
    assert sum(counted.values()) == 8, counted
    assert number == before + 1


async def test_the_read_models_are_read_without_a_transaction_around_each_read(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read is its statement alone: no BEGIN before it, no ROLLBACK after (two round trips)."""
    await shop.product("RT-CAP", "5.00", on_hand=10)
    cart = await shop.container.bus.dispatch(
        CreateCart(CartActor("rt-reader"), lines=(LineRequest("RT-CAP", 1),)), META
    )
    services = shop.container.services
    assert services is not None
    with round_trips(monkeypatch) as counted:
        await shop.container.freshness.wait_for("orders", cart.position or 0, timeout=10)
        fresh = await shop.container.freshness.freshness("orders")
        missing = await services.orders.get_many(["no-such-order"])
    assert fresh.head_position >= (cart.position or 0) and missing == {}
    assert not [words for words in counted if words.startswith(("BEGIN", "ROLLBACK", "COMMIT"))], counted
    async with shop.container.engine.connect() as conn:
        assert (await conn.execute(text("SELECT 1"))).scalar_one() == 1
        driver = await asyncpg_of(conn)
        assert driver.is_in_transaction(), "the engine's own connections still begin as before"


async def test_lines_are_added_in_four_round_trips(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """BEGIN with the cart's lock, its stream with the new lines' prices, the event, the COMMIT."""
    await shop.product("RT-PEN", "1.25", on_hand=None)
    await shop.product("RT-INK", "3.10", on_hand=None)
    actor = CartActor("rt-adder")
    cart = await shop.container.bus.dispatch(CreateCart(actor, lines=(LineRequest("RT-PEN", 1),)), META)
    with round_trips(monkeypatch) as counted:
        added = await shop.container.bus.dispatch(
            AddCartLines(cart.cart_id, actor, (LineRequest("RT-INK", 2), LineRequest("RT-PEN", 1))), META
        )
    assert sum(counted.values()) == 4, counted
    assert added.version == 2
    async with shop.container.engine.connect() as conn:
        recorded = await load_stream(conn, f"cart-{cart.cart_id}")
    lines = {
        (line.sku, line.quantity, line.unit_price)
        for line in cart_domain.fold(r.decode() for r in recorded).lines
    }
    assert lines == {("RT-PEN", 2, Decimal("1.25")), ("RT-INK", 2, Decimal("3.10"))}


async def test_lines_of_an_unknown_sku_are_refused_with_the_prices_read_with_the_stream(shop: Shop) -> None:
    actor = CartActor("rt-adder")
    cart = await shop.container.bus.dispatch(CreateCart(actor), META)
    with pytest.raises(DomainError) as refused:
        await shop.container.bus.dispatch(
            AddCartLines(cart.cart_id, actor, (LineRequest("RT-NONE", 1),)), META
        )
    assert "'RT-NONE' is not for sale" in repr(refused.value) + str(refused.value), repr(refused.value)
