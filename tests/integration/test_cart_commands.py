"""Cart commands against real PostgreSQL: validation appends nothing, prices come from the
catalog tables, access rules, and customer_carts follows the stream."""

from __future__ import annotations

from decimal import Decimal

import pytest

from commands.bus import Command
from commands.errors import DomainError, ValidationErrors
from commands.handlers.cart import check_out_cart
from commands.messages.cart import (
    AddCartLines,
    AttachCartToCustomer,
    CartResult,
    CreateCart,
    LineRequest,
    QuantityChange,
    RemoveCartLines,
    UpdateCartLines,
)
from commands.store.unit_of_work import UnitOfWork
from gateway.bootstrap.container import Container
from tests.support.cart import (
    GUEST,
    META,
    SUPPORT,
    customer,
    folded,
    ledger_size,
    owner_row,
    seed_catalog,
    set_variant,
)


async def run(container: Container, command: Command[CartResult]) -> CartResult:
    return await container.bus.dispatch(command, META)


def codes(err: DomainError) -> list[tuple[str, list[str] | None]]:
    items = err.errors if isinstance(err, ValidationErrors) else [err]
    return [(e.code, e.field) for e in items]


async def test_every_validation_error_appends_nothing(container: Container) -> None:
    await seed_catalog(container, {f"S{i}": ("1.00", "USD") for i in range(101)})
    await seed_catalog(container, {"EURO-BAG": ("30.00", "EUR"), "GONE": ("2.00", "USD")})
    await set_variant(container, "GONE", status="withdrawn")
    full = await run(container, CreateCart(GUEST, lines=tuple(LineRequest(f"S{i}", 1) for i in range(100))))
    cart = (await run(container, CreateCart(GUEST, lines=(LineRequest("S0", 2),)))).cart_id
    owned = (await run(container, CreateCart(customer("cust-1")))).cart_id
    done = (await run(container, CreateCart(GUEST, lines=(LineRequest("S1", 1),)))).cart_id
    async with UnitOfWork(container.engine, META) as uow:
        await check_out_cart(uow, done, "order-1", None)
        await uow.commit()

    def add(*lines: LineRequest, cart_id: str = cart, version: int | None = None) -> AddCartLines:
        return AddCartLines(cart_id, GUEST, lines, version)

    cases: list[tuple[Command[CartResult], list[tuple[str, list[str] | None]]]] = [
        (add(LineRequest("NOPE", 1)), [("NOT_FOUND", ["lines", "0", "sku"])]),
        (add(LineRequest("GONE", 1)), [("NOT_FOUND", ["lines", "0", "sku"])]),
        (add(LineRequest("S1", 0)), [("INVALID_INPUT", ["lines", "0", "quantity"])]),
        (add(LineRequest("S0", 998)), [("INVALID_INPUT", ["lines", "0", "quantity"])]),
        (add(LineRequest("S1", 1000)), [("INVALID_INPUT", ["lines", "0", "quantity"])]),
        (add(LineRequest("EURO-BAG", 1)), [("INVALID_INPUT", ["lines", "0", "sku"])]),
        (add(LineRequest("S100", 1), cart_id=full.cart_id), [("INVALID_INPUT", ["lines", "0"])]),
        (add(LineRequest("S1", 1), version=0), [("VERSION_CONFLICT", ["expectedVersion"])]),
        (add(LineRequest("S1", 1), cart_id="x" * 22), [("NOT_FOUND", ["cartId"])]),
        (add(LineRequest("S1", 1), cart_id=done), [("CART_NOT_ACTIVE", ["cartId"])]),
        (AddCartLines(owned, GUEST, (LineRequest("S1", 1),)), [("NOT_FOUND", ["cartId"])]),
        (AddCartLines(owned, customer("cust-2"), (LineRequest("S1", 1),)), [("NOT_FOUND", ["cartId"])]),
        (
            UpdateCartLines(cart, GUEST, (QuantityChange("1", -1),)),
            [("INVALID_INPUT", ["lines", "0", "quantity"])],
        ),
        (
            UpdateCartLines(cart, GUEST, (QuantityChange("1", 1000),)),
            [("INVALID_INPUT", ["lines", "0", "quantity"])],
        ),
        (UpdateCartLines(cart, GUEST, (QuantityChange("7", 1),)), [("NOT_FOUND", ["lines", "0", "lineId"])]),
        (RemoveCartLines(cart, GUEST, ("7",)), [("NOT_FOUND", ["lineIds", "0"])]),
        (CreateCart(GUEST, lines=(LineRequest("NOPE", 1),)), [("NOT_FOUND", ["lines", "0", "sku"])]),
        (CreateCart(GUEST, "EUR", (LineRequest("S1", 1),)), [("INVALID_INPUT", ["lines", "0", "sku"])]),
    ]
    before = await ledger_size(container)
    for command, expected in cases:
        with pytest.raises(DomainError) as exc:
            await run(container, command)
        assert codes(exc.value) == expected, command
    assert await ledger_size(container) == before
    assert (await folded(container, cart)).version == 1


