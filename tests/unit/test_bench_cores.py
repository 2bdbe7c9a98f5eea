"""The benchmark's core placement and schedstat readings, on real child processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from benchmarks.cores import CoreTime, own_core, placement, spent_since, waiting_share
from benchmarks.cpu import Watched, children


@pytest.fixture
def two_children() -> Iterator[tuple[int, int]]:
    started = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) for _ in range(2)]
    try:
        yield started[0].pid, started[1].pid
    finally:
        for child in started:
            child.kill()
            child.wait()


def test_placement_gives_the_gateway_a_core_alone_and_the_others_the_rest() -> None:
    gateway, postgres = Watched("gateway", 1), Watched("PostgreSQL", 2, tree=True, ours=False)
    two = placement([gateway, postgres], frozenset({0, 1}))
    assert two is not None and two.ours == {0} and two.others == {1}
    four = placement([gateway, Watched("projector worker", 3), postgres], frozenset({0, 1, 2, 3}))
    assert four is not None and four.ours == {0} and four.others == {1, 2, 3}
    assert placement([gateway, postgres], frozenset({0})) is None
    assert placement([postgres], frozenset({0, 1})) is None


def test_core_time_counts_time_on_a_core() -> None:
    before = CoreTime.of(os.getpid())
    assert before is not None
    started, spun = time.perf_counter(), time.thread_time()
    # CPU time, not wall time: on a loaded machine the wall clock runs ahead of it.
    while time.thread_time() - spun < 0.1:
        pass
    wall = time.perf_counter() - started
    spent = spent_since(os.getpid(), before)
    assert spent is not None and spent.on_core >= 0.09 and spent.waiting >= 0
    shares = waiting_share(spent, wall)
    assert shares is not None
    assert shares == pytest.approx((100 * spent.on_core / wall, 100 * spent.waiting / wall))
    assert CoreTime.of(2**22 + 12345) is None


def test_own_core_pins_both_sides_and_frees_them_after(two_children: tuple[int, int]) -> None:
    ours, theirs = two_children
    everywhere = os.sched_getaffinity(0)
    watched = [
        Watched("gateway", ours),
        Watched("gateway, kernel", ours, ours=False),
        Watched("x", theirs, ours=False),
    ]
    with own_core(watched) as placed:
        if len(everywhere) < 2:
            assert placed is None
            return
        assert placed is not None
        assert os.sched_getaffinity(ours) == placed.ours
        assert os.sched_getaffinity(theirs) == placed.others
        assert not placed.ours & placed.others
    assert os.sched_getaffinity(ours) == everywhere
    assert os.sched_getaffinity(theirs) == everywhere


def test_own_core_frees_a_forking_servers_children_too() -> None:
    forking = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"]
    )
    try:
        deadline = time.monotonic() + 10
        while not children(forking.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        (child,) = children(forking.pid)
        everywhere = os.sched_getaffinity(0)
        watched = [Watched("gateway", os.getpid()), Watched("server", forking.pid, tree=True, ours=False)]
        with own_core(watched) as placed:
            if placed is not None:
                assert os.sched_getaffinity(child) == placed.others, "a child is pinned with its parent"
        assert os.sched_getaffinity(child) == everywhere
        assert os.sched_getaffinity(forking.pid) == everywhere
    finally:
        for pid in children(forking.pid):
            os.kill(pid, 9)
        forking.kill()
        forking.wait()
