"""The PIN screen and what each role may reach."""

from __future__ import annotations

import pytest
from textual.widgets import Static

from tests.tui.conftest import MANAGER_PIN, WAITER_PIN, message, wait_until
from tui.screens.orders import OrdersScreen

pytestmark = pytest.mark.anyio


async def test_wrong_pin_is_refused_and_the_right_one_opens_the_orders(settings, make_console):
    app = make_console(pin=None)
    async with app.run_test() as pilot:
        await pilot.press(*"9999", "enter")
        await wait_until(pilot, lambda: "wrong PIN" in str(app.screen.query_one("#pin-error", Static).render()))
        assert app.staff is None
        await pilot.press("3")  # a screen key does nothing while locked (it is typed into the PIN)
        assert app.current_mode == "login"
        await pilot.press("backspace", *MANAGER_PIN, "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, OrdersScreen))
        assert app.staff is not None and app.staff.role == "manager"
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: app.current_mode == "login")
        assert app.staff is None


async def test_five_wrong_pins_lock_the_screen_for_a_while(settings, make_console):
    app = make_console(pin=None)
    async with app.run_test() as pilot:
        for _ in range(5):
            await pilot.press(*"0000", "enter")
            await pilot.pause()
        await pilot.press(*MANAGER_PIN, "enter")  # even the right PIN waits now
        await wait_until(pilot, lambda: "wait" in str(app.screen.query_one("#pin-error", Static).render()))
        assert app.staff is None


async def test_a_waiter_cannot_open_reports_or_settings(settings, make_console):
    app = make_console(pin=WAITER_PIN)
    async with app.run_test() as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, OrdersScreen))
        await pilot.press("6")
        await wait_until(pilot, lambda: "refused" in message(app))
        assert "waiter cannot open reports" in message(app) and app.current_mode == "orders"
        await pilot.press("7")
        await wait_until(pilot, lambda: "cannot open settings" in message(app))
        assert app.current_mode == "orders"
