"""What staff do with printers (from the console or the command line): see them, test them, reprint."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Sequence

import apsw

from appliance.db.connection import dumps, rows, scalar, utc_now
from appliance.domain.errors import DomainError
from printers.status import REASONS, PrinterStatus

if TYPE_CHECKING:
    from printers.stickers import StickerInfo, WifiInfo

STALE_SECONDS = 120  # the worker writes a heartbeat a minute: older means printd is not running


def printer_rows(conn: apsw.Connection, now: datetime | None = None) -> list[dict[str, Any]]:
    now = now or datetime.now(timezone.utc)
    out = []
    for row in rows(conn,
                    "SELECT p.name, p.uri, p.paper_mm, p.text_mode, p.stations, p.fallback, p.enabled,"
                    " s.status, s.detail, s.since, s.checked_at,"
                    " (SELECT count(*) FROM print_jobs j WHERE j.printer = p.name AND j.state IN ('pending', 'sending'))"
                    "   AS queue,"
                    " (SELECT last_error FROM print_jobs j WHERE j.printer = p.name AND j.state IN ('pending', 'sending')"
                    "   AND last_error IS NOT NULL ORDER BY id LIMIT 1) AS waiting_because"
                    " FROM printers p LEFT JOIN printer_status s ON s.name = p.name ORDER BY p.id"):
        row["stations"] = json.loads(row["stations"])
        checked = row["checked_at"]
        age = (now - datetime.fromisoformat(checked.replace("Z", "+00:00"))).total_seconds() if checked else None
        row["stale"] = age is None or age > STALE_SECONDS
        status = PrinterStatus(row["status"]) if row["status"] else None
        row["reason"] = ("not checked: is the print worker running?" if row["stale"] or status is None
                         else REASONS[status])
        out.append(row)
    return out


def _require_printer(conn: apsw.Connection, printer: str) -> None:
    if scalar(conn, "SELECT 1 FROM printers WHERE name = ?", (printer,)) is None:
        raise DomainError("unknown_printer", f"no printer called {printer!r}", printer=printer)


def queue_test_page(conn: apsw.Connection, printer: str) -> int:
    _require_printer(conn, printer)
    return scalar(conn, "INSERT INTO print_jobs (station, kind, printer, created_at) VALUES ('', 'test', ?, ?)"
                        " RETURNING id", (printer, utc_now()))


def queue_reprint(conn: apsw.Connection, order_id: int, station: str | None = None) -> list[int]:
    """A fresh copy of an order's tickets (one per station, or one station), headed REPRINT."""
    stations = [s for (s,) in conn.execute(
        "SELECT DISTINCT station FROM order_lines WHERE order_id = ? AND status = 'active' ORDER BY station",
        (order_id,))]
    if not stations:
        raise DomainError("unknown_order", "no such order, or nothing left on it to print", order_id=order_id)
    if station is not None:
        if station not in stations:
            raise DomainError("unknown_station", f"order {order_id} has nothing for {station!r}", station=station)
        stations = [station]
    jobs = []
    for st in stations:
        n = scalar(conn, "SELECT count(*) FROM print_jobs WHERE order_id = ? AND station = ? AND ref LIKE 'reprint-%'",
                   (order_id, st)) + 1
        session = scalar(conn, "SELECT session_id FROM orders WHERE id = ?", (order_id,))
        jobs.append(scalar(conn, "INSERT INTO print_jobs (order_id, session_id, station, kind, ref, created_at)"
                                 " VALUES (?, ?, ?, 'ticket', ?, ?) RETURNING id",
                           (order_id, session, st, f"reprint-{n}", utc_now())))
    return jobs


def queue_bill(conn: apsw.Connection, table_name: str, printer: str) -> int:
    """The bill of the table's current visit, on that printer."""
    session = scalar(conn, "SELECT s.id FROM table_sessions s JOIN tables t ON t.id = s.table_id"
                           " WHERE t.name = ? AND s.status != 'closed'", (table_name,))
    if session is None:
        raise DomainError("no_open_visit", f"table {table_name} has no open visit to bill", table=table_name)
    _require_printer(conn, printer)
    return scalar(conn, "INSERT INTO print_jobs (session_id, station, kind, printer, created_at)"
                        " VALUES (?, '', 'bill', ?, ?) RETURNING id", (session, printer, utc_now()))


