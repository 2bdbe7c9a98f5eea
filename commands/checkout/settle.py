"""Settling payment outcomes: one code path for the provider's answer, its webhooks and reconciliation.

An outcome may arrive several times and by several routes, in any order. Each
settlement runs under the order's lock, decides from the order as it stands
(``commands.domain.order`` decisions are idempotent) and records, in the same
transaction, the attempt's status, the order events and their stock effects,
the webhook receipt, and any void or refund the new state makes due. That
compensation is then sent, and its own outcome settled the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from commands.checkout import decline_messages
from commands.checkout import effects as effects
from commands.checkout import payment_attempts as payment_ops
from commands.checkout.payment_attempts import AUTHORIZE, CAPTURE, FAILED, REFUND, VOID, Attempt, Outcome
from commands.domain import order as domain
from commands.domain.cart import Cart
from commands.domain.order import Order, OrderStatus, PaymentStatus
from commands.events import order as ev
from commands.handlers import cart as cart_handlers
from commands.inventory import reservations
from commands.payments import PaymentProvider
from commands.store.connections import CommandConnections
from commands.store.driver import asyncpg_of
from commands.store.ledger.writer import ReadAlong, StreamConflict
from commands.store.unit_of_work import MessageMetadata, UnitOfWork

log = logging.getLogger(__name__)

APPLIED, DUPLICATE, STALE, IGNORED = "applied", "duplicate", "stale", "ignored"
MAX_COMPENSATIONS = 3
# Bounds a webhook's wait for this process's own settlement of the same payment (a settlement
# normally takes milliseconds; past this the webhook settles under the order's lock anyway).
# Shorter than a provider's delivery timeout (the sandbox's is 5 s), which would send it again.
OWN_SETTLEMENT_WAIT_SECONDS = 2.0


@dataclass(frozen=True)
class WebhookReceipt:
    """A provider event being settled: recorded with its effects, so a redelivery is a no-op."""

    event_id: str
    type: str
    provider_reference: str | None
    sequence: int | None


@dataclass(frozen=True)
class Settled:
    verdict: str
    order: Order | None = None
    attempt: Attempt | None = None
    outcome: Outcome | None = None
    position: int | None = None
    compensation: Attempt | None = None


# Runs inside the settling transaction, before its commit (e.g. to store the command's outcome).
Finish = Callable[[UnitOfWork, Settled], Awaitable[None]]


@dataclass(frozen=True)
class Known:
    """The order and its cart as the checkout's first phase just wrote and read them: what loading
    them under their locks finds, unless something wrote either stream since. The settlement
    appends at the versions that follow these; a version taken meanwhile (``StreamConflict``)
    rolls it back, and it loads both and decides again."""

    order: Order
    cart: Cart
    # The attempt as the caller recorded it, when it did (the checkout's first phase): then it is
    # not read before deciding, but checked in the statement that appends the decision.
    attempt: Attempt | None = None


def _locks(order_id: str | None, known: Known | None) -> list[str]:
    """The locks a settlement begins with: its order's (its first statement anyway) and, when
    the cart is known, the cart's (which closing the cart takes next, in that order)."""
    if order_id is None:
        return []
    cart = (
        []
        if known is None or known.order.order_id != order_id
        else [cart_handlers.cart_lock(known.cart.cart_id)]
    )
    return [effects.order_lock(order_id), *cart]


