"""Checkout: a saga of three steps in two transactions, resumable from its recovery point.

1. ``_place`` (the first transaction): revalidate the cart, reprice from the
   catalog tables, reserve every line, append ``OrderPlaced`` (PAYMENT_PENDING),
   record the authorization attempt (its own provider key ``authorize:<order id>``)
   and, in the same statement, the idempotency key at the recovery point
   ``order_placed`` (``Phases.claiming``): in the phase's transaction, so a refusal
   in the phase (out of stock) leaves no key behind (see ``commands.idempotent``).
2. Ask the provider to authorize, outside any transaction, with a timeout.
3. Settle the answer (``commands.checkout.settle``, the second transaction, which
   also stores this request's outcome under its key): authorized -> confirmed,
   stock committed, cart CHECKED_OUT; declined -> stock released, order
   cancelled; no answer -> PAYMENT_PENDING with the stock held until the webhook
   or reconciliation settles it.

A retry after a crash between phases finds ``order_placed`` and goes straight
to phase 2 with the same attempt: the provider's idempotency by key means one
charge, and the same order.

The cart stays ACTIVE until the payment is authorized, so a buyer whose card
is declined retries the same cart with another card (and a new key). While an
order for the cart awaits payment, ``checkout_carts`` refuses a second order
for it (CART_NOT_ACTIVE); a decline or cancellation frees the cart again.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import timedelta
from typing import Any

from commands.bus import CommandBus, KeyPolicy
from commands.checkout import cart_reads, decline_messages
from commands.checkout import effects as effects
from commands.checkout import money as checkout_money
from commands.checkout import payment_attempts as payment_ops
from commands.checkout.payment_attempts import Attempt
from commands.checkout.settle import Known, PaymentSettlement, Settled
from commands.checkout.validation import validate
from commands.domain import cart as cart_domain
from commands.domain import order as order_domain
from commands.domain.order import OrderStatus, PaymentStatus
from commands.domain.order import stream_id as order_stream_id
from commands.domain.pricing import price_cart
from commands.errors import DomainError, VersionConflict
from commands.events.order import OrderEvent, OrderPlaced
from commands.handlers import cart as cart_handlers
from commands.inventory import reservations, stock_rows, stock_taking
from commands.inventory.reservations import OutOfStock, ReservationLine
from commands.inventory.row_gate import StockRowGate
from commands.messages.orders import CompleteCheckout, ErrorInfo, OrderOutcome
from commands.metrics import CHECKOUT_OUTCOMES, RESERVATION_CONFLICTS
from commands.money import discount_uses
from commands.store.driver import asyncpg_of
from commands.store.idempotency import STARTED
from commands.store.ledger import writer
from commands.store.phases import Phases
from commands.store.unit_of_work import UnitOfWork

PLACED = "order_placed"


class CheckoutSaga:
    """The ``CompleteCheckout`` handler (phased: see ``commands.bus``)."""

    def __init__(
        self, settlement: PaymentSettlement, *, reservation_lease: timedelta, row_gate: StockRowGate
    ) -> None:
        self.settlement = settlement
        self._lease = reservation_lease
        self._row_gate = row_gate

    def register(self, bus: CommandBus, *, payment_timeout_seconds: float) -> None:
        keys = KeyPolicy(
            replay=OrderOutcome.from_json,
            # Long enough for phases 1 to 3 with a provider timeout; a crashed worker's key resumes after it.
            lease=timedelta(seconds=2 * payment_timeout_seconds + 30),
            wait_seconds=payment_timeout_seconds + 5,
            # The first phase calls no provider before its claim: a repeat is found there.
            optimistic=True,
            # Counted where the caller gets it: a repeat refused in its phase replays instead.
            on_refused=_count_refusal,
        )
        # The first phase locks the cart before anything else (``_place``): with its BEGIN.
        bus.register_phased(
            CompleteCheckout, self.handle, keys=keys, validate=validate, first_lock=cart_handlers.first_lock
        )

    async def handle(self, command: CompleteCheckout, phases: Phases) -> OrderOutcome:
        recorded = known = None
        if phases.claim.recovery_point == STARTED:
            recorded, known = await self._place(command, phases)
        progress = phases.claim.progress
        order_id = str(progress["order_id"])

        async def finish(uow: UnitOfWork, settled: Settled) -> None:
            # The outcome is stored with the settlement: one transaction, and a retry replays it.
            await phases.finish(uow, _outcome(order_id, settled))

        settled = await self.settlement.send(
            str(progress["attempt_key"]),
            phases.metadata,
            token=command.payment_token,
            recorded=recorded,
            finish=finish,
            known=known,
        )
        outcome = _outcome(order_id, settled)
        CHECKOUT_OUTCOMES.labels(outcome.errors[0].code.lower() if outcome.errors else "placed").inc()
        return outcome

    async def _place(self, command: CompleteCheckout, phases: Phases) -> tuple[Attempt, Known]:
        """Phase 1; returns the authorization attempt it recorded, and its order and cart as it
        left them (the settlement starts from them)."""
        # The stock rows' gate is left after the unit of work ends (committed or rolled back):
        # the next checkout is let at a row only once this one no longer holds or waits for it.
        async with contextlib.AsyncExitStack() as gated, phases.unit_of_work() as uow:
            conn = await asyncpg_of(uow.conn)
            # The cart commands' lock (taken with the BEGIN): no line changes between this read
            # and the order.
            await cart_handlers.lock_cart(uow, command.cart_id)
            cart, reads = await cart_reads.load(
                conn, command.cart_id, command.shipping_address.country_code, self._lease
            )
            cart_domain.ensure_access(cart, cart_domain.CartActor(command.customer_id, command.staff))
            cart_domain.ensure_active(cart)
            expected = command.expected_cart_version
            if expected is not None and expected != cart.version:
                raise VersionConflict(
                    f"the cart is at version {cart.version}, not {expected}; review it and retry",
                    ["expectedCartVersion"],
                )
            variants, config = reads.variants, reads.config
            if reads.awaiting_payment:
                raise cart_domain.CartNotActive("an order for this cart is awaiting payment", ["cartId"])
            priced = price_cart(cart, variants)
            charge = await checkout_money.price(
                uow,
                priced,
                command.shipping_address,
                tax_categories={sku: variant.tax_category for sku, variant in variants.items()},
                shipping_method=command.shipping_method,
                cart_shipping_method=cart.shipping_method,
                discount_code=command.discount_code or cart.discount_code,
                expected_total=command.expected_total,
                config=config,
            )
            order_id = str(uuid.uuid4())
            # Everything that needs no hot row first: the stock row (and a limited code's row)
            # stays locked from its UPDATE to the COMMIT, so as little as possible follows it.
            # The cart's claim, the authorization's record, the idempotency key's claim (at
            # PLACED: the transaction commits them all or nothing) and ``OrderPlaced``: one
            # statement.
            attempt_key = f"authorize:{order_id}"
            recording, recorded_args = payment_ops.recording(
                order_id=order_id,
                operation=payment_ops.AUTHORIZE,
                key=attempt_key,
                amount=charge.totals.total,
                currency=priced.currency,
            )
            pending = reservations.prepare_new(
                order_id,
                [ReservationLine(line.sku, line.quantity) for line in priced.lines],
                lease_end=reads.lease_end,
                tracked=reads.tracked,
                tracked_free=reads.tracked_free,
            )
            if seen_short := reservations.short_when_read(pending):
                RESERVATION_CONFLICTS.inc(len(seen_short))
                raise OutOfStock(list(seen_short), ["cartId"], seen_short)
            placed = OrderPlaced(
                order_id=order_id,
                number=str(reads.number),
                customer_id=command.customer_id or cart.customer_id,
                cart_id=cart.cart_id,
                email=command.email,
                currency=priced.currency,
                lines=priced.lines,
                subtotal=priced.subtotal,
                total=charge.totals.total,
                shipping_address=command.shipping_address,
                payment_attempt_id=str(recorded_args[0]),  # the record's id, its first parameter
                reservation_expires_at=pending.expires_at,
                totals=charge.recorded,
            )
            # Each piece's parameters are numbered after those gathered before it.
            args: list[Any] = [*recorded_args, cart.cart_id, uuid.UUID(order_id)]
            cart_param = len(recorded_args) + 1
            # A new order's stream: its first version, or a unique violation (StreamConflict).
            appending = writer.appending_at_versions(
                [(effects.STREAM_TYPE, order_stream_id(order_id), 1, placed)],
                metadata=uow.metadata.as_dict(),
                first_parameter=len(args) + 1,
            )
            args += appending.args
            progress = {"order_id": order_id, "attempt_key": attempt_key}
            key_claim = phases.claiming(PLACED, progress, first_parameter=len(args) + 1)
            key_cte, key_claimed = "", "NULL"
            stock_cte = stock_columns = stock_join = ""
            reserving = None
            if key_claim is not None:
                key_cte, key_claimed = f", key AS ({key_claim[0]})", "EXISTS (SELECT FROM key)"
                args += key_claim[1]
                # The stock too when one row holds it (the usual order, and every flash sale's):
                # its UPDATE is then followed by the COMMIT alone, as in a statement of its own.
                reserving = reservations.reserving_new(uow, pending, first_parameter=len(args) + 1)
            if reserving is not None:
                stock_cte = f", {reserving.ctes}"
                stock_columns = f", {stock_taking.RESERVED_COLUMNS}"
                stock_join = f" LEFT JOIN ({stock_taking.RESERVED_FROM}) ON true"
                args += reserving.args
            if pending.lines:  # just before the first stock row is locked
                rows = {sku: pending.buckets.get(sku, 1) for sku, _ in pending.lines}
                await gated.enter_async_context(self._row_gate.admitted(rows))
            # The event's columns first (``Appending.recorded`` reads them by position), the
            # stock's last (``ReservingInOneRow.reserved`` reads them from the end).
            async with writer.conflicts_raised(f"order {order_id} was placed twice"):
                row = await conn.fetchrow(
                    f"WITH attempt AS ({recording}), claimed AS (INSERT INTO checkout_carts "
                    f"(cart_id, order_id) VALUES (${cart_param}, ${cart_param + 1})), "
                    f"{appending.ctes}{key_cte}{stock_cte} "
                    f"SELECT {writer.APPENDED}.*, {key_claimed} AS key_claimed, attempt.*{stock_columns} "
                    f"FROM attempt, {writer.APPENDED}{stock_join}",
                    *args,
                )
            if key_claim is not None:
                phases.claimed(PLACED, progress, inserted=row["key_claimed"])
            attempt = payment_ops.attempt_of(row)
            written = appending.recorded([row])
            uow.appended_by_statement(written)
            if key_claim is None:  # a key claimed before this phase: its progress recorded now
                await phases.reached(uow, PLACED, progress)
            # The hot rows last: a refusal rolls all of the above back, and from the stock UPDATE
            # to the COMMIT only the reservation rows and their events follow.
            try:
                if reserving is not None:
                    await reservations.taken_with(uow, pending, reserving, row)
                else:
                    await reservations.take(uow, pending)
            except OutOfStock as short:
                # Named on the cart: its lines are what the buyer changes (as when stock runs
                # out before the payment is confirmed), with what is left of each to ask for.
                available = await stock_rows.available_of(uow.conn, short.skus)
                raise OutOfStock(short.skus, ["cartId"], available) from None
            if charge.discount is not None:
                # After the stock: buyers refused for stock never wait on the code's row.
                customer_key = command.customer_id or cart.customer_id or f"email:{command.email.lower()}"
                await discount_uses.reserve(
                    uow, charge.discount.code, order_id, customer_key[:200], checkout_money.DISCOUNT_FIELD
                )
            await uow.commit()
        # As a load of the stream would fold it: from what the ledger returned, not from ``placed``.
        order = order_domain.fold(e for r in written if isinstance(e := r.decode(), OrderEvent))
        assert order is not None
        return attempt, Known(order, cart)


def _count_refusal(refused: DomainError) -> None:
    CHECKOUT_OUTCOMES.labels(refused.code.lower()).inc()


def _outcome(order_id: str, settled: Settled) -> OrderOutcome:
    order = settled.order
    errors: tuple[ErrorInfo, ...] = ()
    # A cancellation by someone (the buyer, meanwhile) is no error of this request; the order says it.
    if order is not None and order.status is OrderStatus.CANCELLED:
        if order.payment_status is PaymentStatus.DECLINED:
            reason = settled.outcome.reason if settled.outcome is not None else None
            # Our own words only: the provider's reason may carry its raw error body.
            errors = (
                ErrorInfo("PAYMENT_DECLINED", decline_messages.buyer_message(reason), ("payment", "token")),
            )
        elif order.cancelled_by == "system":
            errors = (
                ErrorInfo("OUT_OF_STOCK", "stock ran out before the payment was confirmed", ("cartId",)),
            )
    return OrderOutcome(order_id, settled.position, errors)
