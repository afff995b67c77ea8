"""The printers screen, driven with the pilot against a real store file: status in words, test pages, reprints,
QR stickers and re-keying a table."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from textual.widgets import DataTable, Static

from appliance.db.store_settings import load_store_settings
from appliance.db.tables import list_tables, resolve_token, tables_by_id
from appliance.domain.errors import DomainError
from appliance.store import read_secret
from printers.virtual import PrinterState, VirtualPrinter
from printers.worker import PrintWorker
from tests.conftest import token_for
from tests.printers.test_worker import TICKET_END, place
from tests.tui.conftest import NOW, WAITER_PIN, message, place_order, wait_until
from tui.screens.printers import PrintersScreen

pytestmark = pytest.mark.anyio


def stamp(minutes_ago: float) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def cells(app) -> dict[str, list[str]]:
    table = app.screen.query_one(DataTable)
    return {str(row[0]): [str(c) for c in row] for row in (table.get_row_at(i) for i in range(table.row_count))}


def detail(app) -> str:
    return str(app.screen.query_one("#detail", Static).render())


async def open_printers(app, pilot) -> None:
    await pilot.press("4")
    await wait_until(
        pilot, lambda: isinstance(app.screen, PrintersScreen) and app.screen.query_one(DataTable).row_count == 2
    )


async def test_status_queue_and_reasons_are_shown_in_words(settings, make_console, db):
    with db:
        db.execute(
            "INSERT INTO printer_status (name, status, detail, since, checked_at) VALUES ('kitchen', 'paper_out', NULL, ?, ?)",
            (stamp(7), stamp(0.5)),
        )
        db.execute(
            "INSERT INTO print_jobs (station, kind, printer, last_error, created_at)"
            " VALUES ('', 'test', 'kitchen', 'paper out', ?)",
            (stamp(6),),
        )
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_printers(app, pilot)
        rows = cells(app)
        assert rows["kitchen"] == ["kitchen", "kitchen", "1 waiting !", "✗ paper out"]
        assert rows["bar"][3] == "? not checked: is the print worker running?"  # no status row: printd not seen
        assert "since 20:23" in detail(app) and "waiting because: paper out" in detail(app)
        with db:  # the worker reports the printer refilled: the screen follows without a key
            db.execute("UPDATE printer_status SET status = 'ready', since = ? WHERE name = 'kitchen'", (stamp(0),))
        await wait_until(pilot, lambda: cells(app)["kitchen"][3] == "✓ ready")
        place_order(db, table="A2", items=(("mineral_water", 1),))  # a bar ticket no printer has taken yet
        await wait_until(pilot, lambda: "not yet taken by any printer: bar 1" in detail(app))


async def test_test_page_and_reprint_queue_the_right_jobs(settings, make_console, db):
    order = place_order(db, table="A3", items=(("har_gow", 1), ("mineral_water", 2)), minutes_ago=30)
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_printers(app, pilot)
        await pilot.press("down", "T")  # the second printer: bar
        await wait_until(pilot, lambda: message(app) == "✓ test page queued for bar")
        assert db.execute("SELECT kind, printer, station FROM print_jobs WHERE kind = 'test'").fetchall() == [
            ("test", "bar", "")
        ]
        await pilot.press("r")
        await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
        await pilot.press(*"999", "enter")
        await wait_until(pilot, lambda: "refused" in message(app))
        assert message(app) == "✗ refused: there is no ticket #999 on 2026-11-21"
        await pilot.press("r")
        await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
        await pilot.press(*str(order["ticket_no"]), "enter")
        await wait_until(pilot, lambda: message(app).startswith(f"✓ ticket #{order['ticket_no']} reprint"))
        assert message(app).endswith("queued for bar, kitchen")
    reprints = db.execute(
        "SELECT order_id, station, kind, ref FROM print_jobs WHERE ref LIKE 'reprint-%' ORDER BY station"
    ).fetchall()
    assert reprints == [(order["id"], "bar", "ticket", "reprint-1"), (order["id"], "kitchen", "ticket", "reprint-1")]
    trail = db.execute("SELECT action, subject FROM audit_log ORDER BY id").fetchall()
    assert trail == [("printer.test", "printer bar"), ("order.reprinted", f"ticket {order['ticket_no']} of 2026-11-21")]


async def test_stickers_for_one_table_or_all_on_a_chosen_printer(settings, make_console, db):
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_printers(app, pilot)
        await pilot.press("q")
        await wait_until(pilot, lambda: bool(app.screen.query("#choices")))
        await pilot.press("down", "down", "enter")  # every table, A1, [A2]
        await wait_until(pilot, lambda: "which printer" in str(app.screen.query_one(".title", Static).render()))
        await pilot.press("enter")  # the highlighted printer (kitchen) comes first
        await wait_until(pilot, lambda: message(app) == "✓ 1 QR sticker (A2) queued for kitchen")
        await pilot.press("q")
        await wait_until(pilot, lambda: bool(app.screen.query("#choices")))
        await pilot.press("enter")  # every table
        await wait_until(pilot, lambda: "which printer" in str(app.screen.query_one(".title", Static).render()))
        await pilot.press("down", "enter")  # bar
        await wait_until(pilot, lambda: message(app) == "✓ 14 QR stickers (every table) queued for bar")
    jobs = [
        (printer, json.loads(payload))
        for printer, payload in db.execute("SELECT printer, payload FROM print_jobs WHERE kind = 'sticker' ORDER BY id")
    ]
    assert [(p, j["table_name"]) for p, j in jobs[:2]] == [("kitchen", "A2"), ("bar", "A1")]
    assert [j["table_name"] for _, j in jobs[1:]] == [t.name for t in list_tables(db)]
    assert jobs[0][1]["url"] == "http://box.test:8080/t/" + token_for(settings, "A2")  # the box's public URL


async def test_rekey_asks_first_then_voids_the_old_sticker_and_offers_a_new_one(settings, make_console, db):
    old_token = token_for(settings, "A1")
    secret, store_id = read_secret(settings.secret_path), load_store_settings(db).store_id
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_printers(app, pilot)
        await pilot.press("K")
        await wait_until(pilot, lambda: bool(app.screen.query("#choices")))
        await pilot.press("enter")  # A1
        await wait_until(pilot, lambda: bool(app.screen.query("#question")))
        assert "stops working" in str(app.screen.query_one("#question", Static).render())
        await pilot.press("n")
        await wait_until(pilot, lambda: message(app) == "table A1 not re-keyed")
        assert resolve_token(tables_by_id(db).get, secret, store_id, old_token).name == "A1"
        await pilot.press("K")
        await wait_until(pilot, lambda: bool(app.screen.query("#choices")))
        await pilot.press("enter")
        await wait_until(pilot, lambda: bool(app.screen.query("#question")))
        await pilot.press("y")
        await wait_until(pilot, lambda: "new sticker for A1" in str(app.screen.query_one(".title", Static).render()))
        assert message(app) == "✓ table A1 re-keyed: its old sticker no longer works"
        await pilot.press("enter")  # print it on kitchen
        await wait_until(pilot, lambda: message(app) == "✓ 1 QR sticker (A1) queued for kitchen")
    assert db.execute("SELECT token_version FROM tables WHERE name = 'A1'").fetchone()[0] == 2
    with pytest.raises(DomainError) as refused:
        resolve_token(tables_by_id(db).get, secret, store_id, old_token)
    assert refused.value.code == "table_rekeyed"
    new_url = json.loads(db.execute("SELECT payload FROM print_jobs WHERE kind = 'sticker'").fetchone()[0])["url"]
    assert resolve_token(tables_by_id(db).get, secret, store_id, new_url.rsplit("/", 1)[1]).name == "A1"
    trail = db.execute("SELECT staff_name, action, subject FROM audit_log ORDER BY id").fetchall()
    assert trail == [
        ("店长 Manager", "table.rekeyed", "table A1"),
        ("店长 Manager", "printer.stickers", "printer kitchen"),
    ]


async def test_a_waiter_prints_but_cannot_rekey(settings, make_console, db):
    app = make_console(pin=WAITER_PIN)
    async with app.run_test(size=(80, 24)) as pilot:
        await open_printers(app, pilot)
        await pilot.press("K")
        await wait_until(pilot, lambda: "refused" in message(app))
        assert message(app) == "✗ refused: a waiter cannot re-key tables: ask a manager"
        assert not app.screen.query("#choices")  # not even asked which table
        await pilot.press("T")
        await wait_until(pilot, lambda: message(app) == "✓ test page queued for kitchen")
    assert db.execute("SELECT max(token_version) FROM tables").fetchone()[0] == 1
    assert db.execute("SELECT action FROM audit_log").fetchall() == [("printer.test",)]


async def test_a_station_falling_back_is_shown_and_its_return(settings, make_console, db):
    """The real print worker hands the kitchen's tickets to the bar's printer while the kitchen's cover is open: the
    queue column says where they go, the detail says since when; closed again, the kitchen's row is its own."""
    kitchen, bar = VirtualPrinter("kitchen").start(), VirtualPrinter("bar").start()
    try:
        with db:
            for printer in (kitchen, bar):
                db.execute("UPDATE printers SET uri = ? WHERE name = ?", (printer.uri, printer.name))
            db.execute("UPDATE printers SET fallback = 'bar' WHERE name = 'kitchen'")
        kitchen.state = PrinterState.COVER_OPEN
        place(db)
        app = make_console(clock=lambda: datetime.now(UTC))
        with PrintWorker(
            settings.db_path,
            poll_seconds=0.01,
            fault_retry_seconds=0.05,
            fallback_after_seconds=0.2,
            idle_status_seconds=0.05,
        ):
            assert bar.wait_for(lambda b: TICKET_END in b, timeout=10)
            (since,) = db.execute("SELECT fallback_since FROM printer_status WHERE name = 'kitchen'").fetchone()
            hhmm = datetime.fromisoformat(since.replace("Z", "+00:00")).astimezone(load_store_settings(db).tz)
            async with app.run_test(size=(100, 30)) as pilot:
                await open_printers(app, pilot)
                await wait_until(pilot, lambda: cells(app)["kitchen"][2] == "0 → bar")
                assert cells(app)["kitchen"][3] == "✗ cover open"
                assert f"→ tickets for kitchen going to bar since {hhmm:%H:%M}" in detail(app)
                await pilot.press("down")  # the bar's printer
                await wait_until(pilot, lambda: "also printing the tickets of kitchen" in detail(app))
                assert "(printer kitchen cannot print)" in detail(app)
                kitchen.state = PrinterState.READY  # the cover closed: the kitchen prints its own again
                await wait_until(pilot, lambda: cells(app)["kitchen"][2:] == ["0", "✓ ready"])
                assert "also printing" not in detail(app)
                await pilot.press("up")
                await wait_until(pilot, lambda: detail(app).startswith("kitchen"))
                assert "going to" not in detail(app)
    finally:
        kitchen.stop()
        bar.stop()
