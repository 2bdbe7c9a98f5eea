"""Cart command handlers: load the stream, decide, append one event per cart touched.

Cart writes touch only PostgreSQL, so carts stay writable when the read store
is down. Writers of one cart are serialized by a transaction-scoped advisory
lock (no retry storms when two devices edit at once); the append still checks
the stream version, so a writer that skips the lock cannot slip in unnoticed.
Lock order: the customer's lock first, then cart locks sorted by id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from commands.bus import CommandBus
from commands.domain import cart as domain
from commands.domain import money
from commands.domain.cart import Cart, CatalogPrice
from commands.errors import Forbidden, VersionConflict
from commands.events.base import Event
from commands.events.cart import CartCheckedOut
from commands.messages.cart import (
    AddCartLines,
    ApplyCartDiscountCode,
    AttachCartToCustomer,
    CartResult,
    CreateCart,
    RemoveCartDiscountCode,
    RemoveCartLines,
    SetCartShipping,
    UpdateCartLines,
)
from commands.money import config as money_config
from commands.store.driver import asyncpg_of
from commands.store.ledger import writer
from commands.store.ledger.reader import RECORDED_COLUMNS, RecordedEvent, recorded_event, stream_version
from commands.store.ledger.writer import StreamConflict
from commands.store.tables import customer_carts
from commands.store.unit_of_work import UnitOfWork

STREAM_TYPE = "cart"
# Applying a code checks its validity, not its minimum: the lines may still change until checkout.
MAX_SUBTOTAL = Decimal("1e18")


def stream_id(cart_id: str) -> str:
    return f"cart-{cart_id}"


def register(bus: CommandBus) -> None:
    bus.register(CreateCart, create_cart, one_statement=True)
    # Their first statement is the cart's lock (``_edit``, ``_decide``). Not a takeover's: it
    # locks the customer's carts first.
    bus.register(AddCartLines, add_lines, first_lock=first_lock)
    bus.register(UpdateCartLines, update_lines, first_lock=first_lock)
    bus.register(RemoveCartLines, remove_lines, first_lock=first_lock)
    bus.register(AttachCartToCustomer, attach_customer)
    bus.register(SetCartShipping, set_shipping, first_lock=first_lock)
    bus.register(ApplyCartDiscountCode, apply_discount_code, first_lock=first_lock)
    bus.register(RemoveCartDiscountCode, remove_discount_code, first_lock=first_lock)


async def create_cart(command: CreateCart, uow: UnitOfWork) -> CartResult:
    # Two round trips and no transaction (``one_statement``): the prices, then the cart's row in
    # customer_carts with its first event, in one statement that commits both or neither.
    domain.ensure_may_create(command.actor)
    prices = await load_prices(uow.conn, [line.sku for line in command.lines])
    customer_id = command.actor.customer_id
    event = domain.create(command.cart_id, customer_id, command.currency_code, command.lines, prices)
    registered = (command.cart_id, customer_id, domain.ACTIVE)  # _REGISTER's parameters
    appending = writer.appending_at_versions(
        [(STREAM_TYPE, stream_id(command.cart_id), 1, event)],
        metadata=uow.metadata.as_dict(),
        first_parameter=len(registered) + 1,
    )
    # A cart id taken already (never: they are random) fails on customer_carts' key.
    rows = await (await asyncpg_of(uow.conn)).fetch(
        f"WITH {_REGISTER}, {appending.ctes} SELECT * FROM {writer.APPENDED}", *registered, *appending.args
    )
    uow.appended_by_statement(appending.recorded(rows))
    return CartResult(command.cart_id, 1, uow.last_position, uow.last_position)


async def add_lines(command: AddCartLines, uow: UnitOfWork) -> CartResult:
    return await _edit(
        uow,
        command.cart_id,
        command.actor,
        command.expected_version,
        [line.sku for line in command.lines],
        lambda cart, prices: domain.add_lines(cart, command.lines, prices),
    )


async def update_lines(command: UpdateCartLines, uow: UnitOfWork) -> CartResult:
    def skus(cart: Cart) -> list[str]:
        return [line.sku for change in command.lines if (line := cart.line(change.line_id)) is not None]

    return await _edit(
        uow,
        command.cart_id,
        command.actor,
        command.expected_version,
        skus,
        lambda cart, prices: domain.change_quantities(cart, command.lines, prices),
    )


async def remove_lines(command: RemoveCartLines, uow: UnitOfWork) -> CartResult:
    return await _edit(
        uow,
        command.cart_id,
        command.actor,
        command.expected_version,
        lambda cart: [],
        lambda cart, prices: domain.remove_lines(cart, command.line_ids),
    )


async def set_shipping(command: SetCartShipping, uow: UnitOfWork) -> CartResult:
    async def decide(cart: Cart) -> Event:
        event = domain.choose_shipping(cart, command.country_code, command.region, command.method_code)
        if command.method_code is not None:
            money.choose_named_shipping(
                await money_config.load_methods(uow.conn),
                command.method_code,
                cart.currency_code,
                money.Destination(command.country_code, command.region),
                sum((line.unit_price * line.quantity for line in cart.lines), Decimal(0)),
                ["methodCode"],
            )
        return event

    return await _decide(uow, command.cart_id, command.actor, command.expected_version, decide)


async def apply_discount_code(command: ApplyCartDiscountCode, uow: UnitOfWork) -> CartResult:
    async def decide(cart: Cart) -> Event:
        event = domain.apply_discount_code(cart, command.code)
        discount = await money_config.load_discount(uow.conn, command.code)
        if discount is None:
            raise money.DiscountCodeInvalid(f"there is no code {command.code}", ["code"])
        # The minimum subtotal is checked at checkout: lines may still change.
        money.check_discount(discount, cart.currency_code, MAX_SUBTOTAL, datetime.now(UTC), ["code"])
        return event

    return await _decide(uow, command.cart_id, command.actor, command.expected_version, decide)


async def remove_discount_code(command: RemoveCartDiscountCode, uow: UnitOfWork) -> CartResult:
    async def decide(cart: Cart) -> Event:
        return domain.remove_discount_code(cart)

    return await _decide(uow, command.cart_id, command.actor, command.expected_version, decide)


async def _decide(
    uow: UnitOfWork,
    cart_id: str,
    actor: domain.CartActor,
    expected_version: int | None,
    decide: Callable[[Cart], Awaitable[Event]],
) -> CartResult:
    await lock_cart(uow, cart_id)
    cart, _ = await load_cart(uow, cart_id)
    domain.ensure_access(cart, actor)
    # Closed first: no version would do for a cart checked out or merged.
    domain.ensure_active(cart)
    domain.check_version(cart, expected_version)
    event = await decide(cart)
    await _append(uow, cart, [event], expected_version)
    # Written with the COMMIT: nothing after it reads the row, and only the cart's lock holder
    # writes it (commands.store.writes_at_commit).
    uow.write_at_commit(_TOUCH, cart_id, None, None, None)
    return CartResult(cart_id, cart.version + 1, uow.last_position, uow.last_position)


async def attach_customer(command: AttachCartToCustomer, uow: UnitOfWork) -> CartResult:
    customer_id = command.actor.customer_id
    if customer_id is None:
        raise Forbidden("only a signed-in customer can take over a cart", ["cartId"])
    await uow.lock(f"customer-carts:{customer_id}")
    survivor_id = await _active_cart_of(uow.conn, customer_id, excluding=command.cart_id)
    for cart_id in sorted({command.cart_id, survivor_id or command.cart_id}):
        await lock_cart(uow, cart_id)
    guest, _ = await load_cart(uow, command.cart_id)
    domain.ensure_access(guest, command.actor)
    survivor = None if survivor_id is None else (await load_cart(uow, survivor_id))[0]
    prices = await load_prices(uow.conn, [line.sku for line in guest.lines]) if survivor else {}
    plan = domain.attach(guest, customer_id, survivor, prices)
    if plan.guest_events:
        await _append(uow, guest, plan.guest_events, None)
        merged_into = plan.survivor_id if plan.survivor_id != guest.cart_id else None
        await _touch(
            uow.conn,
            guest.cart_id,
            customer_id=customer_id,
            status=domain.MERGED if merged_into else domain.ACTIVE,
            merged_into=merged_into,
        )
    if plan.survivor_events and survivor is not None:
        await _append(uow, survivor, plan.survivor_events, None)
        await _touch(uow.conn, survivor.cart_id)
    version = await stream_version(uow.conn, stream_id(plan.survivor_id))
    read_position = uow.last_position or await _last_position(uow.conn, plan.survivor_id)
    return CartResult(plan.survivor_id, version, uow.last_position, read_position)


async def check_out_cart(uow: UnitOfWork, cart_id: str, order_id: str, expected_version: int | None) -> Cart:
    """Mark the cart CHECKED_OUT in the caller's unit of work."""
    append, cart = await checked_out(uow, cart_id, order_id, expected_version)
    await uow.append_at_versions([append])
    return cart


