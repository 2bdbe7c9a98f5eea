"""Order money, pure: shipping, discounts and taxes on top of priced lines, as a ``Totals`` record.

Amounts are exact Decimals rounded to the currency's minor units with banker's
rounding (ROUND_HALF_EVEN), never floats.

- Shipping: a method is eligible for a destination when it is in the cart's
  currency and names the country (or names none); its price is the country's
  rate or its flat rate, and nothing at or above ``free_above`` (compared with
  the merchandise subtotal, before discounts).
- Discounts: a percentage (rounded) or a fixed amount (capped at its base) off
  the subtotal or off shipping. A subtotal discount is spread over the lines in
  proportion to their totals (the last line takes the rounding remainder), so
  each line is taxed on what the buyer pays for it.
- Taxes: a rate per (country, region, category); a region's own rate wins over
  the country's. Shipping is taxed at the destination's standard rate. Prices
  are tax-exclusive (tax added on top) or tax-inclusive (tax taken out of the
  price: ``gross * rate / (1 + rate)``) per currency. ``PER_LINE`` rounds each
  line's tax and adds the rounded amounts; ``PER_TOTAL`` adds the unrounded
  bases of a rate and rounds that rate's tax once. Tax lines group by rate:
  (rate, base, amount), base being the amount before tax.
- Total: subtotal + shipping - discounts, plus tax when prices exclude it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_EVEN, Decimal

from commands.domain.currencies import minor_units
from commands.errors import DomainError, InvalidInput, NotFound

STANDARD, REDUCED, ZERO = "standard", "reduced", "zero"
TAX_CATEGORIES = (STANDARD, REDUCED, ZERO)
PER_LINE, PER_TOTAL = "PER_LINE", "PER_TOTAL"
PERCENTAGE, FIXED = "PERCENTAGE", "FIXED"
ON_SUBTOTAL, ON_SHIPPING = "SUBTOTAL", "SHIPPING"
ZERO_AMOUNT = Decimal(0)


class ShippingMethodRequired(DomainError):
    code = "SHIPPING_METHOD_REQUIRED"


class ShippingMethodIneligible(DomainError):
    code = "SHIPPING_METHOD_INELIGIBLE"


class DiscountCodeInvalid(DomainError):
    code = "DISCOUNT_CODE_INVALID"


class DiscountCodeExpired(DomainError):
    code = "DISCOUNT_CODE_EXPIRED"


class DiscountMinimumNotMet(DomainError):
    code = "DISCOUNT_CODE_MINIMUM_NOT_MET"


class DiscountUsageLimitReached(DomainError):
    code = "DISCOUNT_CODE_USAGE_LIMIT_REACHED"


def quantum(currency: str) -> Decimal:
    decimals = minor_units(currency)
    return Decimal(1).scaleb(-(2 if decimals is None else decimals))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Banker's rounding to the currency's minor units."""
    return amount.quantize(quantum(currency), rounding=ROUND_HALF_EVEN)


# ---------------------------------------------------------------- configuration


@dataclass(frozen=True)
class TaxPolicy:
    """How one currency's prices are entered and its tax rounded."""

    prices_include_tax: bool = False
    rounding: str = PER_LINE


@dataclass(frozen=True)
class TaxRate:
    country: str
    category: str
    # A fraction: 0.20 is 20 %.
    rate: Decimal
    region: str | None = None


@dataclass(frozen=True)
class Destination:
    country: str
    region: str | None = None


@dataclass(frozen=True)
class ShippingMethod:
    code: str
    name: str
    currency: str
    price: Decimal
    free_above: Decimal | None = None
    # Per destination country, instead of ``price``.
    country_prices: tuple[tuple[str, Decimal], ...] = ()
    # Countries served; empty serves every country.
    countries: tuple[str, ...] = ()
    active: bool = True

    def price_for(self, currency: str, destination: Destination | None, subtotal: Decimal) -> Decimal | None:
        """The price for this cart, or None when the method cannot ship it."""
        if not self.active or currency != self.currency:
            return None
        country = None if destination is None else destination.country
        if self.countries and country not in self.countries:
            return None
        if self.free_above is not None and subtotal >= self.free_above:
            return round_money(ZERO_AMOUNT, currency)
        by_country = dict(self.country_prices)
        price = by_country.get(country, self.price) if country is not None else self.price
        return round_money(price, currency)


