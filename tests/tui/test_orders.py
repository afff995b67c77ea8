"""The live orders board, driven with Textual's pilot against a real store file."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from textual.geometry import Region
from textual.widget import Widget
from textual.widgets import DataTable, Input, OptionList, Static

from appliance.db.connection import open_connection
from appliance.db.orders import advance_order, order_view
from tests.conftest import token_for
from tests.tui.conftest import NOW, message, place_order, wait_until
from tui.screens.orders import age_text

pytestmark = pytest.mark.anyio


def shown(widget: Widget) -> list[str]:
    """The widget's lines as drawn on the terminal (trailing blanks dropped), without a border line."""
    lines = [strip.text.rstrip() for strip in widget.render_lines(Region(0, 0, *widget.outer_size))]
    return [line for line in lines if line.strip("─")]


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
        await pilot.press("X")
        await wait_until(pilot, lambda: bool(app.screen.query(OptionList)))
        await pilot.press("escape")  # changed my mind at the reason
        await wait_until(pilot, lambda: message(app) == "not cancelled")
        assert order_view(db, placed["id"])["status"] == "submitted"
        await pilot.press("X")
        await wait_until(pilot, lambda: bool(app.screen.query(OptionList)))
        await pilot.press("down", "enter")  # the second of the store's reasons: 沽清 sold out
        await wait_until(pilot, lambda: bool(app.screen.query("#question")))
        assert "沽清 sold out" in str(app.screen.query_one("#question", Static).render())
        await pilot.press("n")
        await wait_until(pilot, lambda: message(app) == "not cancelled")
        assert order_view(db, placed["id"])["status"] == "submitted"
        await pilot.press("X")
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
        await pilot.press("escape", "t")
        await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
        await pilot.press(*"Z9", "enter")  # no such table: said in the dialog
        await wait_until(pilot, lambda: "no table called" in str(app.screen.query_one("#error", Static).render()))
        await pilot.press("backspace", "backspace", *"A1", "enter")
        await wait_until(pilot, lambda: tickets() == [str(third["ticket_no"]), str(first["ticket_no"])])
        await pilot.press("escape", "f")  # first station: bar
        stations = [k for (k,) in db.execute("SELECT key FROM stations ORDER BY sort, key")]
        expected = (
            [str(second["ticket_no"])] if stations[0] == "bar" else [str(third["ticket_no"]), str(first["ticket_no"])]
        )
        await wait_until(pilot, lambda: tickets() == expected)
        await pilot.press("escape", "slash")
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
        detail = app.screen.query_one("#detail", Static)
        await wait_until(pilot, lambda: "✎ 不要辣" in "\n".join(shown(detail)))
        assert "2x 水晶虾饺" in "\n".join(shown(detail))


def tickets_shown(table: DataTable) -> list[str]:
    return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]


async def advance_and_wait(pilot, app, key: str, expected: str) -> None:
    await pilot.press(key)
    await wait_until(pilot, lambda: expected in message(app))


async def test_a_served_order_leaves_the_highlight_on_the_row_below_it(settings, make_console, db):
    placed = [place_order(db, table=f"A{n}", key=str(n)) for n in range(1, 6)]  # the board: A5 A4 A3 A2 A1
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 5)
        await pilot.press("down", "down")  # A3, in the middle
        assert table.get_row_at(table.cursor_row)[1] == "A3"
        for step in ("accepted", "preparing", "ready", "served"):
            await advance_and_wait(pilot, app, "a", f"→ {step}")
        await wait_until(pilot, lambda: table.row_count == 4)
        # The row below the one that left (A2, the next older order), not the newest (A5).
        assert (table.cursor_row, table.get_row_at(table.cursor_row)[1]) == (2, "A2")
        await advance_and_wait(pilot, app, "a", f"ticket {placed[1]['ticket_no']}: submitted → accepted")
    # A1 .. A5: A3 served, A2 accepted by the fifth key, the rest untouched.
    assert [order_view(db, p["id"])["status"] for p in placed] == [
        "submitted",
        "accepted",
        "served",
        "submitted",
        "submitted",
    ]