async def checked_out(
    uow: UnitOfWork,
    cart_id: str,
    order_id: str,
    expected_version: int | None = None,
    *,
    known: Cart | None = None,
) -> tuple[tuple[str, str, int, Event], Cart]:
    """For the settlement: the cart locked and its CartCheckedOut decided, for the caller to
    append at the version given with its own events (one statement, ``append_at_versions``),
    and the cart as it will be. Every writer of a cart stream holds the cart's lock, taken here,
    so that version stays free until the commit. The cart's row is written with the COMMIT.
    ``known``: the cart as the caller read it, not loaded again: if it changed since, the
    version is taken and the append raises ``StreamConflict``."""
    await lock_cart(uow, cart_id)
    cart = known if known is not None else (await load_cart(uow, cart_id))[0]
    domain.check_version(cart, expected_version)
    event: CartCheckedOut = domain.check_out(cart, order_id)
    uow.write_at_commit(_TOUCH, cart_id, domain.CHECKED_OUT, None, None)
    return (STREAM_TYPE, stream_id(cart_id), cart.version + 1, event), domain.evolve(cart, event)


# ---------------------------------------------------------------- helpers


async def _edit(
    uow: UnitOfWork,
    cart_id: str,
    actor: domain.CartActor,
    expected_version: int | None,
    skus: Callable[[Cart], Sequence[str]] | Sequence[str],
    decide: Callable[[Cart, dict[str, CatalogPrice]], Event | None],
) -> CartResult:
    """``skus``: those whose prices ``decide`` needs, from the cart, or known without it (then
    read with the cart's stream, one round trip fewer). ``decide`` returns None when nothing
    would change (only with ``skus`` from the cart): nothing is appended."""
    await lock_cart(uow, cart_id)
    prices: dict[str, CatalogPrice] | None = None
    recorded: list[RecordedEvent] = []
    if callable(skus):
        cart, recorded = await load_cart(uow, cart_id)
    else:
        cart, prices = await _load_cart_and_prices(uow, cart_id, skus)
    domain.ensure_access(cart, actor)
    # Closed first: no version would do for a cart checked out or merged.
    domain.ensure_active(cart)
    domain.check_version(cart, expected_version)
    if prices is None:
        assert callable(skus)
        prices = await load_prices(uow.conn, skus(cart))
    event = decide(cart, prices)
    if event is None:  # the cart stays as it is: a read of it waits for its last event
        assert callable(skus), "only a decision on the cart as loaded (its events in hand) may be None"
        return CartResult(cart_id, cart.version, None, recorded[-1].position if recorded else None)
    await _append(uow, cart, [event], expected_version)
    # Written with the COMMIT: nothing after it reads the row, and only the cart's lock holder
    # writes it (commands.store.writes_at_commit).
    uow.write_at_commit(_TOUCH, cart_id, None, None, None)
    return CartResult(cart_id, cart.version + 1, uow.last_position, uow.last_position)


