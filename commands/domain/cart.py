"""The cart aggregate: fold a cart's events into state, decide new events.

Pure: no I/O. Catalog prices come in as ``CatalogPrice`` values the handler
read inside the command's transaction. Every decision returns exactly one
event per stream it touches, so a cart's version is its stream version.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from commands.domain.catalog import MAX_SKU
from commands.domain.countries import NOT_A_COUNTRY, is_country
from commands.domain.currencies import minor_units
from commands.domain.records import evolved
from commands.errors import (
    DomainError,
    Forbidden,
    InvalidInput,
    NotFound,
    ValidationErrors,
    VersionConflict,
)
from commands.events.base import Event
from commands.events.cart import (
    CartCheckedOut,
    CartCreated,
    CartCustomerAttached,
    CartDiscountCodeApplied,
    CartDiscountCodeRemoved,
    CartLineQuantitiesChanged,
    CartLinesAdded,
    CartLinesMergedIn,
    CartLineSnapshot,
    CartLinesRemoved,
    CartMerged,
    CartShippingChosen,
)

MAX_QUANTITY = 999
MAX_LINES = 100
DEFAULT_CURRENCY = "USD"
ACTIVE = "ACTIVE"
MERGED = "MERGED"
CHECKED_OUT = "CHECKED_OUT"
_CURRENCY = re.compile(r"^[A-Z]{3}$")
MAX_CODE = 64


class CartNotActive(DomainError):
    code = "CART_NOT_ACTIVE"


class CartEmpty(DomainError):
    code = "CART_EMPTY"


@dataclass(frozen=True)
class Line:
    line_id: str
    sku: str
    quantity: int
    unit_price: Decimal

    @property
    def snapshot(self) -> CartLineSnapshot:
        return CartLineSnapshot(self.line_id, self.sku, self.quantity, self.unit_price)


@dataclass(frozen=True)
class Cart:
    cart_id: str = ""
    version: int = 0
    status: str = ACTIVE
    currency_code: str = DEFAULT_CURRENCY
    customer_id: str | None = None
    lines: tuple[Line, ...] = ()
    merged_into: str | None = None
    # Highest line number handed out; line ids are never reused within a cart.
    line_seq: int = 0
    # Where the cart ships and how, and the discount code applied (commands.domain.money).
    shipping_country: str | None = None
    shipping_region: str | None = None
    shipping_method: str | None = None
    discount_code: str | None = None

    @property
    def exists(self) -> bool:
        return self.version > 0

    def line(self, line_id: str) -> Line | None:
        return next((line for line in self.lines if line.line_id == line_id), None)


@dataclass(frozen=True)
class CatalogPrice:
    """A variant's current price as the catalog tables hold it."""

    sku: str
    price: Decimal
    currency_code: str
    active: bool


@dataclass(frozen=True)
class CartActor:
    """Who issues a cart command: the signed-in customer (if any), and whether staff.

    ``staff`` may change any cart (admin); ``support`` may read any cart, and changes one only
    as the customer it also is (a support agent acting for nobody creates and changes none).
    """

    customer_id: str | None = None
    staff: bool = False
    support: bool = False

    @property
    def reads_only(self) -> bool:
        """Support acting as no customer: reads every cart, writes none (not a guest's either)."""
        return self.support and not self.staff and self.customer_id is None


@dataclass(frozen=True)
class LineRequest:
    sku: str
    quantity: int


@dataclass(frozen=True)
class QuantityChange:
    line_id: str
    quantity: int


@dataclass(frozen=True)
class AttachPlan:
    """What attaching a guest cart does: the cart the caller ends up with and the events per cart."""

    survivor_id: str
    guest_events: tuple[Event, ...] = ()
    survivor_events: tuple[Event, ...] = ()


# ---------------------------------------------------------------- fold


def fold(events: Iterable[Event], cart: Cart | None = None) -> Cart:
    state = cart or Cart()
    for event in events:
        state = evolve(state, event)
    return state