async def test_the_last_row_leaving_moves_the_highlight_up_one(settings, make_console, db):
    placed = [place_order(db, table=f"A{n}", key=str(n)) for n in range(1, 4)]  # A3 A2 A1
    db.execute("UPDATE orders SET status = 'ready' WHERE id = ?", (placed[0]["id"],))
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 3)
        await pilot.press("end", "down", "down")
        assert table.get_row_at(table.cursor_row)[1] == "A1"
        await advance_and_wait(pilot, app, "a", "→ served")
        await wait_until(pilot, lambda: table.row_count == 2)
        assert (table.cursor_row, table.get_row_at(table.cursor_row)[1]) == (1, "A2")


async def test_enter_advances_the_highlighted_order(settings, make_console, db):
    placed = place_order(db, table="A2")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await advance_and_wait(pilot, app, "enter", f"ticket {placed['ticket_no']}: submitted → accepted")
        await advance_and_wait(pilot, app, "enter", "accepted → preparing")
    assert order_view(db, placed["id"])["status"] == "preparing"
    assert [a for (a,) in db.execute("SELECT action FROM audit_log")] == ["order.advance"] * 2


async def test_new_orders_do_not_push_the_view_and_home_shows_them(settings, make_console, db):
    tables = ["A1", "A2", "A3", "A4", "A5", "T1", "T2", "T3"]
    for n in range(24):
        place_order(db, table=tables[n % len(tables)], key=f"k{n}")
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        screen = app.screen
        table = screen.query_one(DataTable)
        filters = screen.query_one("#filters", Static)
        await wait_until(pilot, lambda: table.row_count == 24)
        await pilot.press(*["down"] * 18, *["up"] * 5)  # well down the board (the view scrolled), highlight mid-view
        await wait_until(pilot, lambda: table.scroll_y > 0)
        top, highlighted = round(table.scroll_y), table.get_row_at(table.cursor_row)[0]
        first_visible = table.get_row_at(top)[0]
        place_order(db, table="A1", key="new1")
        place_order(db, table="A2", key="new2")
        # The board redrawn with both, and its view back two rows down: where it was, over the same rows (a board
        # that jumps to the top, or pushes the view, never gets there).
        await wait_until(pilot, lambda: table.row_count == 26 and round(table.scroll_y) == top + 2)
        # The highlight and the view stay on the same orders; the two new ones are above, and said so.
        assert table.get_row_at(table.cursor_row)[0] == highlighted
        assert round(table.scroll_y) == top + 2 and table.get_row_at(round(table.scroll_y))[0] == first_visible
        assert shown(filters)[0].strip() == "▲ 2 new orders above 上方有新单 — Home  all open orders 全部"
        await pilot.press("home")
        await wait_until(pilot, lambda: table.cursor_row == 0)
        newest = db.execute("SELECT ticket_no FROM orders ORDER BY id DESC LIMIT 1").fetchone()[0]
        assert (round(table.scroll_y), table.get_row_at(0)[0]) == (0, str(newest))
        assert shown(filters)[0].strip().startswith("all open orders")


async def test_filters_say_what_they_show_and_an_empty_result_says_so(settings, make_console, db):
    placed = place_order(db, table="A1")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        table = screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 1)
        filters = screen.query_one("#filters", Static)
        assert shown(filters)[0].strip().startswith("all open orders 全部")
        await pilot.press("s")
        await wait_until(pilot, lambda: shown(filters)[0].strip().startswith("status NEW 新单 — 1 order 单   ("))
        await pilot.press("t")
        await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
        await pilot.press(*"a2", "enter")  # typed in lower case: table A2
        await wait_until(
            pilot, lambda: shown(filters)[0].strip().startswith("status NEW 新单 · table A2 — 0 orders 单   (")
        )
        assert table.row_count == 0
        detail = screen.query_one("#detail", Static)
        await wait_until(pilot, lambda: bool(shown(detail)))
        assert shown(detail)[0].strip() == "no orders match: status NEW 新单, table A2 — Esc clears 无符合订单"
        await pilot.press("t")
        await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
        await pilot.press("backspace", "backspace", *" a1 ", "enter")
        await wait_until(pilot, lambda: table.row_count == 1)
        assert table.get_row_at(0)[0] == str(placed["ticket_no"])
        await pilot.press("escape")
        await wait_until(pilot, lambda: shown(filters)[0].strip().startswith("all open orders"))


