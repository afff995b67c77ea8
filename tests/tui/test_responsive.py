"""The console never freezes on the database: while another process holds the write lock, keys are still
handled, a spinner says the database is busy, and the action completes once the lock is released."""

from __future__ import annotations

import pytest
from textual.widgets import DataTable

from appliance.db.connection import open_connection
from appliance.db.orders import order_view
from tests.tui.conftest import message, place_order, wait_until

pytestmark = pytest.mark.anyio


async def test_a_busy_database_shows_a_spinner_not_a_frozen_screen(settings, make_console, db):
    placed = place_order(db, table="A6")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        table = app.screen.query_one(DataTable)
        await wait_until(pilot, lambda: table.row_count == 1)
        blocker = open_connection(settings.db_path)
        blocker.execute("BEGIN IMMEDIATE")  # e.g. a long write by another process
        try:
            await pilot.press("a")  # the write waits on the database thread, not on the screen
            await wait_until(pilot, lambda: "database busy" in app.sub_title, timeout=3)
            await pilot.press("s")  # the screen still takes keys meanwhile
            assert app.screen.board.status == "submitted"  # type: ignore[attr-defined]
            assert order_view(db, placed["id"])["status"] == "submitted"
        finally:
            blocker.execute("COMMIT")
            blocker.close()
        await wait_until(pilot, lambda: "submitted → accepted" in message(app))
        await wait_until(pilot, lambda: "database busy" not in app.sub_title)
    assert order_view(db, placed["id"])["status"] == "accepted"
