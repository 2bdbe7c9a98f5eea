"""What checkout's first phase reads, under the cart's lock: the cart's stream and, in the same
round trip, what the order needs (the cart's variants, stock rows, money configuration, the
order's number, whether an order for the cart awaits payment).

Those reads depend on the cart (its SKUs, its currency), which only its events say. The statement
takes them from the events' JSON (the SKUs of every ``lines`` snapshot, the currency of
``CartCreated``), a superset of what the fold keeps: extra SKUs cost nothing. When the fold
disagrees (an event shape the path does not know), the reads are made again for the folded cart
in a second round trip, so a wrong guess costs time, never correctness.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, NamedTuple

from commands.domain import cart as cart_domain
from commands.domain.cart import Cart
from commands.domain.pricing import Variant, skus
from commands.handlers import cart as cart_handlers
from commands.inventory import pending, reservations
from commands.money import config as money_config
from commands.store.driver import PgConnection
from commands.store.ledger.reader import RECORDED_COLUMNS, recorded_event


class CartReads(NamedTuple):
    awaiting_payment: bool  # an order for the cart awaits payment
    variants: dict[str, Variant]
    config: money_config.MoneyConfig  # for the cart's currency and the destination
    lease_end: datetime  # for ``reservations.prepare_new``
    tracked: list[str]
    tracked_free: list[int]  # the free units of each of ``tracked``'s rows, as this read saw them
    number: int  # the order's, from ``order_numbers``


def _columns(cart_id: str, skus_sql: str, currency_sql: str, country_code: str, lease: str) -> str:
    """The reads' select-list but the order's number, from the SQL expressions the caller names
    for the cart's id, its SKUs (``text[]``), its currency, the destination's country and the
    lease (``interval``)."""
    return (
        f"EXISTS (SELECT 1 FROM checkout_carts WHERE cart_id = {cart_id}) AS awaiting_payment, "
        "ARRAY(SELECT ROW(sku, title, price, currency, status, tax_category) FROM catalog_variants "
        f"WHERE sku = ANY({skus_sql}::text[])) AS variants, "
        f"{reservations.new_order_columns(skus_sql, lease)}, "
        f"{money_config.config_columns(currency_sql, country_code)}"
    )


# Anonymous ROW values, read by position (see ``money_config.config_columns``). The stream's
# columns first (``recorded_event`` reads them by position); the reads on the first event's row
# only (decoded once), or on a row of their own, the stream's columns NULL, for an empty stream.
# The order's number is taken here so that ``OrderPlaced`` goes with the first phase's writes: a
# sequence is not transactional, so every checkout refused after this read uses up a number.
# $1 the cart's stream, $2 its id, $3 the destination's country, $4 the lease.
_CART_AND_READS = (
    f"WITH stream AS MATERIALIZED (SELECT {RECORDED_COLUMNS} FROM ledger_events WHERE stream_id = $1), "
    "guessed AS (SELECT "
    "ARRAY(SELECT DISTINCT sku #>> '{}' FROM stream, jsonb_path_query(data, 'lax $.lines[*].sku') AS sku) "
    "AS skus, (SELECT (data ->> 'currency_code')::char(3) FROM stream WHERE stream_version = 1) "
    "AS currency), "
    "reads AS (SELECT 1 AS first_version, guessed.skus AS guessed_skus, "
    "guessed.currency AS guessed_currency, "
    f"nextval('order_numbers') AS number, {_columns('$2', 'guessed.skus', 'guessed.currency', '$3', '$4')} "
    "FROM guessed) "
    "SELECT stream.*, reads.* FROM stream FULL JOIN reads ON stream.stream_version = reads.first_version "
    "ORDER BY stream.stream_version"
)
# The reads again, for a cart the guess missed (the number is the first read's).
_READS = f"SELECT {_columns('$1', '$2', '$3', '$4', '$5')}"


async def load(
    conn: PgConnection, cart_id: str, country_code: str | None, lease: timedelta
) -> tuple[Cart, CartReads]:
    """The cart, and the reads for it: one round trip, or two when the guess from its events
    missed (then the reads are made again for the cart as folded)."""
    rows = await conn.fetch(_CART_AND_READS, cart_handlers.stream_id(cart_id), cart_id, country_code, lease)
    events = [recorded_event(row).decode() for row in rows if row["position"] is not None]
    cart = cart_domain.fold(events)
    first = rows[0]
    guessed = first["guessed_currency"] == cart.currency_code and set(skus(cart)) <= set(
        first["guessed_skus"]
    )
    # A cart with no events is refused by its caller: nothing to read again for it.
    if guessed or not events:
        return cart, _reads_of(first, first["number"])
    row = await conn.fetchrow(_READS, cart.cart_id, list(skus(cart)), cart.currency_code, country_code, lease)
    return cart, _reads_of(row, first["number"])


def _reads_of(row: Any, number: int) -> CartReads:
    variants = {
        sku: Variant(sku, title, price, variant_currency.strip(), status == "active", tax_category)
        for sku, title, price, variant_currency, status, tax_category in row["variants"]
    }
    return CartReads(
        bool(row["awaiting_payment"]),
        variants,
        money_config.config_of(row),
        row["lease_end"],
        *pending.tracked_rows(row["tracked"]),
        number,
    )
