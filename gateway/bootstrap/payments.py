"""The process's payment provider.

The provider is the one at ``settings.payment_provider_url`` or, when that is
unset, the sandbox provider started in-process on its own port (over real
HTTP, so timeouts and webhooks behave as in production).
"""

from __future__ import annotations

import asyncio
import dataclasses
from decimal import Decimal

from commands.payments import HttpPaymentProvider, PaymentResult
from commands.payments.sandbox import SandboxConfig, SandboxServer
from gateway.bootstrap.settings import Settings


class ProcessPaymentProvider:
    """The process's PaymentProvider; starts the in-process sandbox on first use when no URL is set."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._client: HttpPaymentProvider | None = None
        self.sandbox: SandboxServer | None = None
        self._webhook_url: str | None = None
        self._lock = asyncio.Lock()

    async def start(self, webhook_url: str | None = None) -> None:
        """Connect now; ``webhook_url`` is where the in-process sandbox sends its events."""
        if webhook_url is not None:
            self._webhook_url = webhook_url
            if self.sandbox is not None:
                state = self.sandbox.state
                state.config = dataclasses.replace(state.config, webhook_url=webhook_url)
        await self._provider()

    async def _provider(self) -> HttpPaymentProvider:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                url = self._settings.payment_provider_url
                if url is None:
                    config = SandboxConfig(
                        webhook_url=self._webhook_url,
                        webhook_secret=self._settings.webhook_secret,
                        # tok_timeout answers well after the gateway stopped waiting: the order
                        # shows PAYMENT_PENDING, then the webhook settles it (its default hold
                        # equals the default payment timeout, a race the webhook often won).
                        timeout_hold_seconds=self._settings.payment_timeout_seconds + 3.0,
                    )
                    self.sandbox = SandboxServer(config)
                    url = await self.sandbox.start()
                self._client = HttpPaymentProvider(
                    url, timeout_seconds=self._settings.payment_timeout_seconds
                )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if self.sandbox is not None:
            await self.sandbox.stop()
            self.sandbox = None

    async def authorize(
        self, *, idempotency_key: str, amount: Decimal, currency: str, token: str, reference_hint: str
    ) -> PaymentResult:
        provider = await self._provider()
        return await provider.authorize(
            idempotency_key=idempotency_key,
            amount=amount,
            currency=currency,
            token=token,
            reference_hint=reference_hint,
        )

    async def capture(
        self, *, idempotency_key: str, provider_reference: str, amount: Decimal
    ) -> PaymentResult:
        provider = await self._provider()
        return await provider.capture(
            idempotency_key=idempotency_key, provider_reference=provider_reference, amount=amount
        )

    async def void(self, *, idempotency_key: str, provider_reference: str) -> PaymentResult:
        provider = await self._provider()
        return await provider.void(idempotency_key=idempotency_key, provider_reference=provider_reference)

    async def refund(
        self, *, idempotency_key: str, provider_reference: str, amount: Decimal
    ) -> PaymentResult:
        provider = await self._provider()
        return await provider.refund(
            idempotency_key=idempotency_key, provider_reference=provider_reference, amount=amount
        )

    async def lookup(self, *, idempotency_key: str) -> PaymentResult | None:
        provider = await self._provider()
        return await provider.lookup(idempotency_key=idempotency_key)
