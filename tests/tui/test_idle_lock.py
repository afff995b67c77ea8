"""The console locks itself after the store's `lock_after_minutes` with no key or click (0: never): a console left
logged in on a busy floor is anyone's. Diners' orders arriving do not keep it open; a dialog left open is closed
unanswered. The console's own clock is moved (tests/tui/conftest.py's make_console takes it), never the wall's."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from textual.widgets import DataTable, Input, Static

from appliance.db.store_settings import load_store_settings, set_store_setting
from appliance.domain.errors import DomainError
from tests.tui.conftest import MANAGER_PIN, NOW, place_order, wait_until
from tui.screens.login import LoginScreen
from tui.screens.orders import OrdersScreen
from tui.screens.settings import SettingsScreen

pytestmark = pytest.mark.anyio


class Clock:
    """The console's clock, moved by the test."""

    def __init__(self) -> None:
        self.now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now

    def wait(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def locked(app) -> bool:
    return app.staff is None and isinstance(app.screen, LoginScreen)


def on_orders(app) -> bool:
    return app.staff is not None and isinstance(app.screen, OrdersScreen)


def pin_message(app) -> str:
    return str(app.screen.query_one("#pin-error", Static).content)


async def test_the_console_locks_itself_after_ten_minutes_without_a_key(settings, make_console, db):
    assert load_store_settings(db).lock_after_minutes == 10  # the default
    clock = Clock()
    app = make_console(clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: on_orders(app))
        clock.wait(minutes=9, seconds=59)
        await app.lock_if_idle()
        assert on_orders(app)
        clock.wait(seconds=1)
        await wait_until(pilot, lambda: locked(app))  # the console's own timer
        assert pin_message(app) == "locked after 10 min without a key 闲置自动锁屏"
        await wait_until(pilot, lambda: app.sub_title == "locked 已锁定")  # the PIN screen shown (its resume)
        # The next person's PIN opens it again, and the ten minutes start afresh.
        await pilot.press(*MANAGER_PIN, "enter")
        await wait_until(pilot, lambda: on_orders(app))
        clock.wait(minutes=9)
        await app.lock_if_idle()
        assert on_orders(app)


async def test_diners_orders_arriving_do_not_keep_it_open(settings, make_console, db):
    clock = Clock()
    app = make_console(clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: on_orders(app))
        clock.wait(minutes=6)
        place_order(db, table="A3")
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)  # the board took it in
        clock.wait(minutes=4)
        await wait_until(pilot, lambda: locked(app))


async def test_a_key_or_a_click_keeps_it_open(settings, make_console, db):
    clock = Clock()
    app = make_console(clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: on_orders(app))
        clock.wait(minutes=9)
        await pilot.press("down")
        clock.wait(minutes=9)
        await app.lock_if_idle()
        assert on_orders(app)  # 18 minutes since the login, 9 since the key
        await pilot.click("#orders")
        clock.wait(minutes=9, seconds=59)
        await app.lock_if_idle()
        assert on_orders(app)
        clock.wait(seconds=1)
        await app.lock_if_idle()
        assert locked(app)


async def test_a_dialog_left_open_is_closed_unanswered(settings, make_console, db):
    clock = Clock()
    app = make_console(clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: on_orders(app))
        board = app.screen
        await pilot.press("slash")  # find a ticket: its dialog opens
        await wait_until(pilot, lambda: bool(app.screen.query(Input)) and not isinstance(app.screen, OrdersScreen))
        await pilot.press("1")
        clock.wait(minutes=10)
        await wait_until(pilot, lambda: locked(app))
        # The next person finds the board, not the dialog someone left half-typed.
        await pilot.press(*MANAGER_PIN, "enter")
        await wait_until(pilot, lambda: on_orders(app))
        assert app.screen is board


async def test_lock_after_minutes_zero_never_locks(settings, make_console, db):
    with pytest.raises(DomainError, match="at least 0"), db:
        set_store_setting(db, "lock_after_minutes", -1)
    with pytest.raises(DomainError, match="at most 720"), db:
        set_store_setting(db, "lock_after_minutes", 721)
    clock = Clock()
    app = make_console(clock=clock)
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: on_orders(app))
        with db:  # another console's change
            set_store_setting(db, "lock_after_minutes", 0)
        await wait_until(pilot, lambda: app.store is not None and app.store.lock_after_minutes == 0)
        clock.wait(days=1)
        await app.lock_if_idle()
        assert on_orders(app)


async def test_settings_show_lock_after_minutes_with_its_help(settings, make_console, db):
    with db:
        set_store_setting(db, "lock_after_minutes", 5)
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: on_orders(app))
        await pilot.press("7")
        await wait_until(pilot, lambda: isinstance(app.screen, SettingsScreen) and bool(app.screen.values))
        table = app.screen.query_one(DataTable)
        table.move_cursor(row=table.get_row_index("lock_after_minutes"))
        await wait_until(pilot, lambda: "lock_after_minutes" in str(app.screen.query_one("#detail", Static).content))
        assert [getattr(c, "plain", c) for c in table.get_row_at(table.cursor_row)] == [
            "Lock after idle (min) 自动锁屏",
            "5",
        ]
        detail = str(app.screen.query_one("#detail", Static).content)
        assert detail.startswith("lock_after_minutes: 5  (default: 10)")
        assert "0 = never" in detail and "orders and calls arriving do not count" in detail
