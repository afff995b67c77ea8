"""Token buckets per key (a table code, a network address, a store), so one phone (or one script) cannot flood the
kitchen: the box's diner API and the public relay use the same rule."""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field


@dataclass
class RateLimiter:
    """`per_minute` hits per key, refilled continuously; a burst of a whole minute's worth is allowed. 0 disables
    the limit. Memory is bounded: full buckets are forgotten when the table grows past `max_keys`. Thread-safe."""

    per_minute: int
    clock: Callable[[], float] = time.monotonic
    max_keys: int = 10_000
    _buckets: dict[Hashable, tuple[float, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def hit(self, key: Hashable) -> float:
        """Take one token for `key`: 0 when allowed, else the seconds to wait."""
        if self.per_minute <= 0:
            return 0.0
        with self._lock:
            now = self.clock()
            rate = self.per_minute / 60.0
            tokens, last = self._buckets.get(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[key] = (tokens, now)
                return (1.0 - tokens) / rate
            self._buckets[key] = (tokens - 1.0, now)
            if len(self._buckets) > self.max_keys:
                self._prune(now, rate)
            return 0.0

    def charge(self, key: Hashable, cost: float) -> None:
        """Take `cost` tokens from `key` whatever it holds, as a penalty for a request refused for cause (a forged
        table code): the balance may go below zero, down to minus a minute's worth, and `hit` refuses the key until
        it has refilled to one. So a key cannot dodge the penalty by sending while its bucket is nearly empty."""
        if self.per_minute <= 0 or cost <= 0:
            return
        with self._lock:
            now = self.clock()
            rate = self.per_minute / 60.0
            tokens, last = self._buckets.get(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * rate)
            self._buckets[key] = (max(-float(self.per_minute), tokens - cost), now)
            if len(self._buckets) > self.max_keys:
                self._prune(now, rate)

    def _prune(self, now: float, rate: float) -> None:
        for key in [k for k, (t, last) in self._buckets.items() if t + (now - last) * rate >= self.per_minute]:
            del self._buckets[key]
        while len(self._buckets) > self.max_keys:  # still too many: drop the oldest
            del self._buckets[next(iter(self._buckets))]


def retry_after(seconds: float) -> str:
    """A Retry-After header value: whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))
