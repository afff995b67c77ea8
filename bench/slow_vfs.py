"""A simulated SD card for the order benchmark: an apsw VFS named `slowsync` whose every file sync costs 10 ms.

It inherits everything from the default VFS (apsw: subclass `apsw.VFS` with a base of "", and make
`xOpen` return an `apsw.VFSFile` subclass opened on that same base), and overrides only the file's
`xSync`: sleep, then do the real sync. Cheap SD cards and eMMC in the field take roughly 5-20 ms per
fsync, so this shows what group commit buys when every COMMIT (WAL, synchronous=FULL) waits for one.

`time.sleep` releases the GIL, so the sleeping writer thread does not stall the event loop: exactly
like a real fsync, which apsw also calls without holding the GIL.
"""

from __future__ import annotations

import threading
import time

import apsw

NAME = "slowsync"
SYNC_DELAY_SECONDS = 0.010


class SlowSyncFile(apsw.VFSFile):
    """A file of the default VFS whose xSync first sleeps SYNC_DELAY_SECONDS."""

    def __init__(self, vfs: SlowSyncVFS, base: str, filename, flags) -> None:
        self._vfs = vfs
        super().__init__(base, filename, flags)

    def xSync(self, flags: int) -> None:
        time.sleep(self._vfs.delay)
        with self._vfs.lock:
            self._vfs.syncs += 1
        super().xSync(flags)


class SlowSyncVFS(apsw.VFS):
    def __init__(self, name: str = NAME, base: str = "", delay: float = SYNC_DELAY_SECONDS) -> None:
        self.vfs_name = name
        self.base = base
        self.delay = delay
        self.syncs = 0  # how many xSync calls were made (to confirm the slowdown is real)
        self.lock = threading.Lock()
        super().__init__(name, base)

    def xOpen(self, name, flags) -> SlowSyncFile:
        return SlowSyncFile(self, self.base, name, flags)


_registered: SlowSyncVFS | None = None


def register(name: str = NAME, delay: float = SYNC_DELAY_SECONDS) -> SlowSyncVFS:
    """Register the VFS once per process (apsw keeps it registered while the object lives)."""
    global _registered
    if _registered is None:
        _registered = SlowSyncVFS(name, "", delay)
    return _registered


if __name__ == "__main__":  # a quick self-check: single-row commits on the slow VFS
    import os
    import tempfile

    vfs = register()
    with tempfile.TemporaryDirectory() as tmp:
        conn = apsw.Connection(os.path.join(tmp, "t.db"), vfs=NAME)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("CREATE TABLE t (x)")
        start, n = time.perf_counter(), 30
        for i in range(n):
            with conn:
                conn.execute("INSERT INTO t VALUES (?)", (i,))
        took = time.perf_counter() - start
        print(f"{n} commits in {took:.2f}s = {n / took:.0f} commits/s, {vfs.syncs} syncs")
        conn.close()