async def test_the_detail_shows_times_and_wraps_notes_under_their_line(settings, make_console, db):
    placed = place_order(db, table="T2", items=(("har_gow", 2), ("mineral_water", 1)), minutes_ago=25)
    note = "no coriander, no spring onion, sauce on the side please, the guest is allergic to sesame"
    with db:
        db.execute("UPDATE order_lines SET note = ? WHERE order_id = ? AND line_no = 1", (note, placed["id"]))
    advance_order(db, placed["id"])
    accepted_at = (NOW - timedelta(minutes=13)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    with db:
        db.execute(
            "UPDATE order_events SET at = ? WHERE order_id = ? AND to_status = 'accepted'", (accepted_at, placed["id"])
        )
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        detail = app.screen.query_one("#detail", Static)
        await wait_until(pilot, lambda: any("for 13 min" in line for line in shown(detail)))
        await pilot.pause()
        lines = shown(detail)
        # Placed 25 minutes before 20:30 Shanghai time; accepted 13 minutes ago.
        assert (
            lines[0].strip()
            == f"#{placed['ticket_no']}  table T2  ✓ accepted 已接 for 13 min · placed 20:05 (25 min ago)"
        )
        dish = next(i for i, line in enumerate(lines) if "2x 水晶虾饺" in line)
        column = lines[dish].index("2x")
        assert lines[dish + 1].index("✎") == column  # the note under its dish ...
        wrapped = lines[dish + 2]
        assert wrapped[:column].strip() == "" and wrapped[column] != " "  # ... and its second line too
        assert "1x" in lines[dish + 3] and lines[dish + 3].index("1x") == column


async def test_void_dialog_shows_size_and_price(settings, make_console, db):
    place_order(db, table="A4", items=(("har_gow", 2), ("mineral_water", 1)))
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("v")
        await wait_until(pilot, lambda: bool(app.screen.query("#choices")))
        choices = app.screen.query_one("#choices", OptionList)
        texts = [str(choices.get_option_at_index(i).prompt) for i in range(choices.option_count)]
        totals = [t for (t,) in db.execute("SELECT line_total_minor FROM order_lines ORDER BY line_no")]
        ticket = db.execute("SELECT ticket_no FROM orders").fetchone()[0]  # the dialog Tables opens (tui/void_line.py)
        assert texts[0].startswith(f"#{ticket}  2x 水晶虾饺") and texts[0].endswith(
            f"¥{totals[0] // 100}.{totals[0] % 100:02d}"
        )
        assert texts[1].endswith(f"¥{totals[1] // 100}.{totals[1] % 100:02d}")


async def test_on_a_short_board_new_orders_show_at_once_and_the_highlight_stays(settings, make_console, db):
    for n in range(1, 4):
        place_order(db, table=f"A{n}", key=str(n))  # A3 A2 A1: all in view
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        screen = app.screen
        table = screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 3)
        await pilot.press("down")  # A2
        place_order(db, table="A5", key="5")
        await wait_until(pilot, lambda: table.row_count == 4 and table.cursor_row == 2)
        assert (table.cursor_row, table.get_row_at(table.cursor_row)[1], table.get_row_at(0)[1]) == (2, "A2", "A5")
        assert round(table.scroll_y) == 0  # nothing to scroll: the new order is in view ...
        assert shown(screen.query_one("#filters", Static))[0].strip().startswith("all open orders")  # ... not "above"


def filters_line(app) -> str:
    return shown(app.screen.query_one("#filters", Static))[0].strip()


async def find(pilot, app, text: str) -> None:
    await pilot.press("slash")
    await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
    await pilot.press(*text, "enter")


