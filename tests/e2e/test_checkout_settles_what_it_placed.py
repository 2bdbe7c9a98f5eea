"""The settlement of a checkout's own payment answer starts from the order and cart its first
phase wrote and read, without loading them again; when something wrote either stream while the
provider was deciding, the settlement finds the version taken, loads both and decides again."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from commands.checkout import effects
from commands.store.unit_of_work import UnitOfWork
from gateway.schema.ids import global_id, parse_global_id
from tests.support.checkout import Shop

pytestmark = pytest.mark.checkout_settings

ATTACH = """mutation($cart: ID!) {
  cartAttachCustomer(cartId: $cart) { cart { id } position userErrors { code message } } }"""


@pytest.fixture
def order_loads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The order ids the settlement (or anything else in this process) loads from the ledger."""
    loads: list[str] = []
    load = effects.load_order

    async def counted(uow: UnitOfWork, order_id: str) -> Any:
        loads.append(order_id)
        return await load(uow, order_id)

    monkeypatch.setattr(effects, "load_order", counted)
    return loads


async def _placed_order(shop: Shop, cart_gid: str) -> str:
    """The global id of the order placed for the cart, once its first phase has committed."""
    parsed = parse_global_id(cart_gid, "Cart")
    assert parsed is not None
    cart_id = parsed[1]
    found: list[str] = []

    async def placed() -> bool:
        async with shop.container.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT data->>'order_id' FROM ledger_events "
                        "WHERE type = 'OrderPlaced' AND data->>'cart_id' = :c"
                    ),
                    {"c": cart_id},
                )
            ).first()
        if row is not None:
            found.append(str(row[0]))
        return row is not None

    await shop.eventually(placed, timeout=5)
    return global_id("Order", found[-1])


async def _held_checkout(
    shop: Shop, cart: str, key: str, auth: str | None, monkeypatch: pytest.MonkeyPatch
) -> tuple[asyncio.Task[dict[str, Any]], asyncio.Event]:
    """A checkout whose authorization goes to the provider only once the returned event is set:
    another writer acts between its first phase and its settlement, however loaded the machine
    (a fixed provider latency was a window that a slow run could miss)."""
    payments = shop.container.services.payments
    authorize = payments.authorize
    release = asyncio.Event()

    async def held(**request: Any) -> Any:
        await release.wait()
        return await authorize(**request)

    monkeypatch.setattr(payments, "authorize", held)
    return asyncio.create_task(shop.checkout(cart, key, auth=auth)), release


def _authorizations_counted() -> float:
    labels = {"operation": "authorize", "status": "AUTHORIZED"}
    return REGISTRY.get_sample_value("commerce_payment_outcomes_total", labels) or 0.0


