"""The console's printer screen shows what the print worker said about a printer that cannot print: the address and
the likely cause, as `tablebox printers` and `tablebox doctor` do (issue 17, item 9)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from textual.widgets import DataTable, Static

from tests.tui.conftest import NOW, wait_until
from tui.screens.printers import PrintersScreen

pytestmark = pytest.mark.anyio


def stamp(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def test_the_cause_and_address_are_shown_with_no_job_waiting(settings, make_console, db):
    detail = "usb://04b8:0e15: no permission to open USB device 04b8:0e15: the print service's user must be in group lp"
    with db:
        db.execute(
            "INSERT INTO printer_status (name, status, detail, since, checked_at) VALUES ('kitchen', 'no_access', ?, ?, ?)",
            (detail, stamp(3), stamp(0.2)),
        )
    app = make_console()
    async with app.run_test(size=(120, 30)) as pilot:
        await pilot.press("4")
        await wait_until(
            pilot, lambda: isinstance(app.screen, PrintersScreen) and app.screen.query_one(DataTable).row_count == 2
        )
        shown = str(app.screen.query_one("#detail", Static).render())
        assert "✗ set-up fault: the box cannot open it since" in shown
        assert detail in " ".join(shown.split())  # the pane wraps long lines