def queue_stickers(conn: apsw.Connection, printer: str, stickers: Sequence[StickerInfo],
                   wifi: WifiInfo | None = None) -> list[int]:
    """One sticker job per table on that printer; the print worker draws each at the printer's width."""
    _require_printer(conn, printer)
    if wifi is not None:
        from printers.stickers import wifi_payload

        try:
            wifi_payload(wifi)  # refuse now, not in the print worker later
        except ValueError as exc:
            raise DomainError("invalid_wifi", str(exc)) from None
    return [scalar(conn, "INSERT INTO print_jobs (station, kind, printer, payload, created_at)"
                         " VALUES ('', 'sticker', ?, ?, ?) RETURNING id",
                   (printer, dumps({"store_name": s.store_name, "table_name": s.table_name, "area": s.area,
                                    "url": s.url, "wifi": [wifi.ssid, wifi.password, wifi.security] if wifi else None}),
                    utc_now()))
            for s in stickers]


TEXT_MODES = ("gb18030", "codepage", "raster")


def save_printer(conn: apsw.Connection, name: str, uri: str, *, stations: list[str], paper_mm: int = 80,
                 text_mode: str = "gb18030", copies: int = 1, cutter: bool = True, buzzer: bool = False,
                 fallback: str | None = None) -> None:
    """Add a printer, or change one (same name). Every value is checked before anything is stored."""
    from printers.connection import Target

    name = name.strip()
    if not name or len(name) > 32:
        raise DomainError("invalid_printer", "a printer needs a name of 1-32 characters")
    try:
        Target.parse(uri, resolve_virtual=lambda n: "tcp://127.0.0.1:9")  # the address's shape only
    except ValueError as exc:
        raise DomainError("invalid_printer", str(exc)) from None
    if paper_mm not in (58, 80):
        raise DomainError("invalid_printer", "paper is 58 or 80 mm wide")
    if text_mode not in TEXT_MODES:
        raise DomainError("invalid_printer", f"text mode is one of {', '.join(TEXT_MODES)}")
    if not 1 <= copies <= 5:
        raise DomainError("invalid_printer", "copies: 1 to 5")
    known = {key for (key,) in conn.execute("SELECT key FROM stations")}
    unknown = [s for s in stations if s not in known]
    if unknown:
        raise DomainError("unknown_station", f"no station {', '.join(unknown)} (stations: {', '.join(sorted(known))})")
    if fallback is not None and (fallback == name or scalar(conn, "SELECT 1 FROM printers WHERE name = ?",
                                                             (fallback,)) is None):
        raise DomainError("invalid_printer", f"the fallback must be another existing printer, not {fallback!r}")
    conn.execute(
        "INSERT INTO printers (name, uri, paper_mm, text_mode, stations, copies, cutter, buzzer, fallback)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET uri = excluded.uri,"
        " paper_mm = excluded.paper_mm, text_mode = excluded.text_mode, stations = excluded.stations,"
        " copies = excluded.copies, cutter = excluded.cutter, buzzer = excluded.buzzer, fallback = excluded.fallback",
        (name, uri, paper_mm, text_mode, json.dumps(stations), copies, int(cutter), int(buzzer), fallback))


def remove_printer(conn: apsw.Connection, name: str) -> None:
    """Remove a printer; its waiting jobs go back to the queue of their station."""
    if conn.execute("DELETE FROM printers WHERE name = ? RETURNING id", (name,)).fetchone() is None:
        raise DomainError("unknown_printer", f"no printer called {name!r}", printer=name)
    conn.execute("UPDATE print_jobs SET printer = NULL WHERE printer = ? AND state = 'pending' AND station != ''",
                 (name,))
    conn.execute("UPDATE printers SET fallback = NULL WHERE fallback = ?", (name,))
