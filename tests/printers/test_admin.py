"""`tablebox printers` and the store's printer functions (appliance.db.printing): what each printer said last,
its queue; test pages, reprints and stickers queued."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from appliance.cli import main
from appliance.db.connection import open_connection
from appliance.db.printing import printer_rows, queue_reprint, queue_stickers, queue_test_page, table_stickers
from appliance.domain.errors import DomainError
from appliance.domain.printing import PrinterStatus, WifiInfo
from appliance.store import read_secret


def test_listing_shows_status_queue_and_staleness(settings, capsys):
    conn = open_connection(settings.db_path)
    now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
    with conn:
        conn.execute(
            "INSERT INTO printer_status VALUES ('kitchen', 'paper_out', NULL, ?, ?)",
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
        (["x", "lpt://1"], "unknown printer address"),
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
