"""The floor (Tables screen), driven with Textual's pilot against a real store file: table states and what each
visit owes, seating and a staff order, payment split and close, moving guests, the bill, closing the day."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from rich.cells import cell_len
from textual.widgets import DataTable, Input, Label, OptionList, Static

from appliance.db.floor import take_payment
from appliance.db.orders import order_row, void_line
from appliance.db.printing import PrintJob, load_printers
from appliance.db.tables import list_tables, open_session, request_service
from printers.parse import printed_rows
from printers.worker import job_document, render_job
from tests.tui.conftest import NOW, WAITER_PIN, message, place_order, steady, wait_until
from tui.order_line import OrderLineScreen
from tui.screens.tables import OrderEntryScreen, TablesScreen

pytestmark = pytest.mark.anyio
MANAGER = "店长 Manager"


async def open_floor(pilot, app):
    await pilot.press("2")
    await wait_until(
        pilot, lambda: isinstance(app.screen, TablesScreen) and app.screen.query_one(DataTable).row_count > 0
    )


def rows(app) -> dict[str, list[str]]:
    """Table name -> the floor row as shown (area, table, state, guests, time, due)."""
    grid = app.screen.query_one("#floor", DataTable)
    shown = [[str(cell) for cell in grid.get_row_at(i)] for i in range(grid.row_count)]
    return {row[1]: row for row in shown}


def detail(app) -> str:
    return str(app.screen.query_one("#detail", Static).render())


async def pick(pilot, app, name: str) -> None:
    screen = app.screen
    screen.select(next(t.id for t in screen.tables.values() if t.name == name))
    await wait_until(pilot, lambda: detail(app).startswith(name + " "))


async def dialog(pilot, app, selector: str) -> None:
    await wait_until(pilot, lambda: bool(app.screen.query(selector)))


def session_status(db, placed) -> str:
    return db.execute("SELECT status FROM table_sessions WHERE id = ?", (placed["session_id"],)).fetchone()[0]


def audit(db) -> list[tuple[str, str, str]]:
    return [tuple(r) for r in db.execute("SELECT staff_name, action, subject FROM audit_log ORDER BY id")]


async def test_floor_states_and_totals(settings, make_console, db):
    tables = {t.name: t for t in list_tables(db)}
    ordering = place_order(db, table="A1", key="1", items=(("har_gow", 2), ("mineral_water", 1)), minutes_ago=25)
    eating = [place_order(db, table="A2", key=k, items=(("har_gow", 1),), minutes_ago=40) for k in ("2", "3")]
    place_order(db, table="A3", key="4", items=(("mineral_water", 3),), minutes_ago=65)
    calling = place_order(db, table="A4", key="5", minutes_ago=5)
    with db:
        db.execute(
            "UPDATE orders SET status = 'served' WHERE id IN (?, ?, ?)",
            (eating[0]["id"], eating[1]["id"], calling["id"]),
        )
        request_service(db, tables["A3"], "bill")
        request_service(db, tables["A4"], "waiter")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        shown = rows(app)
        assert {name: shown[name][2] for name in ("A1", "A2", "A3", "A4", "A5")} == {
            "A1": "✎ ordering 点菜",
            "A2": "● eating 用餐",
            "A3": "≡ bill 买单",
            "A4": "! waiter 呼叫",
            "A5": "○ free 空闲",
        }
        assert shown["A1"][5] == "¥72.00" == f"¥{ordering['total_minor'] / 100:.2f}"
        assert shown["A2"][5] == f"¥{(eating[0]['total_minor'] + eating[1]['total_minor']) / 100:.2f}" == "¥64.00"
        assert (shown["A3"][5], shown["A3"][4], shown["A5"][5]) == ("¥24.00", "1h05", "")
        assert (shown["A1"][0], shown["A2"][0], shown["T1"][0]) == ("大厅 Hall", "", "露台 Terrace")
        await pick(pilot, app, "A4")
        assert "! waiter called" in detail(app)
        await pilot.press("h")  # the waiter went over
        await wait_until(pilot, lambda: rows(app)["A4"][2] == "● eating 用餐")
        assert db.execute("SELECT kind, handled_by FROM service_requests WHERE handled_at IS NOT NULL").fetchall() == [
            ("waiter", MANAGER)
        ]
        await pick(pilot, app, "A1")
        assert "2x 水晶虾饺  ¥64.00" in detail(app) and "due 应付 ¥72.00" in detail(app)
        place_order(db, table="A5", key="6", items=(("mineral_water", 1),))  # the web takes an order meanwhile
        await wait_until(pilot, lambda: rows(app)["A5"][2] == "✎ ordering 点菜" and rows(app)["A5"][5] == "¥8.00")
    assert audit(db) == [(MANAGER, "calls.handled", "table A4")]


async def test_seat_then_a_staff_order_reaches_the_kitchen_and_the_orders_board(settings, make_console, db):
    with db:
        db.execute("UPDATE items SET sold_out = 1 WHERE key = 'mineral_water'")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A6")
        await pilot.press("n")  # nobody seated yet
        await wait_until(pilot, lambda: "A6 is free" in message(app))
        await pilot.press("g")
        await dialog(pilot, app, "#answer")
        await pilot.press("3", "enter")
        await wait_until(pilot, lambda: "A6 open: 3 guests" in message(app))
        assert rows(app)["A6"][2:4] == ["✎ ordering 点菜", "3"]
        await pilot.press("n")
        await dialog(pilot, app, "#search")
        await pilot.press(*"矿泉", "enter")  # sold out: the dialog says so and adds nothing
        await wait_until(pilot, lambda: "sold out" in str(app.screen.query_one("#error", Static).render()))
        await pilot.press("ctrl+u", *"har_gow", "enter")
        await dialog(pilot, app, "#quantity")  # how many (nothing to choose for this dish)
        await pilot.press("backspace", "2", "enter")
        await wait_until(pilot, lambda: "total 合计 ¥64.00" in str(app.screen.query_one("#cart", Static).render()))
        assert "1. 2x 水晶虾饺  ¥64.00" in str(app.screen.query_one("#cart", Static).render())
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "for A6: ¥64.00" in message(app))
        assert isinstance(app.screen, TablesScreen) and "2x 水晶虾饺" in detail(app)
        order = db.execute(
            "SELECT o.id, o.channel, o.status, o.total_minor, o.client_key, o.ticket_no FROM orders o"
            " JOIN tables t ON t.id = o.table_id WHERE t.name = 'A6'"
        ).fetchall()
        assert [row[1:4] for row in order] == [("staff", "accepted", 6400)] and order[0][4].startswith("staff-")
        lines = db.execute(
            "SELECT i.key, l.quantity FROM order_lines l JOIN items i ON i.id = l.item_id WHERE l.order_id = ?",
            (order[0][0],),
        ).fetchall()
        assert lines == [("har_gow", 2)]
        assert db.execute("SELECT station, kind FROM print_jobs WHERE order_id = ?", (order[0][0],)).fetchall() == [
            ("kitchen", "ticket")
        ]
        assert db.execute("SELECT diners, opened_by FROM table_sessions").fetchall() == [(3, MANAGER)]
        await pilot.press("1")  # the Orders board
        await wait_until(pilot, lambda: app.current_mode == "orders")
        board = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: board.row_count == 1)
        assert [str(c) for c in board.get_row_at(0)][:2] == [str(order[0][5]), "A6"]
    assert [a[1] for a in audit(db)] == ["table.opened", "order.staff"]


async def test_staff_order_asks_size_and_required_choices_and_keeps_the_order_on_a_refusal(settings, make_console, db):
    with db:
        open_session(db, {t.name: t for t in list_tables(db)}["A7"].id, "小王", 2)
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A7")
        await pilot.press("n")
        await dialog(pilot, app, "#search")
        cart = lambda: str(app.screen.query_one("#cart", Static).render())  # noqa: E731
        await pilot.press(*"mapo", "enter")
        await dialog(pilot, app, "#choices")  # spice: a required choice
        await pilot.press("down", "enter")  # 微辣 mild: the last group chosen, on to how many
        await wait_until(pilot, lambda: app.screen.query_one("#quantity", Input).has_focus)
        await pilot.press("enter")  # 1
        await wait_until(pilot, lambda: "1. 1x 麻婆豆腐 (微辣)  ¥32.00" in cart())
        await pilot.press("ctrl+u", *"xiaolongbao", "enter")
        await dialog(pilot, app, "#choices")  # which size
        await pilot.press("down", "enter")  # 12只; its dips are optional
        await pilot.press("ctrl+s")  # add the line
        await wait_until(pilot, lambda: "2. 1x 鲜肉小笼包 (12只)  ¥40.00" in cart() and "total 合计 ¥72.00" in cart())
        await pilot.press("ctrl+r")  # take the last one off again
        await wait_until(pilot, lambda: "小笼包" not in cart() and "total 合计 ¥32.00" in cart())
        with db:  # the kitchen runs out meanwhile
            db.execute("UPDATE items SET sold_out = 1 WHERE key = 'mapo_tofu'")
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: "sold out" in str(app.screen.query_one("#error", Static).render()))
        assert "1x 麻婆豆腐" in cart()  # still there, to change
        await pilot.press("escape")
        await wait_until(pilot, lambda: message(app) == "no order sent")
    assert db.execute("SELECT count(*) FROM orders").fetchone() == (0,)
    assert audit(db) == []


async def test_split_payment_then_close(settings, make_console, db):
    placed = place_order(db, table="A2", items=(("har_gow", 2), ("mineral_water", 1)))  # 72.00
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A2")
        await pilot.press("p")
        await dialog(pilot, app, "#choices")
        await pilot.press("down", "down", "enter")  # wechat
        await dialog(pilot, app, "#answer")
        await pilot.press("ctrl+u", *"abc", "enter")  # not an amount: said in the dialog
        await wait_until(pilot, lambda: "not an amount" in str(app.screen.query_one("#error", Static).render()))
        await pilot.press("ctrl+u", *"50", "enter")
        await wait_until(pilot, lambda: "still due 还欠 ¥22.00" in message(app))
        assert rows(app)["A2"][5] == "¥22.00"
        await pilot.press("p")
        await dialog(pilot, app, "#choices")
        await pilot.press("enter")  # cash
        await dialog(pilot, app, "#answer")
        await pilot.press("ctrl+u", *"30", "enter")
        await wait_until(pilot, lambda: "paid in full" in message(app))
        assert "change 找零 ¥8.00" in message(app)
        assert rows(app)["A2"][2] == "✓ paid 已付"
        await pilot.press("C", "y")  # nothing owed: still asked first (C)
        await wait_until(pilot, lambda: "table A2 closed" in message(app))
        assert rows(app)["A2"][2] == "○ free 空闲"
    payments = db.execute("SELECT method, amount_minor, change_minor, taken_by FROM payments ORDER BY id").fetchall()
    assert payments == [("wechat", 5000, 0, MANAGER), ("cash", 3000, 800, MANAGER)]
    assert session_status(db, placed) == "closed"
    assert [a[1:] for a in audit(db)] == [
        ("payment.taken", "table A2"),
        ("payment.taken", "table A2"),
        ("table.closed", "table A2"),
    ]
    amounts = [
        json.loads(d)["amount_minor"]
        for (d,) in db.execute("SELECT details FROM audit_log WHERE action = 'payment.taken' ORDER BY id")
    ]
    assert amounts == [5000, 3000]


async def test_refund_a_payment_asks_first_and_the_bill_owes_it_again(settings, make_console, db):
    """A dish was cold: 20.00 of a 64.00 card payment goes back. The console asks which payment, how much (never
    more than it kept), why, and once more before anything is written; then the table owes 20.00 again, the audit
    trail says who gave it back, and the ERP gets its refund row."""
    with db:
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'erpnext')")
    placed = place_order(db, table="A2")  # 64.00
    with db:
        take_payment(db, placed["session_id"], "card", 6400, "小王")
    app = make_console()

    def error() -> str:
        return str(app.screen.query_one("#error", Static).render())

    async def up_to_the_question() -> None:
        await pilot.press("R")
        await dialog(pilot, app, "#choices")
        await pilot.press("enter")  # the only payment
        await dialog(pilot, app, "#answer")
        await pilot.press("ctrl+u", *"64.01", "enter")
        await wait_until(pilot, lambda: "at most ¥64.00" in error())
        await pilot.press("ctrl+u", *"20", "enter")
        await wait_until(pilot, lambda: "Why?" in str(app.screen.query(".title").first().render()))
        await pilot.press("enter")
        await wait_until(pilot, lambda: "needs a reason" in error())
        await pilot.press(*"cold", "enter")
        await dialog(pilot, app, "#question")

    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A2")
        assert rows(app)["A2"][2] == "✓ paid 已付"
        await up_to_the_question()
        assert "Give back ¥20.00" in str(app.screen.query_one("#question", Static).render())
        await pilot.press("n")
        await wait_until(pilot, lambda: message(app) == "nothing refunded")
        assert db.execute("SELECT count(*) FROM refunds").fetchone() == (0,) and audit(db) == []
        await up_to_the_question()
        await pilot.press("y")
        await wait_until(pilot, lambda: "refunded 已退款" in message(app))
        assert "due 应付 ¥20.00" in message(app)
        assert rows(app)["A2"][2] == "✎ ordering 点菜" and rows(app)["A2"][5] == "¥20.00"
        assert "刷卡 card ¥64.00 (−¥20.00 refunded 已退款)" in detail(app)
        assert "paid ¥44.00 · due 应付 ¥20.00" in detail(app)
    assert db.execute("SELECT amount_minor, reason, refunded_by FROM refunds").fetchall() == [(2000, "cold", MANAGER)]
    assert session_status(db, placed) == "open"
    assert [a[1:] for a in audit(db)] == [("payment.refunded", "table A2")]
    details = json.loads(db.execute("SELECT details FROM audit_log").fetchone()[0])
    key = db.execute("SELECT payment_key FROM payments").fetchone()[0]
    assert details == {"payment": f"payment.recorded:{key}", "method": "card", "amount_minor": 2000, "reason": "cold"}
    assert db.execute("SELECT target, kind FROM outbox WHERE kind LIKE 'payment.%' ORDER BY id").fetchall() == [
        ("erp", "payment.recorded"),
        ("erp", "payment.refunded"),
    ]


async def test_a_dish_sent_back_after_paying_is_refunded(settings, make_console, db):
    """The table paid 72.00, then the water was taken off the bill: the floor says the visit is overpaid by 8.00,
    and a refund suggests just that, leaving nothing due."""
    placed = place_order(db, table="A5", items=(("har_gow", 2), ("mineral_water", 1)))  # 72.00
    with db:
        take_payment(db, placed["session_id"], "cash", 7200, "小王")
        void_line(db, placed["id"], 2, "not ordered")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A5")
        assert "paid ¥72.00 · overpaid 多付 ¥8.00 (R = refund)" in detail(app)
        await pilot.press("R")
        await dialog(pilot, app, "#choices")
        await pilot.press("enter")
        await dialog(pilot, app, "#answer")
        assert app.screen.query_one("#answer", Input).value == "8.00"
        await pilot.press("enter")
        await wait_until(pilot, lambda: "Why?" in str(app.screen.query(".title").first().render()))
        await pilot.press(*"water not ordered", "enter")
        await dialog(pilot, app, "#question")
        await pilot.press("y")
        await wait_until(pilot, lambda: "refunded 已退款" in message(app))
        assert "paid ¥64.00 · due 应付 ¥0.00" in detail(app)
        assert rows(app)["A5"][2] == "✓ paid 已付"
    assert db.execute("SELECT amount_minor, reason FROM refunds").fetchall() == [(800, "water not ordered")]


async def test_refund_with_nothing_to_give_back(settings, make_console, db):
    place_order(db, table="A3")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A3")
        await pilot.press("R")
        await wait_until(pilot, lambda: "nothing to refund at A3" in message(app))
    assert db.execute("SELECT count(*) FROM refunds").fetchone() == (0,)


async def test_closing_a_table_that_owes_asks_first(settings, make_console, db):
    placed = place_order(db, table="A3")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A3")
        await pilot.press("C")
        await dialog(pilot, app, "#question")
        assert "still owes ¥64.00" in str(app.screen.query_one("#question", Static).render())
        await pilot.press("n")
        await wait_until(pilot, lambda: message(app).startswith("not closed"))
        assert db.execute("SELECT status FROM table_sessions").fetchall() == [("open",)]
        assert audit(db) == []
        await pilot.press("C")
        await dialog(pilot, app, "#question")
        await pilot.press("y")
        await wait_until(pilot, lambda: "¥64.00 left unpaid" in message(app))
    assert session_status(db, placed) == "closed"
    details = db.execute("SELECT action, details FROM audit_log").fetchall()
    assert [(a, json.loads(d)) for a, d in details] == [("table.closed", {"unpaid_minor": 6400})]


async def test_move_guests_to_another_table(settings, make_console, db):
    tables = {t.name: t for t in list_tables(db)}
    placed = place_order(db, table="A1")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A1")
        await pilot.press("m")
        await dialog(pilot, app, "#choices")
        await pilot.press(*["down"] * 7, "enter")  # free tables A2..A8, then T1
        await wait_until(pilot, lambda: "A1 → T1" in message(app))
        assert (rows(app)["A1"][2], rows(app)["T1"][2], rows(app)["T1"][5]) == (
            "○ free 空闲",
            "✎ ordering 点菜",
            "¥64.00",
        )
        assert detail(app).startswith("T1 ")  # the cursor followed the guests
    assert db.execute("SELECT table_id FROM table_sessions WHERE id = ?", (placed["session_id"],)).fetchone() == (
        tables["T1"].id,
    )
    assert db.execute("SELECT table_id FROM orders WHERE id = ?", (placed["id"],)).fetchone() == (tables["T1"].id,)
    assert audit(db) == [(MANAGER, "table.moved", "table A1")]


async def test_void_a_line_and_print_the_bill(settings, make_console, db):
    placed = place_order(db, table="A4", items=(("har_gow", 2), ("mineral_water", 1)))
    printers = [name for (name,) in db.execute("SELECT name FROM printers ORDER BY id")]
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A4")
        await pilot.press("v")
        await dialog(pilot, app, "#choices")
        await pilot.press("down", "enter")  # the water
        await dialog(pilot, app, "#reasons")
        await pilot.press("enter")
        await dialog(pilot, app, "#question")
        await pilot.press("y")
        await wait_until(pilot, lambda: message(app).startswith("✓ voided 1x 矿泉水"))
        assert rows(app)["A4"][5] == "¥64.00" and "✗ voided 已退" in detail(app)
        await pilot.press("b")
        await dialog(pilot, app, "#choices")
        await pilot.press("enter")  # the first printer
        await wait_until(pilot, lambda: f"→ printer {printers[0]}" in message(app))
    statuses = db.execute("SELECT status FROM order_lines WHERE order_id = ? ORDER BY line_no", (placed["id"],))
    assert statuses.fetchall() == [("active",), ("voided",)]
    jobs = db.execute("SELECT session_id, printer FROM print_jobs WHERE kind = 'bill'").fetchall()
    assert jobs == [(placed["session_id"], printers[0])]
    assert [a[1] for a in audit(db)] == ["order.line_voided", "bill.queued"]


async def test_close_the_day_lists_what_is_owed_and_closes_after_yes(settings, make_console, db):
    owing = place_order(db, table="A1")
    paid = place_order(db, table="T2", key="p", items=(("mineral_water", 1),))
    with db:
        take_payment(db, paid["session_id"], "alipay", paid["total_minor"], "小王")
        db.execute("UPDATE orders SET status = 'served'")  # the kitchen is done
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pilot.press("D")
        await dialog(pilot, app, "#question")
        question = str(app.screen.query_one("#question", Static).render())
        assert "2 open table(s)" in question and "A1 ¥64.00" in question and "T2" not in question
        await pilot.press("y")
        await wait_until(pilot, lambda: "day closed" in message(app))
        assert "2 table(s) closed, ¥64.00 unpaid (A1)" in message(app)
        assert {row[2] for row in rows(app).values()} == {"○ free 空闲"}
    assert db.execute("SELECT count(*) FROM table_sessions WHERE status != 'closed'").fetchone() == (0,)
    action = db.execute("SELECT staff_name, action, details FROM audit_log").fetchall()
    assert [(n, a, json.loads(d)) for n, a, d in action] == [
        (MANAGER, "day.closed", {"unpaid": {"A1": owing["total_minor"]}})
    ]


def kitchen_floor(db):
    """A1 with a NEW order, A2 with one accepted and one served, T2 served and paid (nothing in the kitchen)."""
    new = place_order(db, table="A1", key="n")
    accepted = place_order(db, table="A2", key="a", items=(("mineral_water", 1),))
    served = place_order(db, table="A2", key="s", items=(("mineral_water", 2),))
    paid = place_order(db, table="T2", key="p", items=(("mineral_water", 1),))
    with db:
        db.execute("UPDATE orders SET status = 'accepted' WHERE id = ?", (accepted["id"],))
        db.execute("UPDATE orders SET status = 'served' WHERE id IN (?, ?)", (served["id"], paid["id"]))
        take_payment(db, paid["session_id"], "cash", paid["total_minor"], "小王")
    return new, accepted, paid


def open_tables(db) -> list[str]:
    return [
        name
        for (name,) in db.execute(
            "SELECT t.name FROM table_sessions s JOIN tables t ON t.id = s.table_id WHERE s.status != 'closed'"
            " ORDER BY t.sort, t.id"
        )
    ]


async def test_closing_the_day_names_the_kitchen_work_and_keeps_those_tables_open(settings, make_console, db):
    new, accepted, _ = kitchen_floor(db)
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pilot.press("D")
        await dialog(pilot, app, "#choices")
        question = str(app.screen.query_one(".title", Static).render())
        assert "3 open table(s)" in question
        assert "Still in the kitchen 厨房未完成: 2 order(s) (1 NEW, 1 accepted) at 2 table(s): A1, A2" in question
        assert "A1 ¥64.00" in question and "A2 ¥24.00" in question  # unpaid, named as before
        choices = app.screen.query_one("#choices", OptionList)
        assert [str(choices.get_option_at_index(i).prompt) for i in range(choices.option_count)] == [
            "close the other 1, keep A1, A2 open 保留有菜的桌",
            "close all 3 anyway: their orders stay on Orders 全部清台",
        ]
        await pilot.press("enter")  # the first: keep them
        await wait_until(pilot, lambda: "day closed" in message(app))
        assert message(app) == "✓ day closed 日结: 1 table(s) closed; kept open (kitchen): A1, A2"
        assert (rows(app)["A1"][2], rows(app)["A2"][2], rows(app)["T2"][2]) == (
            "✎ ordering 点菜",
            "✎ ordering 点菜",
            "○ free 空闲",
        )
    assert open_tables(db) == ["A1", "A2"]
    statuses = db.execute("SELECT status FROM orders WHERE id IN (?, ?) ORDER BY id", (new["id"], accepted["id"]))
    assert statuses.fetchall() == [("submitted",), ("accepted",)]  # the kitchen's work is untouched
    action = db.execute("SELECT action, details FROM audit_log").fetchall()
    assert [(a, json.loads(d)) for a, d in action] == [("day.closed", {"unpaid": {}, "kept_open": ["A1", "A2"]})]


async def test_closing_the_day_with_the_kitchen_busy_closes_all_only_as_shown(settings, make_console, db, monkeypatch):
    new, accepted, _ = kitchen_floor(db)
    said: list[str] = []  # every message the floor gave, in order
    say = TablesScreen.say

    def record(screen: TablesScreen, text: str, *, error: bool = False) -> None:
        said.append(text)
        say(screen, text, error=error)

    monkeypatch.setattr(TablesScreen, "say", record)
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pilot.press("D")
        await dialog(pilot, app, "#choices")
        await pilot.press("escape")
        await wait_until(pilot, lambda: message(app) == "day not closed: 2 table(s) still have orders in the kitchen")
        assert open_tables(db) == ["A1", "A2", "T2"]
        await pilot.press("D")
        await dialog(pilot, app, "#choices")
        place_order(db, table="A5", key="late")  # a phone order arrives while the manager reads
        await pilot.press("down", "enter")  # close all anyway
        refusal = "✗ refused: new orders came in meanwhile at A5: nothing closed, look again"
        await wait_until(pilot, lambda: refusal in said)  # (the new order's own alert may come after it)
        assert open_tables(db) == ["A1", "A2", "A5", "T2"]
        await pilot.press("D")
        await dialog(pilot, app, "#choices")
        assert "at 3 table(s): A1, A2, A5" in str(app.screen.query_one(".title", Static).render())
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: "day closed" in message(app))
        assert message(app) == "✓ day closed 日结: 4 table(s) closed, ¥152.00 unpaid (A1, A2, A5)"
    assert open_tables(db) == []
    statuses = db.execute("SELECT status FROM orders WHERE id IN (?, ?) ORDER BY id", (new["id"], accepted["id"]))
    assert statuses.fetchall() == [("submitted",), ("accepted",)]  # still on the Orders board
    details = [json.loads(d) for (d,) in db.execute("SELECT details FROM audit_log WHERE action = 'day.closed'")]
    assert [d["kitchen_closed"] for d in details] == [["A1", "A2", "A5"]]


async def test_a_waiter_cannot_close_a_table_that_still_owes(settings, make_console, db):
    owing = place_order(db, table="A3")
    paid = place_order(db, table="A4", key="p", items=(("mineral_water", 1),))
    with db:
        take_payment(db, paid["session_id"], "cash", paid["total_minor"], "小王")
    app = make_console(pin=WAITER_PIN)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A3")
        await pilot.press("C")
        await wait_until(pilot, lambda: "refused" in message(app))
        assert message(app) == (
            "✗ refused: a waiter cannot close a table that still owes: ask a manager (A3 owes ¥64.00 未付; p = pay)"
        )
        assert isinstance(app.screen, TablesScreen)  # nothing asked
        await pick(pilot, app, "A4")  # paid: a waiter closes it
        await pilot.press("C", "y")  # paid: a waiter closes it, asked first
        await wait_until(pilot, lambda: message(app) == "✓ table A4 closed 清台")
    assert (session_status(db, owing), session_status(db, paid)) == ("open", "closed")
    assert [a[1:] for a in audit(db)] == [("table.closed", "table A4")]


async def test_one_guest_is_one_guest(settings, make_console, db):
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A6")
        await pilot.press("g")
        await dialog(pilot, app, "#answer")
        await pilot.press("1", "enter")
        await wait_until(pilot, lambda: "A6 open" in message(app))
        assert message(app) == "✓ table A6 open: 1 guest 开台"
        await wait_until(pilot, lambda: "\n1 guest · since" in detail(app))


async def test_a_waiter_cannot_close_the_day(settings, make_console, db):
    place_order(db, table="A1")
    app = make_console(pin=WAITER_PIN)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pilot.press("D")
        await wait_until(pilot, lambda: "refused" in message(app))
        assert message(app) == "✗ refused: a waiter cannot close the day: ask a manager"
        assert isinstance(app.screen, TablesScreen)  # no question asked
    assert db.execute("SELECT status FROM table_sessions").fetchall() == [("open",)]
    assert audit(db) == []


async def test_the_floor_fits_80_by_24(settings, make_console, db):
    place_order(db, table="T6", items=(("har_gow", 2),), minutes_ago=95)
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_floor(pilot, app)
        assert "wide" not in app.screen.classes
        await pick(pilot, app, "T6")
        assert rows(app)["T6"][2:] == ["✎ ordering 点菜", "?", "1h35", "¥64.00"]
        assert "2x 水晶虾饺" in detail(app)
        await pilot.resize_terminal(120, 40)
        await wait_until(pilot, lambda: "wide" in app.screen.classes)


def busy_floor(db):
    """A few tables in different states at fixed times (relative to NOW)."""
    tables = {t.name: t for t in list_tables(db)}
    place_order(db, table="A1", key="1", items=(("har_gow", 2), ("mineral_water", 1)), minutes_ago=25, note="不要辣")
    eating = place_order(db, table="A3", key="2", items=(("har_gow", 1), ("mineral_water", 2)), minutes_ago=70)
    place_order(db, table="A5", key="3", items=(("mineral_water", 1),), minutes_ago=10)
    billing = place_order(db, table="T2", key="4", items=(("har_gow", 3),), minutes_ago=50)
    with db:
        db.execute("UPDATE orders SET status = 'served' WHERE id IN (?, ?)", (eating["id"], billing["id"]))
        take_payment(db, eating["session_id"], "wechat", 1000, "小王")
        request_service(db, tables["T2"], "bill")
        request_service(db, tables["A5"], "waiter")
        at = (NOW - timedelta(minutes=3)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        db.execute("UPDATE service_requests SET created_at = ?", (at,))
        db.execute("UPDATE table_sessions SET diners = 2 WHERE id = ?", (eating["session_id"],))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_floor_snapshot(settings, make_console, db, snap_compare, size):
    busy_floor(db)
    app = make_console()

    async def settle(pilot):
        await open_floor(pilot, app)
        await pick(pilot, app, "A3")
        await steady(pilot, app)  # not a frame in which the floor has its rows but not yet their widths (seen in CI)

    assert snap_compare(app, terminal_size=size, run_before=settle)


async def test_the_day_end_question_fits_80_by_24_with_every_table_busy(settings, make_console, db):
    names = [t.name for t in list_tables(db)]
    for name in names:
        place_order(db, table=name, key="b")
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_floor(pilot, app)
        await pilot.press("D")
        await dialog(pilot, app, "#choices")
        question = str(app.screen.query_one(".title", Static).render())
        assert f"{len(names)} order(s) (" in question and ", ".join(names) in question.replace("\n", " ")
        choices = app.screen.query_one("#choices", OptionList)
        assert choices.option_count == 1  # every table is busy: keeping them would close nothing
        assert str(choices.get_option_at_index(0).prompt).startswith(f"close all {len(names)} anyway")
        assert choices.region.height >= 1 and choices.region.bottom <= 24  # the choice is on screen
        await pilot.press("escape")
        await wait_until(pilot, lambda: message(app).startswith("day not closed"))
    assert db.execute("SELECT count(*) FROM table_sessions WHERE status != 'closed'").fetchone() == (len(names),)


async def test_the_void_dialogs_of_tables_and_orders_are_alike(settings, make_console, db):
    placed = place_order(db, table="A4", items=(("har_gow", 2), ("mineral_water", 1), ("mineral_water", 3)))
    with db:
        void_line(db, placed["id"], 2, "wrong dish")

    def offered(app) -> list[str]:
        choices = app.screen.query_one("#choices", OptionList)
        return [str(choices.get_option_at_index(i).prompt) for i in range(choices.option_count)]

    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A4")
        await pilot.press("v")
        await dialog(pilot, app, "#choices")
        on_tables = offered(app)
        question = str(app.screen.query_one(".title", Static).render())
        await pilot.press("escape")
        await wait_until(pilot, lambda: message(app) == "nothing voided")
        await pilot.press("1")  # the Orders board, its one order highlighted
        await wait_until(pilot, lambda: not isinstance(app.screen, TablesScreen) and app.screen.query(DataTable))
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("v")
        await dialog(pilot, app, "#choices")
        on_orders = offered(app)
    ticket = placed["ticket_no"]
    assert (
        on_tables == on_orders == [f"#{ticket}  2x 水晶虾饺  ¥64.00", f"#{ticket}  3x 矿泉水  ¥24.00"]
    )  # not the voided
    assert question == "Void which line at A4? 退哪道菜"


# -- Staff orders with choices, add-ons and notes -------------------------------------------------------------------


def printed_ticket(db, order_id: int) -> list[str]:
    """The order's kitchen ticket as its paper shows it: its print job drawn by the print worker's own code for the
    station's printer, the bytes read back into rows of text."""
    job = PrintJob(
        *db.execute(
            "SELECT id, order_id, session_id, station, kind, ref, state, payload FROM print_jobs"
            " WHERE order_id = ? AND kind = 'ticket'",
            (order_id,),
        ).fetchone()
    )
    printer = next(p for p in load_printers(db) if job.station in p.stations)
    rows, _ = printed_rows(render_job(job_document(db, job, printer, reprint=False), printer))
    return [row.text.strip() for row in rows if row.text.strip()]


