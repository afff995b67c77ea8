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
