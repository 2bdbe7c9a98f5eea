"""customerTimeline over HTTP: staff only, newest first, data for staff, read-your-writes."""

from __future__ import annotations

import httpx

from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from tests.helpers import error_codes, gql
from tests.support.order_ledger import append as append_order
from tests.support.orders import happy_path, new_order_id, placed

TIMELINE = """
query($customer: ID!, $first: Int, $after: String, $kinds: [TimelineEntryKind!], $at: Position) {
  customerTimeline(customerId: $customer, first: $first, after: $after, kinds: $kinds, consistentWith: $at) {
    edges { cursor node { kind type summary orderId data position } }
    pageInfo { hasNextPage endCursor }
    freshness { projection lagEvents }
  }
}
"""


async def _order_history(container: Container, customer: str) -> int:
    order_id = new_order_id()
    place = placed(order_id, customer)
    recorded = await append_order(container.engine, order_id, place, *happy_path(order_id, place.total))
    return recorded[-1].position


async def test_support_reads_a_customer_timeline_newest_first(
    running: Container, client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    position = await _order_history(running, "cust-7")
    body = await gql(
        client, TIMELINE, {"customer": "cust-7", "at": str(position)}, token=tokens.mint("agent", ["support"])
    )
    assert "errors" not in body, body
    timeline = body["data"]["customerTimeline"]
    types = [edge["node"]["type"] for edge in timeline["edges"]]
    assert types[0] == "OrderDelivered" and types[-1] == "OrderPlaced" and len(types) == 8
    positions = [int(edge["node"]["position"]) for edge in timeline["edges"]]
    assert positions == sorted(positions, reverse=True)
    assert timeline["edges"][-1]["node"]["data"]["customer_id"] == "cust-7"
    assert timeline["freshness"]["projection"] == "timeline"
    assert timeline["edges"][-1]["node"]["orderId"].startswith("gid://commerce/Order/")


async def test_paging_and_kind_filter(
    running: Container, client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    position = await _order_history(running, "cust-8")
    admin = tokens.mint("root", ["admin"])
    seen: list[int] = []
    after = None
    while True:
        body = await gql(
            client,
            TIMELINE,
            {"customer": "cust-8", "first": 3, "after": after, "at": str(position)},
            token=admin,
        )
        page = body["data"]["customerTimeline"]
        seen += [int(edge["node"]["position"]) for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == 8 and len(set(seen)) == 8
    fulfillment = await gql(client, TIMELINE, {"customer": "cust-8", "kinds": ["FULFILLMENT"]}, token=admin)
    kinds = {edge["node"]["kind"] for edge in fulfillment["data"]["customerTimeline"]["edges"]}
    assert kinds == {"FULFILLMENT"}


async def test_customers_and_guests_cannot_read_timelines(
    client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    own = await gql(client, TIMELINE, {"customer": "cust-9"}, token=tokens.mint("cust-9", ["customer"]))
    assert error_codes(own) == ["FORBIDDEN"]
    anonymous = await gql(client, TIMELINE, {"customer": "cust-9"})
    assert error_codes(anonymous) == ["UNAUTHENTICATED"]


async def test_first_is_bounded(client: httpx.AsyncClient, tokens: JwtAuthenticator) -> None:
    support = tokens.mint("agent", ["support"])
    for first in (0, 201):
        body = await gql(client, TIMELINE, {"customer": "c", "first": first}, token=support)
        assert error_codes(body) == ["BAD_USER_INPUT"]
    assert "errors" not in await gql(client, TIMELINE, {"customer": "c", "first": 200}, token=support)
