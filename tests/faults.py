"""A SQLite VFS that can be told to fail its syncs: a disk that stops accepting writes, on demand."""

from __future__ import annotations

import apsw


class FaultyVFS(apsw.VFS):
    def __init__(self, name: str = "faulty") -> None:
        self.name = name
        self.fail_sync = False
        self.syncs = 0
        super().__init__(name, "")

    def xOpen(self, name, flags):
        return FaultyFile(self, name, flags)


class FaultyFile(apsw.VFSFile):
    def __init__(self, vfs: FaultyVFS, name, flags) -> None:
        self._vfs = vfs
        super().__init__("", name, flags)

    def xSync(self, flags):
        if self._vfs.fail_sync:
            raise apsw.IOError("simulated: the disk refused to sync")
        self._vfs.syncs += 1
        return super().xSync(flags)
