"""ETags from read-model versions: 304 without executing while the read models the operation
reads have not changed, a new ETag once they have, and private answers keyed by their caller."""

from __future__ import annotations

import httpx

from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from tests.helpers import gql
from tests.support.catalog import CallCounter
from tests.support.http_cache import ACCEPT, apollo_get, directives, url_of

SEARCH = (
    "query Search($q: String) { products(query: $q) { edges { node { title } } freshness { position } } }"
)
CART = "query Cart($id: ID!) { cart(id: $id) { id totalQuantity } }"
WAIT_SEARCH = "query($at: Position) { products(consistentWith: $at, first: 1) { totalCount } }"
UPSERT = "mutation($input: ProductUpsertInput!) { productUpsert(input: $input) { position } }"
CREATE_CART = "mutation { cartCreate { cart { id } position } }"


def lamp(title: str) -> dict[str, object]:
    return {
        "handle": "brass-lamp",
        "title": title,
        "currencyCode": "USD",
        "variants": [{"sku": "LAMP-1", "title": "Brass", "price": "30.00"}],
    }


async def revalidate(
    client: httpx.AsyncClient, etag: str, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.get(
        url_of(SEARCH, {"q": "lamp"}), headers={"accept": ACCEPT, "if-none-match": etag, **(headers or {})}
    )


async def write_product(client: httpx.AsyncClient, admin: str, title: str) -> None:
    """Upsert, then wait (over POST) until the search model has applied it."""
    written = await gql(client, UPSERT, {"input": lamp(title)}, token=admin)
    position = written["data"]["productUpsert"]["position"]
    waited = await gql(client, WAIT_SEARCH, {"at": position})
    assert waited["data"]["products"]["totalCount"] >= 1, waited


async def test_304_only_while_the_read_models_have_not_changed(
    running: Container, client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    admin = tokens.mint("admin-1", ["admin"])
    await write_product(client, admin, "Brass lamp")
    first = await apollo_get(client, SEARCH, {"q": "lamp"})
    assert first.json()["data"]["products"]["edges"] == [{"node": {"title": "Brass lamp"}}]
    etag = first.headers["etag"]

    searches = CallCounter(running.search)
    try:
        unchanged = await revalidate(client, etag)
        assert unchanged.status_code == 304 and unchanged.content == b""
        assert unchanged.headers["etag"] == etag and "public" in directives(unchanged)
        assert searches.paths == [], "a 304 executes nothing"
    finally:
        searches.close()

    # A write to another read model (a cart) moves the search projector past it: still 304.
    cart = await gql(client, CREATE_CART)
    await gql(client, WAIT_SEARCH, {"at": cart["data"]["cartCreate"]["position"]})
    assert (await revalidate(client, etag)).status_code == 304

    # The product the page shows changes: a full answer with a new validator.
    await write_product(client, admin, "Copper lamp")
    changed = await revalidate(client, etag)
    assert changed.status_code == 200
    assert changed.json()["data"]["products"]["edges"] == [{"node": {"title": "Copper lamp"}}]
    assert changed.headers["etag"] != etag
    assert (await revalidate(client, changed.headers["etag"])).status_code == 304


async def test_private_answers_are_keyed_by_their_caller(
    client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    alice = {"authorization": f"Bearer {tokens.mint('alice', ['customer'])}"}
    bob = {"authorization": f"Bearer {tokens.mint('bob', ['customer'])}"}
    anonymous = await apollo_get(client, SEARCH, {"q": "lamp"})
    mine = await apollo_get(client, SEARCH, {"q": "lamp"}, headers=alice)
    assert "private" in directives(mine) and mine.headers["etag"] != anonymous.headers["etag"]

    assert (await revalidate(client, mine.headers["etag"], alice)).status_code == 304
    for other in (bob, {}):
        answer = await revalidate(client, mine.headers["etag"], other)
        assert answer.status_code == 200 and answer.headers["etag"] != mine.headers["etag"]
    assert (await revalidate(client, anonymous.headers["etag"], alice)).status_code == 200

    # A guest cart, reached by its id, is private too, and its validator holds until it changes.
    created = await gql(client, CREATE_CART)
    cart_id = created["data"]["cartCreate"]["cart"]["id"]
    cart = await apollo_get(client, CART, {"id": cart_id})
    assert "private" in directives(cart)
    again = await client.get(
        url_of(CART, {"id": cart_id}), headers={"accept": ACCEPT, "if-none-match": cart.headers["etag"]}
    )
    assert again.status_code == 304