def evolve(cart: Cart, event: Event) -> Cart:
    # One copy per event (see commands.domain.records).
    changes: dict[str, Any]
    match event:
        case CartCreated():
            changes = {
                "cart_id": event.cart_id,
                "currency_code": event.currency_code,
                "customer_id": event.customer_id,
                **_set_lines(cart.lines, cart.line_seq, event.lines),
            }
        case CartLinesAdded() | CartLinesMergedIn():
            changes = _set_lines(cart.lines, cart.line_seq, event.lines)
        case CartLineQuantitiesChanged():
            changes = _set_lines(cart.lines, cart.line_seq, event.lines)
            changes["lines"] = _drop_lines(changes["lines"], event.removed_line_ids)
        case CartLinesRemoved():
            changes = {"lines": _drop_lines(cart.lines, event.line_ids)}
        case CartCustomerAttached():
            changes = {"customer_id": event.customer_id}
        case CartMerged():
            changes = {"status": MERGED, "merged_into": event.into_cart_id, "customer_id": event.customer_id}
        case CartCheckedOut():
            changes = {"status": CHECKED_OUT}
        case CartShippingChosen():
            changes = {
                "shipping_country": event.country_code,
                "shipping_region": event.region,
                "shipping_method": event.method_code,
            }
        case CartDiscountCodeApplied():
            changes = {"discount_code": event.code}
        case CartDiscountCodeRemoved():
            changes = {"discount_code": None}
        case _:
            changes = {}
    return evolved(cart, version=cart.version + 1, **changes)


def _set_lines(
    current: tuple[Line, ...], line_seq: int, snapshots: Iterable[CartLineSnapshot]
) -> dict[str, Any]:
    """The ``lines`` and ``line_seq`` after the snapshots replace or add lines."""
    lines = list(current)
    seq = line_seq
    for snap in snapshots:
        line = Line(snap.line_id, snap.sku, snap.quantity, snap.unit_price)
        index = next((i for i, existing in enumerate(lines) if existing.line_id == snap.line_id), None)
        if index is None:
            lines.append(line)
        else:
            lines[index] = line
        if snap.line_id.isdigit():
            seq = max(seq, int(snap.line_id))
    return {"lines": tuple(lines), "line_seq": seq}


def _drop_lines(lines: tuple[Line, ...], line_ids: Iterable[str]) -> tuple[Line, ...]:
    gone = set(line_ids)
    return tuple(line for line in lines if line.line_id not in gone)


# ---------------------------------------------------------------- guards


def ensure_may_create(actor: CartActor) -> None:
    if actor.reads_only:
        raise Forbidden("support may read carts but not create them")


def ensure_access(cart: Cart, actor: CartActor) -> None:
    """May ``actor`` change ``cart``? A customer's cart is theirs and staff's (admin); a guest's
    is anyone's who holds its id, but support's only as a customer.

    Support reads every cart (so for them it exists: FORBIDDEN); for anyone
    else someone else's cart does not exist (NOT_FOUND).
    """
    allowed = (
        cart.exists
        and not actor.reads_only
        and (cart.customer_id is None or actor.staff or cart.customer_id == actor.customer_id)
    )
    if allowed:
        return
    if cart.exists and actor.support:
        raise Forbidden("support may read this cart but not change it", ["cartId"])
    raise NotFound("cart not found", ["cartId"])


