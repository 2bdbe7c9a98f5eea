"""Every secret value published in this repository (code, compose file, docs), in one place.

Anyone can read these, so production refuses to start with any of them. A test
checks that each ``${VAR:-default}`` secret of ``docker-compose.yml`` is listed here.
"""

from __future__ import annotations

# Development default only: production refuses to start without AUTH_JWT_SECRET.
DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-do-not-use-in-production"
# Development default only, for the sandbox payment provider's webhooks.
DEV_WEBHOOK_SECRET = "dev-only-sandbox-webhook-secret"
# docker-compose.yml's fallbacks for an unset variable.
COMPOSE_JWT_SECRET = "dev-only-insecure-jwt-secret-change-me-please"
COMPOSE_WEBHOOK_SECRET = "dev-only-sandbox-webhook-secret"

PUBLISHED_SECRETS = frozenset(
    {DEV_JWT_SECRET, DEV_WEBHOOK_SECRET, COMPOSE_JWT_SECRET, COMPOSE_WEBHOOK_SECRET}
)
# Shorter secrets are guessable offline from one signed token or webhook (HMAC-SHA256 keys).
MIN_SECRET_BYTES = 32
