"""`tablebox console`: the manager's console on the store database.

Modes (one per screen, F1–F7 or 1–7): orders, tables, menu, printers, sync, reports, settings; it opens on the
PIN screen and `F12` / `ctrl+l` locks it again. It updates live by watching `PRAGMA data_version` (which changes
only when another connection commits), never by re-reading whole tables on a timer.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from textual.app import App, ScreenStackError
from textual.binding import Binding
from textual.screen import Screen

from appliance.db.console import changes
from appliance.db.staff import Staff
from appliance.db.store_settings import StoreSettings, load_store_settings
from tui.base import ConsoleScreen
from tui.database import ConsoleDatabase

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
BUSY_AFTER_SECONDS = 0.15

SCREENS: dict[str, tuple[str, str, str]] = {
    # mode: (module, class, key)
    "orders": ("tui.screens.orders", "OrdersScreen", "1"),
    "tables": ("tui.screens.tables", "TablesScreen", "2"),
    "menu": ("tui.screens.menu", "MenuScreen", "3"),
    "printers": ("tui.screens.printers", "PrintersScreen", "4"),
    "sync": ("tui.screens.sync", "SyncScreen", "5"),
    "reports": ("tui.screens.reports", "ReportsScreen", "6"),
    "settings": ("tui.screens.settings", "SettingsScreen", "7"),
}


def _factory(module: str, name: str) -> Callable[[], Screen[None]]:
    return lambda: getattr(importlib.import_module(module), name)()


def _screen_class(mode: str) -> type[ConsoleScreen]:
    module, name, _ = SCREENS[mode]
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


class ConsoleApp(App[None]):
    TITLE = "Tablebox"
    ENABLE_COMMAND_PALETTE = False
    POLL_SECONDS = 0.25
    MODES = {
        "login": _factory("tui.screens.login", "LoginScreen"),
        **{mode: _factory(module, name) for mode, (module, name, _) in SCREENS.items()},
    }
    DEFAULT_MODE = "login"
    BINDINGS = [
        *[Binding(f"f{key}", f"go('{mode}')", mode.capitalize(), show=False) for mode, (_, _, key) in SCREENS.items()],
        *[Binding(key, f"go('{mode}')", mode.capitalize(), show=False) for mode, (_, _, key) in SCREENS.items()],
        Binding("f12", "lock", "Lock 锁屏", show=False),
        Binding("ctrl+l", "lock", "Lock", show=False),
        Binding("ctrl+q", "quit", "Quit", show=False),
    ]

    def __init__(
        self,
        db_path: Path,
        secret: bytes,
        *,
        public_base_url: str = "",
        clock: Callable[[], datetime] | None = None,
        staff: Staff | None = None,
    ) -> None:
        super().__init__()
        self.public_base_url = public_base_url  # start of the table URLs printed on stickers
        self.db = ConsoleDatabase(db_path)
        self.secret = secret
        self.clock = clock or (lambda: datetime.now(UTC))
        self.staff: Staff | None = None
        self._preset_staff = staff
        self.store: StoreSettings | None = None
        self._version = -1
        self._last_order_id = 0
        self.alerts = 0  # new-order alerts raised (sound + flash)
        self.last_message = ""
        self._spin = 0

    # -- start, live updates, busy spinner ------------------------------------------------------------
    async def on_mount(self) -> None:
        self.store = await self.db.call(load_store_settings)
        self.title = f"Tablebox · {self.store.store_name}"
        seen = await self.db.call(changes)
        self._version, self._last_order_id = seen.data_version, seen.newest_order_id
        self.set_interval(self.POLL_SECONDS, self._poll)
        self.set_interval(0.1, self._show_busy)
        if self._preset_staff is not None:
            await self.logged_in(self._preset_staff)

    def _poll(self) -> None:
        # In a worker: the app's own message queue (and so every key) never waits on the database.
        if not any(w.group == "poll" and not w.is_finished for w in self.workers):
            self.run_worker(self.check_for_changes(), group="poll")

    async def check_for_changes(self) -> None:
        """Re-read only when another process committed (a new order, a printer, the web)."""
        if self.db.in_flight:
            return  # the database thread is busy; look again next tick
        seen = await self.db.call(changes)
        version, newest = seen.data_version, seen.newest_order_id
        if version == self._version:
            return
        self._version = version
        self.store = await self.db.call(load_store_settings)
        if newest > self._last_order_id and self.staff is not None:
            self._last_order_id = newest
            self.alerts += 1
            self.bell()  # a sound for a busy kitchen, and a flash on the message line
            screen = self._current_screen()
            if isinstance(screen, ConsoleScreen):
                screen.say("🔔 NEW ORDER 新订单 — see Orders (1)")
        screen = self._current_screen()
        if isinstance(screen, ConsoleScreen):
            await screen.reload_if_shown()

    def _current_screen(self) -> Screen[object] | None:
        """The screen on top, or None while the app is starting or shutting down (no screen stack)."""
        try:
            return self.screen
        except ScreenStackError:
            return None

    def _show_busy(self) -> None:
        screen = self._current_screen()
        if not isinstance(screen, ConsoleScreen):
            return
        if self.db.busy_for() > BUSY_AFTER_SECONDS:
            self._spin = (self._spin + 1) % len(SPINNER)
            self.sub_title = f"{SPINNER[self._spin]} working… database busy"
        elif self.sub_title.endswith("database busy"):
            self.sub_title = self.header_text(screen.screen_name)

    def header_text(self, screen_title: str) -> str:
        who = f"{self.staff.name} ({self.staff.role})" if self.staff else "locked"
        return f"{screen_title} · {who}"

    def now(self) -> datetime:
        return self.clock()

    # -- staff ------------------------------------------------------------------------------------------
    async def logged_in(self, staff: Staff) -> None:
        self.staff = staff
        await self.switch_mode("orders")

    async def action_go(self, mode: str) -> None:
        if self.staff is None:
            return
        permission = _screen_class(mode).PERMISSION
        if permission and not self.staff.may(permission):
            screen = self._current_screen()
            if isinstance(screen, ConsoleScreen):
                screen.say(f"✗ refused: a {self.staff.role} cannot open {mode}: ask a manager", error=True)
            return
        await self.switch_mode(mode)

    async def action_lock(self) -> None:
        self.staff = None
        await self.switch_mode("login")

    async def on_unmount(self) -> None:
        self.db.close()