def shown(app, selector: str) -> str:
    return str(app.screen.query_one(selector, Static).render())


def choice_prompts(app) -> dict[str, str]:
    """The line dialog's choices by name ("加蛋" -> "[x] 加蛋  +¥3.00"), with "(off)" after one that cannot be
    picked."""
    choices = app.screen.query_one("#choices", OptionList)
    prompts = {}
    for option in choices.options:
        if option.id and not option.id.startswith("g"):
            text = str(option.prompt).strip()
            prompts[text[4:].split()[0]] = text + (" (off)" if option.disabled else "")  # after "[x] "
    return prompts


def highlighted(app) -> str:
    option = app.screen.query_one("#choices", OptionList).highlighted_option
    return str(option.prompt).strip()[4:].split()[0] if option else ""


def seat(db, table: str = "A7") -> None:
    with db:
        open_session(db, {t.name: t for t in list_tables(db)}[table].id, "小王", 2)


async def order_at(pilot, app, table: str = "A7") -> None:
    await open_floor(pilot, app)
    await pick(pilot, app, table)
    await pilot.press("n")
    await dialog(pilot, app, "#search")


async def test_a_staff_order_with_add_ons_and_notes_prints_them_on_the_kitchen_ticket(settings, make_console, db):
    """At 80x24: dan dan noodles with a spice, a noodle firmness, three add-ons (their prices added), two of them, a
    note for the cook, and a note for the whole order; the kitchen's paper shows every one of them."""
    seat(db)
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await order_at(pilot, app)
        await pilot.press(*"担担", "enter")
        await dialog(pilot, app, "#line-note")
        assert shown(app, "#dish") == "担担面  ¥28.00"
        assert "still to choose 请选: 辣度" in shown(app, "#line-price")
        assert choice_prompts(app)["加油豆腐"] == "[ ] 加油豆腐  +¥4.00  ✗ sold out 沽清 (off)"
        await pilot.press("down", "enter")  # 微辣; on to the noodles' firmness
        await wait_until(pilot, lambda: highlighted(app) == "软一点")
        await pilot.press("down", "enter")  # 正常; on to the add-ons
        await wait_until(pilot, lambda: highlighted(app) == "加蛋")
        await pilot.press("enter", "down", "space", "down", "enter")  # egg, extra meat, cheese
        await wait_until(pilot, lambda: shown(app, "#line-price") == "1x ¥45.00 = ¥45.00")
        await pilot.press("tab", "2", "tab", *"少葱 less scallion", "enter")
        await dialog(pilot, app, "#cart")
        assert isinstance(app.screen, OrderEntryScreen)
        assert shown(app, "#cart") == (
            "1. 2x 担担面 (微辣, 正常, 加蛋, 加肉, 加芝士)  ¥90.00  ✎ 少葱 less scallion\ntotal 合计 ¥90.00"
        )
        await pilot.press("tab", *"  生日 birthday,   面先上 ", "ctrl+s")
        await wait_until(pilot, lambda: "for A7: ¥90.00" in message(app))
    (order_id,) = db.execute("SELECT id FROM orders").fetchone()
    order = order_row(db, order_id)
    assert (order.channel, order.note, order.total_minor) == ("staff", "生日 birthday, 面先上", 9000)
    assert [(line.quantity, line.unit_price_minor, line.note) for line in order.lines] == [
        (2, 4500, "少葱 less scallion")
    ]
    paper = printed_ticket(db, order_id)
    assert "[员工下单 STAFF]" in paper
    dish = paper.index("2 x 担担面")
    assert paper[dish + 1 : dish + 3] == ["微辣 / 正常 / 加蛋 / 加肉 / 加芝士", "! 少葱 less scallion"]
    assert "备注 NOTE: 生日 birthday, 面先上" in paper
    assert [a[1:] for a in audit(db)] == [("order.staff", "table A7")]