@dataclass(frozen=True)
class DiscountCode:
    code: str
    kind: str
    # PERCENTAGE: percent off (10 is 10 %); FIXED: an amount in ``currency``.
    value: Decimal
    target: str = ON_SUBTOTAL
    currency: str | None = None
    minimum_subtotal: Decimal | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    usage_limit: int | None = None
    per_customer_limit: int | None = None
    active: bool = True


def check_discount(
    discount: DiscountCode, currency: str, subtotal: Decimal, now: datetime, field: Sequence[str]
) -> None:
    """Raise the reason ``discount`` cannot apply to this cart now, naming ``field``."""
    if not discount.active:
        raise DiscountCodeInvalid(f"the code {discount.code} is not valid", field)
    if discount.starts_at is not None and now < discount.starts_at:
        raise DiscountCodeExpired(f"the code {discount.code} is not valid yet", field)
    if discount.ends_at is not None and now >= discount.ends_at:
        raise DiscountCodeExpired(f"the code {discount.code} has expired", field)
    if discount.kind == FIXED and discount.currency != currency:
        raise DiscountCodeInvalid(f"the code {discount.code} does not apply to {currency} carts", field)
    minimum = discount.minimum_subtotal
    if minimum is not None and subtotal < minimum:
        raise DiscountMinimumNotMet(
            f"the code {discount.code} needs a subtotal of at least "
            f"{round_money(minimum, currency)} {currency}",
            field,
        )


def eligible_methods(
    methods: Iterable[ShippingMethod], currency: str, destination: Destination | None, subtotal: Decimal
) -> list[tuple[ShippingMethod, Decimal]]:
    """The methods that can ship this cart, with their prices, by code."""
    priced = ((m, m.price_for(currency, destination, subtotal)) for m in methods)
    return sorted(((m, p) for m, p in priced if p is not None), key=lambda mp: mp[0].code)


def choose_shipping(
    methods: Sequence[ShippingMethod],
    code: str | None,
    currency: str,
    destination: Destination | None,
    subtotal: Decimal,
    field: Sequence[str],
) -> tuple[ShippingMethod, Decimal] | None:
    """The chosen method and its price; None when the store ships nothing by method (none configured).

    A store with methods needs one chosen, and eligible for the destination.
    """
    if not any(m.active for m in methods):
        return None
    if code is None:
        raise ShippingMethodRequired("choose a shipping method", field)
    method = next((m for m in methods if m.code == code), None)
    if method is None:
        raise NotFound(f"there is no shipping method {code}", field)
    price = method.price_for(currency, destination, subtotal)
    if price is None:
        raise ShippingMethodIneligible(f"the shipping method {code} cannot ship this cart there", field)
    return method, price


def choose_named_shipping(
    methods: Sequence[ShippingMethod],
    code: str,
    currency: str,
    destination: Destination | None,
    subtotal: Decimal,
    field: Sequence[str],
) -> tuple[ShippingMethod, Decimal]:
    """A method the buyer names just now: as ``choose_shipping``, and refused also when the store
    ships without methods (a name then is a mistake to report, not a free delivery)."""
    chosen = choose_shipping(methods, code, currency, destination, subtotal, field)
    if chosen is None:
        raise NotFound(f"there is no shipping method {code}: this store ships without methods", field)
    return chosen


# ---------------------------------------------------------------- totals


@dataclass(frozen=True)
class PricedLine:
    sku: str
    quantity: int
    unit_price: Decimal
    tax_category: str = STANDARD


@dataclass(frozen=True)
class TaxLine:
    rate: Decimal
    base: Decimal
    amount: Decimal


@dataclass(frozen=True)
class Totals:
    currency: str
    subtotal: Decimal
    shipping: Decimal
    discounts: Decimal
    tax_lines: tuple[TaxLine, ...]
    tax: Decimal
    total: Decimal
    prices_include_tax: bool = False
    shipping_method: str | None = None
    discount_code: str | None = None


@dataclass(frozen=True)
class _Taxable:
    category: str
    amount: Decimal


def rate_for(rates: Iterable[TaxRate], destination: Destination, category: str) -> Decimal | None:
    """The destination's rate for ``category``: its region's if set, else its country's; None: no tax."""
    country_rate: Decimal | None = None
    for rate in rates:
        if rate.country != destination.country or rate.category != category:
            continue
        if rate.region is not None and rate.region == destination.region:
            return rate.rate
        if rate.region is None:
            country_rate = rate.rate
    return country_rate


