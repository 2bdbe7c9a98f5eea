"""The sandbox card processor as an ASGI app (its HTTP API is documented in ``commands.payments.sandbox``)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

import aiohttp
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from commands.payments.http_client import IDEMPOTENCY_HEADER
from commands.payments.port import PaymentStatus
from commands.payments.signing import SIGNATURE_HEADER, sign

# Tokens whose authorization stays PENDING past the client's timeout, then settles to this outcome.
LATE_TOKENS = {"tok_timeout": PaymentStatus.AUTHORIZED, "tok_late_decline": PaymentStatus.DECLINED}
# kind -> (status the payment must have, status it moves to)
CHANGES = {
    "capture": (PaymentStatus.AUTHORIZED, PaymentStatus.CAPTURED),
    "void": (PaymentStatus.AUTHORIZED, PaymentStatus.VOIDED),
    "refund": (PaymentStatus.CAPTURED, PaymentStatus.REFUNDED),
}


@dataclass
class SandboxConfig:
    """Sandbox behaviour; every field can change at runtime through ``POST /_sandbox/config``."""

    webhook_url: str | None = None
    webhook_secret: str = "whsec_sandbox"
    latency_ms: int = 0
    timeout_hold_seconds: float = 5.0
    webhook_delay_seconds: float = 0.0
    webhooks_enabled: bool = True
    fail_voids: bool = False
    webhook_max_attempts: int = 4
    webhook_retry_base_seconds: float = 0.2


class _BadRequest(Exception):
    pass


@dataclass
class _Payment:
    provider_reference: str
    reference_hint: str
    idempotency_key: str
    token: str
    amount: Decimal
    currency: str
    status: PaymentStatus
    created: int
    decline_reason: str | None = None
    captured_amount: Decimal = Decimal(0)
    refunded_amount: Decimal = Decimal(0)
    sequence: int = 0
    charge_count: int = 1  # authorizations run for it; idempotency by key must keep this at 1

    def to_json(self) -> dict[str, Any]:
        return {k: str(v) if isinstance(v, Decimal) else v for k, v in dataclasses.asdict(self).items()}


@dataclass
class _Operation:
    """One request under one idempotency key, and the answer every replay of it gets."""

    key: str
    kind: str
    fingerprint: tuple[Any, ...]
    reference: str | None
    amount: Decimal
    currency: str
    status: PaymentStatus = PaymentStatus.FAILED
    reason: str | None = None
    failure_http_status: int = 409
    # Set once a held (late token) response may be sent: outcome known, or the sandbox is closing.
    released: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def http_status(self) -> int:
        return {
            PaymentStatus.PENDING: 202,
            PaymentStatus.DECLINED: 402,
            PaymentStatus.FAILED: self.failure_http_status,
        }.get(self.status, 200)

    def to_json(self) -> dict[str, Any]:
        return {
            "object": "operation",
            "operation": self.kind,
            "idempotency_key": self.key,
            "status": self.status,
            "provider_reference": self.reference,
            "amount": str(self.amount),
            "currency": self.currency,
            "decline_reason": self.reason,
        }


@dataclass
class _WebhookRecord:
    event: dict[str, Any]
    attempts: int = 0
    delivered: bool = False
    last_status: int | None = None
    last_error: str | None = None


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class SandboxState:
    """Payments, operations by idempotency key, the webhook log, and background tasks."""

    def __init__(self, config: SandboxConfig) -> None:
        self._initial = dataclasses.replace(config)
        self.config = dataclasses.replace(config)
        self.payments: dict[str, _Payment] = {}
        self.operations: dict[str, _Operation] = {}
        self.webhooks: dict[str, _WebhookRecord] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._client: aiohttp.ClientSession | None = None
        self._closing = False

    async def simulate_latency(self) -> None:
        if self.config.latency_ms > 0:
            await asyncio.sleep(self.config.latency_ms / 1000)

    async def run(
        self, key: str, fingerprint: tuple[Any, ...], execute: Callable[[], _Operation]
    ) -> _Operation | None:
        """The operation stored under ``key``, executed first if new; None if the parameters differ."""
        async with self._locks.setdefault(key, asyncio.Lock()):
            existing = self.operations.get(key)
            if existing is not None:
                return existing if existing.fingerprint == fingerprint else None
            operation = self.operations[key] = execute()
        await operation.released.wait()
        return operation

    def authorize(
        self, key: str, fingerprint: tuple[Any, ...], amount: Decimal, currency: str, token: str, hint: str
    ) -> _Operation:
        reference, now = _new_id("pay"), int(time.time())
        payment = self.payments[reference] = _Payment(
            reference, hint, key, token, amount, currency, PaymentStatus.PENDING, now
        )
        operation = _Operation(
            key, "authorize", fingerprint, reference, amount, currency, PaymentStatus.PENDING
        )
        late_outcome = LATE_TOKENS.get(token)
        if late_outcome is not None:
            self._spawn(self._settle_late(operation, payment, late_outcome, self.config.timeout_hold_seconds))
        elif token == "tok_ok":
            self._settle(operation, payment, PaymentStatus.AUTHORIZED)
        else:
            reason = "card_declined" if token == "tok_decline" else "invalid_token"
            self._settle(operation, payment, PaymentStatus.DECLINED, reason)
        return operation

    def change(
        self, key: str, fingerprint: tuple[Any, ...], kind: str, reference: str, amount: Decimal | None
    ) -> _Operation:
        """Capture, void or refund a payment; a refusal is a FAILED operation, stored like any other."""
        payment = self.payments.get(reference)
        operation = _Operation(key, kind, fingerprint, reference, amount or Decimal(0), "")
        if payment is not None:
            operation.amount, operation.currency = amount or payment.amount, payment.currency
        operation.released.set()
        required, outcome = CHANGES[kind]
        if payment is None:
            operation.reason, operation.failure_http_status = "payment_not_found", 404
        elif payment.status != required:
            operation.reason = f"payment_not_{required.lower()}"
        elif amount is not None and amount > (
            payment.amount if kind == "capture" else payment.captured_amount
        ):
            operation.reason, operation.failure_http_status = f"amount_exceeds_{required.lower()}", 422
        elif kind == "void" and self.config.fail_voids:
            operation.reason = "void_failed"
        else:
            if kind == "capture":
                payment.captured_amount = operation.amount
            elif kind == "refund":
                payment.refunded_amount = operation.amount
            self._settle(operation, payment, outcome)
        return operation

    def _settle(
        self, operation: _Operation, payment: _Payment, status: PaymentStatus, reason: str | None = None
    ) -> None:
        operation.status, operation.reason = status, reason
        payment.status, payment.sequence = status, payment.sequence + 1
        if status is PaymentStatus.DECLINED:
            payment.decline_reason = reason
        self._record_event(payment, operation)
        operation.released.set()

    async def _settle_late(
        self, operation: _Operation, payment: _Payment, outcome: PaymentStatus, hold_seconds: float
    ) -> None:
        await asyncio.sleep(hold_seconds)
        self._settle(
            operation, payment, outcome, "card_declined" if outcome is PaymentStatus.DECLINED else None
        )

    def _record_event(self, payment: _Payment, operation: _Operation) -> None:
        event_id = _new_id("evt")
        data = {
            "provider_reference": payment.provider_reference,
            "idempotency_key": operation.key,
            "reference_hint": payment.reference_hint,
            "amount": str(operation.amount),
            "currency": payment.currency,
            "status": payment.status,
            "sequence": payment.sequence,
        }
        event_type = f"payment.{payment.status.lower()}"
        record = self.webhooks[event_id] = _WebhookRecord(
            {"id": event_id, "type": event_type, "created": int(time.time()), "data": data}
        )
        if self.config.webhooks_enabled and self.config.webhook_url:
            self._spawn(self.deliver(record, self.config.webhook_delay_seconds))

    async def deliver(self, record: _WebhookRecord, delay_seconds: float = 0.0) -> bool:
        """POST the event, signed afresh per attempt, until a 2xx answer or the attempts run out."""
        await asyncio.sleep(delay_seconds)
        body = json.dumps(record.event, separators=(",", ":")).encode()
        for attempt in range(max(1, self.config.webhook_max_attempts)):
            if attempt:
                await asyncio.sleep(self.config.webhook_retry_base_seconds * 2 ** (attempt - 1))
            url = self.config.webhook_url
            if not url:
                return False
            record.attempts += 1
            signature = sign(self.config.webhook_secret, body, int(time.time()))
            headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
            try:
                async with self._http().post(
                    url, data=body, headers=headers, allow_redirects=False
                ) as response:
                    status = response.status
                    await response.read()  # read whole, so the connection is kept for the next
            except (aiohttp.ClientError, TimeoutError) as exc:
                record.last_status, record.last_error = None, repr(exc)
                continue
            record.last_status, record.last_error = status, None
            if 200 <= status < 300:
                record.delivered = True
                return True
        return False

    def _http(self) -> aiohttp.ClientSession:
        # aiohttp: a webhook costs the sandbox a fifth of the CPU httpx took (its process shares
        # the machine with the gateway it calls, in the benchmarks as in development).
        if self._client is None:
            self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5.0))
        return self._client

    def _spawn(self, coroutine: Coroutine[Any, Any, Any]) -> None:
        if self._closing:
            coroutine.close()
            return
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def reset(self) -> None:
        await self._cancel_tasks()
        self.config = dataclasses.replace(self._initial)
        self.payments.clear()
        self.operations.clear()
        self.webhooks.clear()
        self._locks.clear()

    async def aclose(self) -> None:
        """Stop background work and let held responses go; safe to call twice."""
        self._closing = True
        await self._cancel_tasks()
        if self._client is not None:
            await self._client.close()
            self._client = None

    async def _cancel_tasks(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for operation in self.operations.values():
            operation.released.set()


# -- HTTP layer ---------------------------------------------------------------

Endpoint = Callable[[Request], Awaitable[Response]]
_CONFIG_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "str": (str,),
    "str | None": (str, type(None)),
}


def _error(status_code: int, kind: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"type": kind, "message": message}}, status_code=status_code)


async def _json_object(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except json.JSONDecodeError:
        raise _BadRequest("body must be JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("body must be a JSON object")
    return body


def _amount(value: object) -> Decimal:
    # Floats are refused: money travels as decimal strings.
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _BadRequest("amount must be a decimal string")
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise _BadRequest("amount must be a decimal string") from None
    if not amount.is_finite() or amount <= 0:
        raise _BadRequest("amount must be positive")
    return amount


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _BadRequest(f"{name} must be a non-empty string")
    return value


def _config_changes(body: dict[str, Any]) -> dict[str, Any]:
    types = {f.name: _CONFIG_TYPES[str(f.type)] for f in dataclasses.fields(SandboxConfig)}
    for name, value in body.items():
        if name not in types:
            raise _BadRequest(f"unknown config field {name!r}; fields are {sorted(types)}")
        # bool is an int subclass, so it is only accepted where a bool is expected.
        if not isinstance(value, types[name]) or isinstance(value, bool) != (types[name] == (bool,)):
            raise _BadRequest(f"config field {name!r} has the wrong type")
    return body


class _Api:
    """The processor's API (``/v1``) and the test controls (``/_sandbox``)."""

    def __init__(self, state: SandboxState) -> None:
        self.state = state

    async def _operation(
        self, request: Request, fingerprint: tuple[Any, ...], execute: Callable[[str], _Operation]
    ) -> Response:
        key = request.headers.get(IDEMPOTENCY_HEADER, "")
        if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
            raise _BadRequest(f"{IDEMPOTENCY_HEADER} header must be 1-255 printable ASCII characters")
        operation = await self.state.run(key, fingerprint, lambda: execute(key))
        if operation is None:
            return _error(409, "idempotency_mismatch", "idempotency key reused with different parameters")
        return JSONResponse(operation.to_json(), status_code=operation.http_status)

    async def authorize(self, request: Request) -> Response:
        body = await _json_object(request)
        await self.state.simulate_latency()
        amount, currency = _amount(body.get("amount")), _text(body, "currency")
        token, hint = _text(body, "token"), _text(body, "reference_hint")
        if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
            raise _BadRequest("currency must be an ISO 4217 code")
        fingerprint = ("authorize", amount, currency, token, hint)
        return await self._operation(
            request,
            fingerprint,
            lambda key: self.state.authorize(key, fingerprint, amount, currency, token, hint),
        )

    def change(self, kind: str) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            body = await _json_object(request)
            await self.state.simulate_latency()
            reference: str = request.path_params["reference"]
            amount = None if kind == "void" else _amount(body.get("amount"))
            fingerprint = (kind, reference, amount)
            return await self._operation(
                request, fingerprint, lambda key: self.state.change(key, fingerprint, kind, reference, amount)
            )

        return endpoint

    async def lookup(self, request: Request) -> Response:
        await self.state.simulate_latency()
        operation = self.state.operations.get(request.query_params.get("idempotency_key", ""))
        if operation is None:
            return _error(404, "not_found", "no operation with that idempotency key")
        return JSONResponse(operation.to_json())

    async def payments(self, request: Request) -> Response:
        hint = request.query_params.get("reference_hint")
        payments = [p.to_json() for p in self.state.payments.values() if hint in (None, p.reference_hint)]
        return JSONResponse({"payments": payments, "total_charges": sum(p["charge_count"] for p in payments)})

    async def config(self, request: Request) -> Response:
        if request.method == "POST":
            changes = _config_changes(await _json_object(request))
            self.state.config = dataclasses.replace(self.state.config, **changes)
        return JSONResponse(dataclasses.asdict(self.state.config))

    async def reset(self, request: Request) -> Response:
        await self.state.reset()
        return JSONResponse({"ok": True})

    async def webhooks(self, request: Request) -> Response:
        return JSONResponse({"webhooks": [dataclasses.asdict(r) for r in self.state.webhooks.values()]})

    async def replay(self, request: Request) -> Response:
        record = self.state.webhooks.get(str((await _json_object(request)).get("event_id")))
        if record is None:
            return _error(404, "not_found", "no webhook event with that id")
        delivered = await self.state.deliver(record)
        return JSONResponse(
            {"event_id": record.event["id"], "delivered": delivered, "status": record.last_status}
        )

    async def health(self, request: Request) -> Response:
        return JSONResponse({"ok": True})

    def routes(self) -> list[Route]:
        def route(path: str, endpoint: Endpoint, method: str, *more: str) -> Route:
            async def guarded(request: Request) -> Response:
                try:
                    return await endpoint(request)
                except _BadRequest as exc:
                    return _error(400, "invalid_request", str(exc))

            return Route(path, guarded, methods=[method, *more])

        return [
            route("/v1/authorizations", self.authorize, "POST"),
            *(route(f"/v1/payments/{{reference}}/{kind}", self.change(kind), "POST") for kind in CHANGES),
            route("/v1/operations", self.lookup, "GET"),
            route("/_sandbox/payments", self.payments, "GET"),
            route("/_sandbox/config", self.config, "GET", "POST"),
            route("/_sandbox/reset", self.reset, "POST"),
            route("/_sandbox/webhooks", self.webhooks, "GET"),
            route("/_sandbox/webhooks/replay", self.replay, "POST"),
            route("/healthz", self.health, "GET"),
        ]


def build_sandbox_app(config: SandboxConfig) -> Starlette:
    """The sandbox as an ASGI app; its SandboxState is ``app.state.sandbox``."""
    state = SandboxState(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await state.aclose()

    app = Starlette(routes=_Api(state).routes(), lifespan=lifespan)
    app.state.sandbox = state
    return app
