"""Fixtures of the e2e tier."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.cli_harness import Served, serving


@pytest.fixture(scope="session")
def cli_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """One ``serve`` started from a clean data directory, for the CLI tests that only talk to it or
    run commands beside it (each start costs seconds of CPU). It logs warnings only: nothing
    reads its output while it runs, so it must not fill the pipe."""
    with serving(tmp_path_factory.mktemp("cli-gateway") / "data", LOG_LEVEL="WARNING") as gateway:
        yield gateway