async def test_an_order_cancelled_while_the_provider_decided_is_voided_not_confirmed(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    await shop.product("TEE", on_hand=2)
    customer = shop.customer("cust-cancel-early")
    cart = await shop.cart(("TEE", 1), customer="cust-cancel-early")
    checkout, release = await _held_checkout(shop, cart, "slow-answer-cancelled", customer, monkeypatch)
    order_gid = await _placed_order(shop, cart)
    assert not checkout.done(), "the provider has not answered yet"
    body = await shop.order_op("orderCancel", order_gid, "cancel-early", customer, reason="changed my mind")
    assert body["data"]["orderCancel"]["userErrors"] == [], body
    release.set()
    await checkout
    # The answer (authorized) met a cancelled order: the money goes back, the stock too.
    order = await shop.order(order_gid)
    assert (order.status.value, order.payment_status.value) == ("CANCELLED", "VOIDED")
    assert [p["status"] for p in (await shop.provider_payments(order_gid))["payments"]] == ["VOIDED"]
    assert await shop.stock("TEE") == (2, 0)
    types = await shop.order_event_types(order_gid)
    assert types[:2] == ["OrderPlaced", "OrderCancelled"] and "OrderConfirmed" not in types


async def test_a_cart_merged_while_the_provider_decided_stays_merged_and_the_order_confirms(
    shop: Shop, order_loads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    await shop.product("TEE", on_hand=3)
    customer = shop.customer("cust-merge-early")
    kept = await shop.cart(("TEE", 1), customer="cust-merge-early")
    guest = await shop.cart(("TEE", 1))
    checkout, release = await _held_checkout(shop, guest, "slow-answer-merged", None, monkeypatch)
    order_gid = await _placed_order(shop, guest)
    attached = (await shop.gql(ATTACH, {"cart": guest}, customer))["data"]["cartAttachCustomer"]
    assert attached["userErrors"] == [] and attached["cart"]["id"] == kept
    release.set()
    payload = await checkout
    assert payload["userErrors"] == [] and payload["order"]["status"] == "CONFIRMED", payload
    assert payload["order"]["id"] == order_gid
    # The settlement met the taken cart version and loaded the order to decide again.
    parsed = parse_global_id(order_gid, "Order")
    assert parsed is not None and parsed[1] in order_loads, order_loads
    # Closing the merged cart is refused (decided on the cart as it is now), not the settlement.
    assert await shop.count_events("CartCheckedOut") == 0
    assert await shop.stock("TEE") == (3, 1)


async def test_an_undisturbed_checkout_confirms_and_closes_its_cart_once(
    shop: Shop, order_loads: list[str]
) -> None:
    await shop.product("TEE", on_hand=2)
    cart = await shop.cart(("TEE", 1))
    payload = await shop.checkout(cart, "undisturbed")
    assert payload["userErrors"] == [] and payload["order"]["status"] == "CONFIRMED"
    types = await shop.order_event_types(payload["order"]["id"])
    assert types == ["OrderPlaced", "PaymentAuthorized", "OrderConfirmed"]
    assert await shop.count_events("CartCheckedOut") == 1
    assert order_loads == [], "settled from the order its first phase placed, not loaded again"


async def test_a_lease_that_lapsed_while_the_provider_decided_is_taken_again(
    shop: Shop, order_loads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The lease sweep writes no order event: the settlement's append cannot see it by the order's
    # version, so the statement that appends checks the order's stock too, and decides again.
    await shop.product("TEE", on_hand=2)
    cart = await shop.cart(("TEE", 1))
    checkout, release = await _held_checkout(shop, cart, "slow-answer-lapsed", None, monkeypatch)
    order_gid = await _placed_order(shop, cart)
    await shop.expire_lease(order_gid)
    assert await shop.stock("TEE") == (2, 0)
    counted = _authorizations_counted()
    release.set()
    payload = await checkout
    assert payload["userErrors"] == [] and payload["order"]["status"] == "CONFIRMED", payload
    parsed = parse_global_id(order_gid, "Order")
    assert parsed is not None and parsed[1] in order_loads, "decided again on the order as loaded"
    # Marked in both tries, counted once: by the one that committed.
    assert _authorizations_counted() - counted == 1
    assert await shop.stock("TEE") == (2, 1)
    assert await shop.order_event_types(order_gid) == ["OrderPlaced", "PaymentAuthorized", "OrderConfirmed"]


async def test_stock_sold_after_the_lease_lapsed_while_the_provider_decided_gives_the_money_back(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    await shop.product("TEE", on_hand=1)
    late = await shop.cart(("TEE", 1))
    checkout, release = await _held_checkout(shop, late, "slow-answer-sold-out", None, monkeypatch)
    order_gid = await _placed_order(shop, late)
    await shop.expire_lease(order_gid)
    monkeypatch.undo()  # the next buyer's authorization is not held
    other = await shop.checkout(await shop.cart(("TEE", 1)), "quick-buyer")
    assert other["order"]["status"] == "CONFIRMED", other
    release.set()
    payload = await checkout
    assert [e["code"] for e in payload["userErrors"]] == ["OUT_OF_STOCK"], payload
    order = await shop.order(order_gid)
    assert (order.status.value, order.payment_status.value) == ("CANCELLED", "VOIDED")
    assert [p["status"] for p in (await shop.provider_payments(order_gid))["payments"]] == ["VOIDED"]
    assert await shop.stock("TEE") == (1, 1)
