"""The Audit screen (8): the manager reads a business day's staff actions newest first, in the store's time, with who,
the action in words, the order's ticket and table or the dish's name (not the store's ids), from which state to
which and why; other days, a word, one kind of action; new lines as other consoles act; a waiter kept out; 80x24."""

from __future__ import annotations

import ast
from datetime import UTC, datetime
from pathlib import Path

import pytest
from textual.widgets import DataTable, Static

from appliance.db.audit_log import audit_day, day_span
from appliance.db.staff import audit
from appliance.db.store_settings import load_store_settings
from tests.tui.conftest import MANAGER_PIN, WAITER_PIN, message, place_order, staff_for, wait_until
from tui.screens.audit import ACTION_WORDS, KINDS, SHOWN_AT_MOST, AuditScreen, kind_of
from tui.screens.orders import OrdersScreen

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def write(db, settings, at: str, action: str, subject: str = "", details=None, pin: str = MANAGER_PIN) -> int:
    """An audit line as a staff action writes it (another console, another process), at a stored UTC time."""
    with db:
        audit(db, staff_for(settings, pin), action, subject, details)
        entry_id = db.execute("SELECT max(id) FROM audit_log").fetchone()[0]
        db.execute("UPDATE audit_log SET at = ? WHERE id = ?", (at, entry_id))
    return entry_id


def rows(app) -> list[list[str]]:
    table = app.screen.query_one(DataTable)
    return [[cell.plain for cell in table.get_row_at(i)] for i in range(table.row_count)]


def text_of(app, widget: str) -> str:
    return str(app.screen.query_one(f"#{widget}", Static).content)


async def open_audit(app, pilot, count: int | None = None) -> None:
    await pilot.press("8")
    await wait_until(
        pilot,
        lambda: (
            isinstance(app.screen, AuditScreen)
            and app.screen.loaded is not None
            and (count is None or app.screen.query_one(DataTable).row_count == count)
        ),
    )


def a_day(db, settings) -> dict[str, int]:
    """Saturday 2026-11-21 in Shanghai (UTC+8; the business day starts 05:00 local = 21:00 UTC the day before)."""
    order = place_order(db, table="A5", items=(("har_gow", 2),))
    ticket = order["ticket_no"]
    ids = {
        # 04:59 local on the 21st: still the 20th's business day
        "night": write(db, settings, "2026-11-20T20:59:00.000000Z", "table.closed", "table T2"),
        # 05:00 local: the 21st's first minute
        "open": write(db, settings, "2026-11-20T21:00:00.000000Z", "table.opened", "table A5", {"diners": 2}),
        "price": write(
            db,
            settings,
            "2026-11-21T10:15:00.000000Z",
            "menu.price",
            "har_gow",
            {"variant": None, "from": 3200, "to": 3500},
        ),
        "advance": write(
            db,
            settings,
            "2026-11-21T12:05:07.000000Z",
            "order.advance",
            f"order {order['id']}",
            {"from": "submitted", "to": "accepted"},
            pin=WAITER_PIN,
        ),
        "cancel": write(
            db,
            settings,
            "2026-11-21T12:20:00.000000Z",
            "order.cancelled",
            f"order {order['id']}",
            {"reason": "客人取消 guest cancelled"},
        ),
    }
    ids["ticket"] = ticket
    return ids


def test_a_business_day_runs_from_day_starts_at_local_time_in_utc(db):
    store = load_store_settings(db)
    assert store.timezone == "Asia/Shanghai" and store.day_starts_at == "05:00"
    assert day_span(store, "2026-11-21") == ("2026-11-20T21:00:00.000000Z", "2026-11-21T21:00:00.000000Z")


def test_the_day_reads_its_lines_newest_first_with_orders_and_dishes_named(settings, db):
    ids = a_day(db, settings)
    day = audit_day(db, "2026-11-21")
    assert [line.entry.id for line in day.lines] == [ids["cancel"], ids["advance"], ids["price"], ids["open"]]
    assert [(line.ticket_no, line.table, line.dish) for line in day.lines] == [
        (ids["ticket"], "A5", ""),
        (ids["ticket"], "A5", ""),
        (None, "", "水晶虾饺"),
        (None, "", ""),
    ]
    assert [line.entry.id for line in audit_day(db, "2026-11-20").lines] == [ids["night"]]
    assert audit_day(db, "2026-11-21", limit=2).more is True
    assert audit_day(db, "2026-11-21").more is False


