"""Free space on the data folder's disk, and the guard that turns orders away before SQLite would run out of it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

MB = 1024 * 1024


def free_bytes(path: str | Path) -> int:
    """Bytes an unprivileged process may still write on the file system holding `path`."""
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


class SpaceGuard:
    """Says whether the data folder still has `min_free_bytes` free.

    A statvfs costs about 1.6 µs here; an answer of "enough" is still trusted for `ttl` seconds so a busy
    box does not pay it per order. An answer of "too little" is never cached: the first request after the
    technician frees space is taken.
    """

    def __init__(
        self,
        path: str | Path,
        min_free_bytes: int,
        *,
        measure: Callable[[str | Path], int] = free_bytes,
        clock: Callable[[], float] = time.monotonic,
        ttl: float = 1.0,
    ) -> None:
        self.path = path
        self.min_free_bytes = min_free_bytes
        self.measure = measure
        self.clock = clock
        self.ttl = ttl
        self.last_free: int | None = None
        self._ok_until = float("-inf")

    def enough(self) -> bool:
        if self.min_free_bytes <= 0:
            return True
        now = self.clock()
        if now < self._ok_until:
            return True
        try:
            free = self.measure(self.path)
        except OSError:  # the folder vanished or cannot be asked: let SQLite's own error speak
            return True
        self.last_free = free
        ok = free >= self.min_free_bytes
        self._ok_until = now + self.ttl if ok else float("-inf")
        return ok
