"""The menu screen against a real store file: what staff change here is what the diner API serves at once."""

from __future__ import annotations

import json
import uuid

import pytest
from rich.cells import cell_len
from textual.widgets import DataTable, Input, OptionList, Static

from appliance.db.store_settings import set_store_setting
from tests.tui.conftest import WAITER_PIN, message, place_order, wait_until

pytestmark = pytest.mark.anyio


def item_id(db, key):
    return db.execute("SELECT id FROM items WHERE key = ?", (key,)).fetchone()[0]


def row_of(app, db, key):
    table = app.screen.query_one(DataTable)
    return [str(cell) for cell in table.get_row(str(item_id(db, key)))]


async def open_menu(pilot, app, find=""):
    """The menu screen (key 3), narrowed with / to one dish when `find` is given."""
    await pilot.press("3")
    await wait_until(pilot, lambda: app.screen.query(DataTable) and app.screen.query_one(DataTable).row_count > 0)
    if find:
        await pilot.press("slash")
        await answer(pilot, app, find)
        await wait_until(pilot, lambda: app.screen.query(DataTable) and app.screen.query_one(DataTable).row_count == 1)


async def answer(pilot, app, text):
    """Replace what the dialog's input holds with `text` and press enter."""
    await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
    field = app.screen.query_one("#answer", Input)
    await pilot.press(*["backspace"] * len(field.value), *text, "enter")


def dialog_error(app):
    return str(app.screen.query_one("#error", Static).render())


def menu_item(client, token, iid):
    menu = client.get(f"/api/v1/tables/{token}/menu?lang=en").json()
    return next((i for c in menu["categories"] for i in c["items"] if i["id"] == iid), None)


async def test_sold_out_in_the_console_is_refused_to_diners_at_once(settings, make_console, db, client, token):
    har_gow = item_id(db, "har_gow")

    def order():
        return client.post(
            f"/api/v1/tables/{token}/orders?lang=en",
            json={"client_key": uuid.uuid4().hex, "lines": [{"item_id": har_gow, "quantity": 1}]},
        )

    assert order().status_code == 201
    app = make_console(pin=WAITER_PIN)  # sold out is a waiter's job
    async with app.run_test(size=(100, 30)) as pilot:
        await open_menu(pilot, app, "har_gow")
        await pilot.press("o")
        await wait_until(pilot, lambda: message(app) == "✓ 水晶虾饺: SOLD OUT 沽清")
        assert "✗ SOLD OUT 沽清" in row_of(app, db, "har_gow")[4]
        refused = order()
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["code"] == "sold_out" and "Crystal shrimp dumplings" in error["message"]
        assert menu_item(client, token, har_gow)["sold_out"] is True
        await pilot.press("o")
        await wait_until(pilot, lambda: message(app) == "✓ 水晶虾饺: back on 恢复供应")
        assert row_of(app, db, "har_gow")[4].startswith("✓ on")
        assert order().status_code == 201
    trail = db.execute("SELECT staff_name, action, subject FROM audit_log ORDER BY id").fetchall()
    assert trail == [("服务员 Waiter", "menu.sold_out", "har_gow"), ("服务员 Waiter", "menu.back_on", "har_gow")]


async def test_stock_counts_down_with_orders_and_sells_out_live(settings, make_console, db):
    app = make_console(pin=WAITER_PIN)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_menu(pilot, app, "虾饺")  # found by its Chinese name
        await pilot.press("k")
        await answer(pilot, app, "x")
        assert "whole number" in dialog_error(app)
        await answer(pilot, app, "2")
        await wait_until(pilot, lambda: message(app) == "✓ 水晶虾饺: stock 2")
        assert db.execute("SELECT stock, sold_out FROM items WHERE key = 'har_gow'").fetchone() == (2, 0)
        assert row_of(app, db, "har_gow")[3] == "2"
        place_order(db, table="A1", key="1", items=(("har_gow", 1),))  # the web takes two orders: no key pressed
        await wait_until(pilot, lambda: row_of(app, db, "har_gow")[3] == "1")
        place_order(db, table="A2", key="2", items=(("har_gow", 1),))
        await wait_until(pilot, lambda: "SOLD OUT" in row_of(app, db, "har_gow")[4])
        assert row_of(app, db, "har_gow")[3] == "0"
        assert db.execute("SELECT stock, sold_out FROM items WHERE key = 'har_gow'").fetchone() == (0, 1)
        await pilot.press("k")
        await answer(pilot, app, "")  # empty: not counted any more (still sold out until put back on)
        await wait_until(pilot, lambda: message(app) == "✓ 水晶虾饺: stock not counted")
        assert db.execute("SELECT stock FROM items WHERE key = 'har_gow'").fetchone() == (None,)
        assert row_of(app, db, "har_gow")[3] == "—"


