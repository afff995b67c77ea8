"""Nothing missed, nothing leaking: keys typed in a burst reach the dialog they opened (not the screen behind it);
waiter and bill calls and new orders raise a badge in the header on every screen; ctrl+q asks first."""

from __future__ import annotations

from typing import Any

import pytest
from textual import events
from textual.widgets import DataTable, Input

from appliance.db.floor import handle_calls, staff_order
from appliance.db.orders import MenuCache
from appliance.db.tables import list_tables, open_session, request_service
from appliance.domain.pricing import CartLine
from tests.tui.conftest import message, place_order, wait_until
from tests.tui.test_tables import dialog, open_floor, pick
from tui.app import QuitScreen
from tui.dialogs import PromptScreen

pytestmark = pytest.mark.anyio


def burst(app: Any, keys: str) -> None:
    """Keys as a fast typist sends them: all queued at once, none waiting for the one before to be handled."""
    for key in keys:
        name = {"/": "slash"}.get(key, key)
        event = events.Key(name, key)
        event.set_sender(app)
        app._driver.send_message(event)


async def test_keys_typed_just_after_a_dialog_opens_go_into_it(make_console, db):
    place_order(db, table="A2")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        assert app.current_mode == "orders"
        burst(app, "/13")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen) and bool(app.screen.query(Input)))
        await pilot.pause(0.3)  # time for the burst to be handled
        assert app.screen.query_one(Input).value == "13"
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, PromptScreen))
        assert app.current_mode == "orders"  # the screen underneath did not change


def item_id(db: Any, key: str) -> int:
    found: int = db.execute("SELECT id FROM items WHERE key = ?", (key,)).fetchone()[0]
    return found


def header(app: Any) -> str:
    """The header's title: the badge, then the store's name."""
    return str(app.title)


async def test_calls_raise_a_badge_a_message_and_the_bell_on_every_screen(make_console, db):
    tables = {t.name: t for t in list_tables(db)}
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")  # on Menu, far from the tables
        await wait_until(pilot, lambda: app.current_mode == "menu")
        rang = app.alerts
        with db:
            request_service(db, tables["A4"], "waiter")  # a diner taps "call the waiter"
        await wait_until(pilot, lambda: app.alerts == rang + 1)
        assert message(app) == "🔔 table A4 calls the waiter 呼叫服务员 — 2 = Tables"
        assert header(app).startswith("! 1 waiter 呼叫 · Tablebox · ")
        place_order(db, table="A3")
        with db:
            request_service(db, tables["A3"], "bill")
        await wait_until(pilot, lambda: "≡ 1 bill" in header(app))
        assert header(app).startswith("! 1 waiter 呼叫 ≡ 1 bill 买单 ● 1 new 新单 · Tablebox · ")
        assert app.current_mode == "menu"  # nothing moved the manager away
        await pilot.press("4")  # another screen: the badge goes along
        await wait_until(pilot, lambda: app.current_mode == "printers")
        assert header(app).startswith("! 1 waiter 呼叫 ≡ 1 bill 买单 ● 1 new 新单 · Tablebox · ")
        with db:
            handle_calls(db, tables["A4"].id, "小王")  # answered from the other console
        await wait_until(pilot, lambda: "waiter" not in header(app))
        assert header(app).startswith("≡ 1 bill 买单 ● 1 new 新单 · Tablebox · ")


async def test_a_call_handled_here_leaves_the_badge(make_console, db):
    tables = {t.name: t for t in list_tables(db)}
    with db:
        request_service(db, tables["A1"], "waiter")  # waiting before the console started: on the badge, no bell
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: app.current_mode == "tables" and bool(app.screen.query(DataTable)))
        assert header(app).startswith("! 1 waiter 呼叫 · Tablebox · ")
        assert app.alerts == 0
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count > 0)
        table.move_cursor(row=table.get_row_index(str(tables["A1"].id)))
        await pilot.press("h")
        await wait_until(pilot, lambda: "handled" in message(app))
        await wait_until(pilot, lambda: "waiter" not in header(app))
        assert app.alerts == 0


