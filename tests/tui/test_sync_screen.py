"""The sync screen: each target's state, backlog, parked rows and last success; retry now."""

from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable, Static

from tests.sync.test_status import outbox_row
from tests.tui.conftest import WAITER_PIN, message, wait_until
from tui.screens.sync import NO_TARGETS, SyncScreen

pytestmark = pytest.mark.anyio


def cells(app) -> list[list[str]]:
    table = app.screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def detail(app) -> str:
    return str(app.screen.query_one("#detail", Static).render())


@pytest.fixture
def erp(db):
    """An ERP target that delivered two rows, has one failing (with its error) and one fresh, and one parked."""
    with db:
        db.execute(
            "INSERT INTO sync_targets (name, kind, inbox_source) VALUES ('erp', 'erp', NULL), ('relay', 'relay', 'relay:relay@')"
        )
        outbox_row(db, "erp", "a", delivered="2026-11-21T11:00:01.000000Z", attempts=1)
        outbox_row(db, "erp", "b", delivered="2026-11-21T12:05:00.000000Z", attempts=1)  # 20:05 local
        outbox_row(
            db,
            "erp",
            "c",
            created="2026-11-21T12:10:00.000000Z",
            attempts=3,
            error="HTTP 502 bad gateway",
            next_attempt="2026-11-21T12:40:00.000000Z",
        )
        outbox_row(db, "erp", "d", created="2026-11-21T12:20:00.000000Z")
        outbox_row(
            db,
            "erp",
            "e",
            created="2026-11-21T11:30:00.000000Z",
            attempts=8,
            parked="2026-11-21T12:15:00.000000Z",
            error="HTTP 422 unknown product har_gow",
        )
    return db


async def test_a_failing_target_shows_why_and_retry_puts_its_rows_back(settings, make_console, erp):
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("5")
        await wait_until(
            pilot, lambda: isinstance(app.screen, SyncScreen) and app.screen.query_one(DataTable).row_count == 2
        )
        assert cells(app) == [
            ["erp (erp)", "✗ failing: needs a person", "2", "1", "20:05"],
            ["relay (relay)", "– idle", "0", "0", "never"],
        ]
        assert "set aside since 20:15 because: HTTP 422 unknown product har_gow" in detail(app)
        assert "2 waiting (oldest from 20:10)" in detail(app)
        await pilot.press("r")
        await wait_until(pilot, lambda: bool(app.screen.query("#question")))
        assert "HTTP 422 unknown product" in str(app.screen.query_one("#question", Static).render())
        await pilot.press("n")  # not yet: nothing changes
        await wait_until(pilot, lambda: message(app) == "erp: parked rows left aside")
        assert erp.execute("SELECT parked_at FROM outbox WHERE idempotency_key = 'e'").fetchone()[0] is not None
        await pilot.press("r")
        await wait_until(pilot, lambda: bool(app.screen.query("#question")))
        await pilot.press("y")
        await wait_until(pilot, lambda: message(app) == "✓ erp: sending again at the next pass (1 parked back in line)")
        await wait_until(pilot, lambda: cells(app)[0][:4] == ["erp (erp)", "↻ retrying since 19:30", "3", "0"])
        assert "last error: HTTP 422 unknown product har_gow" in detail(app)  # the oldest failing row's
        await pilot.press("down", "r")  # the relay has nothing to send
        await wait_until(pilot, lambda: message(app) == "nothing waiting for relay")
    waiting = erp.execute(
        "SELECT idempotency_key, next_attempt_at, parked_at FROM outbox WHERE target = 'erp'"
        " AND delivered_at IS NULL ORDER BY id"
    ).fetchall()
    assert waiting == [("c", None, None), ("d", None, None), ("e", None, None)]
    ((action, subject, details),) = erp.execute("SELECT action, subject, details FROM audit_log").fetchall()
    assert (action, subject, json.loads(details)) == ("sync.retry", "target erp", {"parked": 1, "waiting": 2})


async def test_retrying_and_ok_targets_and_a_waiter_may_retry(settings, make_console, db):
    with db:
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'erp')")
        outbox_row(db, "erp", "a", delivered="2026-11-21T12:00:00.000000Z", attempts=1)
        outbox_row(db, "erp", "b", created="2026-11-21T12:20:00.000000Z", next_attempt="2026-11-21T12:35:00.000000Z")
    app = make_console(pin=WAITER_PIN)
    async with app.run_test(size=(100, 30)) as pilot:
        await app.switch_mode("sync")
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        assert cells(app) == [["erp (erp)", "✓ ok", "1", "0", "20:00"]]
        with db:  # the sync worker fails a delivery: the screen follows without a key
            db.execute("UPDATE outbox SET attempts = 1, last_error = 'connection refused' WHERE idempotency_key = 'b'")
        await wait_until(pilot, lambda: cells(app)[0][1] == "↻ retrying since 20:20")
        await pilot.press("r")  # nothing parked: no question
        await wait_until(pilot, lambda: message(app) == "✓ erp: sending again at the next pass")
    assert db.execute("SELECT next_attempt_at FROM outbox WHERE idempotency_key = 'b'").fetchone() == (None,)


async def test_no_targets_says_what_to_expect(settings, make_console):
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("sync")
        await wait_until(pilot, lambda: detail(app) == NO_TARGETS)
        await pilot.press("r")
        await wait_until(pilot, lambda: message(app) == NO_TARGETS)
