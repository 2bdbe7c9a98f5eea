"""Production refuses what is not production: published or short secrets, an implicit payment sandbox."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from gateway.bootstrap.published_defaults import PUBLISHED_SECRETS
from gateway.bootstrap.settings import ConfigurationError, Settings

REPOSITORY = Path(__file__).resolve().parents[2]
STRONG_JWT = "j" * 32
STRONG_WEBHOOK = "w" * 32
PRODUCTION = {
    "COMMERCE_ENV": "production",
    "AUTH_JWT_SECRET": STRONG_JWT,
    "PAYMENT_WEBHOOK_SECRET": STRONG_WEBHOOK,
    "PAYMENT_PROVIDER_URL": "https://payments.example",
}
SECRET_VARIABLES = ("AUTH_JWT_SECRET", "PAYMENT_WEBHOOK_SECRET")


def _compose_secret_defaults() -> set[str]:
    compose = (REPOSITORY / "docker-compose.yml").read_text()
    return set(re.findall(r"\$\{[A-Z_]*SECRET[A-Z_]*:-([^}]+)\}", compose))


def test_every_compose_default_is_listed_as_published() -> None:
    defaults = _compose_secret_defaults()
    assert defaults, "docker-compose.yml publishes secret defaults; the pattern found none"
    assert defaults <= PUBLISHED_SECRETS


def test_production_starts_with_strong_secrets_and_a_real_provider() -> None:
    settings = Settings.from_env(PRODUCTION)
    assert settings.production and settings.jwt_secret == STRONG_JWT
    assert settings.payment_provider_url == "https://payments.example"


@pytest.mark.parametrize("variable", SECRET_VARIABLES)
def test_production_refuses_each_published_default(variable: str) -> None:
    published = PUBLISHED_SECRETS | _compose_secret_defaults()
    for value in sorted(published):
        with pytest.raises(ConfigurationError, match=variable):
            Settings.from_env(PRODUCTION | {variable: value})


@pytest.mark.parametrize("variable", SECRET_VARIABLES)
def test_production_refuses_short_or_missing_secrets(variable: str) -> None:
    for value in ("", "s", "x" * 31, "é" * 15):  # 30 bytes though 15 characters
        with pytest.raises(ConfigurationError, match=variable):
            Settings.from_env(PRODUCTION | {variable: value})
    assert Settings.from_env(PRODUCTION | {variable: "é" * 16}).production  # 32 bytes


def test_development_keeps_its_defaults() -> None:
    settings = Settings.from_env({})
    assert settings.jwt_secret in PUBLISHED_SECRETS and settings.payment_provider_url is None


def test_production_sandbox_needs_an_explicit_choice(caplog: pytest.LogCaptureFixture) -> None:
    without_provider = {k: v for k, v in PRODUCTION.items() if k != "PAYMENT_PROVIDER_URL"}
    with pytest.raises(ConfigurationError, match="PAYMENT_PROVIDER"):
        Settings.from_env(without_provider)
    with pytest.raises(ConfigurationError, match="PAYMENT_PROVIDER"):
        Settings.from_env(without_provider | {"PAYMENT_PROVIDER": "stripe"})
    with pytest.raises(ConfigurationError, match="PAYMENT_PROVIDER"):
        Settings.from_env(PRODUCTION | {"PAYMENT_PROVIDER": "sandbox"})
    with caplog.at_level(logging.WARNING, logger="gateway.settings"):
        settings = Settings.from_env(without_provider | {"PAYMENT_PROVIDER": "sandbox"})
    assert settings.payment_provider_url is None
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert any("PAYMENT_PROVIDER=sandbox" in r.getMessage() for r in warnings)
