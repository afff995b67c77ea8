"""The floor (Tables screen), driven with Textual's pilot against a real store file: table states and what each
visit owes, seating and a staff order, payment split and close, moving guests, the bill, closing the day."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from textual.widgets import DataTable, Input, Static

from appliance.db.floor import take_payment
from appliance.db.orders import void_line
from appliance.db.tables import list_tables, open_session, request_service
from tests.tui.conftest import NOW, WAITER_PIN, message, place_order, wait_until
from tui.screens.tables import TablesScreen

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
        await pilot.press("e")  # nobody seated yet
        await wait_until(pilot, lambda: "A6 is free" in message(app))
        await pilot.press("o")
        await dialog(pilot, app, "#answer")
        await pilot.press("3", "enter")
        await wait_until(pilot, lambda: "A6 open: 3 guests" in message(app))
        assert rows(app)["A6"][2:4] == ["✎ ordering 点菜", "3"]
        await pilot.press("e")
        await dialog(pilot, app, "#search")
        await pilot.press(*"矿泉", "enter")  # sold out: the dialog says so and adds nothing
        await wait_until(pilot, lambda: "sold out" in str(app.screen.query_one("#error", Static).render()))
        await pilot.press("ctrl+u", *"har_gow", "enter")
        await dialog(pilot, app, "#answer")  # how many
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
        await pilot.press("e")
        await dialog(pilot, app, "#search")
        cart = lambda: str(app.screen.query_one("#cart", Static).render())  # noqa: E731
        await pilot.press(*"mapo", "enter")
        await dialog(pilot, app, "#choices")  # spice: a required choice
        await pilot.press("down", "enter")  # 微辣 mild
        await dialog(pilot, app, "#answer")
        await pilot.press("enter")  # 1
        await wait_until(pilot, lambda: "1. 1x 麻婆豆腐 (微辣)  ¥32.00" in cart())
        await pilot.press("ctrl+u", *"xiaolongbao", "enter")
        await dialog(pilot, app, "#choices")  # which size
        await pilot.press("down", "enter")  # 12只
        await dialog(pilot, app, "#answer")
        await pilot.press("enter")
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
        await pilot.press("c")  # nothing owed: closes without asking
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
        await pilot.press("r")
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
        assert "paid ¥72.00 · overpaid 多付 ¥8.00 (r = refund)" in detail(app)
        await pilot.press("r")
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
        await pilot.press("r")
        await wait_until(pilot, lambda: "nothing to refund at A3" in message(app))
    assert db.execute("SELECT count(*) FROM refunds").fetchone() == (0,)


async def test_closing_a_table_that_owes_asks_first(settings, make_console, db):
    placed = place_order(db, table="A3")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pick(pilot, app, "A3")
        await pilot.press("c")
        await dialog(pilot, app, "#question")
        assert "still owes ¥64.00" in str(app.screen.query_one("#question", Static).render())
        await pilot.press("n")
        await wait_until(pilot, lambda: message(app).startswith("not closed"))
        assert db.execute("SELECT status FROM table_sessions").fetchall() == [("open",)]
        assert audit(db) == []
        await pilot.press("c")
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
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pilot.press("d")
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


async def test_a_waiter_cannot_close_the_day(settings, make_console, db):
    place_order(db, table="A1")
    app = make_console(pin=WAITER_PIN)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_floor(pilot, app)
        await pilot.press("d")
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
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=settle)
