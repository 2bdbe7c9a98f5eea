"""Reconciliation: settle payment attempts whose outcome we never heard, by asking the provider.

For each attempt still PENDING or UNKNOWN after ``older_than`` (so calls in
flight are left alone), ``lookup`` by its idempotency key:

- the provider has an outcome: settle it exactly as its webhook would have;
- it has the operation but no outcome yet: still unknown, try again next round;
- it never received the operation: a capture, void or refund is sent now under
  the same key (safe: the key names one operation); an authorization cannot be
  (we do not keep card tokens), so after ``abandon_after`` without a retry by
  the buyer it is given up and the order cancelled like a decline.
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
    try:
        result = await settlement.provider.lookup(idempotency_key=key)
    except PaymentError as exc:
        report.unknown += 1
        log.warning("payment provider lookup failed", extra={"key": key, "error": str(exc)})
        return
    if result is not None:
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
    given_up = Outcome(FAILED, reason="the authorization never reached the provider")
    settled = await settlement.settle(key, given_up, metadata, idle_for=abandon_after)
    if settled.verdict == APPLIED:
        report.abandoned += 1
    else:
        report.unknown += 1