class PaymentSettlement:
    def __init__(
        self, source: AsyncEngine | CommandConnections, provider: PaymentProvider, *, lease: timedelta
    ) -> None:
        self.connections = CommandConnections.of(source)
        self.engine = self.connections.engine
        self.provider = provider
        self._lease = lease
        # Keys whose outcome this process is settling from its own call's answer.
        self._settling: dict[str, asyncio.Event] = {}

    @property
    def settling(self) -> frozenset[str]:
        """The keys whose outcome this process is settling from its own call's answer now."""
        return frozenset(self._settling)

    async def send(
        self,
        key: str,
        metadata: MessageMetadata,
        *,
        token: str | None = None,
        recorded: Attempt | None = None,
        finish: Finish | None = None,
        known: Known | None = None,
    ) -> Settled:
        """Send the attempt under ``key`` unless it is settled already, then settle what came back.

        ``recorded``: the attempt as its caller just recorded it (in a committed transaction that
        touched ``updated_at``), so it is known unsettled and needs no claim of its own.
        ``finish``: runs in the settling transaction when the outcome needs no compensation.
        ``known``: the attempt's order and cart as its caller just left them (see ``Known``).
        """
        attempt = recorded
        if attempt is None:
            async with self.engine.begin() as conn:
                attempt = await payment_ops.begin_send(conn, key)
            if attempt is None:
                return await self.current(key, metadata)
        outcome = await payment_ops.execute(self.provider, attempt, token=token)
        return await self.settle(
            key,
            outcome,
            metadata,
            finish=finish,
            order_id=attempt.order_id,
            known=None if known is None else Known(known.order, known.cart, recorded),
        )

    async def current(self, key: str, metadata: MessageMetadata) -> Settled:
        async with UnitOfWork(self.connections, metadata) as uow:
            attempt = await payment_ops.by_key(uow.conn, key)
            if attempt is None:
                return Settled(IGNORED)
            order = await effects.load_order(uow, attempt.order_id)
            position = await effects.head_of(uow, attempt.order_id)
        return Settled(IGNORED, order, attempt, None, position)

    async def settle(
        self,
        key: str,
        outcome: Outcome,
        metadata: MessageMetadata,
        receipt: WebhookReceipt | None = None,
        *,
        missing_since: datetime | None = None,
        finish: Finish | None = None,
        order_id: str | None = None,
        known: Known | None = None,
    ) -> Settled:
        """Apply ``outcome`` to its attempt and order, then send any compensation it made due.

        ``missing_since``: only if the attempt still carries this note of the provider's first
        'never received' (reconciliation giving up): a send or a found operation since clears it.
        ``order_id``: the attempt's order, when the caller knows it (saves looking it up first).
        ``known``: its order and cart as the caller just left them (saves loading them).
        """
        once = functools.partial(self._settle_once, key, outcome, metadata, receipt, missing_since, finish)
        # Tracked across both tries: a webhook for the payment waits for the one that lands.
        async with self._tracked(key if receipt is None else None):
            try:
                settled = await once(order_id, known)
            except StreamConflict:
                if known is None:
                    raise
                # The order or its cart was written after the caller left them: rolled back;
                # decide again on what they are now.
                settled = await once(order_id)
        for _ in range(MAX_COMPENSATIONS):
            if settled.compensation is None or settled.order is None:
                break
            compensation = await self.send(settled.compensation.idempotency_key, metadata)
            settled = Settled(
                settled.verdict,
                compensation.order,
                settled.attempt,
                settled.outcome,
                compensation.position,
                compensation.compensation,
            )
        return settled

    async def _settle_once(
        self,
        key: str,
        outcome: Outcome,
        metadata: MessageMetadata,
        receipt: WebhookReceipt | None,
        missing_since: datetime | None,
        finish: Finish | None = None,
        order_id: str | None = None,
        known: Known | None = None,
    ) -> Settled:
        if receipt is not None:
            await self._own_settlement_done(key)
            if order_id is None:
                repeated = await self._repeated(key, outcome, receipt)
                if repeated is not None:
                    return repeated
        # Urgent: it completes an order whose stock is held (commands.store.connections).
        async with UnitOfWork(self.connections, metadata, urgent=True, lock=_locks(order_id, known)) as uow:
            if order_id is None:
                found = await payment_ops.by_key(uow.conn, key)
                order_id = None if found is None else found.order_id
            if order_id is not None:
                await effects.lock_order(uow, order_id)
            if receipt is not None:
                verdict = await _receive(uow.conn, receipt)
                if verdict != APPLIED or order_id is None:
                    await uow.commit()
                    return Settled(verdict if order_id is not None else IGNORED)
            attempt: Attempt | None
            stock_lapsed: bool | None
            along: ReadAlong | None = None
            recorded = _recorded(known, key)
            if recorded is not None and receipt is None and missing_since is None:
                # As recorded, with nothing lapsed: what the append's statement checks (``_as_recorded``).
                attempt, stock_lapsed, along = recorded, False, _as_recorded(recorded)
            else:
                # The attempt locked, and whether its order's stock lapsed (read under the order's lock).
                row = await (await asyncpg_of(uow.conn)).fetchrow(_LOCKED_ATTEMPT, key)
                attempt = None if row is None else payment_ops.attempt_of(row)
                stock_lapsed = None if row is None else bool(row["stock_lapsed"])
            if receipt is not None and attempt is not None and attempt.settled and _same(attempt, outcome):
                # The provider reports what we already recorded (our own call's answer came first):
                # the decisions it led to were made in that same transaction; keep the receipt only.
                await uow.commit()
                return Settled(DUPLICATE, None, attempt, outcome)
            if attempt is not None and known is not None and known.order.order_id == attempt.order_id:
                order: Order | None = known.order
            else:
                known = None
                order = None if attempt is None else await effects.load_order(uow, attempt.order_id)
            if attempt is None or order is None:
                return Settled(IGNORED)
            if missing_since is not None and (
                attempt.settled or attempt.provider_missing_since != missing_since
            ):
                return Settled(IGNORED, order, attempt)
            if attempt.operation == AUTHORIZE:
                # Its row is locked above, and nothing after this reads an authorization again
                # (a compensation looks for voids and refunds): written with the COMMIT.
                payment_ops.mark_at_commit(uow, attempt, outcome)
            else:
                await payment_ops.mark(uow, attempt, outcome)
            decided = await self._decide(uow, order, attempt, outcome, stock_lapsed)
            if known is not None and not decided:
                # Only an append at the version after the known order proves it current: with
                # nothing to append, decide again on the order as loaded (rolled back first).
                raise StreamConflict("nothing decided on the order as its checkout left it")
            state = await effects.apply(
                uow, order, decided, cart=None if known is None else known.cart, along=along
            )
            compensation = await effects.compensation(uow, state)
            position = uow.last_position or await effects.head_of(uow, order.order_id)
            settled = Settled(APPLIED, state, attempt, outcome, position, compensation)
            if finish is not None and compensation is None:
                await finish(uow, settled)
            await uow.commit()
        return settled

    async def _own_settlement_done(self, key: str) -> None:
        """Wait while this process settles ``key`` from its own call's answer.

        The provider's webhook for a payment usually arrives while the settlement of the answer
        to our own call is under way. Settled first, the webhook is a repeat and is kept without
        a transaction (``_repeated``); otherwise it would queue on the order's lock for the same
        moment, in a transaction of its own, to find the same thing. A settlement in another
        process is not seen here: the webhook then queues on the lock as before."""
        settling = self._settling.get(key)
        if settling is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(settling.wait(), OWN_SETTLEMENT_WAIT_SECONDS)

    @contextlib.asynccontextmanager
    async def _tracked(self, key: str | None) -> AsyncIterator[None]:
        """While this process settles ``key`` from its own call's answer (None: not such a one)."""
        if key is None or key in self._settling:
            yield
            return
        self._settling[key] = done = asyncio.Event()
        try:
            yield
        finally:
            del self._settling[key]
            done.set()

    async def _repeated(self, key: str, outcome: Outcome, receipt: WebhookReceipt) -> Settled | None:
        """The provider repeating what we recorded (our own call's answer came first): its receipt
        kept, and nothing else; None when that is not the case.

        A settled attempt never changes again (``payment_attempts.mark``), so knowing it needs no
        lock, and the receipt's insert deduplicates on its own: one statement outside any
        transaction, inserting the receipt only if the attempt holds this outcome, without
        queueing on the order's lock behind the settlement that may still hold it. On a
        connection that fails, None too: the caller's unit of work starts over on a fresh one,
        and a receipt already inserted is then a duplicate.
        """
        if not outcome.known:
            return None
        # Urgent: the provider waits on this answer, and it is one statement, outside any transaction.
        conn = await self.connections.take(urgent=True)
        broken = True
        try:
            row = await (await asyncpg_of(conn)).fetchrow(
                _RECEIVE_REPEAT,
                key,
                outcome.status,
                receipt.event_id,
                receipt.type,
                receipt.provider_reference,
                receipt.sequence,
            )
            broken = False
        except Exception:
            log.warning("webhook receipt without a transaction failed; settling it in one", exc_info=True)
            return None
        finally:
            await self.connections.give_back(conn, broken=broken)
        if row is None or row["status"] != outcome.status:
            return None
        verdict = _verdict(row, receipt)
        found = payment_ops.attempt_of(row)
        return Settled(verdict) if verdict != APPLIED else Settled(DUPLICATE, None, found, outcome)

    async def _decide(
        self, uow: UnitOfWork, order: Order, attempt: Attempt, outcome: Outcome, stock_lapsed: bool | None
    ) -> list[ev.OrderEvent]:
        operation, status = attempt.operation, outcome.status
        reference = outcome.provider_reference or attempt.provider_reference or ""
        if not outcome.known:
            return (
                domain.payment_unknown(order, outcome.reason or "no answer") if operation == AUTHORIZE else []
            )
        if operation == AUTHORIZE:
            if status == PaymentStatus.AUTHORIZED.value:
                return await self._authorized(uow, order, attempt, reference, stock_lapsed)
            return domain.payment_declined(
                order, decline_messages.recorded_reason(outcome.reason, order.order_id)
            )
        if status == FAILED:
            return domain.payment_failed(order, operation, outcome.reason or "refused by the provider")
        if operation == CAPTURE and status == PaymentStatus.CAPTURED.value:
            return domain.payment_captured(order, reference, attempt.amount)
        if operation == VOID and status == PaymentStatus.VOIDED.value:
            return domain.payment_voided(order, reference)
        if operation == REFUND and status == PaymentStatus.REFUNDED.value:
            return domain.payment_refunded(order, reference, attempt.amount, attempt.context.get("reason"))
        return []

    async def _authorized(
        self, uow: UnitOfWork, order: Order, attempt: Attempt, reference: str, stock_lapsed: bool | None
    ) -> list[ev.OrderEvent]:
        if order.payment_status is PaymentStatus.DECLINED:
            log.error("payment authorized after it was given up", extra={"order_id": order.order_id})
            return domain.needs_attention(
                order, f"payment {reference} authorized after the order gave up on it"
            )
        events = domain.payment_authorized(order, reference, attempt.amount, attempt.currency)
        state = domain.evolve(order, events)
        if state.status is OrderStatus.PAYMENT_PENDING and state.payment_status is PaymentStatus.AUTHORIZED:
            # A late success may find the lease expired: take the stock again, or give the money back.
            if await reservations.rereserve(uow, order.order_id, lease=self._lease, lapsed=stock_lapsed):
                return [*events, *domain.confirm(state)]
            return [*events, *domain.stock_lost(state)]
        return events


