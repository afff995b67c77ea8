"""The print worker as a process runs it (`tablebox printd`, and inside `tablebox demo`): the worker on the store's
printers, with an in-process virtual printer for every `virtual://NAME` address (the demo's printers, trying out
a store without paper)."""

from __future__ import annotations

from appliance.settings import BoxSettings
from printers.virtual import VirtualPrinterPool
from printers.worker import PrintWorker


class PrintingHost:
    """Start, health and stop for appliance.daemon.run_daemon; also a context manager (the demo's server)."""

    def __init__(self, settings: BoxSettings) -> None:
        self.pool = VirtualPrinterPool()
        self.worker = PrintWorker(
            settings.db_path,
            resolve_virtual=lambda name: self.pool.get_or_start(name).uri,
            vfs=settings.sqlite_vfs or None,
        )

    def start(self) -> PrintingHost:
        self.worker.start()
        return self

    def health(self, now: float | None = None) -> str | None:
        return self.worker.health(now)

    def status(self) -> str:
        """The unit's status line once started."""
        return f"printing on {len(self.worker.loops)} printer(s)"

    def stop(self) -> None:
        self.worker.stop()
        self.pool.stop_all()

    def __enter__(self) -> PrintingHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
