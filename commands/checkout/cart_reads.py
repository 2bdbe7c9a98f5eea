"""What checkout's first phase reads, under the cart's lock: the cart's stream and, in the same
round trip, what the order needs (the cart's variants, stock rows, money configuration, the
order's number, whether an order for the cart awaits payment).

Those reads depend on the cart (its SKUs, its currency), which only its events say. The statement
takes them from the events' JSON (the SKUs of every ``lines`` snapshot, the currency of
``CartCreated``), a superset of what the fold keeps: extra SKUs cost nothing. When the fold
disagrees (an event shape the path does not know), the reads are made again from the folded cart
in a second round trip, so a wrong guess costs time, never correctness.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from commands.domain import cart as cart_domain
from commands.domain.cart import Cart
from commands.domain.pricing import Variant, skus
from commands.handlers import cart as cart_handlers
from commands.inventory import reservations
from commands.money import config as money_config
from commands.store.driver import PgConnection
from commands.store.ledger.reader import RECORDED_COLUMNS, recorded_event


class CartReads(NamedTuple):
    awaiting_payment: bool  # an order for the cart awaits payment
    variants: dict[str, Variant]
    config: money_config.MoneyConfig  # for the cart's currency and the destination
    lease_end: datetime  # for ``reservations.prepare_new``
    tracked: list[str]
    number: int  # the order's, from ``order_numbers``


def _columns(cart_id: str, skus: str, currency: str, country_code: str, lease: str) -> str:
    """The reads' select-list, from the SQL expressions the caller names for the cart's id, its
    SKUs (``text[]``), its currency, the destination's country and the lease (``interval``)."""
    return (
        f"EXISTS (SELECT 1 FROM checkout_carts WHERE cart_id = {cart_id}) AS awaiting_payment, "
        # Taken here so that ``OrderPlaced`` goes with the first phase's writes; a sequence is not
        # transactional, so a checkout refused after this consumes a number, as a refusal for
        # stock always did.
        "nextval('order_numbers') AS number, "
        "ARRAY(SELECT ROW(sku, title, price, currency, status, tax_category) FROM catalog_variants "
        f"WHERE sku = ANY({skus}::text[])) AS variants, "
        f"{reservations.new_order_columns(skus, lease)}, "
        f"{money_config.config_columns(currency, country_code)}"
    )


# Anonymous ROW values, read by position (see ``money_config.config_columns``). The stream's
# columns first (``recorded_event`` reads them by position); an empty stream is one row of NULLs.
# $1 the cart's stream, $2 its id, $3 the destination's country, $4 the lease.
_CART_AND_READS = (
    f"WITH stream AS MATERIALIZED (SELECT {RECORDED_COLUMNS} FROM ledger_events WHERE stream_id = $1), "
    "guessed AS (SELECT "
    "ARRAY(SELECT DISTINCT sku #>> '{}' FROM stream, jsonb_path_query(data, 'lax $.lines[*].sku') AS sku) "
    "AS skus, (SELECT data ->> 'currency_code' FROM stream WHERE stream_version = 1) AS currency), "
    f"reads AS (SELECT guessed.skus AS guessed_skus, guessed.currency AS guessed_currency, "
    f"{_columns('$2', 'guessed.skus', 'guessed.currency', '$3', '$4')} FROM guessed) "
    "SELECT stream.*, reads.* FROM reads LEFT JOIN stream ON true ORDER BY stream.stream_version"
)
# The reads alone, for a cart the guess missed.
_READS = f"SELECT {_columns('$1', '$2', '$3', '$4', '$5')}"


async def load(
    conn: PgConnection, cart_id: str, country_code: str | None, lease: timedelta
) -> tuple[Cart, CartReads | None]:
    """The cart, and the reads for it if the guess from its events matched (else None: see
    ``reads_for``)."""
    rows = await conn.fetch(_CART_AND_READS, cart_handlers.stream_id(cart_id), cart_id, country_code, lease)
    cart = cart_domain.fold(recorded_event(row).decode() for row in rows if row["position"] is not None)
    first = rows[0]
    if first["guessed_currency"] != cart.currency_code or not set(skus(cart)) <= set(first["guessed_skus"]):
        return cart, None
    return cart, _reads_of(first)


async def reads_for(conn: PgConnection, cart: Cart, country_code: str | None, lease: timedelta) -> CartReads:
    """The reads for ``cart`` as folded: one more round trip."""
    row = await conn.fetchrow(_READS, cart.cart_id, list(skus(cart)), cart.currency_code, country_code, lease)
    return _reads_of(row)


def _reads_of(row: Any) -> CartReads:
    variants = {
        sku: Variant(sku, title, price, variant_currency.strip(), status == "active", tax_category)
        for sku, title, price, variant_currency, status, tax_category in row["variants"]
    }
    return CartReads(
        bool(row["awaiting_payment"]),
        variants,
        money_config.config_of(row),
        row["lease_end"],
        row["tracked"],
        row["number"],
    )
