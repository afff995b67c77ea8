"""Every console screen as a person sees it at 80x24 and 120x40, at rush hour with the demo store: its longest dish
names, orders in several states, a waiter call and a bill call, a printer out of paper. The snapshots are the proof
that nothing is cut: the header's end, the footer, prices and states; names give up room first and end with `…`.
Deterministic: the console's clock is fixed (NOW) and everything is back-dated from it."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from rich.text import Text
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static
from textual.widgets._footer import FooterKey

from appliance.db.floor import take_payment
from appliance.db.orders import MenuCache, OrderRequest, change_status, submit_order, void_line
from appliance.db.tables import list_tables, request_service
from appliance.domain.orders import Actor, OrderStatus
from appliance.domain.pricing import CartLine
from appliance.settings import STORE_SETTINGS
from tests.tui.conftest import NOW, screen_lines, steady, wait_until
from tui.keys import SCREENS, keys_for
from tui.widgets.header import fit_title


def stamp(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cart_line(
    db: Any, key: str, quantity: int = 1, *, size: str = "", options: tuple[str, ...] = (), note: str = ""
) -> CartLine:
    """A diner's line by the demo's keys: the size and options named, and the first option of every group that
    needs a choice and was given none (what a phone would send)."""
    item_id = db.execute("SELECT id FROM items WHERE key = ?", (key,)).fetchone()[0]
    variant = db.execute(
        "SELECT id FROM variants WHERE item_id = ? AND (key = ? OR ? = '') ORDER BY sort, id LIMIT 1",
        (item_id, size, size),
    ).fetchone()
    chosen = [
        db.execute(
            "SELECT o.id FROM options o JOIN item_option_groups g ON g.group_id = o.group_id"
            " WHERE g.item_id = ? AND o.key = ?",
            (item_id, option),
        ).fetchone()[0]
        for option in options
    ]
    for group_id, needs in db.execute(
        "SELECT g.id, g.min_choices FROM option_groups g JOIN item_option_groups i ON i.group_id = g.id"
        " WHERE i.item_id = ?",
        (item_id,),
    ).fetchall():
        picked = db.execute(
            f"SELECT count(*) FROM options WHERE group_id = ? AND id IN ({','.join('?' * len(chosen)) or 'NULL'})",
            (group_id, *chosen),
        ).fetchone()[0]
        if needs and not picked:
            chosen.append(
                db.execute("SELECT id FROM options WHERE group_id = ? ORDER BY sort, id", (group_id,)).fetchone()[0]
            )
    return CartLine(item_id, quantity, variant[0] if variant else None, tuple(chosen), note)


def order(
    db: Any, table: str, lines: tuple[CartLine, ...], minutes_ago: float, note: str = "", status: str = ""
) -> dict[str, Any]:
    tables = {t.name: t for t in list_tables(db)}
    with db:
        placed = submit_order(
            db,
            tables[table],
            OrderRequest(client_key=f"snap-{table}-{minutes_ago}-xxxxxxxx", lines=lines, note=note),
            MenuCache(),
        ).order
        db.execute(
            "UPDATE orders SET created_at = ?, updated_at = ?, ticket_day = ? WHERE id = ?",
            (stamp(minutes_ago), stamp(minutes_ago), "2026-11-21", placed["id"]),
        )
        db.execute("UPDATE order_events SET at = ? WHERE order_id = ?", (stamp(minutes_ago), placed["id"]))
        db.execute("UPDATE table_sessions SET opened_at = ? WHERE id = ?", (stamp(minutes_ago), placed["session_id"]))
        if status:
            db.execute("UPDATE orders SET status = ? WHERE id = ?", (status, placed["id"]))
    return placed


def rush_hour(db: Any) -> None:
    """The demo store at 20:30 on a busy evening: the longest dish names on the board, one order late, one cooking,
    one just in; a waiter call and a bill call; the kitchen printer out of paper with a ticket waiting; the ERP
    unreachable for a while, its rows waiting."""
    with db:
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erpnext', 'erp')")  # before the orders: rows for it
    a1 = order(
        db,
        "A1",
        (
            cart_line(db, "fuqi_feipian", 2, options=("hot",), note="辣一点 extra chili please"),
            cart_line(db, "yellow_croaker_noodles", options=("firm",)),
            cart_line(db, "erguotou"),
        ),
        minutes_ago=31,
        note="生日 birthday, bring the noodles first",
        status="accepted",
    )
    a3 = order(
        db,
        "A3",
        (cart_line(db, "shanghai_smoked_fish"), cart_line(db, "chrysanthemum_tea", 2, size="pot", options=("less",))),
        minutes_ago=14,
        status="preparing",
    )
    order(db, "T2", (cart_line(db, "har_gow", 3), cart_line(db, "mineral_water", 2)), minutes_ago=2)
    gone = order(db, "A6", (cart_line(db, "squirrel_fish"),), minutes_ago=50)
    with db:
        change_status(db, gone["id"], OrderStatus.CANCELLED, Actor.STAFF, "等太久 waited too long, the guests left")
        take_payment(db, a3["session_id"], "wechat", 5000, "小王")  # A3 asked for the bill: half by phone,
        take_payment(db, a3["session_id"], "cash", 5000, "小王")  # the rest in cash, with change
        void_line(db, a1["id"], 1, "客人不要了 one plate was enough for the two of them, too spicy", quantity=1)
        db.execute(
            "UPDATE order_events SET at = ? WHERE order_id IN (?, ?) AND at > ?",
            (stamp(8), gone["id"], a1["id"], stamp(1)),
        )
        db.execute("UPDATE table_sessions SET status = 'closed' WHERE id = ?", (gone["session_id"],))
    tables = {t.name: t for t in list_tables(db)}
    with db:
        request_service(db, tables["A5"], "waiter")
        request_service(db, tables["A3"], "bill")
        db.execute("UPDATE service_requests SET created_at = ?", (stamp(3),))
        db.execute(  # a long name a technician gave, serving both stations, never checked (the longest status)
            "INSERT INTO printers (name, uri, stations) VALUES ('front-counter-receipts', 'virtual://front', ?)",
            (json.dumps(["kitchen", "bar"]),),
        )
        db.execute(
            "INSERT INTO printer_status (name, status, detail, since, checked_at) VALUES ('kitchen', 'paper_out', ?, ?, ?)",
            ("paper out 缺纸", stamp(6), stamp(0.2)),
        )
        db.execute(
            "UPDATE outbox SET attempts = 6, last_error = ?, next_attempt_at = ?, created_at = ?"
            " WHERE target = 'erpnext'",
            ("connect to erp.dumpling.example:443: connection refused 连接被拒绝", stamp(-1), stamp(30)),
        )
        db.execute(  # one row set aside: the target needs a person (the longest state)
            "UPDATE outbox SET parked_at = ? WHERE id = (SELECT min(id) FROM outbox WHERE target = 'erpnext')",
            (stamp(5),),
        )
        # what the staff did meanwhile, as the audit trail has it (the Audit screen's rows)
        for minutes_ago, who, action, subject, details in (
            (40, "店长 Manager", "menu.sold_out", "oil_fried_shrimp", {}),
            (35, "店长 Manager", "menu.price", "fuqi_feipian", {"variant": None, "from": 4200, "to": 4800}),
            (29, "服务员 Waiter", "order.advance", f"order {a1['id']}", {"from": "submitted", "to": "accepted"}),
            (12, "服务员 Waiter", "order.advance", f"order {a3['id']}", {"from": "submitted", "to": "accepted"}),
            (10, "店长 Manager", "order.advance", f"order {a3['id']}", {"from": "accepted", "to": "preparing"}),
        ):
            db.execute(
                "INSERT INTO audit_log (at, staff_name, action, subject, details) VALUES (?, ?, ?, ?, ?)",
                (stamp(minutes_ago), who, action, subject, json.dumps(details)),
            )


def key_for(action: str, mode: str) -> str:
    """The key the map gives an action on a screen (what a person presses)."""
    return next(k.key for k in keys_for(mode) if k.action == action)


async def settled(pilot: Any, app: Any, mode: str) -> None:
    """Open `mode` and wait until its rows are drawn and nothing is loading; no blinking cursor."""
    if app.current_mode != mode:
        await pilot.press(SCREENS[mode][2])
    await wait_until(pilot, lambda: app.current_mode == mode and not isinstance(app.screen, ModalScreen))
    await wait_until(
        pilot,
        lambda: (
            not any(w.group in ("reload", "poll", "action", "dialog") and not w.is_finished for w in app.workers)
            and not getattr(app.screen, "restoring", False)
        ),
    )
    await steady(pilot, app)


@pytest.fixture
def rush(db: Any) -> None:
    rush_hour(db)


# -- what must fit at 80 columns (pilot tests: they read the frame the console drew) ------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("mode", SCREENS)
async def test_the_header_keeps_the_badge_the_screen_and_who_at_80_columns(make_console, rush, mode):
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot, app, mode)
        header = screen_lines(app)[0].rstrip()
        assert header.split(" — ")[0].lstrip(" ▤").startswith("! 1 waiter 呼叫 ≡ 1 bill 买单 · ")
        assert header.endswith(f"— {app.screen.screen_name} · 店长 Manager (manager)"), header


def test_the_header_gives_up_the_store_name_first_then_who():
    badge = "! 12 waiter 呼叫 ≡ 3 bill 买单 ● 14 new 新单"
    title, sub = f"{badge} · Tablebox · 小笼天下 Dumpling House", "Orders 订单 · 店长 Manager (manager)"
    assert fit_title(title, sub, 200).plain == f"{title} — {sub}"
    assert fit_title(title, sub, 90).plain == f"{badge} · Tab… — {sub}"  # the store's name gives way first
    assert fit_title(title, sub, 80).plain == f"{badge} … — Orders 订单 · 店长 Manager (ma…"  # then who
    assert fit_title(title, sub, 62).plain == f"{badge} … — Orders 订单 …"
    assert fit_title(title, sub, 30).plain == "! 12 waiter 呼叫 ≡ 3 bill 买 …"  # a wide character is not cut in half
    assert fit_title("Tablebox · 小笼天下", "locked 已锁定", 80).plain == "Tablebox · 小笼天下 — locked 已锁定"


@pytest.mark.anyio
@pytest.mark.parametrize("mode", SCREENS)
async def test_no_list_is_wider_than_80_columns(make_console, rush, mode):
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot, app, mode)
        for table in app.screen.query(DataTable):  # no column pushed out of sight to the right
            assert table.virtual_size.width <= table.scrollable_content_region.width, table.id


@pytest.mark.anyio
async def test_at_80_columns_names_are_cut_with_an_ellipsis_and_shown_whole_below(make_console, rush):
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot, app, "orders")
        a1 = next(line for line in screen_lines(app) if " A1 " in line)
        # ticket, table, age and state whole; the dishes cut, with the mark of the cut
        assert a1.split()[:8] == ["1", "A1", "31", "min", "!!", "✓", "accepted", "已接"]
        assert a1.rstrip().endswith("…") and "夫妻肺片 · 经典" in a1
        await settled(pilot, app, "settings")
        reasons = next(line for line in screen_lines(app) if "Cancel reasons" in line).rstrip()
        assert reasons.endswith("…") and len(reasons) < 80
        app.screen.query_one(DataTable).move_cursor(row=list(STORE_SETTINGS).index("cancel_reasons"))
        await pilot.pause()
        detail = str(app.screen.query_one("#detail", Static).render())
        assert (
            "cancel_reasons: 客人取消 guest cancelled, 沽清 sold out, 下错单 wrong order, 等太久 waited too long"
            in detail
        )
        await settled(pilot, app, "printers")
        front = next(line for line in screen_lines(app) if "front-" in line).strip()
        # the stations give way, then the name; the queue and the status whole
        assert front.startswith("front-counter…  kitchen…  0  ") and front.endswith(
            "  ? not checked: is the print worker running?"
        )
        app.screen.query_one(DataTable).move_cursor(row=2)
        await pilot.pause()
        detail = str(app.screen.query_one("#detail", Static).render())
        assert detail.startswith("front-counter-receipts  virtual://front · 80 mm · gb18030 · stations kitchen, bar\n")
        await settled(pilot, app, "sync")
        assert screen_lines(app)[3].split()[:6] == ["erpnext", "(e…", "✗", "failing:", "needs", "a"]


@pytest.mark.anyio
@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_a_long_note_in_the_tables_pane_wraps_under_its_dish(make_console, rush, size):
    app = make_console()
    async with app.run_test(size=size) as pilot:
        await settled(pilot, app, "tables")  # A1 highlighted: its voided half-line has a long reason and a note
        pane = [line.split("│")[-1] for line in screen_lines(app)]
        voided = next(n for n, line in enumerate(pane) if "✗ voided" in line)
        dish_at = pane[voided].index("1x")
        assert pane[voided + 1][: dish_at + 2].isspace() and not pane[voided + 1][dish_at + 2].isspace()
        assert "too spicy" in " ".join(pane[voided : voided + 4])


@pytest.mark.anyio
async def test_at_120_columns_nothing_is_cut(make_console, rush):
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await settled(pilot, app, "orders")
        a1 = next(line for line in screen_lines(app) if " A1 " in line)
        assert a1.rstrip().endswith("1x 雪菜黄鱼面, 1x 牛栏山二锅头（小瓶）")
        assert screen_lines(app)[1].rstrip().endswith(" 8 Audit  ^L lock")  # room for the lock hint
        assert (
            screen_lines(app)[0]
            .rstrip()
            .endswith(
                "! 1 waiter 呼叫 ≡ 1 bill 买单 · Tablebox · 小笼天下 Dumpling House — Orders 订单 · 店长 Manager (manager)"
            )
        )


@pytest.mark.anyio
@pytest.mark.parametrize("mode", SCREENS)
async def test_the_footer_and_the_tabs_fit_80_columns(make_console, rush, mode):
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot, app, mode)
        keys = list(app.screen.query(FooterKey))
        assert keys
        for key in keys:  # every key in the footer whole on screen
            assert key.region.right <= 80 and key.region.width > 0, (key.key, key.region)
        tabs = screen_lines(app)[1].rstrip()  # every tab in sight, this one in brackets
        assert Text(tabs).cell_len <= 80 and tabs.strip().endswith("8 Audit" if mode != "audit" else "[8 Audit]"), tabs
        assert f"[{SCREENS[mode][2]} {mode.capitalize()}]" in tabs


# -- the snapshots (tests/tui/__snapshots__/test_snapshots/: read the SVGs, they are the proof) ------------------

SIZES = [pytest.param((80, 24), id="80x24"), pytest.param((120, 40), id="120x40")]


@pytest.mark.parametrize("size", SIZES)
def test_login_snapshot(make_console, rush, snap_compare, size):
    app = make_console(pin=None)

    async def settle(pilot: Any) -> None:
        await wait_until(pilot, lambda: bool(app.screen.query(Input)) and app.sub_title == "locked 已锁定")
        await steady(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", SCREENS)
def test_screen_snapshot(make_console, rush, snap_compare, mode, size):
    app = make_console()

    async def settle(pilot: Any) -> None:
        await settled(pilot, app, mode)

    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_keys_dialog_snapshot(make_console, rush, snap_compare, size):
    """`?` on Tables (the screen with the most keys)."""
    app = make_console()

    async def settle(pilot: Any) -> None:
        await settled(pilot, app, "tables")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(app.screen, ModalScreen))
        await steady(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_cancel_dialog_snapshot(make_console, rush, snap_compare, size):
    """Cancelling the late order A1: the store's reasons to choose from."""
    app = make_console()

    async def settle(pilot: Any) -> None:
        await settled(pilot, app, "orders")
        await pilot.press("down", "down")  # A1, the oldest
        await pilot.press(key_for("cancel", "orders"))
        await wait_until(pilot, lambda: isinstance(app.screen, ModalScreen))
        await steady(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.parametrize("size", SIZES)
def test_price_dialog_snapshot(make_console, rush, snap_compare, size):
    """A new price for the dish with the longest name, typed the way people write it, read as it is typed."""
    app = make_console()

    async def settle(pilot: Any) -> None:
        await settled(pilot, app, "menu")
        await pilot.press("down")  # 夫妻肺片 · 经典
        await pilot.press(key_for("price", "menu"))
        await wait_until(pilot, lambda: isinstance(app.screen, ModalScreen) and bool(app.screen.query(Input)))
        await pilot.press(*"52,5")
        await steady(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=settle)


@pytest.mark.anyio
async def test_a_message_longer_than_the_line_is_cut_with_an_ellipsis(make_console, rush):
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await settled(pilot, app, "orders")
        said = "🔔 table A4 calls the waiter 呼叫服务员 — 2 = Tables · 🔔 3 NEW ORDERS 新订单: A1 #12, A2 #13, T5 #14 — 1 = Orders"
        app.screen.say(said)  # what the app says when a call and orders come in together
        await steady(pilot, app)
        line = screen_lines(app)[-2].strip()  # the message line, above the footer
        assert line.endswith("…") and said.startswith(line[:-1].rstrip())