async def test_the_manager_reads_the_day_newest_first_in_words(settings, make_console, db):
    ids = a_day(db, settings)
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_audit(app, pilot, 4)
        ticket = f"#{ids['ticket']} A5"
        assert rows(app) == [
            ["20:20", "店长 Manager", "cancel 取消", ticket, "→ cancelled", "客人取消 guest cancelled"],
            ["20:05", "服务员 Waiter", "next step 推进", ticket, "new → accepted", ""],
            ["18:15", "店长 Manager", "price 改价", "水晶虾饺", "¥32.00 → ¥35.00", ""],
            ["05:00", "店长 Manager", "seat 开台", "A5", "2 guests", ""],
        ]
        assert text_of(app, "filters").startswith("2026-11-21 today 今天 · 4 entries")
        # The highlighted line in full, with its seconds and stored action.
        assert text_of(app, "detail").splitlines() == [
            f"20:20:00  店长 Manager  cancel 取消  (order.cancelled)  {ticket}",
            "→ cancelled",
            "“客人取消 guest cancelled”",
        ]


async def test_brackets_and_d_change_the_day(settings, make_console, db):
    ids = a_day(db, settings)
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_audit(app, pilot, 4)
        await pilot.press("left_square_bracket")
        await wait_until(pilot, lambda: app.screen.shown_day == "2026-11-20" and len(rows(app)) == 1)
        assert rows(app) == [["04:59", "店长 Manager", "close 清台", "T2", "", ""]]
        assert text_of(app, "filters").startswith("2026-11-20 Fri · 1 entry")
        assert app.screen.loaded.lines[0].entry.id == ids["night"]
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: app.screen.shown_day == "2026-11-21" and len(rows(app)) == 4)
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: "no later day" in message(app))
        assert message(app) == "✗ 2026-11-21 is today: there is no later day yet"
        assert app.screen.shown_day == "2026-11-21"
        await pilot.press("d")
        await wait_until(pilot, lambda: app.screen is not None and not isinstance(app.screen, AuditScreen))
        await pilot.press(*["backspace"] * 10, *"2026-11-19", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AuditScreen) and app.screen.shown_day == "2026-11-19")
        await wait_until(pilot, lambda: "no staff actions" in text_of(app, "detail"))
        assert rows(app) == []
        assert text_of(app, "detail") == "no staff actions on 2026-11-19 当日无操作记录"


async def test_slash_finds_a_word_f_shows_one_kind_and_escape_clears(settings, make_console, db):
    a_day(db, settings)
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_audit(app, pilot, 4)
        # A word in any case: the waiter's name, in any of its columns.
        await pilot.press("slash")
        await wait_until(pilot, lambda: not isinstance(app.screen, AuditScreen))
        await pilot.press(*"waiter", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AuditScreen) and len(rows(app)) == 1)
        assert [r[2] for r in rows(app)] == ["next step 推进"]
        assert "1 of 4 entries · find “waiter”" in text_of(app, "filters")
        # A reason's word finds the line it is in.
        await pilot.press("slash")
        await wait_until(pilot, lambda: not isinstance(app.screen, AuditScreen))
        await pilot.press(*["backspace"] * 6, *"客人", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AuditScreen) and app.screen.word == "客人")
        assert [r[2] for r in rows(app)] == ["cancel 取消"]
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(rows(app)) == 4)
        assert app.screen.word == ""
        # f: the kinds the day has, in order (orders, tables, menu), then every kind again.
        for kind, actions in (
            ("orders", ["cancel 取消", "next step 推进"]),
            ("tables", ["seat 开台"]),
            ("menu", ["price 改价"]),
            (None, ["cancel 取消", "next step 推进", "price 改价", "seat 开台"]),
        ):
            await pilot.press("f")
            await wait_until(pilot, lambda kind=kind: app.screen.kind == kind)
            assert [r[2] for r in rows(app)] == actions
        await pilot.press("f", "slash")
        await wait_until(pilot, lambda: not isinstance(app.screen, AuditScreen))
        await pilot.press(*"nothing like it", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, AuditScreen) and rows(app) == [])
        assert text_of(app, "detail") == "nothing matches kind orders 订单, “nothing like it” — Esc clears 无符合记录"
        await pilot.press("escape")
        await wait_until(pilot, lambda: len(rows(app)) == 4)
        assert app.screen.kind is None


async def test_lines_written_meanwhile_appear_and_the_highlight_stays(settings, make_console, db):
    ids = a_day(db, settings)
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_audit(app, pilot, 4)
        await pilot.press("down")
        await wait_until(pilot, lambda: app.screen.selected_key() == str(ids["advance"]))
        # Another console handles a call (its own transaction, its own connection).
        write(db, settings, "2026-11-21T12:25:00.000000Z", "calls.handled", "table B2")
        await wait_until(pilot, lambda: len(rows(app)) == 5)
        assert rows(app)[0] == ["20:25", "店长 Manager", "call handled 已处理", "B2", "", ""]
        assert app.screen.selected_key() == str(ids["advance"])


