"""Serve a store on the simulated SD card: register the `slowsync` VFS, then run `tablebox serve`.

    TABLEBOX_SQLITE_VFS=slowsync python bench/serve_slowsync.py --data-dir DIR --host 127.0.0.1 --port P

The VFS must be registered in the server process itself (a VFS is per process), before the store
opens; the environment variable is set here too in case the caller forgot it.
"""

from __future__ import annotations

import os
import runpy
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import slow_vfs


def main(argv: list[str]) -> None:
    slow_vfs.register()
    os.environ["TABLEBOX_SQLITE_VFS"] = slow_vfs.NAME
    # `python -m appliance serve ...` in this process (the VFS is registered here): the command line runs as a
    # program, its package is not imported as a library. It exits with the command's status.
    sys.argv = ["tablebox", "serve", *argv]
    runpy.run_module("appliance", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