def compute_totals(
    lines: Sequence[PricedLine],
    currency: str,
    *,
    policy: TaxPolicy = TaxPolicy(),
    rates: Sequence[TaxRate] = (),
    destination: Destination | None = None,
    shipping: Decimal = ZERO_AMOUNT,
    shipping_method: str | None = None,
    discount: DiscountCode | None = None,
) -> Totals:
    """The money of a cart or order. ``discount`` must have passed ``check_discount``."""
    if policy.rounding not in (PER_LINE, PER_TOTAL):
        raise InvalidInput(f"unknown tax rounding {policy.rounding}")
    line_totals = [round_money(line.unit_price * line.quantity, currency) for line in lines]
    subtotal = round_money(sum(line_totals, ZERO_AMOUNT), currency)
    shipping = round_money(shipping, currency)
    subtotal_off = shipping_off = round_money(ZERO_AMOUNT, currency)
    if discount is not None:
        if discount.target == ON_SHIPPING:
            shipping_off = _discount_amount(discount, shipping, currency)
        else:
            subtotal_off = _discount_amount(discount, subtotal, currency)
    shares = _spread(subtotal_off, line_totals, currency)
    taxable = [
        _Taxable(line.tax_category, total - share)
        for line, total, share in zip(lines, line_totals, shares, strict=True)
    ]
    if shipping - shipping_off > 0:
        taxable.append(_Taxable(STANDARD, shipping - shipping_off))
    tax_lines = _tax_lines(taxable, rates, destination, policy, currency) if destination is not None else ()
    tax = round_money(sum((t.amount for t in tax_lines), ZERO_AMOUNT), currency)
    discounts = subtotal_off + shipping_off
    total = subtotal + shipping - discounts + (ZERO_AMOUNT if policy.prices_include_tax else tax)
    return Totals(
        currency=currency,
        subtotal=subtotal,
        shipping=shipping,
        discounts=discounts,
        tax_lines=tax_lines,
        tax=tax,
        total=round_money(total, currency),
        prices_include_tax=policy.prices_include_tax,
        shipping_method=shipping_method,
        discount_code=None if discount is None else discount.code,
    )


def _discount_amount(discount: DiscountCode, base: Decimal, currency: str) -> Decimal:
    if discount.kind == PERCENTAGE:
        off = round_money(base * discount.value / 100, currency)
    else:
        off = round_money(discount.value, currency)
    return min(off, base)


def _spread(amount: Decimal, weights: Sequence[Decimal], currency: str) -> list[Decimal]:
    """``amount`` split in proportion to ``weights``; the last weighted line takes the remainder."""
    whole = sum(weights, ZERO_AMOUNT)
    zero = round_money(ZERO_AMOUNT, currency)
    if not amount or not whole:
        return [zero for _ in weights]
    shares = [round_money(amount * w / whole, currency) for w in weights]
    last = max(i for i, w in enumerate(weights) if w)
    shares[last] = amount - (sum(shares, ZERO_AMOUNT) - shares[last])
    return shares


def _tax_lines(
    taxable: Sequence[_Taxable],
    rates: Sequence[TaxRate],
    destination: Destination,
    policy: TaxPolicy,
    currency: str,
) -> tuple[TaxLine, ...]:
    by_rate: dict[Decimal, list[Decimal]] = {}
    for item in taxable:
        rate = rate_for(rates, destination, item.category)
        if rate is not None:
            by_rate.setdefault(rate, []).append(item.amount)
    return tuple(
        _tax_line(rate, amounts, policy, currency) for rate, amounts in sorted(by_rate.items(), reverse=True)
    )


def _tax_of(amount: Decimal, rate: Decimal, inclusive: bool) -> Decimal:
    return amount * rate / (1 + rate) if inclusive else amount * rate


def _tax_line(rate: Decimal, amounts: Sequence[Decimal], policy: TaxPolicy, currency: str) -> TaxLine:
    inclusive = policy.prices_include_tax
    gross = sum(amounts, ZERO_AMOUNT)
    if policy.rounding == PER_LINE:
        tax = sum((round_money(_tax_of(a, rate, inclusive), currency) for a in amounts), ZERO_AMOUNT)
    else:
        tax = round_money(_tax_of(gross, rate, inclusive), currency)
    base = gross - tax if inclusive else gross
    return TaxLine(rate=rate, base=round_money(base, currency), amount=round_money(tax, currency))
