"""Order commands after checkout: cancel, request fulfillment, ship, deliver, refund.

Each runs once per idempotency key (scope: caller + operation). Transitions are
checked by the pure state machine first; a refused one appends nothing. Money
moves through recorded payment attempts settled by ``checkout_settle``, so a
provider that answers late (or never) leaves a state that a retry, a webhook or
reconciliation completes:

- cancel is decided first (stock released, order CANCELLED), then the money
  goes back (void if authorized, refund if captured);
- fulfillment and refund move the money first, then record the transition.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from commands.checkout import effects as effects
from commands.checkout import payment_attempts as payment_ops
from commands.checkout.keys import run_once
from commands.checkout.payment_attempts import FAILED, Attempt
from commands.checkout.settle import PaymentSettlement, Settled
from commands.domain import order as domain
from commands.domain.order import Order, PaymentStatus
from commands.errors import InvalidInput, NotFound
from commands.events import order as ev
from commands.messages.orders import (
    CancelOrder,
    ErrorInfo,
    MarkOrderDelivered,
    MarkOrderShipped,
    OrderActor,
    OrderOutcome,
    RefundOrder,
    RequestFulfillment,
)
from commands.store.idempotency import Claim
from commands.store.unit_of_work import MessageMetadata, UnitOfWork

MAX_TEXT = 500
_Decide = Callable[[Order], list[ev.OrderEvent]]


class OrderCommands:
    def __init__(
        self, engine: AsyncEngine, settlement: PaymentSettlement, *, payment_timeout_seconds: float
    ) -> None:
        self.engine = engine
        self.settlement = settlement
        self._lease = timedelta(seconds=2 * payment_timeout_seconds + 30)
        self._wait_seconds = payment_timeout_seconds + 5

    async def cancel(self, command: CancelOrder, metadata: MessageMetadata) -> OrderOutcome:
        reason = _text(command.reason, "reason") or "cancelled on request"
        by_customer = not command.actor.admin

        def decide(order: Order) -> list[ev.OrderEvent]:
            return [domain.cancel(order, reason, command.actor.actor, by_customer=by_customer)]

        return await self._run(
            "cancel",
            command.order_id,
            command.actor,
            command.idempotency_key,
            {"reason": reason},
            lambda: self._transition(command, decide, metadata),
        )

    async def request_fulfillment(
        self, command: RequestFulfillment, metadata: MessageMetadata
    ) -> OrderOutcome:
        def money(order: Order) -> str | None:
            domain.check_request_fulfillment(order)
            return None if order.payment_status is PaymentStatus.CAPTURED else payment_ops.CAPTURE

        return await self._run(
            "request_fulfillment",
            command.order_id,
            command.actor,
            command.idempotency_key,
            {},
            lambda: self._money_first(command, money, domain.fulfillment, metadata),
        )

    async def mark_shipped(self, command: MarkOrderShipped, metadata: MessageMetadata) -> OrderOutcome:
        tracking = _text(command.tracking_number, "trackingNumber")
        return await self._run(
            "mark_shipped",
            command.order_id,
            command.actor,
            command.idempotency_key,
            {"tracking": tracking},
            lambda: self._transition(command, lambda o: [domain.ship(o, tracking)], metadata),
        )

    async def mark_delivered(self, command: MarkOrderDelivered, metadata: MessageMetadata) -> OrderOutcome:
        return await self._run(
            "mark_delivered",
            command.order_id,
            command.actor,
            command.idempotency_key,
            {},
            lambda: self._transition(command, lambda o: [domain.deliver(o)], metadata),
        )

    async def refund(self, command: RefundOrder, metadata: MessageMetadata) -> OrderOutcome:
        reason = _text(command.reason, "reason")

        def money(order: Order) -> str | None:
            domain.check_refund(order)
            return None if order.payment_status is PaymentStatus.REFUNDED else payment_ops.REFUND

        return await self._run(
            "refund",
            command.order_id,
            command.actor,
            command.idempotency_key,
            {"reason": reason},
            lambda: self._money_first(
                command, money, lambda o: domain.refund_order(o, reason), metadata, context={"reason": reason}
            ),
        )

    # ---------------------------------------------------------------- shapes

    async def _run(
        self,
        operation: str,
        order_id: str,
        actor: OrderActor,
        key: str,
        request: dict[str, Any],
        work: Callable[[], Awaitable[OrderOutcome]],
    ) -> OrderOutcome:
        _order_uuid(order_id)

        async def claimed_work(_claim: Claim) -> OrderOutcome:
            return await work()

        return await run_once(
            self.engine,
            f"{operation}:{actor.actor}",
            key,
            {"order": order_id, **request},
            claimed_work,
            lease=self._lease,
            wait_seconds=self._wait_seconds,
        )

    async def _transition(
        self,
        command: CancelOrder | MarkOrderShipped | MarkOrderDelivered,
        decide: _Decide,
        metadata: MessageMetadata,
    ) -> OrderOutcome:
        """Decide and record; then give back any money the new state no longer justifies."""
        async with UnitOfWork(self.engine, metadata.with_idempotency_key(command.idempotency_key)) as uow:
            order = await _load(uow, command.order_id, command.actor)
            state = await effects.apply(uow, order, decide(order))
            compensation = await effects.compensation(uow, state)
            position = await effects.head_of(uow, order.order_id)
            await uow.commit()
        if compensation is not None:
            settled = await self.settlement.send(compensation.idempotency_key, metadata)
            position = settled.position or position
        return OrderOutcome(order.order_id, position)

    async def _money_first(
        self,
        command: RequestFulfillment | RefundOrder,
        operation_for: Callable[[Order], str | None],
        then: _Decide,
        metadata: MessageMetadata,
        *,
        context: dict[str, Any] | None = None,
    ) -> OrderOutcome:
        """Capture or refund at the provider, then record the transition (settlement does both)."""
        metadata = metadata.with_idempotency_key(command.idempotency_key)
        attempt: Attempt | None = None
        async with UnitOfWork(self.engine, metadata) as uow:
            order = await _load(uow, command.order_id, command.actor)
            operation = operation_for(order)
            if operation is None:
                # The money already moved (an earlier try crashed or a webhook settled it).
                await effects.apply(uow, order, then(order))
            else:
                attempt = await payment_ops.ensure(
                    uow.conn,
                    order_id=order.order_id,
                    operation=operation,
                    amount=order.total,
                    currency=order.currency,
                    provider_reference=order.provider_reference,
                    context=context,
                )
            position = await effects.head_of(uow, order.order_id)
            await uow.commit()
        if attempt is None:
            return OrderOutcome(order.order_id, position)
        settled = await self.settlement.send(attempt.idempotency_key, metadata)
        return OrderOutcome(
            order.order_id, settled.position or position, _refused(settled, attempt.operation)
        )


async def _load(uow: UnitOfWork, order_id: str, actor: OrderActor) -> Order:
    """The order, locked; someone else's order does not exist for the caller."""
    await effects.lock_order(uow, order_id)
    order = await effects.load_order(uow, order_id)
    visible = order is not None and (
        actor.admin or (actor.customer_id is not None and order.customer_id == actor.customer_id)
    )
    if order is None or not visible:
        raise NotFound("order not found", ["orderId"])
    return order


def _refused(settled: Settled, operation: str) -> tuple[ErrorInfo, ...]:
    outcome = settled.outcome
    if outcome is None or outcome.status != FAILED:
        return ()
    return (
        ErrorInfo(
            "INVALID_STATE_TRANSITION",
            f"the payment provider refused the {operation}: {outcome.reason or 'no reason given'}",
        ),
    )


def _order_uuid(order_id: str) -> None:
    try:
        uuid.UUID(order_id)
    except ValueError:
        raise NotFound("order not found", ["orderId"]) from None


def _text(value: str | None, field: str) -> str | None:
    if value is None:
        return None
    if len(value) > MAX_TEXT:
        raise InvalidInput(f"{field} must be at most {MAX_TEXT} characters", [field])
    return value.strip() or None
