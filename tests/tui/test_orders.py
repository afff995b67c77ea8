"""The live orders board, driven with Textual's pilot against a real store file."""

from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable, Input, OptionList, Static

from appliance.db.connection import open_connection
from appliance.db.orders import order_view
from tests.conftest import token_for
from tests.tui.conftest import NOW, message, place_order, wait_until
from tui.screens.orders import age_text

pytestmark = pytest.mark.anyio


async def test_new_orders_appear_live_and_keys_move_them(settings, make_console, db, client):
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one(DataTable)
        assert table.row_count == 0
        placed = place_order(db, table="A5")  # committed by "the web process": no key pressed here
        await wait_until(pilot, lambda: table.row_count == 1)
        assert [str(c) for c in table.get_row_at(0)][:2] == [str(placed["ticket_no"]), "A5"]
        assert app.alerts == 1 and "NEW ORDER" in message(app)
        await pilot.press("a")
        await wait_until(pilot, lambda: "submitted → accepted" in message(app))
        phone = client.get(f"/api/v1/tables/{token_for(settings, 'A5')}/orders").json()  # the diner's view
        assert [o["status"] for o in phone["orders"]] == ["accepted"]
        for expected in ("preparing", "ready", "served"):
            await pilot.press("a")
            await wait_until(pilot, lambda expected=expected: f"→ {expected}" in message(app))
        assert order_view(db, placed["id"])["status"] == "served"
        phone = client.get(f"/api/v1/tables/{token_for(settings, 'A5')}/orders").json()
        assert [o["status"] for o in phone["orders"]] == ["served"]
        assert table.row_count == 0  # served orders leave the board
        trail = [(r[0], r[1]) for r in db.execute("SELECT staff_name, action FROM audit_log ORDER BY id")]
        assert trail == [("店长 Manager", "order.advance")] * 4
        moves = [r[0] for r in db.execute("SELECT to_status FROM order_events WHERE actor = 'staff' ORDER BY id")]
        assert moves == ["accepted", "preparing", "ready", "served"]


async def test_cancel_asks_why_and_for_confirmation(settings, make_console, db):
    placed = place_order(db, table="A2")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("x")
        await wait_until(pilot, lambda: bool(app.screen.query(OptionList)))
        await pilot.press("escape")  # changed my mind at the reason
        await wait_until(pilot, lambda: message(app) == "not cancelled")
        assert order_view(db, placed["id"])["status"] == "submitted"
        await pilot.press("x")
        await wait_until(pilot, lambda: bool(app.screen.query(OptionList)))
        await pilot.press("down", "enter")  # the second of the store's reasons: 沽清 sold out
        await wait_until(pilot, lambda: bool(app.screen.query("#question")))
        assert "沽清 sold out" in str(app.screen.query_one("#question", Static).render())
        await pilot.press("n")
        await wait_until(pilot, lambda: message(app) == "not cancelled")
        assert order_view(db, placed["id"])["status"] == "submitted"
        await pilot.press("x")
        await wait_until(pilot, lambda: bool(app.screen.query(OptionList)))
        await pilot.press("end", "enter")  # "other": type it
        await wait_until(pilot, lambda: app.screen.focused is not None and isinstance(app.screen.focused, Input))
        await pilot.press(*"kitchen fire", "enter")
        await wait_until(pilot, lambda: bool(app.screen.query("#question")))
        await pilot.press("y")
        await wait_until(pilot, lambda: "cancelled: kitchen fire" in message(app))
    view = order_view(db, placed["id"])
    assert (view["status"], view["cancel_reason"]) == ("cancelled", "kitchen fire")
    details = db.execute("SELECT staff_name, action, details FROM audit_log").fetchall()
    assert [(n, a, json.loads(d)["reason"]) for n, a, d in details] == [
        ("店长 Manager", "order.cancelled", "kitchen fire")
    ]


async def test_void_one_line_recomputes_the_total(settings, make_console, db):
    placed = place_order(db, table="A4", items=(("har_gow", 2), ("mineral_water", 1)))
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("v")
        await wait_until(pilot, lambda: bool(app.screen.query("#choices")))
        await pilot.press("down", "enter")  # line 2: the water
        await wait_until(pilot, lambda: bool(app.screen.query("#reasons")))
        await pilot.press("enter")  # first reason
        await wait_until(pilot, lambda: bool(app.screen.query("#question")))
        await pilot.press("y")
        await wait_until(pilot, lambda: message(app).startswith("✓ voided"))
    view = order_view(db, placed["id"])
    water = next(line for line in view["lines"] if line["line_no"] == 2)
    assert water["status"] == "voided"
    assert view["total_minor"] == placed["total_minor"] - water["line_total_minor"]


