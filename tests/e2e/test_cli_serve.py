"""The real CLI: a gateway process on embedded stores from a clean directory."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import jwt
import pytest

from tests.e2e.cli_harness import Served

CLI = [sys.executable, "-m", "gateway.cli"]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    env.update(
        COMMERCE_DATA_DIR=str(data_dir), COMMERCE_ENV="development", LOG_LEVEL="WARNING", SEED_DEMO_DATA="0"
    )
    return env


@pytest.fixture
def served(cli_gateway: Served) -> tuple[str, Path]:
    """The shared gateway (tests/e2e/conftest.py), started from a clean data directory."""
    return cli_gateway.base_url, cli_gateway.data_dir


def test_serves_graphql_with_embedded_stores_from_a_clean_directory(served: tuple[str, Path]) -> None:
    base, data_dir = served
    ready = httpx.get(f"{base}/readyz").json()
    assert {name for name, check in ready["checks"].items() if check["ok"]} == {
        "postgres",
        "redis",
        "search",
        "mongodb",
        "read_models",
    }
    assert (data_dir / "pg").is_dir(), "embedded PostgreSQL keeps its data in COMMERCE_DATA_DIR"
    answer = httpx.post(f"{base}/graphql", json={"query": "{ __typename }"}).json()
    assert answer["data"] == {"__typename": "Query"} and "errors" not in answer
    graphiql = httpx.get(f"{base}/graphql", headers={"accept": "text/html"})
    assert graphiql.status_code == 200 and "graphiql" in graphiql.text.lower()


def test_second_gateway_on_the_same_data_directory_fails_clearly(served: tuple[str, Path]) -> None:
    _, data_dir = served
    result = subprocess.run(
        [*CLI, "serve", "--port", str(_free_port())],
        env=_env(data_dir),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "already in use by another gateway" in result.stderr


def test_port_in_use_fails_clearly(served: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = served
    port = base.rsplit(":", 1)[1]
    result = subprocess.run(
        [*CLI, "serve", "--port", port],
        env=_env(tmp_path / "other"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert f"port {port}" in result.stderr and "already in use" in result.stderr


def test_token_command_mints_a_verifiable_development_token(tmp_path: Path) -> None:
    result = subprocess.run(
        [*CLI, "token", "--sub", "cust-9", "--role", "customer", "--ttl", "120"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(result.stdout.strip(), options={"verify_signature": False})
    assert claims["sub"] == "cust-9" and claims["roles"] == ["customer"]
    assert 100 <= claims["exp"] - claims["iat"] <= 120


@pytest.mark.parametrize("ttl", ["0", "-5", "soon"])
def test_token_command_refuses_a_lifetime_that_is_not_a_positive_number(tmp_path: Path, ttl: str) -> None:
    result = subprocess.run(
        [*CLI, "token", "--sub", "a", "--role", "customer", "--ttl", ttl],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--ttl" in result.stderr and result.stdout == ""


@pytest.mark.parametrize("sub", ["", "   ", " cust-1"])
def test_token_command_refuses_an_empty_subject(tmp_path: Path, sub: str) -> None:
    # The gateway would answer every request with such a token 401 "invalid token: sub".
    result = subprocess.run(
        [*CLI, "token", "--sub", sub, "--role", "customer"],
        env=_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "--sub" in result.stderr and result.stdout == ""


def test_token_command_is_refused_in_production(tmp_path: Path) -> None:
    env = _env(tmp_path) | {
        "COMMERCE_ENV": "production",
        "AUTH_JWT_SECRET": "x" * 40,
        "PAYMENT_WEBHOOK_SECRET": "w",
    }
    result = subprocess.run(
        [*CLI, "token", "--sub", "a", "--role", "admin"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "production" in result.stderr
