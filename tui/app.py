"""`tablebox console`: the manager's console on the store database.

Modes (one per screen, F1–F8 or 1–8, tui/keys.py SCREENS): orders, tables, menu, printers, sync, reports, settings,
audit; it opens on the PIN screen and `F12` / `ctrl+l` locks it again; `ctrl+q` asks before quitting. Every key is
in tui/keys.py: `?` lists the screen's keys (tui/help.py), ctrl+p finds any action the role allows by name
(tui/commands.py), and the tabs and the footer show only what the role may use. It updates live by watching
`PRAGMA data_version` (which changes only when another connection commits), never by re-reading whole tables on a
timer. Diners' calls and orders raise a badge in the header on every screen, a message and the bell.

Keys typed in a burst are kept in order: while a screen's action is getting going (until it opens its dialog,
finishes, or is found waiting on a busy database) the keys after it wait, then go to whatever is on top, so `/13`
types 13 into the ticket dialog instead of switching screens behind it.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from textual import events
from textual.app import App, ScreenStackError
from textual.binding import Binding
from textual.css.query import NoMatches
from textual.screen import ModalScreen, Screen
from textual.widgets import Static

from appliance.db.console import Alerts, alerts, changes, newest_request_id
from appliance.db.staff import Staff
from appliance.db.store_settings import StoreSettings, load_store_settings
from appliance.quietgc import quiet_gc
from tui.base import ConsoleScreen
from tui.commands import ConsoleCommands
from tui.database import ConsoleDatabase
from tui.dialogs import ConfirmScreen
from tui.help import HelpScreen
from tui.idle import IdleClock
from tui.keys import ANY, KEYS, SCREENS

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
BUSY_AFTER_SECONDS = 0.15
# Keys wait behind an action that is getting going at most this long (an action waiting on something slow must not
# take the keyboard with it: the screen keeps taking keys while the database works).
HOLD_KEYS_AT_MOST_SECONDS = 0.5
KEY_SENT_TO = "_tablebox_sent_to"  # set on a key event: the screen on top when it arrived
CALL_WORDS = {"waiter": "calls the waiter 呼叫服务员", "bill": "asks for the bill 请求买单"}


def shift_letter(key: events.Key) -> str | None:
    """The capital letter for a key reported as "shift+x" (the kitty keyboard protocol's escape codes), else None."""
    name = key.key
    if name.startswith("shift+") and len(name) == 7 and name[-1].isascii() and name[-1].isalpha():
        return name[-1].upper()
    return None


class QuitScreen(ConfirmScreen):
    """ctrl+q's question (its own class: a second ctrl+q while it is open does not ask twice)."""


def _factory(module: str, name: str) -> Callable[[], Screen[None]]:
    return lambda: getattr(importlib.import_module(module), name)()


def _screen_class(mode: str) -> type[ConsoleScreen]:
    module, name, _ = SCREENS[mode]
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


class ConsoleApp(App[None]):
    TITLE = "Tablebox"
    COMMANDS = {ConsoleCommands}  # ctrl+p: the actions of tui/keys.py (not Textual's own: themes, screenshots...)
    POLL_SECONDS = 0.25
    IDLE_CHECK_SECONDS = 1.0
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
        *[Binding(k.key, k.action, k.label, show=k.footer) for k in KEYS if ANY in k.screens],  # `?`
    ]

    def __init__(
        self,
        db_path: Path,
        secret: bytes,
        *,
        public_base_url: str = "",
        clock: Callable[[], datetime] | None = None,
        staff: Staff | None = None,
        quiet_gc: bool = False,
    ) -> None:
        super().__init__()
        # `tablebox console` only (process-wide: never in a test process): after the first login, Python's garbage
        # collector stops walking what start-up made (appliance/quietgc.py); its full collections were the keys'
        # slowest moments at rush hour (bench/console_keys.py).
        self._quiet_gc = quiet_gc
        self.public_base_url = public_base_url  # start of the table URLs printed on stickers
        self.db = ConsoleDatabase(db_path)
        self.secret = secret
        self.clock = clock or (lambda: datetime.now(UTC))
        self.idle = IdleClock(self.now)  # the last key or click: the console locks after lock_after_minutes without
        self.staff: Staff | None = None
        self._preset_staff = staff
        self.store: StoreSettings | None = None
        self._version = -1
        self._last_order_id = 0  # orders up to this one are announced (or were there when the console started)
        self._last_request_id = 0  # calls likewise
        self._seen_order_id = 0  # diners' orders after this one are counted as unseen (not looked at on Orders)
        self.alerts = 0  # alerts raised (bell + message): new diners' orders and calls
        self.badge: Alerts | None = None  # what the header's badge shows
        self.last_message = ""
        self._spin = 0
        self._holds: dict[object, float] = {}  # actions getting going -> when they started (monotonic)
        self._held_keys: list[events.Key] = []
        self._warming = False  # the screens' code is read once, after the first login
        self.warmed: list[str] = []  # the screen modules read so far by that warm-up

    # -- start, live updates, busy spinner ------------------------------------------------------------
    async def on_mount(self) -> None:
        self.store = await self.db.call(load_store_settings)
        self.title = self.header_title()
        seen = await self.db.call(changes)
        self._version, self._last_order_id = seen.data_version, seen.newest_order_id
        self._seen_order_id = seen.newest_order_id
        self._last_request_id = await self.db.call(newest_request_id)
        # Calls already waiting when the console starts are on the badge, but do not ring.
        self.badge = await self.db.call(alerts, self._last_order_id, self._last_request_id, self._seen_order_id)
        self.set_interval(self.POLL_SECONDS, self._poll)
        self.set_interval(0.1, self._show_busy)
        self.set_interval(self.IDLE_CHECK_SECONDS, self.lock_if_idle)
        if self._preset_staff is not None:
            await self.logged_in(self._preset_staff)

    def _poll(self) -> None:
        # In a worker: the app's own message queue (and so every key) never waits on the database.
        if not any(w.group == "poll" and not w.is_finished for w in self.workers):
            # The method, not a coroutine: a worker cancelled before it starts (the console closing) leaves nothing
            # un-awaited behind.
            self.run_worker(self.check_for_changes, group="poll")  # type: ignore[arg-type]  # (typed for Coroutine[None, None, T])

    async def check_for_changes(self) -> None:
        """Re-read only when another process committed (a new order, a printer, the web)."""
        if self.db.in_flight:
            return  # the database thread is busy; look again next tick
        seen = await self.db.call(changes)
        if seen.data_version == self._version:
            return
        self._version = seen.data_version
        self.store = await self.db.call(load_store_settings)
        await self.refresh_alerts()
        screen = self._current_screen()
        if isinstance(screen, ConsoleScreen):
            await screen.reload_if_shown()

    async def refresh_alerts(self) -> None:
        """Read calls and diners' orders: ring and say what is new (diners' actions only, never a staff order),
        and update the header's badge (also after this console's own actions: a call handled leaves it)."""
        if self.staff is None:
            return  # locked: nobody to tell; what came meanwhile is announced after the next login
        news = await self.db.call(alerts, self._last_order_id, self._last_request_id, self._seen_order_id)
        self._last_order_id = max(self._last_order_id, news.newest_order_id)
        self._last_request_id = max(self._last_request_id, news.newest_request_id)
        if self.current_mode == "orders":  # on the board: the new rows are in sight
            self._seen_order_id = self._last_order_id
            news = replace(news, unseen_orders=0)
        self.badge = news
        said = self.announce(news)
        if said:
            self.alerts += 1
            self.bell()  # a sound for a busy floor, and the message line says what it was for
            screen = self._current_screen()
            if isinstance(screen, ConsoleScreen):
                screen.say(said)
        self._show_header()

    @staticmethod
    def announce(news: Alerts) -> str:
        """The message for what diners just did ("" when nothing): calls first (a person is waiting), then orders,
        each with its count and tables."""
        parts = []
        for call in news.new_calls:
            parts.append(f"🔔 table {call.table} {CALL_WORDS.get(call.kind, call.kind)} — 2 = Tables")
        if news.new_orders:
            count = len(news.new_orders)
            where = ", ".join(f"{o.table} #{o.ticket_no}" for o in news.new_orders[:4])
            more = f" +{count - 4}" if count > 4 else ""
            word = "NEW ORDER" if count == 1 else "NEW ORDERS"
            parts.append(f"🔔 {count} {word} 新订单: {where}{more} — 1 = Orders")
        return " · ".join(parts)

    def badge_text(self) -> str:
        """The header's badge: calls waiting and orders not yet looked at ("" when there are none)."""
        news = self.badge
        if news is None or self.staff is None:
            return ""
        parts = []
        if news.waiter_calls:
            parts.append(f"! {news.waiter_calls} waiter 呼叫")
        if news.bill_calls:
            parts.append(f"≡ {news.bill_calls} bill 买单")
        if news.unseen_orders:
            parts.append(f"● {news.unseen_orders} new 新单")
        return " ".join(parts)

    def header_title(self) -> str:
        """The header's title: the badge first (what a narrow console cuts is the header's end), then the store."""
        badge = self.badge_text()
        store = f"Tablebox · {self.store.store_name}" if self.store else "Tablebox"
        return f"{badge} · {store}" if badge else store

    def _show_header(self) -> None:
        self.title = self.header_title()
        screen = self._current_screen()
        if isinstance(screen, ConsoleScreen) and not self.sub_title.endswith("database busy"):
            self.sub_title = self.header_text(screen.screen_name)

    def screen_shown(self, screen: ConsoleScreen) -> None:
        """A console screen came on top: on Orders every order so far is seen."""
        if self.current_mode == "orders" and self.badge is not None and self.badge.unseen_orders:
            self._seen_order_id = self._last_order_id
            self.badge = replace(self.badge, unseen_orders=0)
        self.title = self.header_title()
        self.sub_title = self.header_text(screen.screen_name)

    # -- keys typed in a burst --------------------------------------------------------------------------------
    def hold_keys(self, action: object) -> None:
        """An action is getting going: keys after it wait (see the module's docstring)."""
        self._holds[action] = time.monotonic()

    def release_keys(self, action: object | None = None) -> None:
        """The action opened its dialog, finished or waits on the database (None: every action): the keys that
        waited go, in order, to whatever is on top now."""
        if action is None:
            self._holds.clear()
        else:
            self._holds.pop(action, None)
        if self._holds or not self._held_keys:
            return
        keys, self._held_keys = self._held_keys, []
        for key in keys:
            again = events.Key(key.key, key.character)
            again.set_sender(self)
            self.post_message(again)

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, (events.Key, events.MouseDown)):
            self.idle.touched()  # someone is here (diners' orders and the live poll are not input)
        if isinstance(event, events.Key) and (capital := shift_letter(event)):
            # A terminal reporting every key as an escape code says "shift+x" where others send "X": the map binds
            # "X" (tui/keys.py), so the key goes on as the capital letter (here, in its place among the keys).
            again = events.Key(capital, capital)
            again.set_sender(self)
            await self.on_event(again)
            return
        if isinstance(event, events.Key):
            if not event.is_forwarded:  # a key just typed
                if self._holds or self._held_keys:
                    self._held_keys.append(event)
                    return
                setattr(event, KEY_SENT_TO, self._current_screen())
            elif self._holds or getattr(event, KEY_SENT_TO, None) is not self._current_screen():
                # Back from the focused widget to run the bindings, but an action is getting going, or what was on
                # top when the key was typed is no longer there (a dialog opened): the key goes to what is on top.
                self._held_keys.append(event)
                self.release_keys(object())
                return
        await super().on_event(event)

    def push_screen(self, *args: Any, **kwargs: Any) -> Any:
        pushed = super().push_screen(*args, **kwargs)
        # After the dialog's own queue has mounted and focused it, the keys that waited are typed into it.
        self.screen.call_later(self.release_keys)
        return pushed

    async def action_quit(self) -> None:
        """ctrl+q: ask first (a console quit by a stray key at rush hour is a console nobody watches)."""
        if isinstance(self._current_screen(), QuitScreen):
            return  # already asking

        def answered(yes: bool | None) -> None:
            if yes:
                self.exit()

        self.push_screen(
            QuitScreen("Quit the console? 退出? Phones keep ordering; nobody here would see it."), answered
        )

    def _current_screen(self) -> Screen[object] | None:
        """The screen on top, or None while the app is starting or shutting down (no screen stack)."""
        try:
            return self.screen
        except ScreenStackError:
            return None

    def _show_busy(self) -> None:
        busy = self.db.busy_for() > BUSY_AFTER_SECONDS
        if self._holds and (busy or time.monotonic() - min(self._holds.values()) > HOLD_KEYS_AT_MOST_SECONDS):
            self.release_keys()  # the action waits on something slow: the keys go on meanwhile
        screen = self._current_screen()
        if not isinstance(screen, ConsoleScreen):
            return
        if busy:
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
        self.idle.touched()
        await self.switch_mode("orders")
        await self.refresh_alerts()  # the badge, and what diners did while the console was locked
        if not self._warming:
            self._warming = True
            self.run_worker(self._warm_up, thread=True, name="warm-up", exit_on_error=False)

    def _warm_up(self) -> None:
        """After the first login, in a thread (the board is already up and keys go on): the other screens' code is
        read, so a screen's first visit builds it and reads its rows only (importing Tables alone took ~0.1 s of
        that visit: bench/console_keys.py). Then, for `tablebox console`, the garbage collector is quietened: what
        start-up, the first screen and every screen's code made is frozen out of collections (appliance/quietgc.py)."""
        for module, _, _ in SCREENS.values():
            importlib.import_module(module)
            self.warmed.append(module)
        if self._quiet_gc:
            self._quiet_gc = False
            quiet_gc()

    async def action_go(self, mode: str) -> None:
        if self.staff is None or not isinstance(self._current_screen(), ConsoleScreen):
            return  # locked, or a dialog is open: its answer belongs to the screen that asked
        if not self.may_open(mode):
            screen = self._current_screen()
            if isinstance(screen, ConsoleScreen):
                screen.say(f"✗ refused: a {self.staff.role} cannot open {mode}: ask a manager", error=True)
            return
        await self.switch_mode(mode)

    async def lock_if_idle(self) -> None:
        """Lock after the store's `lock_after_minutes` with no key or click (helper L's method, issue 18). A dialog
        left open is closed unanswered first, as Esc would: nothing half-asked waits for the next person."""
        if self.staff is None or self.store is None or not self.idle.due(self.store.lock_after_minutes):
            return
        while isinstance(screen := self._current_screen(), ModalScreen):
            await screen.dismiss(None)
        minutes = self.store.lock_after_minutes
        await self.action_lock()
        with suppress(NoMatches):  # the PIN screen says why it is there
            self.screen.query_one("#pin-error", Static).update(f"locked after {minutes} min without a key 闲置自动锁屏")

    def may_open(self, mode: str) -> bool:
        """Whether the person logged in may open a screen (its PERMISSION; none needed: anyone logged in)."""
        permission = _screen_class(mode).PERMISSION
        return self.staff is not None and (permission is None or self.staff.may(permission))

    def action_help(self) -> None:
        """`?`: the keys of the screen on top, as far as the person's role allows them."""
        screen = self._current_screen()
        if self.staff is None or not isinstance(screen, ConsoleScreen):
            return  # locked, or a dialog is open (its own keys are written in it)
        self.push_screen(HelpScreen(self.current_mode, screen.screen_name, self.staff.may))

    def action_command_palette(self) -> None:
        """ctrl+p: only for someone logged in, from a screen (not from inside a dialog)."""
        if self.staff is not None and isinstance(self._current_screen(), ConsoleScreen):
            super().action_command_palette()

    async def run_key_action(self, mode: str, action: str) -> None:
        """A palette command: go to the action's screen (if the role may open it), then run it as its key would."""
        if self.current_mode != mode:
            await self.action_go(mode)
            if self.current_mode != mode:
                return  # refused: the screen said why
        screen = self._current_screen()
        if isinstance(screen, ConsoleScreen):
            await self.run_action(action, screen)

    async def action_lock(self) -> None:
        self.staff = None
        self.badge = None
        self.title = self.header_title()
        await self.switch_mode("login")

    async def on_unmount(self) -> None:
        self.db.close()
