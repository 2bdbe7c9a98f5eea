"""Stopping ``serve`` the way docker, systemd and Kubernetes do (SIGTERM) or a person does (SIGINT).

The gateway must answer the requests it already took, then stop its projectors, jobs and
every embedded server it started, and exit 0.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx

from gateway.bootstrap.settings import DEV_JWT_SECRET
from gateway.edge.auth import JwtAuthenticator
from gateway.stores import runtime
from tests.e2e.cli_harness import alive, processes_mentioning, serving

STOP_SECONDS = 30
# Long enough that the signal certainly lands while the read waits (READ_WAIT_SECONDS below).
WAIT_SECONDS = 4.0
WAITING_READ = "query($p: Position) { products(consistentWith: $p, first: 1) { freshness { position } } }"
UPSERT = (
    "mutation($input: ProductUpsertInput!) { productUpsert(input: $input) { position userErrors { code } } }"
)


def _written_position(base_url: str) -> str:
    """A product written through the gateway: the ledger position of its event."""
    token = JwtAuthenticator(DEV_JWT_SECRET).mint("ops-test", ["admin"], 60)
    product = {
        "handle": "lamp",
        "title": "Lamp",
        "currencyCode": "USD",
        "variants": [{"sku": "LAMP-1", "title": "Lamp", "price": "20.00"}],
    }
    answer = httpx.post(
        f"{base_url}/graphql",
        json={"query": UPSERT, "variables": {"input": product}},
        headers={"authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    payload = answer["data"]["productUpsert"]
    assert payload["userErrors"] == [] and payload["position"], answer
    return str(payload["position"])


def test_sigterm_drains_the_request_in_flight_then_stops_every_store(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    # No projector in this process: a read that waits for a real position waits its whole bound.
    with serving(data_dir, READ_WAIT_SECONDS=str(WAIT_SECONDS), RUN_PROJECTORS="0") as served:
        started = served.started_stores()
        assert len(started) >= 3, "expected PostgreSQL, Redis and the search engine to be running"
        answer: dict[str, object] = {}
        position = _written_position(served.base_url)

        def waiting_read() -> None:
            began = time.monotonic()
            # The search read model never reaches the position: STALE_READ once the bound is up.
            response = httpx.post(
                f"{served.base_url}/graphql",
                json={"query": WAITING_READ, "variables": {"p": position}},
                timeout=30,
            )
            answer.update(status=response.status_code, body=response.json(), took=time.monotonic() - began)

        reader = threading.Thread(target=waiting_read)
        reader.start()
        time.sleep(1.0)  # the request is in flight, waiting inside the resolver
        signalled = time.monotonic()
        served.process.send_signal(signal.SIGTERM)
        exit_code = served.process.wait(STOP_SECONDS)
        stopped_after = time.monotonic() - signalled
        reader.join(5)
        output = served.process.stdout.read().decode() if served.process.stdout else ""

    assert exit_code == 0, output
    assert stopped_after < STOP_SECONDS
    assert answer.get("status") == 200, answer
    body = answer["body"]
    assert isinstance(body, dict)
    assert body["errors"][0]["extensions"]["code"] == "STALE_READ", body
    took = answer["took"]
    assert isinstance(took, float) and took >= WAIT_SECONDS - 0.5, "the read was cut short, not drained"
    assert alive(started) == set(), f"left running: {alive(started)}"
    assert processes_mentioning(str(data_dir)) == set()
    assert not (data_dir / runtime.RUNTIME_FILE).exists(), "the runtime file outlived the gateway"
    assert "Traceback" not in output, output
    stopping, stopped = output.find("gateway stopping"), output.find("gateway stopped")
    assert 0 <= stopping < stopped, "the log says it stopped, after it began stopping"


def test_sigint_on_an_ephemeral_gateway_stops_its_stores_and_removes_its_directory(tmp_path: Path) -> None:
    with serving(tmp_path / "unused", "--ephemeral") as served:
        ephemeral_dir = served.locked_data_dir()
        assert ephemeral_dir != served.data_dir
        started = served.started_stores()
        assert processes_mentioning(str(ephemeral_dir)), "its PostgreSQL runs in the temporary directory"
        served.process.send_signal(signal.SIGINT)
        exit_code = served.process.wait(STOP_SECONDS)
    assert exit_code == 0
    assert alive(started) == set(), f"left running: {alive(started)}"
    assert not ephemeral_dir.exists(), "--ephemeral must remove its data directory at exit"