def check_version(cart: Cart, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != cart.version:
        raise VersionConflict(
            f"the cart is at version {cart.version}, not {expected_version}; reload and retry",
            ["expectedVersion"],
        )


def ensure_active(cart: Cart) -> None:
    if cart.status != ACTIVE:
        raise CartNotActive(f"the cart is {cart.status.lower().replace('_', ' ')}", ["cartId"])


# ---------------------------------------------------------------- decisions


def create(
    cart_id: str,
    customer_id: str | None,
    currency_code: str | None,
    lines: Sequence[LineRequest],
    prices: Mapping[str, CatalogPrice],
) -> CartCreated:
    if currency_code is not None and not _CURRENCY.match(currency_code):
        raise InvalidInput("currencyCode must be three upper-case letters (ISO 4217)", ["currencyCode"])
    if currency_code is not None and minor_units(currency_code) is None:
        # A cart in a currency nothing can be priced in would refuse every line.
        raise InvalidInput(f"{currency_code} is not an ISO 4217 currency in circulation", ["currencyCode"])
    currency = currency_code or _first_known_currency(lines, prices) or DEFAULT_CURRENCY
    empty = Cart(cart_id=cart_id, currency_code=currency)
    snapshots = _plan_additions(empty, lines, prices) if lines else ()
    return CartCreated(cart_id=cart_id, currency_code=currency, customer_id=customer_id, lines=snapshots)


def add_lines(cart: Cart, lines: Sequence[LineRequest], prices: Mapping[str, CatalogPrice]) -> CartLinesAdded:
    ensure_active(cart)
    if not lines:
        raise InvalidInput("give at least one line", ["lines"])
    return CartLinesAdded(lines=_plan_additions(cart, lines, prices))


def change_quantities(
    cart: Cart, changes: Sequence[QuantityChange], prices: Mapping[str, CatalogPrice]
) -> CartLineQuantitiesChanged | None:
    """The lines that change (a line set to the quantity and price it has is left out); None
    when none does: nothing to record."""
    ensure_active(cart)
    if not changes:
        raise InvalidInput("give at least one line", ["lines"])
    errors: list[DomainError] = []
    changed: list[CartLineSnapshot] = []
    removed: list[str] = []
    seen: set[str] = set()
    for i, change in enumerate(changes):
        line = cart.line(change.line_id)
        if line is None:
            errors.append(NotFound("no such line in this cart", ["lines", str(i), "lineId"]))
        elif change.line_id in seen:
            errors.append(InvalidInput("line listed twice", ["lines", str(i), "lineId"]))
        elif error := _quantity_error(change.quantity, 0, ["lines", str(i), "quantity"]):
            errors.append(error)
        elif change.quantity == 0:
            removed.append(line.line_id)
        else:
            price = prices.get(line.sku)
            if error := _price_error(price, line.sku, cart.currency_code, ["lines", str(i), "lineId"]):
                errors.append(error)
            else:
                assert price is not None
                if (change.quantity, price.price) != (line.quantity, line.unit_price):
                    changed.append(CartLineSnapshot(line.line_id, line.sku, change.quantity, price.price))
        seen.add(change.line_id)
    if errors:
        raise ValidationErrors(errors)
    if not changed and not removed:
        return None
    return CartLineQuantitiesChanged(lines=tuple(changed), removed_line_ids=tuple(removed))


def remove_lines(cart: Cart, line_ids: Sequence[str]) -> CartLinesRemoved:
    ensure_active(cart)
    if not line_ids:
        raise InvalidInput("give at least one line id", ["lineIds"])
    errors: list[DomainError] = [
        NotFound("no such line in this cart", ["lineIds", str(i)])
        for i, line_id in enumerate(line_ids)
        if cart.line(line_id) is None
    ]
    if errors:
        raise ValidationErrors(errors)
    return CartLinesRemoved(line_ids=tuple(dict.fromkeys(line_ids)))


def attach(
    guest: Cart, customer_id: str, survivor: Cart | None, prices: Mapping[str, CatalogPrice]
) -> AttachPlan:
    """Bind ``guest`` to the customer, merging it into ``survivor`` (their active cart) if there is one.

    Repeating an attach returns the same cart and decides nothing new.
    """
    if guest.customer_id is not None and guest.customer_id != customer_id:
        raise NotFound("cart not found", ["cartId"])
    if guest.status == MERGED and guest.merged_into is not None:
        return AttachPlan(guest.merged_into)
    ensure_active(guest)
    if guest.customer_id == customer_id:
        return AttachPlan(guest.cart_id)
    # A cart in another currency cannot take these lines at their prices; keep both carts.
    if survivor is None or survivor.status != ACTIVE or survivor.currency_code != guest.currency_code:
        return AttachPlan(guest.cart_id, guest_events=(CartCustomerAttached(customer_id),))
    merged_in, dropped = _plan_merge(guest, survivor, prices)
    return AttachPlan(
        survivor.cart_id,
        guest_events=(CartMerged(into_cart_id=survivor.cart_id, customer_id=customer_id),),
        survivor_events=(
            CartLinesMergedIn(from_cart_id=guest.cart_id, lines=merged_in, dropped_skus=dropped),
        ),
    )


def choose_shipping(
    cart: Cart, country_code: str, region: str | None, method_code: str | None
) -> CartShippingChosen:
    """Input shape only; the handler checks the method against the configuration."""
    ensure_active(cart)
    errors: list[DomainError] = []
    if not is_country(country_code):
        errors.append(InvalidInput(NOT_A_COUNTRY, ["countryCode"]))
    if region is not None and not 0 < len(region) <= MAX_CODE:
        errors.append(InvalidInput(f"region must be 1 to {MAX_CODE} characters", ["region"]))
    if method_code is not None and not 0 < len(method_code) <= MAX_CODE:
        errors.append(InvalidInput(f"methodCode must be 1 to {MAX_CODE} characters", ["methodCode"]))
    if errors:
        raise ValidationErrors(errors)
    return CartShippingChosen(country_code, region, method_code)


def apply_discount_code(cart: Cart, code: str) -> CartDiscountCodeApplied:
    """Input shape only; the handler checks the code exists and is valid now."""
    ensure_active(cart)
    if not 0 < len(code) <= MAX_CODE:
        raise InvalidInput(f"code must be 1 to {MAX_CODE} characters", ["code"])
    return CartDiscountCodeApplied(code)


def remove_discount_code(cart: Cart) -> CartDiscountCodeRemoved:
    ensure_active(cart)
    if cart.discount_code is None:
        raise InvalidInput("the cart has no discount code", ["cartId"])
    return CartDiscountCodeRemoved(cart.discount_code)


def check_out(cart: Cart, order_id: str) -> CartCheckedOut:
    ensure_active(cart)
    if not cart.lines:
        raise CartEmpty("the cart is empty", ["cartId"])
    return CartCheckedOut(order_id=order_id)


# ---------------------------------------------------------------- helpers


def _first_known_currency(lines: Sequence[LineRequest], prices: Mapping[str, CatalogPrice]) -> str | None:
    for request in lines:
        price = prices.get(request.sku)
        if price is not None and price.active:
            return price.currency_code
    return None


def _quantity_error(quantity: int, minimum: int, field: list[str]) -> DomainError | None:
    if quantity < minimum:
        return InvalidInput(f"quantity must be at least {minimum}", field)
    if quantity > MAX_QUANTITY:
        return InvalidInput(f"quantity must be at most {MAX_QUANTITY} per line", field)
    return None


def _sku_error(sku: str, field: list[str]) -> DomainError | None:
    # No catalog SKU is longer; a longer one is refused without being repeated back whole.
    if len(sku) > MAX_SKU:
        return InvalidInput(f"sku must be at most {MAX_SKU} characters", field)
    return None


def _price_error(price: CatalogPrice | None, sku: str, currency: str, field: list[str]) -> DomainError | None:
    if price is None or not price.active:
        return NotFound(f"SKU {sku!r} is not for sale", field)
    if price.currency_code != currency:
        return InvalidInput(f"SKU {sku!r} is priced in {price.currency_code}, the cart in {currency}", field)
    return None


def _plan_additions(
    cart: Cart, requests: Sequence[LineRequest], prices: Mapping[str, CatalogPrice]
) -> tuple[CartLineSnapshot, ...]:
    """Resulting lines after adding ``requests`` (same SKU adds to its line), or every error at once."""
    by_sku = {line.sku: line for line in cart.lines}
    touched: dict[str, None] = {}
    seq = cart.line_seq
    errors: list[DomainError] = []
    for i, request in enumerate(requests):
        path = ["lines", str(i)]
        error = (
            _quantity_error(request.quantity, 1, [*path, "quantity"])
            or _sku_error(request.sku, [*path, "sku"])
            or _price_error(prices.get(request.sku), request.sku, cart.currency_code, [*path, "sku"])
        )
        if error is not None:
            errors.append(error)
            continue
        price = prices[request.sku].price
        existing = by_sku.get(request.sku)
        if existing is not None:
            total = existing.quantity + request.quantity
            if total > MAX_QUANTITY:
                errors.append(
                    InvalidInput(
                        f"a line holds at most {MAX_QUANTITY}; {request.sku!r} would hold {total} "
                        "(lines of one SKU add up)",
                        [*path, "quantity"],
                    )
                )
                continue
            by_sku[request.sku] = replace(existing, quantity=total, unit_price=price)
        elif len(by_sku) >= MAX_LINES:
            errors.append(InvalidInput(f"a cart holds at most {MAX_LINES} lines", path))
            continue
        else:
            seq += 1
            by_sku[request.sku] = Line(str(seq), request.sku, request.quantity, price)
        touched[request.sku] = None
    if errors:
        raise ValidationErrors(errors)
    return tuple(by_sku[sku].snapshot for sku in touched)


def _plan_merge(
    guest: Cart, survivor: Cart, prices: Mapping[str, CatalogPrice]
) -> tuple[tuple[CartLineSnapshot, ...], tuple[str, ...]]:
    by_sku = {line.sku: line for line in survivor.lines}
    touched: dict[str, None] = {}
    dropped: list[str] = []
    seq = survivor.line_seq
    for line in guest.lines:
        price = prices.get(line.sku)
        current = price.price if price is not None and price.active else line.unit_price
        existing = by_sku.get(line.sku)
        if existing is not None:
            total = min(MAX_QUANTITY, existing.quantity + line.quantity)
            by_sku[line.sku] = replace(existing, quantity=total, unit_price=current)
        elif len(by_sku) >= MAX_LINES:
            dropped.append(line.sku)
            continue
        else:
            seq += 1
            by_sku[line.sku] = Line(str(seq), line.sku, line.quantity, current)
        touched[line.sku] = None
    return tuple(by_sku[sku].snapshot for sku in touched), tuple(dropped)
