"""After startup a process freezes its heap and collects its young generation less often."""

from __future__ import annotations

import gc

from gateway.bootstrap.heap import YOUNG_THRESHOLD, settle_startup_heap


def test_the_startup_heap_is_frozen_and_the_thresholds_raised() -> None:
    before = gc.get_threshold()
    survivor = {"kept": ["for", "good"]}
    try:
        settle_startup_heap()
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 1000
        # Frozen objects are no longer tracked by any generation a collection scans.
        assert not any(o is survivor for o in gc.get_objects())
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
    assert any(o is survivor for o in gc.get_objects())
