"""Operator commands while ``serve`` runs in embedded mode on the same data directory.

The gateway holds the directory's lock; the commands use its PostgreSQL, or ask it (rebuilds,
reconciliation), and print their answer and nothing else.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import httpx
import pytest

from gateway.bootstrap.settings import DEV_JWT_SECRET
from gateway.edge.auth import JwtAuthenticator
from tests.e2e.cli_harness import Served, cli_env, run_cli

KEY_HINT = "store this key now, it is not shown again"


@pytest.fixture
def served(cli_gateway: Served) -> Served:
    return cli_gateway


def _succeeded(result: subprocess.CompletedProcess[str], *allowed_stderr: str) -> str:
    """The answer on stdout; stderr holds nothing but the lines the command means to say."""
    assert result.returncode == 0, result.stderr
    noise = [line for line in result.stderr.splitlines() if not any(a in line for a in allowed_stderr)]
    assert noise == [], f"log noise beside the answer: {noise}"
    return result.stdout.strip()


def _projections(served: Served) -> dict[str, str]:
    token = JwtAuthenticator(DEV_JWT_SECRET).mint("ops-test", ["admin"], 60)
    answer = httpx.post(
        f"{served.base_url}/graphql",
        json={"query": "{ projections { name state } }"},
        headers={"authorization": f"Bearer {token}"},
        timeout=10,
    ).json()
    return {p["name"]: p["state"] for p in answer["data"]["projections"]}


def test_clients_create_and_persisted_register_use_its_postgres(served: Served, tmp_path: Path) -> None:
    env = cli_env(served.data_dir)
    key = _succeeded(run_cli("clients", "create", "partner-a", "--persisted-only", env=env), KEY_HINT)
    assert key.startswith("cgk_") and "\n" not in key

    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"typename-1": "query Typename { __typename }"}), encoding="utf-8")
    registered = _succeeded(run_cli("persisted", "register", str(manifest), "--client", "partner-a", env=env))
    assert registered == "1 documents registered for partner-a (0 already registered)"

    # The running gateway sees the new client at once: its key runs the registered document.
    answer = httpx.post(
        f"{served.base_url}/graphql",
        json={"documentId": "typename-1"},
        headers={"x-api-key": key},
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["data"] == {"__typename": "Query"}
    listing = _succeeded(run_cli("clients", "list", env=env))
    assert "partner-a" in listing


@pytest.mark.parametrize("name", ["timeline", "search"])
def test_projections_rebuild_is_done_by_the_running_gateway(served: Served, name: str) -> None:
    answer = _succeeded(run_cli("projections", "rebuild", name, env=cli_env(served.data_dir)))
    assert answer.startswith(f"projection {name} rebuilt up to position ")
    assert answer.endswith("(by the running gateway)")
    assert _projections(served)[name] == "RUNNING"


def test_rebuild_of_an_unknown_projection_is_refused_by_the_running_gateway(served: Served) -> None:
    result = run_cli("projections", "rebuild", "nope", env=cli_env(served.data_dir))
    assert result.returncode == 2
    assert "no projection named 'nope'" in result.stderr and result.stdout == ""


def test_reconcile_asks_the_running_gateway(served: Served) -> None:
    answer = _succeeded(run_cli("reconcile", env=cli_env(served.data_dir)))
    assert answer.startswith("payment attempts checked: ")


def test_migrate_reports_the_running_database_revision(served: Served) -> None:
    answer = _succeeded(run_cli("migrate", env=cli_env(served.data_dir)))
    assert answer.startswith("database at revision ")


def test_commands_on_a_fresh_directory_print_only_their_answer(tmp_path: Path) -> None:
    """No gateway: the command starts the embedded stores itself, quietly, and stops them."""
    env = cli_env(tmp_path / "data")
    assert _succeeded(run_cli("migrate", env=env)).startswith("database at revision ")
    answer = _succeeded(run_cli("projections", "rebuild", "timeline", env=env))
    assert answer.startswith("projection timeline rebuilt") and "running gateway" not in answer


def test_seed_says_what_it_wrote_and_what_was_already_there(served: Served) -> None:
    env = cli_env(served.data_dir)
    first = _succeeded(run_cli("seed", "--count", "2", "--seed", "7", env=env))
    assert first.startswith("2 demo products: 2 written, 0 already there"), first
    again = _succeeded(run_cli("seed", "--count", "3", "--seed", "7", env=env))
    assert again.startswith("3 demo products: 1 written, 2 already there"), again
    last = _succeeded(run_cli("seed", "--count", "3", "--seed", "7", env=env))
    assert last.startswith("the 3 demo products were already there as given; nothing changed"), last
