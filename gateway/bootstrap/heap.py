"""The garbage collector of a long-running process, once its startup is done.

A started gateway holds some 200,000 objects that live as long as it does (modules, the
schema and its types, caches). Python's cycle collector scanned all of them on every full
collection: under checkout load one came every few seconds and took about 150 ms, a pause
in every request in flight, plus the younger generations' collections, together about 0.7 ms
of CPU per purchase (docs/scaling.md section 9, seventh round). Each request leaves a few
dozen objects in reference cycles (graphql-core's executor, Starlette's request and
response), so the collector does have work; it need not redo the startup heap.

``settle_startup_heap`` collects once, freezes what survives (moved to a permanent
generation no collection scans; it is still freed by reference counting), and collects the
young generation every 20,000 allocations instead of 700: fewer, larger collections of what
requests leave, the same work overall, and far fewer promotions into the older generations.
"""

from __future__ import annotations

import gc

# Allocations between young collections; young collections between middle ones; middle
# collections between full ones (CPython also waits until the long-lived objects grew by 25 %).
THRESHOLDS = (20_000, 50, 100)


def settle_startup_heap() -> None:
    """Call once the process is built and before it serves."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