_LOCKED_ATTEMPT = payment_ops.locked_by_key(reservations.lapsed_column("payment_attempts.order_id"))


def _recorded(known: Known | None, key: str) -> Attempt | None:
    """The attempt under ``key`` as ``known`` recorded it with its order, if it did."""
    if known is None or known.attempt is None:
        return None
    attempt = known.attempt
    return attempt if attempt.idempotency_key == key and attempt.order_id == known.order.order_id else None


def _as_recorded(attempt: Attempt) -> ReadAlong:
    """The attempt locked, read in the statement that appends what was decided from it as its
    caller recorded it: still so, and none of its order's stock lapsed (a lease sweep writes no
    order event, so the order's version does not show it), or StreamConflict (rolled back, and
    decided again on what is read)."""

    def check(row: Any) -> None:
        if row["attempt_status"] != attempt.status or row["stock_lapsed"] is not False:
            raise StreamConflict("the attempt or its order's stock changed since it was recorded")

    return ReadAlong(_attempt_as_recorded, (attempt.idempotency_key,), check)


@functools.cache
def _attempt_as_recorded(first: int) -> str:
    """``_as_recorded``'s read, its parameter numbered ``first`` (built once per number)."""
    return (
        f"SELECT status AS attempt_status, {reservations.lapsed_column('payment_attempts.order_id')} "
        f"FROM payment_attempts WHERE idempotency_key = ${first} FOR UPDATE OF payment_attempts"
    )


