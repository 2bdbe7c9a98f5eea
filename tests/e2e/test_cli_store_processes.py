"""No embedded server outlives the process that started it: a clean close, a killed owner's
servers adopted and stopped by the next one, and a whole pytest session's teardown."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gateway.bootstrap.background import EmbeddedStoreWatch
from gateway.bootstrap.settings import Settings
from gateway.stores.embedded import EmbeddedStores
from tests.e2e.cli_harness import alive, processes_mentioning

ROOT = Path(__file__).resolve().parents[2]


def _server_pids(stores: EmbeddedStores) -> set[int]:
    pids = {int(stores.postgres.get_pid()), int(stores.redis_server.pid), int(stores.search_server.pid)}
    assert 0 not in pids
    return pids


def _embedded_settings(data_dir: Path) -> Settings:
    return Settings().with_overrides(data_dir=data_dir, log_level="WARNING")


async def test_close_stops_every_server_it_started(tmp_path: Path) -> None:
    stores, _ = await EmbeddedStores.start(_embedded_settings(tmp_path / "data"))
    try:
        started = _server_pids(stores)
        assert alive(started) == started
    finally:
        await stores.close()
    assert alive(started) == set()
    assert processes_mentioning(str(tmp_path / "data")) == set()


async def test_servers_of_a_killed_owner_are_adopted_and_stopped_by_the_next(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    owner_code = textwrap.dedent(
        f"""
        import asyncio, json, sys, time
        from pathlib import Path
        from gateway.bootstrap.settings import Settings
        from gateway.stores.embedded import EmbeddedStores

        async def main():
            settings = Settings().with_overrides(data_dir=Path({str(data_dir)!r}), elasticsearch_url="x")
            stores, _ = await EmbeddedStores.start(settings)
            print(json.dumps([stores.postgres.get_pid(), stores.redis_server.pid]), flush=True)
            await asyncio.sleep(300)

        asyncio.run(main())
        """
    )
    owner = await asyncio.create_subprocess_exec(
        sys.executable, "-c", owner_code, stdout=asyncio.subprocess.PIPE, cwd=ROOT
    )
    orphans: set[int] = set()
    try:
        assert owner.stdout is not None
        orphans = set(json.loads(await asyncio.wait_for(owner.stdout.readline(), 120)))
        owner.send_signal(signal.SIGKILL)  # no clean-up of any kind runs
        await asyncio.wait_for(owner.wait(), 10)
        assert alive(orphans) == orphans, "a killed owner's daemons outlive it"

        stores, _ = await EmbeddedStores.start(_embedded_settings(data_dir))
        adopted = {int(stores.postgres.get_pid()), int(stores.redis_server.pid)}
        await stores.close()
        assert adopted == orphans, "the next owner adopts the running servers rather than starting twins"
        assert alive(orphans) == set()
    finally:
        if owner.returncode is None:
            owner.kill()
            await owner.wait()
        for pid in alive(orphans):
            os.kill(pid, signal.SIGKILL)


def test_a_pytest_session_leaves_no_store_process(tmp_path: Path) -> None:
    """The suite's own session stores (``base_settings``), in a pytest run of one tiny test."""
    record = tmp_path / "servers.json"
    tiny = tmp_path / "test_tiny.py"
    tiny.write_text(
        textwrap.dedent(
            f"""
            import json
            from pathlib import Path
            from sqlalchemy.engine import make_url
            from tests.e2e.cli_harness import processes_mentioning

            def test_uses_the_session_stores(base_settings):
                socket_dir = make_url(base_settings.database_url).query["host"]
                postmaster = int((Path(socket_dir) / "postmaster.pid").read_text().split()[0])
                redis = processes_mentioning(base_settings.redis_url.removeprefix("unix://"))
                Path({str(record)!r}).write_text(json.dumps([postmaster, *redis]))
            """
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_URL")}
    result = subprocess.run(
        [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.conftest",
            "-c", str(ROOT / "pyproject.toml"), "--rootdir", str(tmp_path),
            "--basetemp", str(tmp_path / "session"), str(tiny),
        ],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    servers = set(json.loads(record.read_text()))
    assert len(servers) == 2, "expected the session's PostgreSQL and Redis"
    leftovers = alive(servers) | processes_mentioning(str(tmp_path / "session"))
    for pid in leftovers:
        os.kill(pid, signal.SIGKILL)
    assert leftovers == set(), "store processes outlived the pytest session"


async def test_a_stopped_server_is_named_once_with_what_to_do(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stores, _ = await EmbeddedStores.start(_embedded_settings(tmp_path / "data"))
    try:
        watch = EmbeddedStoreWatch(stores)
        assert stores.stopped() == [] and await watch.check() == []
        os.kill(int(stores.redis_server.pid), signal.SIGKILL)
        os.kill(int(stores.search_server.process.pid), signal.SIGKILL)
        os.kill(int(stores.postgres.get_pid()), signal.SIGTERM)  # no client left: it shuts down
        for _ in range(200):
            if len(stores.stopped()) == 3:
                break
            await asyncio.sleep(0.05)
        assert stores.stopped() == ["PostgreSQL", "Redis", "search engine"]
        # A gateway stopping (its servers may go first) says nothing.
        assert await EmbeddedStoreWatch(stores, stopping=lambda: True).check() == []
        with caplog.at_level(logging.ERROR, logger="gateway.background"):
            assert await watch.check() == ["PostgreSQL", "Redis", "search engine"]
            assert await watch.check() == []
        lines = [r.getMessage() for r in caplog.records if r.name == "gateway.background"]
        assert len(lines) == 3 and all("start it again" in line for line in lines), lines
    finally:
        await stores.close()
    assert processes_mentioning(str(tmp_path / "data")) == set()
