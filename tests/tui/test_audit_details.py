"""The staff audit trail says what an action did as the store saw it: an order's step from which state to which,
read in the step's own transaction (tui/database.py's act with appliance.db.orders.Advanced)."""

from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable

from appliance.db.orders import advance_order
from tests.tui.conftest import message, place_order, wait_until
from tui.screens.orders import OrdersScreen

pytestmark = pytest.mark.anyio


def advances(db) -> list[tuple[str, str, dict]]:
    return [
        (staff, subject, json.loads(details))
        for staff, subject, details in db.execute(
            "SELECT staff_name, subject, details FROM audit_log WHERE action = 'order.advance' ORDER BY id"
        )
    ]


async def test_order_advance_entries_carry_their_from_and_to_states(settings, make_console, db):
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        placed = place_order(db, table="A5")
        await wait_until(
            pilot, lambda: isinstance(app.screen, OrdersScreen) and app.screen.query_one(DataTable).row_count == 1
        )
        await pilot.press("a")
        await wait_until(pilot, lambda: "submitted → accepted" in message(app))
        # The kitchen moves it on elsewhere (another console): the next press takes the step from where it is
        # in the store, and the audit line says so, whatever this board still showed.
        advance_order(db, placed["id"])
        await pilot.press("a")
        await wait_until(pilot, lambda: "→ ready" in message(app))
    subject = f"order {placed['id']}"
    assert advances(db) == [
        ("店长 Manager", subject, {"from": "submitted", "to": "accepted"}),
        ("店长 Manager", subject, {"from": "preparing", "to": "ready"}),
    ]
