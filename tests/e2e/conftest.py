"""Fixtures of the e2e tier."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.e2e.cli_harness import Served, serving

CLI_GATEWAY = "cli_gateway"


class SharedGateway:
    """One ``serve`` from a clean data directory, started for its first user, stopped after its
    last. It logs warnings only: nothing reads its output while it runs."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp_path_factory = tmp_path_factory
        self._stack = ExitStack()
        self._served: Served | None = None

    def served(self) -> Served:
        if self._served is None:
            data_dir = self._tmp_path_factory.mktemp("cli-gateway") / "data"
            self._served = self._stack.enter_context(serving(data_dir, LOG_LEVEL="WARNING"))
        return self._served

    def stop(self) -> None:
        self._served = None
        self._stack.close()


_shared_gateway = pytest.StashKey[SharedGateway]()


def _uses_gateway(item: pytest.Item | None) -> bool:
    return item is not None and CLI_GATEWAY in getattr(item, "fixturenames", ())


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # The gateway's users run one after another from where the first one stands, so it is
    # started once and does not idle through the rest of the session.
    users = [item for item in items if _uses_gateway(item)]
    if users:
        first = items.index(users[0])
        others = [item for item in items if not _uses_gateway(item)]
        items[:] = others[:first] + users + others[first:]


def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    shared = item.config.stash.get(_shared_gateway, None)
    if shared is not None and _uses_gateway(item) and not _uses_gateway(nextitem):
        shared.stop()


@pytest.fixture(scope="session")
def shared_gateway(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SharedGateway]:
    shared = SharedGateway(tmp_path_factory)
    request.config.stash[_shared_gateway] = shared
    try:
        yield shared
    finally:
        shared.stop()


@pytest.fixture
def cli_gateway(shared_gateway: SharedGateway) -> Served:
    """The shared ``serve``, started from a clean data directory, for the CLI tests that only talk
    to it or run commands beside it (each start costs seconds of CPU)."""
    return shared_gateway.served()