async def test_refusals_show_the_domains_reason(settings, make_console, db):
    placed = place_order(db, table="A3")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)

        async def board_not_caught_up() -> None:  # the live poll would drop the row before the key: hold it
            return None

        app.check_for_changes = board_not_caught_up
        other = open_connection(settings.db_path)  # someone else serves it meanwhile
        with other:
            other.execute("UPDATE orders SET status = 'cancelled' WHERE id = ?", (placed["id"],))
        other.close()
        await pilot.press("a")  # before the board caught up: the store refuses
        await wait_until(pilot, lambda: "refused" in message(app))
        assert message(app) == "✗ refused: an order that is cancelled has no next step"
        assert db.execute("SELECT count(*) FROM audit_log").fetchone()[0] == 0  # refused: nothing recorded


async def test_filters_by_status_table_station_and_ticket_search(settings, make_console, db):
    first = place_order(db, table="A1", key="1", items=(("har_gow", 1),))
    second = place_order(db, table="A2", key="2", items=(("mineral_water", 1),))  # bar only
    third = place_order(db, table="A1", key="3", items=(("har_gow", 1),))
    db.execute("UPDATE orders SET status = 'accepted' WHERE id = ?", (third["id"],))
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 3)
        tickets = lambda: [str(table.get_row_at(i)[0]) for i in range(table.row_count)]  # noqa: E731
        await pilot.press("s")  # submitted only
        await wait_until(pilot, lambda: tickets() == [str(second["ticket_no"]), str(first["ticket_no"])])
        await pilot.press("s")  # accepted only
        await wait_until(pilot, lambda: tickets() == [str(third["ticket_no"])])
        await pilot.press("c", "t")
        await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
        await pilot.press(*"Z9", "enter")  # no such table: said in the dialog
        await wait_until(pilot, lambda: "no table called" in str(app.screen.query_one("#error", Static).render()))
        await pilot.press("backspace", "backspace", *"A1", "enter")
        await wait_until(pilot, lambda: tickets() == [str(third["ticket_no"]), str(first["ticket_no"])])
        await pilot.press("c", "f")  # first station: bar
        stations = [k for (k,) in db.execute("SELECT key FROM stations ORDER BY sort, key")]
        expected = (
            [str(second["ticket_no"])] if stations[0] == "bar" else [str(third["ticket_no"]), str(first["ticket_no"])]
        )
        await wait_until(pilot, lambda: tickets() == expected)
        await pilot.press("c", "slash")
        await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
        await pilot.press(*str(first["ticket_no"]), "enter")
        await wait_until(pilot, lambda: message(app).startswith(f"ticket #{first['ticket_no']}: table A1"))
        assert str(table.get_row_at(table.cursor_row)[0]) == str(first["ticket_no"])


def test_late_orders_are_marked_not_only_coloured():
    assert str(age_text("2026-11-21T12:25:00.000000Z", NOW)) == "5 min"
    amber = age_text("2026-11-21T12:18:00.000000Z", NOW)
    red = age_text("2026-11-21T12:05:00.000000Z", NOW)
    assert (str(amber), str(red)) == ("12 min !", "25 min !!")
    assert "red" in str(red.style) and "orange" in str(amber.style)
    assert str(age_text("2026-11-21T12:25:00.000000Z", NOW, late=3, very_late=4)) == "5 min !!"


async def test_the_board_fits_80_by_24_with_chinese_names(settings, make_console, db):
    place_order(db, table="T2", items=(("har_gow", 2), ("mineral_water", 1)), note="不要辣")
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 1)
        row = [str(c) for c in table.get_row_at(0)]
        assert row[1] == "T2" and "2x 水晶虾饺" in row[4] and row[3].startswith("●")
        detail = str(app.screen.query_one("#detail", Static).render())
        assert "2x 水晶虾饺" in detail and "✎ 不要辣" in detail
