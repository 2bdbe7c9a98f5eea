"""The garbage collector of a long-running process, once its startup is done.

A started gateway holds some 200,000 objects that live as long as it does (modules, the
schema and its types, caches). Python's cycle collector scanned all of them on every full
collection: under checkout load one came every few hundred purchases and took about 150 ms,
a pause in every request in flight; with the younger generations' collections, about 0.7 ms
of CPU per purchase (docs/scaling.md section 9, seventh round). Each request leaves a few
dozen objects in reference cycles (graphql-core's executor, Starlette's request and
response), so the collector does have work; it need not redo the startup heap.

``settle_startup_heap`` collects once, freezes what survives (moved to a permanent
generation no collection scans; it is still freed by reference counting), and collects the
young generation every 5,000 allocations instead of 700: fewer collections of what requests
leave, and fewer promotions into the older generations. Only that first threshold is set: it
means the same in every Python version this runs on, the others do not (3.14's incremental
collector reads them differently). A request's cycles may hold its body, so garbage waiting
for the next young collection is bounded by about 5,000 objects' worth of requests, not more.
"""

from __future__ import annotations

import gc

# Allocations (net of deallocations) between two collections of the young generation.
YOUNG_THRESHOLD = 5_000


def settle_startup_heap() -> None:
    """Call once the process is built and before it serves."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD)
