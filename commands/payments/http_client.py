"""PaymentProvider over HTTP, against the sandbox's API (see ``commands.payments.sandbox``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import quote

import aiohttp

from commands.payments.port import (
    IdempotencyMismatch,
    InvalidPaymentRequest,
    PaymentProviderUnavailable,
    PaymentResult,
    PaymentStatus,
)

IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class _Answer:
    status_code: int
    text: str

    def json(self) -> Any:
        try:
            return json.loads(self.text)
        except ValueError:
            return None


class HttpPaymentProvider:
    """Every call is bounded by ``timeout_seconds``; no answer in time means PaymentProviderUnavailable.

    aiohttp rather than httpx: a provider call is on every checkout's path, and aiohttp costs
    about a fifth of httpx's CPU per request here. A ``session`` passed in is shared and left
    open; otherwise the provider opens its own on first use and ``aclose`` closes it.
    """

    def __init__(
        self, base_url: str, *, timeout_seconds: float, session: aiohttp.ClientSession | None = None
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._owns_session = session is None
        self._session = session

    async def aclose(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> HttpPaymentProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def authorize(
        self, *, idempotency_key: str, amount: Decimal, currency: str, token: str, reference_hint: str
    ) -> PaymentResult:
        body = {"amount": str(amount), "currency": currency, "token": token, "reference_hint": reference_hint}
        return await self._operation("/v1/authorizations", idempotency_key, body)

    async def capture(
        self, *, idempotency_key: str, provider_reference: str, amount: Decimal
    ) -> PaymentResult:
        return await self._change("capture", idempotency_key, provider_reference, {"amount": str(amount)})

    async def void(self, *, idempotency_key: str, provider_reference: str) -> PaymentResult:
        return await self._change("void", idempotency_key, provider_reference, {})

    async def refund(
        self, *, idempotency_key: str, provider_reference: str, amount: Decimal
    ) -> PaymentResult:
        return await self._change("refund", idempotency_key, provider_reference, {"amount": str(amount)})

    async def lookup(self, *, idempotency_key: str) -> PaymentResult | None:
        response = await self._send("GET", "/v1/operations", params={"idempotency_key": idempotency_key})
        if response.status_code == 404 and _error_type(response) == "not_found":
            return None
        return _result(response, idempotency_key)

    async def _change(
        self, kind: str, idempotency_key: str, reference: str, body: dict[str, Any]
    ) -> PaymentResult:
        return await self._operation(
            f"/v1/payments/{quote(reference, safe='')}/{kind}", idempotency_key, body
        )

    async def _operation(self, path: str, idempotency_key: str, body: dict[str, Any]) -> PaymentResult:
        response = await self._send("POST", path, json=body, headers={IDEMPOTENCY_HEADER: idempotency_key})
        return _result(response, idempotency_key)

    async def _send(self, method: str, path: str, **kwargs: Any) -> _Answer:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.request(
                method, self._base_url + path, timeout=self._timeout, **kwargs
            ) as response:
                return _Answer(response.status, await response.text())
        except (TimeoutError, aiohttp.ClientError) as exc:  # timeouts, connection, protocol
            raise PaymentProviderUnavailable(f"{method} {path}: {exc!r}") from exc


def _error_type(response: _Answer) -> str | None:
    body = response.json()
    error = body.get("error") if isinstance(body, dict) else None
    kind = error.get("type") if isinstance(error, dict) else None
    return kind if isinstance(kind, str) else None


def _result(response: _Answer, idempotency_key: str) -> PaymentResult:
    """Any answer that describes the operation is a result, whatever its HTTP status (402, 409, ...)."""
    body = response.json()
    if isinstance(body, dict) and body.get("object") == "operation":
        try:
            return PaymentResult(
                status=PaymentStatus(body["status"]),
                provider_reference=body.get("provider_reference"),
                amount=Decimal(body["amount"]),
                currency=body["currency"],
                idempotency_key=body["idempotency_key"],
                decline_reason=body.get("decline_reason"),
                raw=body,
            )
        except (KeyError, ValueError, TypeError, InvalidOperation) as exc:
            raise PaymentProviderUnavailable(f"unreadable provider answer: {body!r}") from exc
    error_type = _error_type(response)
    if response.status_code == 409 and error_type == "idempotency_mismatch":
        raise IdempotencyMismatch(f"idempotency key {idempotency_key!r} was used with different parameters")
    if 400 <= response.status_code < 500:
        raise InvalidPaymentRequest(
            f"provider refused the request ({response.status_code}): {response.text[:500]}"
        )
    # 5xx or an answer we cannot read: the operation may or may not have happened.
    raise PaymentProviderUnavailable(f"unexpected provider answer ({response.status_code})")
