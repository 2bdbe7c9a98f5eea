"""``serve --workers``: what each worker is told (the supervisor migrated; one worker seeds and runs jobs)."""

from __future__ import annotations

import os

from gateway.bootstrap.settings import Settings
from gateway.cli.workers import worker_environment


def test_only_the_first_worker_seeds_and_runs_the_periodic_jobs() -> None:
    first, second = worker_environment(0), worker_environment(1)
    assert first["MIGRATE_ON_START"] == second["MIGRATE_ON_START"] == "0"
    assert second["SEED_DEMO_DATA"] == "0" and second["BACKGROUND_JOBS"] == "0"
    # The first worker is told nothing new: it seeds (in development) and runs the jobs.
    assert first.get("BACKGROUND_JOBS") == os.environ.get("BACKGROUND_JOBS")
    assert first.get("SEED_DEMO_DATA") == os.environ.get("SEED_DEMO_DATA")
    assert Settings.from_env(second).background_jobs is False
