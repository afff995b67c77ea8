"""Every money input of the console reads an amount typed any common way, and refuses what it cannot read:
payments and refunds on the Tables screen here (prices: tests/tui/test_menu.py; the parser:
tests/appliance/domain/test_money.py)."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable, Static

from appliance.db.floor import take_payment
from tests.tui.conftest import message, place_order, wait_until
from tui.screens.tables import TablesScreen

pytestmark = pytest.mark.anyio


async def on_table(pilot, app, name):
    await pilot.press("2")
    await wait_until(
        pilot, lambda: isinstance(app.screen, TablesScreen) and app.screen.query_one(DataTable).row_count > 0
    )
    screen = app.screen
    screen.select(next(t.id for t in screen.tables.values() if t.name == name))
    await wait_until(pilot, lambda: str(screen.query_one("#detail", Static).render()).startswith(name + " "))


def error(app) -> str:
    return str(app.screen.query_one("#error", Static).render())


async def test_a_payment_typed_with_a_decimal_comma_and_a_yuan_sign_is_taken_exactly(settings, make_console, db):
    place_order(db, table="A2", items=(("har_gow", 2), ("mineral_water", 1)))  # 72.00
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await on_table(pilot, app, "A2")
        await pilot.press("p")
        await wait_until(pilot, lambda: bool(app.screen.query("#choices")))
        await pilot.press("enter")  # cash
        await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
        await pilot.press("ctrl+u", *"$50", "enter")
        await wait_until(pilot, lambda: "not this store's money (CNY)" in error(app))
        await pilot.press("ctrl+u", *"￥50,5", "enter")  # 50.50, not 505.00 with 433.00 change
        await wait_until(pilot, lambda: "still due 还欠 ¥21.50" in message(app))
        assert "change" not in message(app)
    assert db.execute("SELECT method, amount_minor, change_minor FROM payments").fetchall() == [("cash", 5050, 0)]


async def test_a_refund_typed_in_yuan_and_jiao_gives_back_exactly_that(settings, make_console, db):
    placed = place_order(db, table="A2")  # 64.00
    with db:
        take_payment(db, placed["session_id"], "card", 6400, "小王")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await on_table(pilot, app, "A2")
        await pilot.press("R")
        await wait_until(pilot, lambda: bool(app.screen.query("#choices")))
        await pilot.press("enter")  # the only payment
        await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
        await pilot.press("ctrl+u", *"10元5", "enter")  # 10.50 or 10.05? asked, not guessed
        await wait_until(pilot, lambda: "say 角 or 分" in error(app))
        await pilot.press("ctrl+u", *"10元5角", "enter")
        await wait_until(pilot, lambda: "Why?" in str(app.screen.query(".title").first().render()))
        await pilot.press(*"cold", "enter")
        await wait_until(pilot, lambda: bool(app.screen.query("#question")))
        assert "Give back ¥10.50" in str(app.screen.query_one("#question", Static).render())
        await pilot.press("y")
        await wait_until(pilot, lambda: "refunded 已退款" in message(app))
    assert db.execute("SELECT amount_minor FROM refunds").fetchall() == [(1050,)]
