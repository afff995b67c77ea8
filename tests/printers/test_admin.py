"""`tablebox printers` and the store's printer functions (appliance.db.printing): what each printer said last,
its queue; test pages, reprints and stickers queued."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import pytest

from appliance.cli import main
from appliance.db.connection import open_connection
from appliance.db.printing import printer_rows, queue_reprint, queue_stickers, queue_test_page, table_stickers
from appliance.db.store_settings import load_store_settings
from appliance.domain.errors import DomainError
from appliance.domain.printing import PrinterStatus, WifiInfo
from appliance.store import read_secret
from printers.virtual import PrinterState, VirtualPrinter
from printers.worker import PrintWorker
from tests.printers.test_worker import TICKET_END, place, tickets


def test_listing_shows_status_queue_and_staleness(settings, capsys):
    conn = open_connection(settings.db_path)
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    with conn:
        conn.execute(
            "INSERT INTO printer_status (name, status, detail, since, checked_at) VALUES ('kitchen', 'paper_out', NULL, ?, ?)",
            ("2026-11-21T11:58:00.000000Z", "2026-11-21T11:59:30.000000Z"),
        )
        queue_test_page(conn, "kitchen")
        conn.execute("UPDATE print_jobs SET last_error = 'paper out'")
    listing = {p.name: p for p in printer_rows(conn, now)}
    assert (listing["kitchen"].reason, listing["kitchen"].queue) == ("paper out", 1)
    assert listing["kitchen"].status is PrinterStatus.PAPER_OUT and listing["kitchen"].stale is False
    assert listing["kitchen"].waiting_because == "paper out"
    assert listing["bar"].reason == "not checked: is the print worker running?" and listing["bar"].status is None
    later = {p.name: p for p in printer_rows(conn, now + timedelta(minutes=5))}
    assert later["kitchen"].stale is True
    conn.close()
    assert main(["printers", "--data-dir", str(settings.data_dir)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("kitchen") and "queue 1" in out[0] and "virtual://kitchen" in out[0]


def test_test_and_reprint_commands(settings, capsys):
    assert main(["printers", "--data-dir", str(settings.data_dir), "test", "bar"]) == 0
    assert "test page queued for bar" in capsys.readouterr().out
    assert main(["printers", "test", "nowhere", "--data-dir", str(settings.data_dir)]) == 2
    assert "no printer called 'nowhere'" in capsys.readouterr().err
    assert main(["printers", "--data-dir", str(settings.data_dir), "reprint", "999"]) == 2
    conn = open_connection(settings.db_path)
    assert conn.execute("SELECT kind, printer FROM print_jobs").fetchall() == [("test", "bar")]
    with pytest.raises(DomainError):
        queue_reprint(conn, 12345)
    conn.close()


def test_adding_changing_and_removing_printers(settings, capsys):
    d = ["--data-dir", str(settings.data_dir)]
    assert (
        main(
            [
                "printers",
                "add",
                "pass",
                "tcp://192.168.1.60:9100",
                "--stations",
                "kitchen,bar",
                "--paper",
                "58",
                "--mode",
                "raster",
                "--fallback",
                "kitchen",
                *d,
            ]
        )
        == 0
    )
    assert "restart the print worker" in capsys.readouterr().out
    conn = open_connection(settings.db_path)
    row = conn.execute(
        "SELECT uri, paper_mm, text_mode, stations, fallback FROM printers WHERE name = 'pass'"
    ).fetchone()
    assert row == ("tcp://192.168.1.60:9100", 58, "raster", '["kitchen", "bar"]', "kitchen")
    for bad, message in [
        (["x", "lpt://1"], "lpt://1: unknown"),  # the address checks (issue 17, C) word the rest
        (["x", "tcp://h", "--stations", "grill"], "no station grill"),
        (["x", "tcp://h", "--fallback", "x"], "fallback must be another"),
    ]:
        assert main(["printers", "add", *bad, *d]) == 2
        assert message in capsys.readouterr().err
    with conn:
        conn.execute(
            "INSERT INTO print_jobs (station, kind, printer, created_at) VALUES ('kitchen', 'ticket', 'pass', 'now')"
        )
    assert main(["printers", "remove", "pass", *d]) == 0
    assert conn.execute("SELECT printer FROM print_jobs").fetchall() == [(None,)]  # back to its station's queue
    conn.close()


def test_stickers_are_queued_one_job_per_table_with_the_tables_url(settings):
    conn = open_connection(settings.db_path)
    stickers = table_stickers(conn, read_secret(settings.secret_path), "http://box.test:8080/", ["T2", "A1"])
    assert [(s.table_name, s.url.startswith("http://box.test:8080/t/")) for s in stickers] == [
        ("T2", True),
        ("A1", True),
    ]
    with pytest.raises(DomainError) as refused:
        queue_stickers(conn, "nowhere", stickers)
    assert refused.value.code == "unknown_printer"
    with pytest.raises(DomainError) as refused:
        queue_stickers(conn, "bar", stickers, WifiInfo("Shop", "short", "WPA"))
    assert refused.value.code == "invalid_wifi" and "8 to 63" in refused.value.message
    with conn:
        jobs = queue_stickers(conn, "bar", stickers, WifiInfo("Shop", "password1", "WPA"))
    queued = conn.execute("SELECT id, kind, printer, payload FROM print_jobs ORDER BY id").fetchall()
    assert [(i, k, p, json.loads(payload)["table_name"]) for i, k, p, payload in queued] == [
        (jobs[0], "sticker", "bar", "T2"),
        (jobs[1], "sticker", "bar", "A1"),
    ]
    assert json.loads(queued[0][3]) == {
        "store_name": stickers[0].store_name,
        "table_name": "T2",
        "area": stickers[0].area,
        "url": stickers[0].url,
        "wifi": ["Shop", "password1", "WPA"],
    }
    conn.close()


def printer_lines(out: str) -> list[str]:
    """The printers' lines of `tablebox printers` (the worker's log lines may share the captured output)."""
    return [line for line in out.splitlines() if line.startswith(("kitchen ", "bar "))]


def test_a_station_falls_back_while_its_printer_is_down_and_the_listing_says_so(settings, capsys):
    """The kitchen's printer has its cover open: after its fallback delay the kitchen's tickets print on the bar's
    printer, `tablebox printers` says where they go and since when (store time), new tickets follow them there,
    and when the printer is closed again the next ticket is its own."""
    kitchen, bar = VirtualPrinter("kitchen").start(), VirtualPrinter("bar").start()
    conn = open_connection(settings.db_path)
    try:
        with conn:
            for printer in (kitchen, bar):
                conn.execute("UPDATE printers SET uri = ? WHERE name = ?", (printer.uri, printer.name))
            conn.execute("UPDATE printers SET fallback = 'bar' WHERE name = 'kitchen'")
        kitchen.state = PrinterState.COVER_OPEN
        first = place(conn)[0]
        listing: list[str] = []
        with PrintWorker(
            settings.db_path,
            poll_seconds=0.01,
            fault_retry_seconds=0.05,
            fallback_after_seconds=0.2,
            idle_status_seconds=0.05,
        ):
            assert bar.wait_for(lambda b: TICKET_END in b, timeout=10)
            since = conn.execute(
                "SELECT fallback_to, fallback_since FROM printer_status WHERE name = 'kitchen'"
            ).fetchone()
            assert since[0] == "bar" and since[1] is not None
            local = datetime.fromisoformat(since[1].replace("Z", "+00:00")).astimezone(load_store_settings(conn).tz)
            capsys.readouterr()
            assert main(["printers", "--data-dir", str(settings.data_dir)]) == 0
            listing = printer_lines(capsys.readouterr().out)
            second = place(conn, table="A2")[0]  # still down: straight on to the bar's printer
            assert bar.wait_for(lambda b: b.count(TICKET_END) == 2, timeout=10)
            assert conn.execute("SELECT fallback_since FROM printer_status WHERE name = 'kitchen'").fetchone() == (
                since[1],
            )  # the same hand-over, still going on
            kitchen.state = PrinterState.READY  # the cover closed
            stop = threading.Event()
            for _ in range(500):
                stop.wait(0.02)
                row = conn.execute("SELECT status, fallback_to FROM printer_status WHERE name = 'kitchen'").fetchone()
                if row == ("ready", None):
                    break
            third = place(conn, table="T2")[0]
            assert kitchen.wait_for(lambda b: TICKET_END in b, timeout=10)
        capsys.readouterr()
        assert main(["printers", "--data-dir", str(settings.data_dir)]) == 0
        after = printer_lines(capsys.readouterr().out)
    finally:
        conn.close()
        kitchen.stop()
        bar.stop()
    hhmm = local.strftime("%H:%M")
    assert listing[0].startswith("kitchen    cover open") and "queue 0" in listing[0]
    assert listing[0].endswith(f", tickets for kitchen going to bar since {hhmm}")
    assert "also printing the tickets of kitchen (printer kitchen)" in listing[1]
    on_bar = tickets(bar.received)
    assert [next(r for r in t if "#" in r).split("#")[1] for t in on_bar] == [
        str(first["ticket_no"]),
        str(second["ticket_no"]),
    ]
    assert all(any("代打 for printer kitchen" in r for r in t) for t in on_bar)
    (own,) = tickets(kitchen.received)
    assert any(f"#{third['ticket_no']}" in r for r in own) and not any("代打" in r for r in own)
    assert "going to" not in after[0] and "also printing" not in after[1]


def test_a_wait_the_status_already_explains_is_said_once(settings):
    from zoneinfo import ZoneInfo

    from appliance.cli.printers import listing_line

    conn = open_connection(settings.db_path)
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    with conn:
        for name, status, detail in (("kitchen", "cover_open", "the lid is up"), ("bar", "ready", None)):
            conn.execute(
                "INSERT INTO printer_status (name, status, detail, since, checked_at) VALUES (?, ?, ?, ?, ?)",
                (name, status, detail, "2026-11-21T11:58:00.000000Z", "2026-11-21T11:59:30.000000Z"),
            )
        queue_test_page(conn, "kitchen")
        queue_test_page(conn, "bar")
        conn.execute("UPDATE print_jobs SET last_error = 'cover open: the lid is up' WHERE printer = 'kitchen'")
        conn.execute("UPDATE print_jobs SET last_error = 'paper out' WHERE printer = 'bar'")  # said before it was fixed
    listing = printer_rows(conn, now)
    conn.close()
    kitchen, bar = (listing_line(p, listing, ZoneInfo("Asia/Shanghai"), now) for p in listing)
    assert kitchen.count("the lid is up") == 1 and "waiting:" not in kitchen, kitchen
    assert "cover open (the lid is up)" in kitchen
    assert bar.startswith("bar") and ", waiting: paper out" in bar, bar
