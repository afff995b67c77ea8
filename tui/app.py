"""`tablebox console`: the manager's console on the store database, live via PRAGMA data_version."""

from __future__ import annotations

from pathlib import Path

from textual.app import App

from appliance.db.connection import open_connection, scalar
from tui.screens.orders import OrdersScreen


class ConsoleApp(App[None]):
    TITLE = "Tablebox"
    POLL_SECONDS = 0.25

    def __init__(self, db_path: Path) -> None:
        super().__init__()
        self.conn = open_connection(db_path)
        self._version = -1

    def on_mount(self) -> None:
        self.push_screen(OrdersScreen())
        self._version = scalar(self.conn, "PRAGMA data_version")
        self.set_interval(self.POLL_SECONDS, self.check_for_changes)

    def check_for_changes(self) -> None:
        """Re-read only when another process committed (a new order, a printer, the web)."""
        version = scalar(self.conn, "PRAGMA data_version")
        if version != self._version:
            self._version = version
            screen = self.screen
            if isinstance(screen, OrdersScreen):
                screen.refresh_board()
                self.bell()  # something new: a sound for a busy kitchen

    def on_unmount(self) -> None:
        self.conn.close()
