"""Order events and what they do to the tables the commands own, in the caller's transaction.

Every writer of an order (checkout, order commands, webhooks, reconciliation)
takes the order's advisory lock first, then (when confirming) the cart's, then
inventory rows: one lock order everywhere, so writers wait instead of deadlocking.
"""

from __future__ import annotations

import functools
import logging
import uuid
from collections.abc import Awaitable, Callable, Sequence

from commands.checkout import payment_attempts as payment_ops
from commands.checkout.payment_attempts import Attempt
from commands.domain import order as domain
from commands.domain.cart import Cart
from commands.domain.order import Order, PaymentStatus, stream_id
from commands.errors import DomainError
from commands.events import order as ev
from commands.events.base import Event
from commands.handlers import cart as cart_handlers
from commands.inventory import reservations
from commands.money import discount_uses
from commands.store.driver import asyncpg_of
from commands.store.ledger.writer import ReadAlong
from commands.store.unit_of_work import UnitOfWork

log = logging.getLogger(__name__)

STREAM_TYPE = "order"


def order_lock(order_id: str) -> str:
    """The key of the lock every writer of an order holds (``lock_order``)."""
    return stream_id(order_id)


async def lock_order(uow: UnitOfWork, order_id: str) -> None:
    await uow.lock(order_lock(order_id))


async def load_order(uow: UnitOfWork, order_id: str) -> Order | None:
    recorded = await uow.load_stream(stream_id(order_id))
    events = [r.decode() for r in recorded]
    return domain.fold(e for e in events if isinstance(e, ev.OrderEvent))


async def head_of(uow: UnitOfWork, order_id: str) -> int | None:
    """Ledger position of the order's latest event: what a read of the order must wait for."""
    position = await (await asyncpg_of(uow.conn)).fetchval(
        "SELECT max(position) FROM ledger_events WHERE stream_id = $1", stream_id(order_id)
    )
    return None if position is None else int(position)


async def apply(
    uow: UnitOfWork,
    order: Order,
    events: Sequence[ev.OrderEvent],
    *,
    cart: Cart | None = None,
    along: ReadAlong | None = None,
) -> Order:
    """Append ``events`` and carry out their effects on stock and the cart. ``cart``: the order's
    cart as the caller knows it, if it does (not loaded again; appended after its version).
    ``along``: a read checked in the append's statement (``writer.ReadAlong``)."""
    if not events and along is None:
        return order
    state = order
    # The stock and discount-code rows last (in that order, as in the checkout's first phase):
    # a hot row stays locked from its UPDATE to the COMMIT, so the rest goes before it.
    row_effects: list[Callable[[], Awaitable[object]]] = []
    appends: list[tuple[str, str, int, Event]] = []
    order_id = order.order_id
    for event in events:
        if isinstance(event, ev.OrderConfirmed):
            appends.extend(await _close_cart(uow, order, cart))
            await _free_cart(uow, order)
            # An order without a code holds no use of one: nothing to look for.
            codes = [] if order.discount_code is None else await discount_uses.mark_committed(uow, order_id)
            row_effects.append(functools.partial(reservations.commit, uow, order_id))
            if codes:
                row_effects.append(functools.partial(discount_uses.record_committed, uow, order_id, codes))
        elif isinstance(event, ev.OrderCancelled):
            await _free_cart(uow, order)
            row_effects.append(functools.partial(reservations.release, uow, order_id, reason=event.reason))
            if state.payment_status is not PaymentStatus.CAPTURED and order.discount_code is not None:
                # Declined or cancelled before capture: the discount code's use goes back.
                row_effects.append(
                    functools.partial(discount_uses.release, uow, order_id, reason=event.reason)
                )
        elif isinstance(event, ev.OrderShipped):
            row_effects.append(functools.partial(reservations.consume, uow, order_id))
        state = domain.apply(state, event)
    # The order's events (and its cart's, when it closes) in one statement, at the versions that
    # follow what was loaded: every writer of an order holds its lock, as the caller does.
    order_stream = stream_id(order_id)
    appends.extend((STREAM_TYPE, order_stream, order.version + n, e) for n, e in enumerate(events, 1))
    await uow.append_at_versions(appends, along=along)
    for effect in row_effects:
        await effect()
    return domain.evolve(order, events)


async def compensation(uow: UnitOfWork, order: Order) -> Attempt | None:
    """The void or refund a cancelled order still holding money needs, recorded before it is sent."""
    operation = domain.compensation_due(order)
    if operation is None:
        return None
    return await payment_ops.ensure(
        uow.conn,
        order_id=order.order_id,
        operation=operation,
        amount=order.total,
        currency=order.currency,
        provider_reference=order.provider_reference,
        context={"reason": "order cancelled"},
    )


async def _free_cart(uow: UnitOfWork, order: Order) -> None:
    """The order no longer awaits payment: its cart may be checked out again (if still ACTIVE).
    Nothing after it in the settlement reads the claim: written with the COMMIT."""
    uow.write_at_commit("DELETE FROM checkout_carts WHERE order_id = $1", uuid.UUID(order.order_id))


async def _close_cart(uow: UnitOfWork, order: Order, cart: Cart | None) -> list[tuple[str, str, int, Event]]:
    """The paid-for cart's CartCheckedOut, to append with the order's events; none for a cart
    that moved on meanwhile (merged)."""
    try:
        # Refusals (the cart merged or closed meanwhile) are decided in Python before anything is
        # written, so the settlement's transaction is intact.
        known = cart if cart is not None and cart.cart_id == order.cart_id else None
        append, _ = await cart_handlers.checked_out(uow, order.cart_id, order.order_id, known=known)
        return [append]
    except DomainError as exc:
        log.info("cart not closed by its order", extra={"cart_id": order.cart_id, "reason": str(exc)})
        return []