async def load_cart(uow: UnitOfWork, cart_id: str) -> tuple[Cart, list[RecordedEvent]]:
    recorded = await uow.load_stream(stream_id(cart_id))
    return domain.fold(r.decode() for r in recorded), recorded


async def _load_cart_and_prices(
    uow: UnitOfWork, cart_id: str, skus: Iterable[str]
) -> tuple[Cart, dict[str, CatalogPrice]]:
    """``load_cart`` and ``load_prices`` in one statement: a row per event (the event's columns
    first, then the prices on each), or one row of NULL columns for an empty stream."""
    rows = await (await asyncpg_of(uow.conn)).fetch(_STREAM_AND_PRICES, stream_id(cart_id), sorted(set(skus)))
    recorded = [recorded_event(row) for row in rows if row["position"] is not None]
    prices = _prices(dict(zip(_PRICE_COLUMNS, record, strict=True)) for record in rows[0]["prices"])
    return domain.fold(r.decode() for r in recorded), prices


_PRICE_COLUMNS = ("sku", "price", "currency", "status")
_PRICES = f"SELECT {', '.join(_PRICE_COLUMNS)} FROM catalog_variants WHERE sku = ANY($1::text[])"
_STREAM_AND_PRICES = (
    f"SELECT e.*, p.prices FROM (SELECT ARRAY(SELECT ROW({', '.join(_PRICE_COLUMNS)}) FROM catalog_variants "
    "WHERE sku = ANY($2::text[])) AS prices) AS p "
    f"LEFT JOIN LATERAL (SELECT {RECORDED_COLUMNS} FROM ledger_events WHERE stream_id = $1) AS e ON true "
    "ORDER BY e.stream_version"
)
_REGISTER_ARGS = ("cart_id", "customer_id", "status")
_REGISTER = f"registered AS (INSERT INTO customer_carts ({', '.join(_REGISTER_ARGS)}) VALUES ($1, $2, $3))"


