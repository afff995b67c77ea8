"""Python's cyclic garbage collector, quietened for a long-running process.

A process that keeps many objects alive for its whole life (the relay's long-polls; the console's widgets, screens
and Textual's machinery) pays for every full collection by walking them all, and what it finds there is never
garbage. `quiet_gc()`, called once start-up is done: what exists then is frozen out of every collection
(`gc.freeze`), young objects are collected every THRESHOLDS[0] allocations instead of 700, and a full collection
comes ten times less often. The price is memory: cyclic garbage waits longer to be freed.

Measured: the relay at 10,000 waiting boxes, 45 % of a core in all, 22-27 % with this (bench/relay.py); the
console at rush hour, full collections during the keys 49 -> 1 and its resident memory 73 -> 91 MB
(bench/console_keys.py). Process-wide: never call it in a test process (it would make every earlier test's
objects permanent).
"""

from __future__ import annotations

import gc

THRESHOLDS = (10_000, 10, 100)  # Python's defaults: 700, 10, 10


def quiet_gc(thresholds: tuple[int, int, int] = THRESHOLDS) -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*thresholds)