async def test_an_order_advanced_on_this_console_is_there_with_its_states(settings, make_console, db):
    app = make_console(clock=lambda: datetime.now(UTC))  # the audit line is stamped with the real time
    async with app.run_test(size=(120, 40)) as pilot:
        placed = place_order(db, table="A5")
        await wait_until(
            pilot, lambda: isinstance(app.screen, OrdersScreen) and app.screen.query_one(DataTable).row_count == 1
        )
        await pilot.press("a")
        await wait_until(pilot, lambda: "→ accepted" in message(app))
        await open_audit(app, pilot, 1)
        assert rows(app)[0][1:] == [
            "店长 Manager",
            "next step 推进",
            f"#{placed['ticket_no']} A5",
            "new → accepted",
            "",
        ]


async def test_a_waiter_cannot_open_the_audit_log(settings, make_console, db):
    app = make_console(WAITER_PIN)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("8")
        await wait_until(pilot, lambda: "refused" in message(app))
        assert not isinstance(app.screen, AuditScreen)
        assert message(app) == "✗ refused: a waiter cannot open audit: ask a manager"


async def test_at_80x24_every_column_fits_and_long_text_ends_with_an_ellipsis(settings, make_console, db):
    ids = a_day(db, settings)
    long_reason = "客人说菜太咸了而且等了很久 the guest said it was too salty and took too long"
    write(db, settings, "2026-11-21T12:29:00.000000Z", "order.cancelled", "order 1", {"reason": long_reason})
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_audit(app, pilot, 5)
        table = app.screen.query_one(DataTable)
        widths = [column.get_render_width(table) for column in table.columns.values()]
        assert sum(widths) <= table.scrollable_content_region.width  # nothing off the right edge
        assert table.virtual_size.width <= table.scrollable_content_region.width
        top = rows(app)[0]
        assert top[5].endswith("…") and long_reason.startswith(top[5][:-1].rstrip())
        assert top[4] == "→ cancelled"
        # The highlighted line in full below the table.
        assert f"“{long_reason}”" in text_of(app, "detail").replace("\n", "")
        assert ids["cancel"] in {line.entry.id for line in app.screen.loaded.lines}
        assert len(text_of(app, "filters")) <= 78


async def test_a_diners_order_does_not_re_read_the_log_a_staff_action_does(settings, make_console, db):
    a_day(db, settings)
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_audit(app, pilot, 4)
        screen = app.screen
        checks, reads = screen.checks, screen.reads
        place_order(db, table="A2")  # committed elsewhere: the live poll asks the log to reload
        await wait_until(pilot, lambda: screen.checks > checks)
        assert screen.reads == reads and len(rows(app)) == 4
        write(
            db,
            settings,
            "2026-11-21T12:26:00.000000Z",
            "order.advance",
            "order 1",
            {"from": "accepted", "to": "preparing"},
        )
        await wait_until(pilot, lambda: len(rows(app)) == 5)
        assert screen.reads == reads + 1
        assert rows(app)[0][4] == "accepted → cooking"


async def test_a_long_day_shows_its_newest_lines_and_finds_in_all_of_them(settings, make_console, db):
    staff = staff_for(settings, MANAGER_PIN)
    with db:
        for n in range(SHOWN_AT_MOST + 50):
            audit(db, staff, "table.opened", f"table A{n}", {"diners": 2})
        db.execute("UPDATE audit_log SET at = strftime('2026-11-21T10:%M:%S.000000Z', id * 10, 'unixepoch')")
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_audit(app, pilot, SHOWN_AT_MOST)
        assert rows(app)[0][3] == f"A{SHOWN_AT_MOST + 49}"  # the newest first
        assert text_of(app, "filters").startswith(
            f"2026-11-21 today 今天 · {SHOWN_AT_MOST + 50} entries · newest {SHOWN_AT_MOST} shown: / f narrow"
        )
        await pilot.press("slash")
        await wait_until(pilot, lambda: not isinstance(app.screen, AuditScreen))
        await pilot.press(*"table a3", "enter")  # the oldest lines, not in the table until found
        await wait_until(pilot, lambda: isinstance(app.screen, AuditScreen) and app.screen.word == "table a3")
        assert [r[3] for r in rows(app)] == ["A39", "A38", "A37", "A36", "A35", "A34", "A33", "A32", "A31", "A30", "A3"]


def test_every_action_the_console_writes_has_words_and_a_kind():
    """Each `act(permission, action, ...)` and `db.act(staff, permission, action, ...)` in tui/ (its action a string,
    or one of two) reads in words on the log."""
    written: set[str] = set()
    for path in (ROOT / "tui").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "act" and len(node.args) >= 3:
                action = node.args[1] if isinstance(node.args[0], ast.Constant) else node.args[2]
                choices = [action.body, action.orelse] if isinstance(action, ast.IfExp) else [action]
                written |= {c.value for c in choices if isinstance(c, ast.Constant) and isinstance(c.value, str)}
    assert len(written) >= 25 and "order.advance" in written and "menu.sold_out" in written
    assert sorted(a for a in written if a not in ACTION_WORDS) == []
    assert sorted(a for a in written if kind_of(a) not in KINDS) == []