async def test_a_manager_edits_prices_exactly_and_bad_amounts_stay_in_the_dialog(settings, make_console, db):
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_menu(pilot, app, "har_gow")
        await pilot.press("P")
        await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
        assert app.screen.query_one("#answer", Input).value == "32.00"
        for bad, why in (("abc", "not an amount"), ("-1", "cannot be negative"), ("1.234", "at most 2 decimal places")):
            await answer(pilot, app, bad)
            await wait_until(pilot, lambda why=why: why in dialog_error(app))
            assert db.execute("SELECT price_minor FROM items WHERE key = 'har_gow'").fetchone() == (3200,)
        await answer(pilot, app, "32.5")
        await wait_until(pilot, lambda: message(app) == "✓ 水晶虾饺: ¥32.00 → ¥32.50")
        assert db.execute("SELECT price_minor FROM items WHERE key = 'har_gow'").fetchone() == (3250,)
        assert row_of(app, db, "har_gow")[2] == "¥32.50"
        await open_menu(pilot, app, "drunken")  # priced by variant: choose which
        assert row_of(app, db, "drunken_chicken")[2] == "variants"
        await pilot.press("P")
        await wait_until(pilot, lambda: bool(app.screen.query(OptionList)))
        await pilot.press("down", "enter")  # 整只 whole
        await answer(pilot, app, "70")
        await wait_until(pilot, lambda: message(app) == "✓ 绍兴醉鸡 (整只): ¥68.00 → ¥70.00")
    prices = db.execute(
        "SELECT v.key, v.price_minor FROM variants v JOIN items i ON i.id = v.item_id"
        " WHERE i.key = 'drunken_chicken' ORDER BY v.sort"
    ).fetchall()
    assert prices == [("half", 3800), ("whole", 7000)]
    trail = [
        (n, a, s, json.loads(d))
        for n, a, s, d in db.execute("SELECT staff_name, action, subject, details FROM audit_log ORDER BY id")
    ]
    assert trail[0] == ("店长 Manager", "menu.price", "har_gow", {"variant": None, "from": 3200, "to": 3250})
    assert trail[1][:3] == ("店长 Manager", "menu.price", "drunken_chicken") and trail[1][3]["to"] == 7000


async def test_a_waiter_cannot_reach_prices_hiding_or_hours(settings, make_console, db):
    app = make_console(pin=WAITER_PIN)
    async with app.run_test(size=(100, 30)) as pilot:
        await open_menu(pilot, app, "har_gow")
        for key, words in (
            ("P", "cannot change prices"),
            ("H", "cannot hide dishes"),
            ("w", "cannot change when dishes are served"),
        ):
            await pilot.press(key)
            await wait_until(pilot, lambda words=words: words in message(app))
            assert message(app).startswith("✗ refused: a waiter") and not app.screen.query("#answer")
    assert db.execute("SELECT price_minor, hidden, available_from FROM items WHERE key = 'har_gow'").fetchone() == (
        3200,
        0,
        None,
    )
    assert db.execute("SELECT count(*) FROM audit_log").fetchone() == (0,)


async def test_hiding_and_hours_reach_the_menu_api(settings, make_console, db, client, token):
    har_gow = item_id(db, "har_gow")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_menu(pilot, app, "har_gow")
        await pilot.press("H", "y")  # asks first
        await wait_until(pilot, lambda: message(app) == "✓ 水晶虾饺: hidden from diners 已隐藏")
        assert db.execute("SELECT hidden FROM items WHERE id = ?", (har_gow,)).fetchone() == (1,)
        assert menu_item(client, token, har_gow) is None
        assert row_of(app, db, "har_gow")[4].startswith("◌ hidden 隐藏")  # still listed here, marked
        await pilot.press("H", "y")
        await wait_until(pilot, lambda: "shown again" in message(app))
        assert menu_item(client, token, har_gow)["available_hours"] is None
        await pilot.press("w")
        await answer(pilot, app, "11:00-25:00")
        await wait_until(pilot, lambda: "not a time of day" in dialog_error(app))
        await answer(pilot, app, "11:00")
        await wait_until(pilot, lambda: "HH:MM-HH:MM" in dialog_error(app))
        await answer(pilot, app, "11:00-14:00")
        await wait_until(pilot, lambda: message(app) == "✓ 水晶虾饺: served 11:00-14:00")
        assert db.execute("SELECT available_from, available_until FROM items WHERE id = ?", (har_gow,)).fetchone() == (
            "11:00",
            "14:00",
        )
        assert menu_item(client, token, har_gow)["available_hours"] == "11:00-14:00"
        assert row_of(app, db, "har_gow")[4] == "⏸ not now 未到 ⏱ 11:00-14:00"  # 20:30 in Shanghai
        await pilot.press("w")
        await answer(pilot, app, "")
        await wait_until(pilot, lambda: message(app) == "✓ 水晶虾饺: served all day 全天")
        assert db.execute("SELECT available_from, available_until FROM items WHERE id = ?", (har_gow,)).fetchone() == (
            None,
            None,
        )
        assert menu_item(client, token, har_gow)["available_hours"] is None
    actions = [a for (a,) in db.execute("SELECT action FROM audit_log ORDER BY id")]
    assert actions == ["menu.hidden", "menu.shown", "menu.window", "menu.window"]


