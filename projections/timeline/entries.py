"""What a ledger event means to a support agent: kind, links and a one-line summary.

Pure functions over the stored event (type + JSON data), so the timeline keeps
working when an event grows fields. Events no customer would recognise
(catalog edits, stock counts) produce no entry.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF"})


@dataclass(frozen=True)
class EntryDraft:
    kind: str
    summary: str
    cart_id: str | None = None
    order_id: str | None = None
    # The customer the event names itself (carts created signed in, attach, orders placed).
    customer_id: str | None = None


def money(amount: Any, currency: str | None) -> str:
    try:
        value = Decimal(str(amount))
    except (InvalidOperation, ValueError):
        return f"{amount} {currency or ''}".strip()
    places = Decimal(1) if (currency or "").upper() in ZERO_DECIMAL_CURRENCIES else Decimal("0.01")
    return f"{value.quantize(places)} {currency or ''}".strip()


def short_ref(reference: str | None) -> str:
    if not reference:
        return "no reference"
    return reference if len(reference) <= 12 else reference[:12]


def _lines(lines: Any) -> str:
    parts = [f"{line.get('quantity')} x {line.get('sku')}" for line in lines or []]
    return ", ".join(parts[:4]) + (f" and {len(parts) - 4} more" if len(parts) > 4 else "")


def _cart_entry(event_type: str, data: dict[str, Any], cart_id: str) -> EntryDraft | None:
    summary: str | None = None
    customer: str | None = None
    if event_type == "CartCreated":
        customer = data.get("customer_id")
        lines = data.get("lines") or []
        summary = f"Created a cart in {data.get('currency_code')}" + (
            f" with {_lines(lines)}" if lines else ""
        )
    elif event_type == "CartLinesAdded":
        summary = f"Cart now has {_lines(data.get('lines'))}"
    elif event_type == "CartLineQuantitiesChanged":
        removed = len(data.get("removed_line_ids") or [])
        changed = _lines(data.get("lines"))
        summary = "Changed cart quantities" + (f": {changed}" if changed else "")
        summary += f"; removed {removed} line(s)" if removed else ""
    elif event_type == "CartLinesRemoved":
        summary = f"Removed {len(data.get('line_ids') or [])} line(s) from the cart"
    elif event_type == "CartCustomerAttached":
        customer = data.get("customer_id")
        summary = "Guest cart attached to the customer's account"
    elif event_type == "CartMerged":
        customer = data.get("customer_id")
        summary = "Guest cart merged into the customer's active cart"
    elif event_type == "CartLinesMergedIn":
        dropped = data.get("dropped_skus") or []
        summary = f"Took over guest cart lines: {_lines(data.get('lines'))}"
        summary += f" (left behind {', '.join(dropped)})" if dropped else ""
    elif event_type == "CartCheckedOut":
        return EntryDraft("CART", "Checked out the cart", cart_id, data.get("order_id"))
    elif event_type == "CartShippingChosen":
        region = data.get("region")
        method = data.get("method_code")
        summary = f"Shipping to {data.get('country_code')}" + (f" ({region})" if region else "")
        summary += f" by {method}" if method else ""
    elif event_type == "CartDiscountCodeApplied":
        summary = f"Applied discount code {data.get('code')}"
    elif event_type == "CartDiscountCodeRemoved":
        summary = f"Removed discount code {data.get('code')}"
    if summary is None:
        return None
    return EntryDraft("CART", summary, cart_id, None, customer)


_ORDER_SUMMARIES: dict[str, tuple[str, str]] = {
    "PaymentDeclined": ("PAYMENT", "Payment declined ({reason})"),
    "PaymentOutcomeUnknown": ("PAYMENT", "Payment outcome unknown ({reason}); reconciliation will settle it"),
    "OrderConfirmed": ("ORDER", "Order confirmed"),
    "FulfillmentRequested": ("FULFILLMENT", "Fulfillment requested"),
    "OrderDelivered": ("FULFILLMENT", "Delivered"),
    "OrderCancelled": ("ORDER", "Order cancelled by {cancelled_by}: {reason}"),
    "OrderRefunded": ("ORDER", "Order refunded"),
    "OrderNeedsAttention": ("ORDER", "Needs attention: {reason}"),
}


def _order_entry(event_type: str, data: dict[str, Any], order_id: str) -> EntryDraft | None:
    if event_type == "OrderPlaced":
        count = sum(int(line.get("quantity", 0)) for line in data.get("lines") or [])
        summary = (
            f"Placed order #{data.get('number')}: {count} item(s), "
            f"{money(data.get('total'), data.get('currency'))}"
        )
        totals = data.get("totals")
        if isinstance(totals, dict):
            summary += f" ({_breakdown(totals, data.get('currency'))})"
        return EntryDraft("ORDER", summary, data.get("cart_id"), order_id, data.get("customer_id"))
    if event_type == "PaymentAuthorized":
        summary = (
            f"Paid {money(data.get('amount'), data.get('currency'))} by card, "
            f"ref {short_ref(data.get('provider_reference'))}"
        )
        return EntryDraft("PAYMENT", summary, None, order_id)
    if event_type == "PaymentCaptured":
        summary = (
            f"Captured {money(data.get('amount'), None)}, ref {short_ref(data.get('provider_reference'))}"
        )
        return EntryDraft("PAYMENT", summary, None, order_id)
    if event_type == "PaymentVoided":
        return EntryDraft(
            "PAYMENT",
            f"Authorization voided, ref {short_ref(data.get('provider_reference'))}",
            None,
            order_id,
        )
    if event_type == "PaymentRefunded":
        summary = (
            f"Refunded {money(data.get('amount'), None)}, ref {short_ref(data.get('provider_reference'))}"
        )
        return EntryDraft("PAYMENT", summary, None, order_id)
    if event_type == "OrderShipped":
        tracking = data.get("tracking_number")
        return EntryDraft(
            "FULFILLMENT", "Shipped" + (f", tracking {tracking}" if tracking else ""), None, order_id
        )
    template = _ORDER_SUMMARIES.get(event_type)
    if template is None:
        return None
    kind, text = template
    fields = {k: (v if v not in (None, "") else "unspecified") for k, v in data.items()}
    try:
        summary = text.format(**fields)
    except KeyError:
        summary = text.split(":")[0].split("(")[0].strip()
    return EntryDraft(kind, summary, None, order_id)


def _breakdown(totals: dict[str, Any], currency: str | None) -> str:
    """Where an order total comes from: its subtotal, shipping, discounts and tax."""
    parts = [f"subtotal {money(totals.get('subtotal'), currency)}"]
    parts.append(f"shipping {money(totals.get('shipping'), currency)}")
    if Decimal(str(totals.get("discounts") or 0)):
        code = totals.get("discount_code")
        parts.append(f"discount -{money(totals['discounts'], currency)}" + (f" ({code})" if code else ""))
    included = " included" if totals.get("prices_include_tax") else ""
    parts.append(f"tax {money(totals.get('tax'), currency)}{included}")
    return ", ".join(parts)


_DISCOUNT_SUMMARIES = {
    "DiscountCodeUseReserved": "Discount code {code} reserved for the order",
    "DiscountCodeUseCommitted": "Discount code {code} used by the order",
    "DiscountCodeUseReleased": "Discount code {code} given back ({reason})",
}


def concerns(stream_type: str, event_type: str) -> bool:
    """Whether an event of this kind can make an entry (``entry_for`` decides for each event)."""
    if stream_type in ("cart", "order"):
        return True
    return event_type in _DISCOUNT_SUMMARIES or event_type == "ReservationExpired"


def entry_for(stream_type: str, stream_id: str, event_type: str, data: dict[str, Any]) -> EntryDraft | None:
    if stream_type == "cart":
        return _cart_entry(event_type, data, data.get("cart_id") or stream_id.removeprefix("cart-"))
    if stream_type == "order":
        return _order_entry(event_type, data, data.get("order_id") or stream_id.removeprefix("order-"))
    if event_type in _DISCOUNT_SUMMARIES and data.get("order_id"):
        summary = _DISCOUNT_SUMMARIES[event_type].format(code=data.get("code"), reason=data.get("reason"))
        return EntryDraft("ORDER", summary, None, str(data["order_id"]))
    if event_type == "ReservationExpired" and data.get("order_id"):
        sku = data.get("sku")
        summary = "Stock reservation expired" + (f" for {sku}" if sku else "") + "; the stock was released"
        return EntryDraft("INVENTORY", summary, None, str(data["order_id"]))
    return None
