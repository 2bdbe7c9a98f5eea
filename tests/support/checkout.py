"""Checkout test rig: the real app under uvicorn, the in-process sandbox provider sending its
webhooks to it over HTTP, and helpers to seed stock, create carts and inspect the ledger.

The ``shop`` fixture (root conftest) builds it; a module marked ``checkout_settings`` runs it with
``checkout_settings`` applied to its stores' settings.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import text

from commands.checkout import payment_attempts as payment_ops
from commands.checkout.effects import stream_id as order_stream
from commands.checkout.reconcile import ReconcileReport, reconcile
from commands.domain import order as order_domain
from commands.domain.order import Order
from commands.events import order as ev
from commands.inventory import lease_sweep
from commands.messages.cart import CartActor, CreateCart, LineRequest
from commands.store.ledger.reader import load_stream
from commands.store.unit_of_work import MessageMetadata
from gateway.bootstrap.container import Container
from gateway.bootstrap.settings import Settings
from gateway.edge.auth import JwtAuthenticator
from gateway.schema.ids import global_id, parse_global_id
from tests.support.cart import seed_catalog
from tests.support.waiting import eventually

META = MessageMetadata(actor="test")
# The provider call's timeout in tests: short, so tok_timeout tests are quick, yet long enough
# that a tok_ok answer from the in-process sandbox (same event loop) is not late when the
# whole suite loads both cores. The sandbox holds tok_timeout answers for longer.
PAYMENT_TIMEOUT = 1.0
SANDBOX_HOLD = 2.0
ADDRESS = {
    "name": "Ada Lovelace",
    "line1": "1 Analytical Way",
    "city": "London",
    "postalCode": "N1 9GU",
    "countryCode": "GB",
}

ORDER_FIELDS = """
  id number status customerId email
  payment { status providerReference amount { amount currencyCode } }
  lines { sku quantity unitPrice { amount } }
  total { amount currencyCode }
"""
CHECKOUT = f"""
mutation Checkout($input: CheckoutInput!) {{
  checkoutComplete(input: $input) {{
    order {{ {ORDER_FIELDS} }}
    position
    userErrors {{ field message code }}
  }}
}}
"""


def order_mutation(name: str, *args: str) -> str:
    params = "".join(f", ${a}: String" for a in args)
    passed = "".join(f", {a}: ${a}" for a in args)
    return f"""
