"""Reconciliation: settle payment attempts whose outcome we never heard, by asking the provider.

For each attempt still PENDING or UNKNOWN after ``older_than`` (so calls in
flight are left alone), ``lookup`` by its idempotency key:

- the provider has an outcome: settle it exactly as its webhook would have;
- it has the operation but no outcome yet: still unknown, try again next round;
- it never received the operation: a capture, void or refund is sent now under
  the same key (safe: the key names one operation); an authorization cannot be
  (we do not keep card tokens): the first such answer is noted, and once the
  provider has said so for ``abandon_after`` (two looks at least that far apart,
  with no retry by the buyer in between) it is given up and the order cancelled
  like a decline, which frees the buyer's cart for another try. Were the lost call
  to reach the provider after all, its authorization finds the order given up and
  is flagged for attention, never charged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from commands.checkout import payment_attempts as payment_ops
from commands.checkout.payment_attempts import AUTHORIZE, FAILED, Attempt, Outcome
from commands.checkout.settle import APPLIED, PaymentSettlement
from commands.payments import PaymentError
from commands.store.unit_of_work import MessageMetadata

log = logging.getLogger(__name__)


@dataclass
class ReconcileReport:
    checked: int = 0
    settled: int = 0
    unknown: int = 0
    abandoned: int = 0
    # Authorizations the provider says it never received, not yet for ``abandon_after``.
    missing: int = 0
    failed: int = 0


async def reconcile(
    settlement: PaymentSettlement,
    metadata: MessageMetadata,
    *,
    older_than: timedelta,
    abandon_after: timedelta,
    limit: int = 200,
) -> ReconcileReport:
    async with settlement.engine.connect() as conn:
        attempts = await payment_ops.due(conn, older_than=older_than, limit=limit)
    report = ReconcileReport()
    for attempt in attempts:
        report.checked += 1
        try:
            await _reconcile_one(settlement, attempt, metadata, abandon_after, report)
        except Exception:
            report.failed += 1
            log.exception("reconciling a payment attempt failed", extra={"key": attempt.idempotency_key})
    return report


async def _reconcile_one(
    settlement: PaymentSettlement,
    attempt: Attempt,
    metadata: MessageMetadata,
    abandon_after: timedelta,
    report: ReconcileReport,
) -> None:
    key = attempt.idempotency_key
    async with settlement.engine.connect() as conn:
        # Before asking: a look counts from when it was sent (one in flight beside another
        # reconciler's may see the provider as it was before that one's answer was noted).
        looked_at = await payment_ops.database_now(conn)
    try:
        result = await settlement.provider.lookup(idempotency_key=key)
    except PaymentError as exc:
        report.unknown += 1
        log.warning("payment provider lookup failed", extra={"key": key, "error": str(exc)})
        return
    if result is not None:
        # Whatever the row read above said: another reconciler may have noted it since.
        async with settlement.engine.begin() as conn:
            await payment_ops.clear_missing(conn, attempt)
        outcome = Outcome.of(result)
        await settlement.settle(key, outcome, metadata)
        if outcome.known:
            report.settled += 1
        else:
            report.unknown += 1
        return
    if attempt.operation != AUTHORIZE:
        settled = await settlement.send(key, metadata)
        if settled.outcome is not None and settled.outcome.known:
            report.settled += 1
        else:
            report.unknown += 1
        return
    async with settlement.engine.begin() as conn:
        missing = await payment_ops.note_missing(conn, attempt, looked_at)
    if missing is None:  # settled, or sent again by the buyer, since it was read
        report.unknown += 1
        return
    # The first such look alone (zero) says nothing of a call still on its way; nor does one
    # sent no later than it (another reconciler's, at the same moment).
    if missing.missing_for <= timedelta(0) or missing.missing_for < abandon_after:
        report.missing += 1
        return
    given_up = Outcome(FAILED, reason="the authorization never reached the provider")
    # Checked again under the attempt's lock: the note is still this one (a buyer's retry right
    # now sends it again, which clears the note).
    settled = await settlement.settle(key, given_up, metadata, missing_since=missing.since)
    if settled.verdict == APPLIED:
        report.abandoned += 1
    else:
        report.unknown += 1
