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

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from commands.bus import CommandBus, KeyPolicy, PhasedHandler
from commands.checkout import effects as effects
from commands.checkout import payment_attempts as payment_ops
from commands.checkout.payment_attempts import FAILED, Attempt
from commands.checkout.settle import PaymentSettlement, Settled
from commands.domain import order as domain
from commands.domain.order import Order, PaymentStatus
from commands.errors import NotFound
from commands.events import order as ev
from commands.messages.orders import (
    CancelOrder,
    ErrorInfo,
    MarkOrderDelivered,
    MarkOrderShipped,
    OrderActor,
    OrderCommand,
    OrderOutcome,
    RefundOrder,
    RequestFulfillment,
    clean_note,
)
from commands.store.phases import Phases
from commands.store.unit_of_work import UnitOfWork

_Decide = Callable[[Order], list[ev.OrderEvent]]


class OrderHandlers:
    """Handlers of the order commands (phased: see ``commands.bus``)."""

    def __init__(self, settlement: PaymentSettlement) -> None:
        self.settlement = settlement

    def register(self, bus: CommandBus, *, payment_timeout_seconds: float) -> None:
        keys = KeyPolicy(
            replay=OrderOutcome.from_json,
            lease=timedelta(seconds=2 * payment_timeout_seconds + 30),
            wait_seconds=payment_timeout_seconds + 5,
        )
        handlers: dict[type[OrderCommand], PhasedHandler] = {
            CancelOrder: self.cancel,
            RequestFulfillment: self.request_fulfillment,
            MarkOrderShipped: self.mark_shipped,
            MarkOrderDelivered: self.mark_delivered,
            RefundOrder: self.refund,
        }
        for command_type, handler in handlers.items():
            bus.register_phased(command_type, handler, keys=keys, validate=_validate)

    async def cancel(self, command: CancelOrder, phases: Phases) -> OrderOutcome:
        reason = str(command.notes()["reason"])
        by_customer = not command.actor.admin

        def decide(order: Order) -> list[ev.OrderEvent]:
            return [domain.cancel(order, reason, command.actor.actor, by_customer=by_customer)]

        return await self._transition(command, decide, phases)

    async def request_fulfillment(self, command: RequestFulfillment, phases: Phases) -> OrderOutcome:
        def money(order: Order) -> str | None:
            domain.check_request_fulfillment(order)
            return None if order.payment_status is PaymentStatus.CAPTURED else payment_ops.CAPTURE

        return await self._money_first(command, money, domain.fulfillment, phases)

    async def mark_shipped(self, command: MarkOrderShipped, phases: Phases) -> OrderOutcome:
        tracking = clean_note(command.tracking_number, "trackingNumber")
        return await self._transition(command, lambda o: [domain.ship(o, tracking)], phases)

    async def mark_delivered(self, command: MarkOrderDelivered, phases: Phases) -> OrderOutcome:
        return await self._transition(command, lambda o: [domain.deliver(o)], phases)

    async def refund(self, command: RefundOrder, phases: Phases) -> OrderOutcome:
        reason = clean_note(command.reason, "reason")

        def money(order: Order) -> str | None:
            domain.check_refund(order)
            return None if order.payment_status is PaymentStatus.REFUNDED else payment_ops.REFUND

        return await self._money_first(
            command, money, lambda o: domain.refund_order(o, reason), phases, context={"reason": reason}
        )

    async def _transition(
        self,
        command: CancelOrder | MarkOrderShipped | MarkOrderDelivered,
        decide: _Decide,
        phases: Phases,
    ) -> OrderOutcome:
        """Decide and record; then give back any money the new state no longer justifies."""
        async with phases.unit_of_work() as uow:
            order = await _load(uow, command.order_id, command.actor)
            state = await effects.apply(uow, order, decide(order))
            compensation = await effects.compensation(uow, state)
            position = await effects.head_of(uow, order.order_id)
            await uow.commit()
        if compensation is not None:
            settled = await self.settlement.send(compensation.idempotency_key, phases.metadata)
            position = settled.position or position
        return OrderOutcome(order.order_id, position)

    async def _money_first(
        self,
        command: RequestFulfillment | RefundOrder,
        operation_for: Callable[[Order], str | None],
        then: _Decide,
        phases: Phases,
        *,
        context: dict[str, Any] | None = None,
    ) -> OrderOutcome:
        """Capture or refund at the provider, then record the transition (settlement does both)."""
        attempt: Attempt | None = None
        async with phases.unit_of_work() as uow:
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
        settled = await self.settlement.send(attempt.idempotency_key, phases.metadata)
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


def _validate(command: OrderCommand) -> None:
    command.validate()