async def test_the_menu_fits_80_by_24_with_chinese_names_in_aligned_columns(settings, make_console, db):
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_menu(pilot, app)
        table = app.screen.query_one(DataTable)
        lines = [table.render_line(y).text for y in range(table.size.height)]
        rows = [line for line in lines if "¥" in line or "variants" in line]
        assert len(rows) >= 10
        assert any("拍黄瓜" in line for line in rows) and any("夫妻肺片 · 经典" in line for line in rows)
        # names of different widths, yet every column starts in the same terminal cell on every row
        starts = {
            (cell_len(line[: line.index("✓")]), cell_len(line[: line.index("—")])) for line in rows if "—" in line
        }
        assert len(starts) == 1
        assert lines[0].split()[1:8] == ["Dish", "菜品", "Price", "价格", "Stock", "State", "状态"]
        assert row_of(app, db, "oil_fried_shrimp")[4] == "✗ SOLD OUT 沽清"
        assert row_of(app, db, "chef_special_duck")[4] == "◌ hidden 隐藏"
        assert row_of(app, db, "cifantuan")[4] == "⏸ not now 未到 ⏱ 07:00-10:30"
        assert row_of(app, db, "crab_xiaolongbao")[2:4] == ["variants", "10"]
        await pilot.press("f")  # category filter: drinks only
        await wait_until(pilot, lambda: bool(app.screen.query(OptionList)))
        options = app.screen.query_one(OptionList)
        drinks = next(i for i in range(options.option_count) if "饮品" in str(options.get_option_at_index(i).prompt))
        await pilot.press(*["down"] * drinks, "enter")
        await wait_until(pilot, lambda: app.screen.query(DataTable) and table.row_count == 9)
        assert {str(table.get_row_at(i)[0]) for i in range(table.row_count)} == {"饮品"}
        assert "9/64 dishes" in str(app.screen.query_one("#filters", Static).render())
        await pilot.press("escape")
        await wait_until(pilot, lambda: table.row_count == 64)


def dialog_text(app, selector):
    return str(app.screen.query_one(selector, Static).render())


async def test_a_price_typed_12_comma_5_is_read_as_12_50_and_a_big_change_asks_first(settings, make_console, db):
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_menu(pilot, app, "har_gow")  # ¥32.00
        await pilot.press("P")
        await answer(pilot, app, "12,5")
        # more than half the old price away: the dialog asks, showing old and new; nothing is saved yet
        await wait_until(pilot, lambda: "¥32.00 → ¥12.50" in dialog_text(app, "#error"))
        assert "y = yes" in str(app.screen.query_one("#keys").render())
        await pilot.press("enter")  # a doubled enter does not answer the question
        await pilot.pause()
        assert app.screen.query("#answer") and "¥32.00 → ¥12.50" in dialog_text(app, "#error")
        assert db.execute("SELECT price_minor FROM items WHERE key = 'har_gow'").fetchone() == (3200,)
        await pilot.press("n")  # back to the typing, the text kept
        await wait_until(pilot, lambda: not app.screen.query_one("#answer", Input).disabled)
        assert app.screen.query_one("#answer", Input).value == "12,5" and dialog_text(app, "#error") == ""
        await pilot.press(*["backspace"] * 4, *"￥32,5")
        await wait_until(pilot, lambda: dialog_text(app, "#reading") == "= ¥32.50")  # shown as read while typed
        await pilot.press("enter")
        await wait_until(pilot, lambda: message(app) == "✓ 水晶虾饺: ¥32.00 → ¥32.50")  # a small change: no question
        assert db.execute("SELECT price_minor FROM items WHERE key = 'har_gow'").fetchone() == (3250,)
        await pilot.press("P")
        await answer(pilot, app, "12元5角")
        await wait_until(pilot, lambda: "¥32.50 → ¥12.50" in dialog_text(app, "#error"))
        await pilot.press("y")
        await wait_until(pilot, lambda: message(app) == "✓ 水晶虾饺: ¥32.50 → ¥12.50")
        assert row_of(app, db, "har_gow")[2] == "¥12.50"
        await pilot.press("P")
        await answer(pilot, app, "$12")
        await wait_until(pilot, lambda: "$ is not this store's money (CNY)" in dialog_text(app, "#error"))
        await pilot.press("escape")
        await wait_until(pilot, lambda: not app.screen.query("#answer"))
    assert db.execute("SELECT price_minor FROM items WHERE key = 'har_gow'").fetchone() == (1250,)
    prices = [json.loads(d) for (d,) in db.execute("SELECT details FROM audit_log WHERE action = 'menu.price'")]
    assert [(p["from"], p["to"]) for p in prices] == [(3200, 3250), (3250, 1250)]


