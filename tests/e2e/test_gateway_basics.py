"""The HTTP app: readiness, GraphQL over HTTP basics, auth and error masking."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator

import httpx
import jwt
import pytest
from sqlalchemy import text
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from commands.domain.cart import CartActor
from commands.messages.cart import CreateCart
from commands.store.unit_of_work import MessageMetadata
from gateway.bootstrap.container import Container
from gateway.edge.auth import JwtAuthenticator
from gateway.http.app import build_app
from queries.projection_status import ProjectionStatusService
from tests.helpers import error_codes, gql
from tests.support.projections import AppliedLog
from tests.support.stores import FAST_RUNNERS
from tests.support.waiting import eventually

PROJECTIONS = "{ projections { name store state lastError freshness { projection lagEvents } } }"


@pytest.fixture
def with_log_projection(container: Container) -> Container:
    container.add_projections([AppliedLog(container.engine)], FAST_RUNNERS)
    return container


async def test_readyz_names_every_store(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    body = response.json()
    assert response.status_code == 200, body
    assert body["status"] == "ready"
    assert set(body["checks"]) == {"postgres", "redis", "search", "mongodb", "read_models"}
    assert all(check["ok"] for check in body["checks"].values())
    assert body["checks"]["postgres"]["detail"].startswith("revision ")


async def test_readyz_reports_a_store_that_does_not_answer(running: Container) -> None:
    running.mongo_client.set_available(False)
    transport = httpx.ASGITransport(app=build_app(running))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        response = await http.get("/readyz")
    running.mongo_client.set_available(True)
    body = response.json()
    assert response.status_code == 503
    assert body["checks"]["mongodb"]["ok"] is False
    assert body["checks"]["postgres"]["ok"] is True


async def test_readyz_waits_for_the_read_models_to_pass_the_ledger_as_it_was_at_start(
    container: Container,
) -> None:
    transport = httpx.ASGITransport(app=build_app(container))
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        # Projectors not started in this process: nothing to wait for.
        read_models = (await http.get("/readyz")).json()["checks"]["read_models"]
        assert read_models["ok"] is True and read_models["detail"] == "no projectors started in this process"
        async with _horizon_held(container):  # the projectors cannot read the cart's event yet
            cart = await gql_bus_cart(container)
            await container.start_projectors()
            try:
                response = await http.get("/readyz")
                read_models = response.json()["checks"]["read_models"]
                assert response.status_code == 503 and read_models["ok"] is False
                assert f"behind position {cart}" in read_models["detail"]
                assert "carts at 0" in read_models["detail"]
            except BaseException:
                await container.stop_projectors()
                raise
        try:
            await eventually(lambda: _ready(http), timeout=10, message="read models caught up")
            detail = (await http.get("/readyz")).json()["checks"]["read_models"]["detail"]
            assert detail == f"caught up with position {cart}"
            # Latched: lag after start is reported by reads, not by taking the process out.
            async with _horizon_held(container):
                await gql_bus_cart(container)
                assert (await http.get("/readyz")).status_code == 200
        finally:
            await container.stop_projectors()


@contextlib.asynccontextmanager
async def _horizon_held(container: Container) -> AsyncIterator[None]:
    """An open transaction with an id: commits after it stay beyond the ledger's gap-safe horizon."""
    async with container.engine.connect() as conn:
        await conn.execute(text("SELECT pg_current_xact_id()"))
        try:
            yield
        finally:
            await conn.rollback()


async def _ready(http: httpx.AsyncClient) -> bool:
    return (await http.get("/readyz")).status_code == 200