async def test_new_orders_are_counted_until_looked_at_and_a_staff_order_does_not_ring(make_console, db):
    tables = {t.name: t for t in list_tables(db)}
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("3")
        await wait_until(pilot, lambda: app.current_mode == "menu")
        with db:  # two phones at once: one commit
            first = place_order(db, table="A1", key="1")
            second = place_order(db, table="A2", key="2")
        await wait_until(pilot, lambda: app.alerts == 1)
        assert message(app) == (
            f"🔔 2 NEW ORDERS 新订单: A1 #{first['ticket_no']}, A2 #{second['ticket_no']} — 1 = Orders"
        )
        assert header(app).startswith("● 2 new 新单 · Tablebox · ")
        third = place_order(db, table="A3", key="3")
        await wait_until(pilot, lambda: app.alerts == 2)
        assert message(app) == f"🔔 1 NEW ORDER 新订单: A3 #{third['ticket_no']} — 1 = Orders"
        assert header(app).startswith("● 3 new 新单 · Tablebox · ")
        with db:  # a waiter's order from the other console: no news to staff
            open_session(db, tables["A6"].id, "小王", 2)
            staff_order(db, tables["A6"].id, [CartLine(item_id(db, "har_gow"), 1)], "staff-a6", MenuCache())
        with db:
            request_service(db, tables["A6"], "waiter")  # committed after it: the console has looked since
        await wait_until(pilot, lambda: "waiter" in header(app))
        assert app.alerts == 3  # the call rang, the staff order did not
        assert "ORDER" not in message(app)
        assert header(app).startswith("! 1 waiter 呼叫 ● 3 new 新单 · Tablebox · ")
        await pilot.press("1")  # looked at on the board
        await wait_until(pilot, lambda: app.current_mode == "orders")
        await wait_until(pilot, lambda: "new" not in header(app))
        assert header(app).startswith("! 1 waiter 呼叫 · Tablebox · ")
        place_order(db, table="A5", key="5")  # arrives while the board is on screen: in sight, not unseen
        await wait_until(pilot, lambda: app.alerts == 4)
        assert "new" not in header(app)


async def test_ctrl_q_asks_before_quitting(make_console):
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("ctrl+q")
        await wait_until(pilot, lambda: isinstance(app.screen, QuitScreen))
        await pilot.press("ctrl+q")  # pressed again: still one question
        assert sum(isinstance(s, QuitScreen) for s in app.screen_stack) == 1
        await pilot.press("n")
        await wait_until(pilot, lambda: not isinstance(app.screen, QuitScreen))
        assert app.is_running and app.current_mode == "orders"
        await pilot.press("ctrl+q", "y")
        await wait_until(pilot, lambda: not app.is_running)


async def test_the_managers_own_staff_order_does_not_ring(make_console, db):
    tables = {t.name: t for t in list_tables(db)}
    with db:
        open_session(db, tables["A6"].id, "小王", 2)
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A6")
        await pilot.press("n")  # a staff order from this console
        await dialog(pilot, app, "#search")
        await pilot.press(*"har_gow", "enter")
        await dialog(pilot, app, "#quantity")  # how many (the line dialog, tui/order_line.py)
        await pilot.press("enter")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "for A6" in message(app))
        with db:
            request_service(db, tables["A3"], "waiter")  # then a diner calls: the console looks again
        await wait_until(pilot, lambda: app.alerts >= 1)
        assert message(app) == "🔔 table A3 calls the waiter 呼叫服务员 — 2 = Tables"  # not "NEW ORDER"
        await pilot.pause(0.3)  # a poll or two more: nothing else rings
        assert app.alerts == 1
        assert "new" not in header(app)  # nor counts as an unseen order
