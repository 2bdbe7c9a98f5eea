"""Sandbox payment provider: a small card processor of our own, spoken to over real HTTP.

Run it with ``python -m commands.payments.sandbox`` (docker compose) configured by
``SANDBOX_PORT`` (default 8099), ``SANDBOX_WEBHOOK_URL``, ``SANDBOX_WEBHOOK_SECRET``,
``SANDBOX_LATENCY_MS``, ``SANDBOX_TIMEOUT_HOLD_SECONDS``, ``SANDBOX_WEBHOOK_DELAY_SECONDS``;
or in-process with ``SandboxServer(SandboxConfig(...))`` (``await start()`` -> base URL,
``await stop()``). State is in memory.

Processor API (every ``/v1`` call waits ``latency_ms`` first). Operations carry an
``Idempotency-Key`` header (1-255 printable ASCII); a key names exactly one
operation. Replaying a key with the same parameters returns the stored answer
and never charges twice; with different parameters it answers
409 ``{"error": {"type": "idempotency_mismatch"}}``. Amounts are decimal strings.

- ``POST /v1/authorizations`` ``{"amount", "currency", "token", "reference_hint"}``
- ``POST /v1/payments/{provider_reference}/capture`` ``{"amount"}`` (AUTHORIZED only, amount <= authorized)
- ``POST /v1/payments/{provider_reference}/void`` ``{}`` (AUTHORIZED only)
- ``POST /v1/payments/{provider_reference}/refund`` ``{"amount"}`` (CAPTURED only, amount <= captured)
- ``GET /v1/operations?idempotency_key=K``: the operation sent with K, or 404 ``not_found``

Operations answer ``{"object": "operation", "operation", "idempotency_key", "status",
"provider_reference", "amount", "currency", "decline_reason"}`` with HTTP 200
(AUTHORIZED, CAPTURED, VOIDED, REFUNDED), 202 (PENDING), 402 (DECLINED), or for
FAILED 404 (unknown payment), 409 (wrong state, or ``fail_voids``) and 422 (amount
too large). Malformed requests get 400 ``invalid_request``.

Test tokens: ``tok_ok`` authorizes; ``tok_decline`` declines (``card_declined``);
``tok_timeout`` and ``tok_late_decline`` record a PENDING authorization, hold the
response for ``timeout_hold_seconds``, then settle to AUTHORIZED / DECLINED;
any other token declines with ``invalid_token``.

Webhooks: every settled operation records an event ``{"id": "evt_...", "type":
"payment.authorized|declined|captured|voided|refunded", "created", "data":
{"provider_reference", "idempotency_key", "reference_hint", "amount", "currency",
"status", "sequence"}}`` (``sequence`` grows per payment). When ``webhooks_enabled``
and ``webhook_url`` is set it is POSTed after ``webhook_delay_seconds`` with a
``Provider-Signature`` header (see ``signing``), retried with backoff on non-2xx or
connection errors.

Test controls:

- ``GET /_sandbox/payments[?reference_hint=H]``: ``{"payments": [... "charge_count" ...], "total_charges"}``
- ``GET|POST /_sandbox/config``: read or change any ``SandboxConfig`` field (``latency_ms``,
  ``webhooks_enabled``, ``fail_voids``, ``timeout_hold_seconds``, ``webhook_delay_seconds``, ...)
- ``POST /_sandbox/reset``: forget everything and restore the start configuration
- ``GET /_sandbox/webhooks``: sent and pending events, oldest first:
  ``{"webhooks": [{"event", "attempts", "delivered", "last_status", "last_error"}]}``
- ``POST /_sandbox/webhooks/replay`` ``{"event_id"}``: deliver that event again (re-signed),
  answers ``{"event_id", "delivered", "status"}`` once delivery ends
- ``GET /healthz``
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import uvicorn

from commands.payments.sandbox_app import SandboxConfig, SandboxState, build_sandbox_app
from commands.payments.sandbox_server import InProcessServer, SandboxServer

__all__ = [
    "InProcessServer",
    "SandboxConfig",
    "SandboxServer",
    "SandboxState",
    "build_sandbox_app",
    "config_from_env",
    "main",
]

DEFAULT_PORT = 8099


def config_from_env(env: Mapping[str, str]) -> tuple[SandboxConfig, int]:
    """The sandbox configuration and port that the ``SANDBOX_*`` variables describe."""
    defaults = SandboxConfig()
    config = SandboxConfig(
        webhook_url=env.get("SANDBOX_WEBHOOK_URL") or None,
        webhook_secret=env.get("SANDBOX_WEBHOOK_SECRET", defaults.webhook_secret),
        latency_ms=int(env.get("SANDBOX_LATENCY_MS", defaults.latency_ms)),
        timeout_hold_seconds=float(env.get("SANDBOX_TIMEOUT_HOLD_SECONDS", defaults.timeout_hold_seconds)),
        webhook_delay_seconds=float(env.get("SANDBOX_WEBHOOK_DELAY_SECONDS", defaults.webhook_delay_seconds)),
    )
    return config, int(env.get("SANDBOX_PORT", DEFAULT_PORT))


def main() -> None:
    config, port = config_from_env(os.environ)
    # 0.0.0.0: inside a container the gateway reaches it through the compose network.
    uvicorn.run(build_sandbox_app(config), host="0.0.0.0", port=port, timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