async def test_a_staff_line_keeps_to_each_groups_least_and_most_as_a_diners(settings, make_console, db):
    """One of a group replaces the one before; an optional one can be taken off again; a fourth add-on of three is
    refused until one comes off; a line without its spice is refused by the diner API's own check, in its words;
    how many must be 1 to 99."""
    seat(db)
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await order_at(pilot, app)
        await pilot.press(*"dan_dan", "enter")
        await dialog(pilot, app, "#line-note")
        await pilot.press("ctrl+s")  # nothing chosen yet
        await wait_until(pilot, lambda: "Spice level" in shown(app, "#error"))
        assert shown(app, "#error") == "✗ line 1: choose at least 1 of Spice level"
        assert isinstance(app.screen, OrderLineScreen)
        await pilot.press("enter")  # 不辣; on to the firmness
        await wait_until(pilot, lambda: highlighted(app) == "软一点")
        await pilot.press("up", "enter")  # back up to 特辣: it replaces 不辣
        await wait_until(pilot, lambda: choice_prompts(app)["特辣"] == "(•) 特辣")
        assert choice_prompts(app)["不辣"] == "( ) 不辣"
        await pilot.press("enter")  # 软一点; on to the add-ons
        await wait_until(pilot, lambda: choice_prompts(app)["软一点"] == "(•) 软一点" and highlighted(app) == "加蛋")
        await pilot.press("up", "up", "up", "enter")  # 软一点 again: taken off (the firmness is optional)
        await wait_until(pilot, lambda: choice_prompts(app)["软一点"] == "( ) 软一点")
        for name in ("加蛋", "加肉", "加芝士", "加青菜"):
            app.screen.query_one("#choices", OptionList).highlighted = next(
                i for i, o in enumerate(app.screen.query_one("#choices", OptionList).options) if name in str(o.prompt)
            )
            await pilot.press("enter")
        await wait_until(pilot, lambda: "at most 3" in shown(app, "#error"))
        assert shown(app, "#error") == "at most 3 of 加料 最多3: take one off first"
        assert choice_prompts(app)["加青菜"] == "[ ] 加青菜  +¥3.00"
        await pilot.press("up", "up", "up", "enter", "down", "down", "down", "enter")  # egg off, greens on
        await wait_until(pilot, lambda: choice_prompts(app)["加青菜"] == "[x] 加青菜  +¥3.00")
        assert [choice_prompts(app)[n][:3] for n in ("加蛋", "加肉", "加芝士")] == ["[ ]", "[x]", "[x]"]
        assert shown(app, "#line-price") == "1x ¥45.00 = ¥45.00"  # 28 + 8 + 6 + 3
        await pilot.press("tab", "0", "enter")
        await wait_until(pilot, lambda: "how many" in shown(app, "#error"))
        assert shown(app, "#error") == "how many: a number 1 to 99 数量"
        await pilot.press("backspace", "3", "ctrl+s")
        await dialog(pilot, app, "#cart")
        assert shown(app, "#cart").splitlines()[0] == "1. 3x 担担面 (特辣, 加肉, 加芝士, 加青菜)  ¥135.00"


