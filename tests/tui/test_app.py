"""The console's live orders board, driven with Textual's pilot against a real store file."""

from __future__ import annotations

import pytest

from appliance.db.connection import open_connection
from tests.appliance.db.test_payments import order
from tui.app import ConsoleApp
from textual.widgets import DataTable, Static


@pytest.mark.anyio
async def test_new_orders_appear_live_and_keys_move_them(settings):
    other = open_connection(settings.db_path)  # the web process, as far as the console can tell
    app = ConsoleApp(settings.db_path)
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one(DataTable)
        assert table.row_count == 0
        placed = order(other, table="A5")
        for _ in range(40):
            await pilot.pause(0.05)
            if table.row_count:
                break
        assert table.row_count == 1
        assert [str(c) for c in table.get_row_at(0)][:2] == [str(placed["ticket_no"]), "A5"]
        await pilot.press("a")
        await pilot.pause()
        assert other.execute("SELECT status FROM orders").fetchone()[0] == "accepted"
        assert "submitted → accepted" in str(app.screen.query_one("#message", Static).render())
        for _ in range(3):
            await pilot.press("a")
        await pilot.pause()
        assert other.execute("SELECT status FROM orders").fetchone()[0] == "served"
        assert table.row_count == 0  # served orders leave the board
    other.close()


def test_late_orders_are_marked_not_only_coloured():
    from datetime import datetime, timezone

    from tui.screens.orders import age_text

    now = datetime(2026, 11, 21, 12, 30, tzinfo=timezone.utc)
    assert str(age_text("2026-11-21T12:25:00.000000Z", now)) == "5 min"
    amber = age_text("2026-11-21T12:18:00.000000Z", now)
    red = age_text("2026-11-21T12:05:00.000000Z", now)
    assert (str(amber), str(red)) == ("12 min !", "25 min !!")
    assert "red" in str(red.style) and "orange" in str(amber.style)


@pytest.mark.anyio
async def test_the_board_fits_80_by_24_with_chinese_names(settings):
    other = open_connection(settings.db_path)
    order(other, table="T2", items=(("har_gow", 2), ("mineral_water", 1)))
    app = ConsoleApp(settings.db_path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        table = app.screen.query_one(DataTable)
        row = [str(c) for c in table.get_row_at(0)]
        assert row[1] == "T2" and "2x 水晶虾饺" in row[4] and row[3].startswith("●")
    other.close()