def _same(attempt: Attempt, outcome: Outcome) -> bool:
    return outcome.known and outcome.status == attempt.status


_RECEIVE = (
    "WITH newest AS (SELECT max(sequence) AS sequence FROM payment_webhook_events "
    "WHERE $3::text IS NOT NULL AND provider_reference = $3), "
    "inserted AS (INSERT INTO payment_webhook_events "
    "(provider_event_id, type, provider_reference, sequence, received_at) "
    "VALUES ($1, $2, $3, $4, now()) ON CONFLICT (provider_event_id) DO NOTHING RETURNING provider_event_id) "
    "SELECT (SELECT sequence FROM newest) AS newest, (SELECT provider_event_id FROM inserted) AS inserted"
)

# ``_RECEIVE`` for a webhook that may repeat the attempt's recorded outcome: the attempt (no row
# when unknown), its receipt inserted only when the attempt holds that status ($2).
_RECEIVE_REPEAT = (
    f"WITH attempt AS ({payment_ops.BY_KEY}), "
    "repeat AS (SELECT 1 FROM attempt WHERE status = $2), "
    "newest AS (SELECT max(sequence) AS sequence FROM payment_webhook_events "
    "WHERE EXISTS (SELECT 1 FROM repeat) AND $5::text IS NOT NULL AND provider_reference = $5), "
    "inserted AS (INSERT INTO payment_webhook_events "
    "(provider_event_id, type, provider_reference, sequence, received_at) "
    "SELECT $3::text, $4::text, $5::text, $6::integer, now() WHERE EXISTS (SELECT 1 FROM repeat) "
    "ON CONFLICT (provider_event_id) DO NOTHING RETURNING provider_event_id) "
    "SELECT attempt.*, (SELECT sequence FROM newest) AS newest, "
    "(SELECT provider_event_id FROM inserted) AS inserted FROM attempt"
)


async def _receive(conn: AsyncConnection, receipt: WebhookReceipt) -> str:
    """Record the provider event once; a redelivery or an older event for the payment changes nothing."""
    # One round trip: the newest sequence already seen for the payment, and the insert.
    row = await (await asyncpg_of(conn)).fetchrow(
        _RECEIVE, receipt.event_id, receipt.type, receipt.provider_reference, receipt.sequence
    )
    return _verdict(row, receipt)


def _verdict(row: Any, receipt: WebhookReceipt) -> str:
    """APPLIED, or why not, from a row with ``newest`` and ``inserted`` (``_RECEIVE``)."""
    newest, inserted = row["newest"], row["inserted"]
    if inserted is None:
        return DUPLICATE
    if newest is not None and receipt.sequence is not None and receipt.sequence <= newest:
        return STALE
    return APPLIED