async def test_find_a_table_or_a_dish_in_any_case_and_either_language(settings, make_console, db):
    dumplings = place_order(db, table="A1", key="1", items=(("har_gow", 2),))
    water = place_order(db, table="A2", key="2", items=(("mineral_water", 1),))
    both = place_order(db, table="T1", key="3", items=(("mineral_water", 2), ("har_gow", 1)))
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 3)

        def tickets() -> list[str]:
            return [str(table.get_row_at(i)[0]) for i in range(table.row_count)]

        await find(pilot, app, "SHRIMP dumpl")  # English, another case, part of the name
        await wait_until(pilot, lambda: tickets() == [str(both["ticket_no"]), str(dumplings["ticket_no"])])
        assert filters_line(app).startswith("dish “SHRIMP dumpl” — 2 orders 单")
        assert message(app) == "2 open orders with a dish “SHRIMP dumpl” — Esc shows all"
        await find(pilot, app, "矿泉")  # Chinese
        await wait_until(pilot, lambda: tickets() == [str(both["ticket_no"]), str(water["ticket_no"])])
        assert filters_line(app).startswith("dish “矿泉” — 2 orders 单")
        await find(pilot, app, "t1")  # a table, typed in lower case
        await wait_until(pilot, lambda: tickets() == [str(both["ticket_no"])])
        assert filters_line(app).startswith("table T1 — 1 order 单")
        await find(pilot, app, "lobster")
        await wait_until(pilot, lambda: table.row_count == 0)
        assert message(app) == "no open order with a dish “lobster” 无符合订单 — Esc shows all"
        assert shown(app.screen.query_one("#detail", Static))[0].strip().startswith("no orders match: dish “lobster”")
        await find(pilot, app, str(water["ticket_no"]))  # a ticket number: the board cleared, the ticket highlighted
        await wait_until(pilot, lambda: message(app).startswith(f"ticket #{water['ticket_no']}: table A2"))
        assert table.row_count == 3 and str(table.get_row_at(table.cursor_row)[0]) == str(water["ticket_no"])


def erp_target(db) -> None:
    with db:
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'rest')")


def effects(db, order_id: int) -> tuple:
    """What accepting an order left in the store: its status, its events, its kitchen tickets, its outbox rows and
    the audit line (with the states it moved between)."""
    status = db.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()[0]
    events = db.execute(
        "SELECT from_status, to_status, actor FROM order_events WHERE order_id = ? ORDER BY id", (order_id,)
    ).fetchall()
    jobs = db.execute("SELECT station, kind FROM print_jobs WHERE order_id = ? ORDER BY id", (order_id,)).fetchall()
    outbox = [
        (kind, json.loads(payload)["from"], json.loads(payload)["to"])
        for kind, payload in db.execute(
            "SELECT kind, payload FROM outbox WHERE kind = 'order.status' AND payload LIKE ? ORDER BY id",
            (f'%"order_id":{order_id},%',),
        )
    ]
    audit = [
        (action, json.loads(details))
        for action, details in db.execute(
            "SELECT action, details FROM audit_log WHERE subject = ? ORDER BY id", (f"order {order_id}",)
        )
    ]
    return status, events, jobs, outbox, audit


async def test_accept_all_asks_with_the_count_and_tables_and_accepts_each_as_a_does(settings, make_console, db):
    erp_target(db)
    by_a = place_order(db, table="A1", key="1", items=(("har_gow", 1), ("mineral_water", 1)))
    new = [place_order(db, table=t, key=t, items=(("har_gow", 1), ("mineral_water", 1))) for t in ("A2", "T1", "T2")]
    cooking = place_order(db, table="A3", key="c")
    advance_order(db, cooking["id"])  # already accepted: not new, left alone
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 5)
        table.move_cursor(row=table.get_row_index(str(by_a["id"])))
        await pilot.press("a")  # one order accepted the usual way, to compare with
        await wait_until(pilot, lambda: "submitted → accepted" in message(app))
        await pilot.press("A")
        await wait_until(pilot, lambda: bool(app.screen.query("#question")))
        question = str(app.screen.query_one("#question", Static).render())
        assert question.startswith("Accept all 3 new orders 全部接单?")
        assert "Tables A2, T1, T2" in question
        assert "Tickets " + " ".join(f"#{o['ticket_no']}" for o in new) in question
        await pilot.press("n")  # asked first: no is no
        await wait_until(pilot, lambda: message(app) == "nothing accepted")
        assert [effects(db, o["id"])[0] for o in new] == ["submitted"] * 3
        await pilot.press("A")
        await wait_until(pilot, lambda: bool(app.screen.query("#question")))
        with db:  # meanwhile, another console cancels T1's order
            db.execute("UPDATE orders SET status = 'cancelled' WHERE id = ?", (new[1]["id"],))
        await pilot.press("y")
        await wait_until(pilot, lambda: message(app).startswith("✓ accepted"))
        assert message(app) == (
            f"✓ accepted 2 of 3 new orders 已接单; skipped #{new[1]['ticket_no']} (it is cancelled now)"
        )
        await wait_until(pilot, lambda: table.row_count == 4)
    expected = effects(db, by_a["id"])  # what `a` did
    assert expected[0] == "accepted" and expected[2] and expected[3] and expected[4]
    assert expected[4] == [("order.advance", {"from": "submitted", "to": "accepted"})]
    for order in (new[0], new[2]):
        assert effects(db, order["id"]) == expected
    assert effects(db, new[1]["id"])[0] == "cancelled" and effects(db, new[1]["id"])[4] == []
    assert effects(db, cooking["id"])[0] == "accepted"  # not moved on to cooking