LONG_NAME = "特级秘制手工慢炖黑毛猪肉配时令野生菌菇砂锅煲（大份）"  # 54 cells, longer than any demo dish


def visible_rows(app):
    """(cells, the line as the terminal shows it) for each row on screen, top down."""
    table = app.screen.query_one(DataTable)
    shown = min(table.row_count, table.size.height - 1)  # below the header line
    return [([str(c) for c in table.get_row_at(i)], table.render_line(i + 1).text) for i in range(shown)]


LONG_ENGLISH = "Chef's secret slow-braised black pork with wild mushrooms in clay pot (large)"


@pytest.mark.parametrize(
    ("size", "languages", "state"),
    [
        ((80, 24), ["zh", "en"], "◌ 隐藏 ✗ 沽清 ⏱ 11:00-14:00"),  # narrow: the state in the first language only
        ((120, 40), ["en", "zh"], "◌ hidden 隐藏 ✗ SOLD OUT 沽清 ⏱ 11:00-14:00"),
    ],
)
async def test_price_and_state_stay_whole_and_long_names_are_cut_with_an_ellipsis(
    settings, make_console, db, size, languages, state
):
    with db:
        set_store_setting(db, "languages", languages)  # English first: the demo's longest names (44 cells)
        db.execute(
            "UPDATE items SET names = json_set(names, '$.zh', ?, '$.en', ?), hidden = 1, sold_out = 1,"
            " available_from = '11:00', available_until = '14:00' WHERE key = 'har_gow'",  # the longest state
            (LONG_NAME, LONG_ENGLISH),
        )
    app = make_console()
    async with app.run_test(size=size) as pilot:
        await open_menu(pilot, app, "har_gow")
        [(cells, line)] = visible_rows(app)
        assert cells[2] == "¥32.00" and cells[4] == state
        assert cells[2] in line and cells[4] in line  # on screen, not cut at the edge
        name = cells[1].removesuffix("…").rstrip()
        assert cells[1].endswith("…") and len(name) >= 8
        assert (LONG_NAME if languages[0] == "zh" else LONG_ENGLISH).startswith(name)
        detail = str(app.screen.query_one("#detail", Static).render())
        assert "¥32.00" in detail and "✗ SOLD OUT 沽清" in detail and LONG_NAME in detail  # whole, in the pane
        await pilot.press("escape")  # every dish: price and state whole on every row on screen
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 64)
        for cells, line in visible_rows(app):
            assert cells[2] in line and cells[4] in line and not cells[4].endswith("…")
            assert cell_len(line) <= size[0]


async def test_the_columns_follow_the_terminal_when_it_is_resized(settings, make_console, db):
    with db:
        set_store_setting(db, "languages", ["en", "zh"])
    app = make_console()
    async with app.run_test(size=(160, 40)) as pilot:
        await open_menu(pilot, app)
        table = app.screen.query_one(DataTable)
        assert [str(c.label) for c in table.columns.values()][-1] == "Name"  # wide: the Chinese names too
        await pilot.resize_terminal(80, 24)
        await wait_until(pilot, lambda: len(table.columns) == 5)  # the second-language names go first
        for cells, line in visible_rows(app):
            assert cells[2] in line and cells[4] in line
        assert any(cells[1].endswith("…") for cells, _ in visible_rows(app))
