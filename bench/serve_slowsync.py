"""Serve a store on the simulated SD card: register the `slowsync` VFS, then run `tablebox serve`.

    TABLEBOX_SQLITE_VFS=slowsync python bench/serve_slowsync.py --data-dir DIR --host 127.0.0.1 --port P

The VFS must be registered in the server process itself (a VFS is per process), before the store
opens; the environment variable is set here too in case the caller forgot it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import slow_vfs


def main(argv: list[str]) -> int:
    slow_vfs.register()
    os.environ["TABLEBOX_SQLITE_VFS"] = slow_vfs.NAME
    from appliance.cli import main as tablebox_main

    return tablebox_main(["serve", *argv])


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