def outside(app) -> list[str]:
    """The dialog's parts that do not fit the terminal, and key lines cut at their width."""
    whole = app.screen.region
    cut = [w.id or type(w).__name__ for w in app.screen.query("*") if not whole.contains_region(w.region)]
    return cut + [
        str(label.render()) for label in app.screen.query(Label) if cell_len(str(label.render())) > label.size.width
    ]


async def test_the_staff_order_dialogs_fit_80_by_24(settings, make_console, db):
    """Nine lines in the cart: the last ones and the total stay in view, with how many are above; the dish with
    the most choices (two sizes, spice, firmness, five add-ons) scrolls its list inside the dialog."""
    seat(db)
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await order_at(pilot, app)
        for n in range(1, 10):
            await pilot.press("ctrl+u", *"har_gow", "enter")
            await wait_until(pilot, lambda: bool(app.screen.query("#quantity")) and app.screen.focused.id == "quantity")
            await pilot.press("enter")
            await wait_until(pilot, lambda n=n: f"\n{n}. 1x 水晶虾饺" in "\n" + shown(app, "#cart"))
        assert shown(app, "#cart").splitlines() == [
            "… 4 more above 上面还有",
            *[f"{n}. 1x 水晶虾饺  ¥32.00" for n in range(5, 10)],
            "total 合计 ¥288.00",
        ]
        assert outside(app) == []
        await pilot.press("ctrl+u", *"braised_beef", "enter")
        await dialog(pilot, app, "#line-note")
        assert outside(app) == []
        choices = app.screen.query_one("#choices", OptionList)
        assert choices.option_count == 18 and choices.size.height < 18  # it scrolls
        await pilot.press("end")  # the last add-on that can be picked (tofu puffs are sold out)
        await wait_until(pilot, lambda: highlighted(app) == "加青菜")
        row = choices.highlighted - choices.scroll_offset.y  # one row per option
        assert 0 <= row < choices.scrollable_content_region.height