async def test_void_one_of_two_asks_how_many_and_keeps_the_other(settings, make_console, db):
    erp_target(db)
    placed = place_order(db, table="A4", items=(("har_gow", 2), ("mineral_water", 1)))  # 64.00 + 8.00
    advance_order(db, placed["id"])  # accepted: the kitchen has its ticket
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("v")
        await wait_until(pilot, lambda: bool(app.screen.query("#choices")))
        await pilot.press("enter")  # line 1: 2x 水晶虾饺
        await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
        assert "How many of 2x 水晶虾饺 to void?" in str(app.screen.query_one(".title", Static).render())
        assert app.screen.query_one("#answer", Input).value == "2"  # all of them unless told
        await pilot.press("backspace", "3", "enter")  # more than there are: said, not taken
        await wait_until(pilot, lambda: "1 to 2" in str(app.screen.query_one("#error", Static).render()))
        await pilot.press("backspace", "1", "enter")
        await wait_until(pilot, lambda: bool(app.screen.query("#reasons")))
        await pilot.press("enter")  # the first reason
        await wait_until(pilot, lambda: bool(app.screen.query("#question")))
        question = str(app.screen.query_one("#question", Static).render())
        assert question.startswith(f"Void 1x 水晶虾饺 of 2 from ticket #{placed['ticket_no']} (table A4):")
        assert "a void ticket for 1; the bill drops ¥32.00; 1 stays on the bill" in question
        await pilot.press("y")
        await wait_until(pilot, lambda: message(app).startswith("✓ voided"))
        assert message(app) == f"✓ voided 1x 水晶虾饺 of 2 from #{placed['ticket_no']}: now ¥40.00"
        row = app.screen.query_one(DataTable).get_row_at(0)
        assert str(row[4]).startswith("1x 水晶虾饺, 1x 矿泉水")
    view = order_view(db, placed["id"])
    assert [(line["line_no"], line["quantity"], line["status"]) for line in view["lines"]] == [
        (1, 1, "active"),
        (2, 1, "active"),
        (3, 1, "voided"),
    ]
    assert view["total_minor"] == 4000
    (details,) = [
        json.loads(d) for (d,) in db.execute("SELECT details FROM audit_log WHERE action = 'order.line_voided'")
    ]
    assert (details["quantity"], details["of"], details["dish"]) == (1, 2, "1x 水晶虾饺")
    (payload,) = [json.loads(p) for (p,) in db.execute("SELECT payload FROM outbox WHERE kind = 'order.line_voided'")]
    assert (payload["line_no"], payload["quantity"], payload["left"], payload["total_minor"]) == (1, 1, 1, 4000)
    assert db.execute("SELECT count(*) FROM print_jobs WHERE kind = 'void'").fetchone()[0] == 1


async def test_tables_v_asks_how_many_too(settings, make_console, db):
    placed = place_order(db, table="A4", items=(("mineral_water", 3),))
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await pilot.press("2")
        await wait_until(pilot, lambda: app.current_mode == "tables" and app.screen.query_one(DataTable).row_count > 0)
        screen = app.screen
        screen.select(next(t.id for t in screen.tables.values() if t.name == "A4"))
        await pilot.pause()
        await pilot.press("v")
        await wait_until(pilot, lambda: bool(app.screen.query("#choices")))
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
        assert "How many of 3x 矿泉水 to void?" in str(app.screen.query_one(".title", Static).render())
        await pilot.press("backspace", "2", "enter")
        await wait_until(pilot, lambda: bool(app.screen.query("#reasons")))
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.screen.query("#question")))
        assert "(table A4)" in str(app.screen.query_one("#question", Static).render())
        await pilot.press("y")
        await wait_until(pilot, lambda: message(app).startswith("✓ voided 2x 矿泉水 of 3"))
    view = order_view(db, placed["id"])
    assert [(line["quantity"], line["status"]) for line in view["lines"]] == [(1, "active"), (2, "voided")]