async def test_prices_are_captured_from_the_catalog_when_a_line_is_added_or_changed(
    container: Container,
) -> None:
    await seed_catalog(container)
    cart = (await run(container, CreateCart(GUEST, lines=(LineRequest("MUG", 1),)))).cart_id
    await set_variant(container, "MUG", price="9.25")
    await run(container, AddCartLines(cart, GUEST, (LineRequest("MUG", 1), LineRequest("CAP", 1))))
    state = await folded(container, cart)
    assert [(x.sku, x.quantity, x.unit_price) for x in state.lines] == [
        ("MUG", 2, Decimal("9.25")),
        ("CAP", 1, Decimal("12.00")),
    ]
    await set_variant(container, "CAP", price="11.00")
    result = await run(container, UpdateCartLines(cart, GUEST, (QuantityChange("2", 4),), expected_version=2))
    assert (result.version, result.position) == (3, result.read_position)
    state = await folded(container, cart)
    assert [(x.quantity, x.unit_price) for x in state.lines] == [(2, Decimal("9.25")), (4, Decimal("11.00"))]
    await run(container, UpdateCartLines(cart, GUEST, (QuantityChange("1", 0),)))
    await run(container, RemoveCartLines(cart, GUEST, ("2",)))
    state = await folded(container, cart)
    assert (state.version, state.lines) == (5, ())


async def test_access_for_guest_owner_other_customer_and_support(container: Container) -> None:
    await seed_catalog(container)
    guest_cart = (await run(container, CreateCart(GUEST))).cart_id
    owned = await run(container, CreateCart(customer("cust-1"), lines=(LineRequest("MUG", 1),)))
    assert await owner_row(container, owned.cart_id) == {
        "customer_id": "cust-1",
        "status": "ACTIVE",
        "merged_into": None,
    }
    line = (LineRequest("CAP", 1),)
    for actor in (GUEST, customer("cust-2"), SUPPORT):
        await run(container, AddCartLines(guest_cart, actor, line))
    await run(container, AddCartLines(owned.cart_id, customer("cust-1"), line))
    await run(container, AddCartLines(owned.cart_id, SUPPORT, line))
    refused: list[tuple[Command[CartResult], str]] = [
        (AddCartLines(owned.cart_id, GUEST, line), "NOT_FOUND"),
        (RemoveCartLines(owned.cart_id, GUEST, ("1",)), "NOT_FOUND"),
        (AddCartLines(owned.cart_id, customer("cust-2"), line), "NOT_FOUND"),
        (UpdateCartLines(owned.cart_id, customer("cust-2"), (QuantityChange("1", 3),)), "NOT_FOUND"),
        (AttachCartToCustomer(owned.cart_id, customer("cust-2")), "NOT_FOUND"),
        (AttachCartToCustomer(guest_cart, GUEST), "FORBIDDEN"),
    ]
    for command, code in refused:
        with pytest.raises(DomainError) as exc:
            await run(container, command)
        assert exc.value.code == code, command
    assert (await folded(container, owned.cart_id)).version == 3


async def test_attach_binds_merges_and_repeats_idempotently(container: Container) -> None:
    await seed_catalog(container)

    async def attach(cart_id: str) -> CartResult:
        return await run(container, AttachCartToCustomer(cart_id, customer("cust-1")))

    first = (await run(container, CreateCart(GUEST, lines=(LineRequest("MUG", 2),)))).cart_id
    bound = await attach(first)
    assert (bound.cart_id, bound.version) == (first, 2)
    assert await owner_row(container, first) == {
        "customer_id": "cust-1",
        "status": "ACTIVE",
        "merged_into": None,
    }
    again = await attach(first)
    assert (again.cart_id, again.position, again.read_position) == (first, None, bound.position)

    guest = (
        await run(container, CreateCart(GUEST, lines=(LineRequest("MUG", 998), LineRequest("CAP", 1))))
    ).cart_id
    size = await ledger_size(container)
    merged = await attach(guest)
    assert (merged.cart_id, merged.version) == (first, 3)
    assert await ledger_size(container) == size + 2
    survivor = await folded(container, first)
    assert [(x.sku, x.quantity) for x in survivor.lines] == [("MUG", 999), ("CAP", 1)]
    assert await owner_row(container, guest) == {
        "customer_id": "cust-1",
        "status": "MERGED",
        "merged_into": first,
    }
    repeated = await attach(guest)
    assert (repeated.cart_id, repeated.version, repeated.position) == (first, 3, None)
    assert await ledger_size(container) == size + 2
    with pytest.raises(DomainError) as exc:
        await run(container, AddCartLines(guest, customer("cust-1"), (LineRequest("MUG", 1),)))
    assert exc.value.code == "CART_NOT_ACTIVE"
    # Someone else holding the old guest link sees nothing now.
    with pytest.raises(DomainError) as exc:
        await run(container, AttachCartToCustomer(guest, customer("cust-2")))
    assert exc.value.code == "NOT_FOUND"


async def test_attach_with_a_checked_out_previous_cart_binds_instead_of_merging(container: Container) -> None:
    await seed_catalog(container)
    old = await run(container, CreateCart(customer("cust-1"), lines=(LineRequest("MUG", 1),)))
    async with UnitOfWork(container.engine, META) as uow:
        await check_out_cart(uow, old.cart_id, "order-1", 1)
        await uow.commit()
    assert (await owner_row(container, old.cart_id) or {})["status"] == "CHECKED_OUT"
    guest = (await run(container, CreateCart(GUEST, lines=(LineRequest("CAP", 1),)))).cart_id
    result = await run(container, AttachCartToCustomer(guest, customer("cust-1")))
    assert (result.cart_id, result.version) == (guest, 2)
