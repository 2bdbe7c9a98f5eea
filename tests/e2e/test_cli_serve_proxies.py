"""`serve` believes X-Forwarded-For from FORWARDED_ALLOW_IPS only; the budgets key on what it believes."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.e2e.cli_harness import serving_side_by_side

QUERY = {"query": "{ __schema { types { name } } }"}  # cost 2


def _post(base_url: str, forwarded_for: str) -> int:
    headers = {"x-forwarded-for": forwarded_for}
    return httpx.post(f"{base_url}/graphql", json=QUERY, headers=headers, timeout=30).status_code


def test_serve_takes_trusted_proxies_from_the_setting(tmp_path: Path) -> None:
    budget = {"GRAPHQL_BUDGET_CAPACITY": "5", "GRAPHQL_BUDGET_RESTORE_RATE": "0.001"}
    # Two gateways of their own (data directories, so Redis budgets too), started side by side.
    with serving_side_by_side(
        (tmp_path / "untrusted", (), {"FORWARDED_ALLOW_IPS": "10.9.9.9", **budget}),
        (tmp_path / "trusted", (), budget),
    ) as (untrusted, trusted):
        # Loopback is not among the trusted proxies: the header is the caller's claim, one bucket.
        assert [_post(untrusted.base_url, "198.51.100.1") for _ in range(3)] == [200, 200, 429]
        assert _post(untrusted.base_url, "198.51.100.2") == 429
        # Trusted (the default, loopback): each forwarded client has a bucket of its own.
        assert [_post(trusted.base_url, "198.51.100.1") for _ in range(3)] == [200, 200, 429]
        assert _post(trusted.base_url, "198.51.100.2") == 200