async def load_prices(conn: AsyncConnection, skus: Iterable[str]) -> dict[str, CatalogPrice]:
    wanted = sorted(set(skus))
    if not wanted:
        return {}
    return _prices(await (await asyncpg_of(conn)).fetch(_PRICES, wanted))


def _prices(rows: Iterable[Any]) -> dict[str, CatalogPrice]:
    return {
        row["sku"]: CatalogPrice(row["sku"], row["price"], row["currency"].strip(), row["status"] == "active")
        for row in rows
    }


async def _append(
    uow: UnitOfWork, cart: Cart, events: Sequence[Event], expected_version: int | None
) -> list[RecordedEvent]:
    try:
        return await uow.append(STREAM_TYPE, stream_id(cart.cart_id), events, expected_version=cart.version)
    except StreamConflict:
        raise
    except VersionConflict as exc:
        # The stream moved after this handler read it: decide again on fresh state,
        # unless the caller pinned a version.
        if expected_version is None:
            raise StreamConflict(str(exc)) from exc
        raise


def cart_lock(cart_id: str) -> str:
    """The key of the lock every command on a cart holds until its transaction ends."""
    return stream_id(cart_id)


async def lock_cart(uow: UnitOfWork, cart_id: str) -> None:
    await uow.lock(cart_lock(cart_id))


def first_lock(command: Any) -> str:
    """The lock a command on one cart (``cart_id``) takes first: taken with its BEGIN."""
    return cart_lock(command.cart_id)


async def _touch(
    conn: AsyncConnection,
    cart_id: str,
    *,
    status: str | None = None,
    customer_id: str | None = None,
    merged_into: str | None = None,
) -> None:
    """Bump the cart's row; a None change keeps the column as it is."""
    await (await asyncpg_of(conn)).execute(_TOUCH, cart_id, status, customer_id, merged_into)


_TOUCH = (
    "UPDATE customer_carts SET updated_at = now(), status = coalesce($2, status), "
    "customer_id = coalesce($3, customer_id), merged_into = coalesce($4, merged_into) "
    "WHERE cart_id = $1"
)


async def _active_cart_of(conn: AsyncConnection, customer_id: str, *, excluding: str) -> str | None:
    c = customer_carts.c
    result = await conn.execute(
        select(c.cart_id)
        .where(c.customer_id == customer_id, c.status == domain.ACTIVE, c.cart_id != excluding)
        .order_by(c.updated_at.desc(), c.created_at.desc())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def _last_position(conn: AsyncConnection, cart_id: str) -> int | None:
    result = await conn.execute(
        text("SELECT max(position) FROM ledger_events WHERE stream_id = :s"), {"s": stream_id(cart_id)}
    )
    position = result.scalar_one_or_none()
    return None if position is None else int(position)
