"""``serve --workers N`` is refused while a store would live inside one process."""

from __future__ import annotations

from pathlib import Path

from gateway.bootstrap.container import Container
from tests.e2e.cli_harness import cli_env, free_port, run_cli


def test_embedded_mode_refuses_more_than_one_worker(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    done = run_cli("serve", "--workers", "2", "--port", str(free_port()), env=cli_env(data_dir), timeout=60)
    assert done.returncode == 2, done
    assert "serve --workers 2 needs every store shared by URL" in done.stderr
    assert "serve with one worker" in done.stderr
    assert done.stdout == ""
    assert not data_dir.exists(), "refused before starting any store"


def test_in_memory_stores_refuse_more_than_one_worker(container: Container, tmp_path: Path) -> None:
    settings = container.settings
    assert settings.database_url and settings.redis_url and settings.elasticsearch_url
    env = cli_env(
        tmp_path,
        DATABASE_URL=settings.database_url,
        REDIS_URL=settings.redis_url,
        ELASTICSEARCH_URL=settings.elasticsearch_url,
        MONGODB_URL="mongomock://",
    )
    done = run_cli("serve", "--workers", "3", "--port", str(free_port()), env=env, timeout=60)
    assert done.returncode == 2, done
    assert "cannot share mongodb" in done.stderr and "one process's memory" in done.stderr
