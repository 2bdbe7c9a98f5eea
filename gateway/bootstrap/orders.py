"""Wires checkout, payments and the order commands.

The payment provider is the one at ``settings.payment_provider_url`` or, when
that is unset, the sandbox provider started in-process on its own port (over
real HTTP, so timeouts and webhooks behave as in production).
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import timedelta
from decimal import Decimal

from commands.checkout.saga import CheckoutService
from commands.checkout.settle import PaymentSettlement
from commands.handlers.orders import OrderCommands
from commands.payments import HttpPaymentProvider, PaymentProvider, PaymentResult
from commands.payments.sandbox import SandboxConfig, SandboxServer
from gateway.bootstrap.container import Container
from gateway.bootstrap.settings import Settings
from projections.runner import RunnerConfig


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
                        webhook_url=self._webhook_url, webhook_secret=self._settings.webhook_secret
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


def wire_orders(container: Container, runner_config: RunnerConfig | None) -> None:
    del runner_config  # the order read model is wired by wire_order_views
    settings = container.settings
    provider = ProcessPaymentProvider(settings)
    container.provide(provider)
    container.provide(provider, as_type=PaymentProvider)
    container.on_close(provider.aclose)
    settlement = PaymentSettlement(
        container.engine, provider, lease=timedelta(seconds=settings.reservation_lease_seconds)
    )
    container.provide(settlement)
    container.provide(
        CheckoutService(
            container.engine,
            settlement,
            reservation_lease=timedelta(seconds=settings.reservation_lease_seconds),
            payment_timeout_seconds=settings.payment_timeout_seconds,
        )
    )
    container.provide(
        OrderCommands(container.engine, settlement, payment_timeout_seconds=settings.payment_timeout_seconds)
    )
