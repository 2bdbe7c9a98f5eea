"""Prometheus series for business outcomes, shared by every process.

Defined once at import (no I/O); handlers increment them. The gateway adds
request and projection-lag series in gateway/metrics.py.
"""

from __future__ import annotations

from prometheus_client import Counter

CHECKOUT_OUTCOMES = Counter("commerce_checkout_outcomes_total", "Checkout attempts by outcome", ["outcome"])
RESERVATION_CONFLICTS = Counter(
    "commerce_reservation_conflicts_total", "Reservations refused for lack of stock, per SKU line"
)
RESERVATION_EXPIRIES = Counter(
    "commerce_reservation_expiries_total", "Reservations released by the lease sweeper"
)
STOCK_REBALANCES = Counter(
    "commerce_stock_rebalances_total", "Hot SKUs whose free stock was spread over their buckets again"
)
HOT_SKUS_SPREAD = Counter(
    "commerce_hot_skus_spread_total", "SKUs the automatic hot-SKU switch spread over stock buckets"
)
PAYMENT_OUTCOMES = Counter(
    "commerce_payment_outcomes_total", "Payment provider outcomes", ["operation", "status"]
)
IDEMPOTENT_REPLAYS = Counter(
    "commerce_idempotent_replays_total", "Requests answered from a stored idempotent response", ["operation"]
)
RATE_LIMIT_REJECTIONS = Counter(
    "commerce_rate_limit_rejections_total", "Requests refused by a cost budget or operation limit", ["reason"]
)