mutation M($orderId: ID!, $key: String!{params}) {{
  {name}(orderId: $orderId, idempotencyKey: $key{passed}) {{
    order {{ {ORDER_FIELDS} }}
    position
    userErrors {{ field message code }}
  }}
}}
"""


def checkout_settings(settings: Settings) -> Settings:
    """Short payment timeouts, and a cost budget that hundreds of checkouts cannot exhaust."""
    return settings.with_overrides(
        payment_timeout_seconds=PAYMENT_TIMEOUT,
        read_wait_seconds=5.0,
        # Hundreds of checkouts from one test client must not run into the per-IP cost budget.
        edge=settings.edge.with_overrides(budget_capacity=10_000_000, budget_restore_rate=1_000_000.0),
    )


@dataclass
class Shop:
    container: Container
    http: httpx.AsyncClient
    sandbox: httpx.AsyncClient
    tokens: JwtAuthenticator

    # ------------------------------------------------------------ setup

    async def product(
        self, sku: str, price: str = "10.00", *, on_hand: int | None = 10, currency: str = "USD"
    ) -> None:
        await seed_catalog(self.container, {sku: (price, currency)})
        if on_hand is not None:
            await self.set_stock(sku, on_hand)

    async def set_stock(self, sku: str, on_hand: int) -> None:
        async with self.container.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO inventory_items (sku, on_hand) VALUES (:s, :q) "
                    "ON CONFLICT (sku, bucket) DO UPDATE SET on_hand = :q"
                ),
                {"s": sku, "q": on_hand},
            )

    async def cart(self, *lines: tuple[str, int], customer: str | None = None) -> str:
        result = await self.container.bus.dispatch(
            CreateCart(CartActor(customer_id=customer), lines=tuple(LineRequest(s, q) for s, q in lines)),
            META,
        )
        return global_id("Cart", result.cart_id)

    def customer(self, customer_id: str) -> str:
        return self.tokens.mint(customer_id, ["customer"])

    def admin(self) -> str:
        return self.tokens.mint("ops-1", ["admin"])

    async def configure(self, **changes: Any) -> None:
        response = await self.sandbox.post("/_sandbox/config", json=changes)
        assert response.status_code == 200, response.text

    # ------------------------------------------------------------ GraphQL

    async def gql(self, query: str, variables: dict[str, Any], token: str | None = None) -> dict[str, Any]:
        headers = {} if token is None else {"authorization": f"Bearer {token}"}
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables}, headers=headers
        )
        body: dict[str, Any] = response.json()
        return body

    async def checkout(
        self,
        cart_id: str,
        key: str,
        *,
        token: str = "tok_ok",
        auth: str | None = None,
        expected_version: int | None = None,
        email: str = "ada@example.com",
    ) -> dict[str, Any]:
        variables = {
            "input": {
                "cartId": cart_id,
                "idempotencyKey": key,
                "email": email,
                "shippingAddress": ADDRESS,
                "payment": {"token": token},
                "expectedCartVersion": expected_version,
            }
        }
        body = await self.gql(CHECKOUT, variables, auth)
        assert "errors" not in body, body
        payload: dict[str, Any] = body["data"]["checkoutComplete"]
        return payload

    async def order_op(
        self, name: str, order_gid: str, key: str, auth: str | None, **extra: str | None
    ) -> dict[str, Any]:
        body = await self.gql(order_mutation(name, *extra), {"orderId": order_gid, "key": key, **extra}, auth)
        return body

    # ------------------------------------------------------------ inspection

    async def order(self, order_gid: str) -> Order:
        """The order as its ledger stream says (no read model involved)."""
        parsed = parse_global_id(order_gid, "Order")
        assert parsed is not None
        async with self.container.engine.connect() as conn:
            recorded = await load_stream(conn, order_stream(parsed[1]))
        order = order_domain.fold(e for r in recorded if isinstance(e := r.decode(), ev.OrderEvent))
        assert order is not None
        return order

    async def order_event_types(self, order_gid: str) -> list[str]:
        parsed = parse_global_id(order_gid, "Order")
        assert parsed is not None
        async with self.container.engine.connect() as conn:
            return [r.type for r in await load_stream(conn, order_stream(parsed[1]))]

    async def order_event_types_until(self, order_gid: str, position: int) -> list[str]:
        """The order's event types committed at or before ``position``."""
        parsed = parse_global_id(order_gid, "Order")
        assert parsed is not None
        async with self.container.engine.connect() as conn:
            recorded = await load_stream(conn, order_stream(parsed[1]))
        return [r.type for r in recorded if r.position <= position]

    async def count_events(self, event_type: str) -> int:
        async with self.container.engine.connect() as conn:
            result = await conn.execute(
                text("SELECT count(*) FROM ledger_events WHERE type = :t"), {"t": event_type}
            )
            return int(result.scalar_one())

    async def stock(self, sku: str) -> tuple[int, int]:
        async with self.container.engine.connect() as conn:
            row = (
                await conn.execute(
                    text(
                        "SELECT sum(on_hand) AS on_hand, sum(reserved) AS reserved FROM inventory_items "
                        "WHERE sku = :s"
                    ),
                    {"s": sku},
                )
            ).one()
            return int(row.on_hand), int(row.reserved)

    async def provider_payments(self, order_gid: str | None = None) -> dict[str, Any]:
        params = {}
        if order_gid is not None:
            parsed = parse_global_id(order_gid, "Order")
            assert parsed is not None
            params["reference_hint"] = parsed[1]
        body: dict[str, Any] = (await self.sandbox.get("/_sandbox/payments", params=params)).json()
        return body

    async def eventually(self, check: Callable[[], Awaitable[bool]], timeout: float = 5.0) -> None:
        await eventually(check, timeout=timeout, interval=0.05)

    async def status_becomes(self, order_gid: str, status: str, timeout: float = 5.0) -> Order:
        async def reached() -> bool:
            return (await self.order(order_gid)).status.value == status

        await self.eventually(reached, timeout)
        return await self.order(order_gid)

    async def reconcile(self, abandon_after: timedelta = timedelta(hours=1)) -> ReconcileReport:
        return await reconcile(
            self.container.services.settlement,
            META,
            older_than=timedelta(0),
            abandon_after=abandon_after,
        )

    async def provider_never_received(self, order_gid: str) -> bool:
        """Whether the provider has no record of the order's authorization (our call to it
        timed out before it arrived): no webhook will come, and it cannot be sent again."""
        parsed = parse_global_id(order_gid, "Order")
        assert parsed is not None
        async with self.container.engine.connect() as conn:
            (attempt,) = await payment_ops.of_order(conn, parsed[1], payment_ops.AUTHORIZE)
        provider = self.container.services.settlement.provider
        return await provider.lookup(idempotency_key=attempt.idempotency_key) is None

    async def expire_lease(self, order_gid: str) -> None:
        parsed = parse_global_id(order_gid, "Order")
        assert parsed is not None
        async with self.container.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE inventory_reservations SET expires_at = now() - interval '1 second' "
                    "WHERE order_id = CAST(:o AS uuid) AND status = 'active'"
                ),
                {"o": parsed[1]},
            )
        assert parsed[1] in await lease_sweep.expire_due(self.container.engine, META)
