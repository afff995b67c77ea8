"""The sync screen: each target's state, backlog, parked rows and last success; retry now; the last `tablebox sync
check` of each target, and `c` to have syncd check the target's server now."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from textual.widgets import DataTable, Static

from appliance.db.connection import open_connection
from appliance.db.sync_checks import CheckLine, CheckOutcome, last_check, save_check
from sync.adapters.base import Check, CheckState
from sync.check import answer_check_request
from sync.config import Target
from tests.sync.test_status import outbox_row
from tests.sync.test_sync_check import ListAdapter
from tests.tui.conftest import NOW, WAITER_PIN, message, wait_until
from tui.screens.sync import NO_TARGETS, SyncScreen

pytestmark = pytest.mark.anyio


def cells(app) -> list[list[str]]:
    table = app.screen.query_one(DataTable)
    return [[str(c) for c in table.get_row_at(i)] for i in range(table.row_count)]


def detail(app) -> str:
    return str(app.screen.query_one("#detail", Static).render())


def check_text(app) -> str:
    return str(app.screen.query_one("#check", Static).render())


@contextmanager
def syncd_stand_in(settings, adapter: Any, name: str = "erp") -> Iterator[None]:
    """What tablebox-syncd's target loop does for the console: answer a check request (answer_check_request on each
    pass), here with the test's adapter and a clock one minute after the console's NOW."""
    stop = threading.Event()
    target = Target(name, "rest", True, 10, 0, 300.0, {"kind": "rest"})

    def run() -> None:
        conn = open_connection(settings.db_path)
        running = None
        try:
            while not stop.is_set():
                running = answer_check_request(
                    conn,
                    target,
                    settings.db_path,
                    None,
                    running,
                    adapter_factory=lambda n, c: adapter,
                    clock=lambda: NOW + timedelta(minutes=1),
                )
                stop.wait(0.05)
            if running is not None:
                running.join(10)
        finally:
            conn.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(10)


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
            ["erp (erp)", "✗ failing: needs a person", "2", "1", "20:05", "–"],
            ["relay (rel…", "– idle", "0", "0", "never", "–"],  # at 80 columns the name gives way, not the check
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
        assert cells(app) == [["erp (erp)", "✓ ok", "1", "0", "20:00", "–"]]
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


async def test_c_asks_syncd_to_check_and_shows_each_line_with_what_to_do(settings, make_console, db):
    with db:
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'rest')")
    adapter = ListAdapter(
        "erp",
        [
            Check("reachable", CheckState.OK, "ERP 4.2 at https://erp.example.com"),
            Check(
                "item codes",
                CheckState.FAIL,
                "2 of 3 dishes' codes not found: HG-01, XLB-01",
                "Add the items in the ERP, or correct the dishes' ERP codes (tablebox menu)",
            ),
        ],
    )
    app = make_console(pin=WAITER_PIN)  # a waiter may check: it changes nothing
    async with app.run_test(size=(100, 30)) as pilot:
        await app.switch_mode("sync")
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        assert cells(app) == [["erp (rest)", "– idle", "0", "0", "never", "–"]]
        assert check_text(app) == "Never checked 未检查: press c to check its server now"
        await pilot.press("c")
        await wait_until(pilot, lambda: "erp: waiting for tablebox-syncd to begin" in check_text(app))
        assert cells(app)[0][5] == "… checking"
        with syncd_stand_in(settings, adapter):
            await wait_until(pilot, lambda: message(app).startswith("✗ erp"), timeout=10)
        assert message(app) == "✗ erp: ✗ 1 failed, ✓ 1 ok: what to do is under each ✗ below"
        assert check_text(app).splitlines() == [
            "Last check 检查 20:31 (console): ✗ 1 failed, ✓ 1 ok",
            "✓ reachable: ERP 4.2 at https://erp.example.com",
            "✗ item codes: 2 of 3 dishes' codes not found: HG-01, XLB-01",
            "  → Add the items in the ERP, or correct the dishes' ERP codes (tablebox menu)",
        ]
        assert cells(app)[0][5] == "✗ 20:31"
    kept = last_check(db, "erp")
    assert kept is not None and not kept.pending and kept.ran_by == "console"
    ((action, subject),) = db.execute("SELECT action, subject FROM audit_log").fetchall()
    assert (action, subject) == ("sync.check", "target erp")


async def test_a_check_run_at_the_shell_shows_and_a_missing_syncd_is_named(settings, make_console, db, monkeypatch):
    with db:
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'rest')")
        save_check(
            db,
            "erp",
            [CheckLine("reachable", CheckOutcome.OK, "up"), CheckLine("tax", CheckOutcome.WARN, "not checked", "ask")],
            ran_at=NOW - timedelta(minutes=5),
            ran_by="cli",
        )
    monkeypatch.setattr(SyncScreen, "PICKUP_SECONDS", 0.3)
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await app.switch_mode("sync")
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        assert cells(app)[0][5] == "! 20:25"
        assert check_text(app).splitlines() == [
            "Last check 检查 20:25 (tablebox sync check): ! 1 to look at, ✓ 1 ok",
            "✓ reachable: up",
            "! tax: not checked",
            "  → ask",
        ]
        await pilot.press("c")  # nobody answers: no syncd
        await wait_until(pilot, lambda: "did not begin" in message(app))
        assert message(app) == (
            "✗ erp: tablebox-syncd did not begin the check in 0.3 s: is it running? (at the shell: systemctl status "
            "tablebox-syncd; or run tablebox sync check erp)"
        )
        # the pane drops the progress line once the screen has reloaded, a moment after the message
        await wait_until(pilot, lambda: "waits for tablebox-syncd" in check_text(app))
        assert check_text(app).splitlines()[:2] == [
            "A check asked for at 20:30 waits for tablebox-syncd",
            "Last check 检查 20:25 (tablebox sync check): ! 1 to look at, ✓ 1 ok",  # the last result stays shown
        ]
    kept = last_check(db, "erp")
    assert kept is not None and kept.pending  # syncd takes it up when it starts