async def gql_bus_cart(container: Container) -> int:
    """A cart created through the command bus; the ledger position of its event."""
    result = await container.bus.dispatch(CreateCart(CartActor()), MessageMetadata(actor="test"))
    assert result.position is not None
    return result.position


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_get_never_runs_a_mutation(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql",
        params={"query": 'mutation { projectionRebuild(name: "search") { userErrors { message } } }'},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 405
    assert "POST" in response.headers["allow"]


async def test_get_runs_a_query(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/graphql", params={"query": "{ __typename }"}, headers={"accept": "application/json"}
    )
    assert response.status_code == 200
    assert response.json()["data"] == {"__typename": "Query"}


@pytest.mark.parametrize("path", ["/healthz", "/graphql"])
async def test_request_id_is_echoed_or_generated(client: httpx.AsyncClient, path: str) -> None:
    # /graphql over HTTP skips Starlette's router (gateway.http.app.GatewayApp): the same id rules.
    query = {"query": "{ __typename }"}
    given = await client.post(path, json=query, headers={"x-request-id": "req-abc-123"})
    assert given.headers["x-request-id"] == "req-abc-123"
    generated = await client.post(path, json=query, headers={"x-request-id": "bad id with spaces"})
    assert generated.headers["x-request-id"] not in {"", "bad id with spaces"}


async def test_graphql_paths_near_the_fast_one_still_go_through_the_router(
    client: httpx.AsyncClient, running: Container
) -> None:
    slash = await client.post("/graphql/", json={"query": "{ __typename }"})
    assert slash.status_code in {307, 404}
    assert slash.headers["x-request-id"]
    assert (await client.post("/graphqlx", json={"query": "{ __typename }"})).status_code == 404
    # Mounted under a prefix: the router strips it and finds the view.
    transport = httpx.ASGITransport(app=build_app(running), root_path="/shop")
    async with httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as mounted:
        answer = await mounted.post("/shop/graphql", json={"query": "{ __typename }"})
    assert answer.status_code == 200 and answer.json()["data"] == {"__typename": "Query"}


async def test_middleware_added_later_wraps_the_graphql_path_too(running: Container) -> None:
    built: list[str] = []

    class Stamp:
        def __init__(self, app: ASGIApp, value: str) -> None:
            self.app, self.value = app, value
            built.append(value)

        async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
            async def stamped(message: Message) -> None:
                if message["type"] == "http.response.start":
                    message["headers"] = [*message.get("headers", []), (b"x-stamp", self.value.encode())]
                await send(message)

            await self.app(scope, receive, stamped)

    app = build_app(running)
    app.add_middleware(Stamp, value="outer")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        graphql = await http.post("/graphql", json={"query": "{ __typename }"})
        health = await http.get("/healthz")
    for answer in (graphql, health):
        assert answer.status_code == 200
        assert answer.headers["x-stamp"] == "outer" and answer.headers["x-request-id"]
    assert built == ["outer"]  # one instance for every path: its state is not split
    with pytest.raises(RuntimeError, match="after an application has started"):
        app.add_middleware(Stamp, value="late")


async def test_anonymous_caller_is_unauthenticated_for_staff_fields(
    with_log_projection: Container, client: httpx.AsyncClient
) -> None:
    body = await gql(client, PROJECTIONS)
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_valid_support_token_reads_projection_status(
    with_log_projection: Container, client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    body = await gql(client, PROJECTIONS, token=tokens.mint("agent-7", ["support"]))
    assert "errors" not in body, body
    by_name = {status["name"]: status for status in body["data"]["projections"]}
    status = by_name["applied_log"]
    assert status["store"] == "postgres"
    assert status["freshness"]["projection"] == "applied_log"


async def test_wrong_role_is_forbidden(
    with_log_projection: Container, client: httpx.AsyncClient, tokens: JwtAuthenticator
) -> None:
    body = await gql(client, PROJECTIONS, token=tokens.mint("cust-1", ["customer"]))
    assert error_codes(body) == ["FORBIDDEN"]


async def test_expired_token_is_rejected(client: httpx.AsyncClient, container: Container) -> None:
    expired = jwt.encode(
        {"sub": "agent-7", "roles": ["support"], "exp": int(time.time()) - 60},
        container.settings.jwt_secret,
        algorithm="HS256",
    )
    body = await gql(client, PROJECTIONS, token=expired)
    assert body["_status"] == 401
    assert error_codes(body) == ["UNAUTHENTICATED"]
    assert "expired" in body["errors"][0]["message"]


async def test_token_signed_with_another_secret_is_rejected(client: httpx.AsyncClient) -> None:
    forged = JwtAuthenticator("some-other-secret-that-is-long-enough-123").mint("agent-7", ["admin"])
    body = await gql(client, PROJECTIONS, token=forged)
    assert body["_status"] == 401
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_token_with_unknown_role_is_rejected(client: httpx.AsyncClient, container: Container) -> None:
    token = jwt.encode(
        {"sub": "x", "roles": ["superuser"], "exp": int(time.time()) + 60},
        container.settings.jwt_secret,
        algorithm="HS256",
    )
    body = await gql(client, PROJECTIONS, token=token)
    assert error_codes(body) == ["UNAUTHENTICATED"]


async def test_unexpected_errors_are_masked_and_logged_with_the_request_id(
    with_log_projection: Container,
    client: httpx.AsyncClient,
    tokens: JwtAuthenticator,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("connection to 10.0.0.5 refused; password=hunter2")

    # Fault injection at the store boundary: the gateway must not leak the details.
    monkeypatch.setattr(ProjectionStatusService, "status", broken)
    with caplog.at_level(logging.ERROR, logger="gateway.errors"):
        body = await gql(
            client,
            PROJECTIONS,
            token=tokens.mint("agent-7", ["support"]),
            headers={"x-request-id": "req-mask-1"},
        )
    (error,) = body["errors"]
    assert error["message"] == "Internal server error"
    assert error["extensions"] == {"code": "INTERNAL_SERVER_ERROR", "requestId": "req-mask-1"}
    assert "hunter2" not in str(body)
    (record,) = [r for r in caplog.records if r.name == "gateway.errors"]
    assert record.request_id == "req-mask-1"  # type: ignore[attr-defined]
    assert record.exc_info is not None and "hunter2" in str(record.exc_info[1])
