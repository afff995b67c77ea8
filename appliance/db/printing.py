"""The print queue and the printers, as the store keeps them (tables `printers`, `print_jobs`, `printer_status`).

Two kinds of caller, one owner of the SQL:
- the print worker (printers/worker.py): its printers, claiming and taking jobs, handing them over to a fallback,
  marking them printed or failed, recording what each printer said, and what a job's document needs to read;
- staff, from the console or the command line: the printers with their status and queue, test pages, reprints,
  bills and QR stickers queued, printers added and removed.

The worker turns rows into paper; nothing here opens a printer.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import apsw

from appliance.db.connection import dumps, scalar, utc_now
from appliance.db.store_settings import load_store_settings
from appliance.db.tables import list_tables, table_token, table_url, tables_by_id
from appliance.domain.errors import DomainError
from appliance.domain.menu import translate
from appliance.domain.printing import (
    FONT_COVERAGES,
    MAX_COPIES,
    NOT_CHECKED,
    PAPER_WIDTHS_MM,
    REASONS,
    STALE_SECONDS,
    TEXT_MODES,
    UNABLE_TO_PRINT,
    PrinterStatus,
    StickerInfo,
    WifiInfo,
    language_misfit,
    parse_printer_address,
    wifi_payload,
)

# -- The print worker's side ----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrinterConfig:
    """One enabled printer as the print worker drives it."""

    name: str
    uri: str
    paper_mm: int
    text_mode: str
    stations: tuple[str, ...]
    copies: int
    cutter: bool
    buzzer: bool
    fallback: str | None = None
    fallback_after_seconds: int = 60  # faulty this long: its tickets go to the fallback
    large_print: bool = False  # table number and dishes larger still (a kitchen read from a distance)
    font_coverage: str = "gb2312"  # gb18030 mode: the characters its own font has ('gb2312' or 'gb18030')


@dataclass(frozen=True, slots=True)
class PrintJob:
    """A job waiting for its printer. `state` is 'sending' when an earlier attempt may have reached the paper."""

    id: int
    order_id: int | None
    session_id: int | None
    station: str
    kind: str  # ticket / void / bill / test / sticker
    ref: str  # what within the order ('reprint-N', 'order', a voided line), '' for the ticket
    state: str
    payload: str | None  # JSON, its shape by kind (see queue_stickers, and the void and fallback writers)


@dataclass(frozen=True, slots=True)
class BillVisit:
    """What a bill needs to know of the visit besides its orders."""

    table_name: str
    paid: bool


def load_printers(conn: apsw.Connection) -> list[PrinterConfig]:
    """The enabled printers, in the order they were added."""
    return [
        PrinterConfig(
            name,
            uri,
            paper,
            mode,
            tuple(json.loads(stations)),
            copies,
            bool(cutter),
            bool(buzzer),
            fallback or None,
            after,
            bool(large),
            coverage,
        )
        for name, uri, paper, mode, stations, copies, cutter, buzzer, fallback, after, large, coverage in conn.execute(
            "SELECT name, uri, paper_mm, text_mode, stations, copies, cutter, buzzer, fallback,"
            " fallback_after_seconds, large_print, font_coverage FROM printers WHERE enabled ORDER BY id"
        )
    ]


def claim_station_jobs(conn: apsw.Connection, printer: str, stations: Sequence[str]) -> None:
    """Give the printer the jobs of its stations that no printer has taken yet."""
    if not stations:
        return
    marks = ",".join("?" * len(stations))
    with conn:
        conn.execute(
            f"UPDATE print_jobs SET printer = ? WHERE printer IS NULL AND state = 'pending' AND station IN ({marks})",
            (printer, *stations),
        )


def waiting_jobs(conn: apsw.Connection, printer: str, limit: int) -> list[PrintJob]:
    """The printer's jobs still to print, oldest first."""
    return [
        PrintJob(*row)
        for row in conn.execute(
            "SELECT id, order_id, session_id, station, kind, ref, state, payload FROM print_jobs"
            " WHERE printer = ? AND state IN ('pending', 'sending') ORDER BY id LIMIT ?",
            (printer, limit),
        )
    ]


def start_sending(conn: apsw.Connection, job_id: int) -> int:
    """Mark the job 'sending' before its bytes go out: if the worker dies now, it prints again headed REPRINT.
    Returns the attempt this is (1 the first time), which the worker's journal of printed jobs names."""
    with conn:
        attempt = scalar(
            conn,
            "UPDATE print_jobs SET state = 'sending', attempts = attempts + 1 WHERE id = ? RETURNING attempts",
            (job_id,),
        )
    return int(attempt)


def mark_printed_from_journal(conn: apsw.Connection, entries: Sequence[tuple[int, int]]) -> int:
    """Store as printed the jobs the print worker's journal says the printer took (job id, attempt), those still
    'sending' in that same attempt: a worker killed between its journal line and its commit. Returns how many."""
    stamp, done = utc_now(), 0
    with conn:
        for job_id, attempt in entries:
            done += len(
                conn.execute(
                    "UPDATE print_jobs SET state = 'printed', printed_at = ?, last_error = NULL"
                    " WHERE id = ? AND attempts = ? AND state = 'sending' RETURNING id",
                    (stamp, job_id, attempt),
                ).fetchall()
            )
    return done


def mark_printed(conn: apsw.Connection, job_id: int) -> None:
    """The printer has taken the job's bytes. Committed without waiting for the disk (synchronous=NORMAL for
    this commit alone): a process killed after it has still stored it (the WAL write is done), and a power cut
    before the next synced commit at worst leaves the job 'sending', so it prints again headed REPRINT, never
    silently twice. This saves one of a job's two fsyncs; 'sending' (start_sending) stays synced, because
    losing it would print the job again without the REPRINT heading."""
    conn.execute("PRAGMA synchronous=NORMAL")
    try:
        with conn:
            conn.execute(
                "UPDATE print_jobs SET state = 'printed', printed_at = ?, last_error = NULL WHERE id = ?",
                (utc_now(), job_id),
            )
    finally:
        conn.execute("PRAGMA synchronous=FULL")


def fail_job(conn: apsw.Connection, job_id: int, error: str) -> None:
    """A job that can never print (it cannot be drawn): failed, with why (the first 300 characters)."""
    with conn:
        conn.execute("UPDATE print_jobs SET state = 'failed', last_error = ? WHERE id = ?", (error[:300], job_id))


def note_waiting(conn: apsw.Connection, printer: str, reason: str) -> None:
    """Every job waiting for the printer says why it waits (the console shows it)."""
    with conn:
        conn.execute(
            "UPDATE print_jobs SET last_error = ? WHERE printer = ? AND state IN ('pending', 'sending')",
            (reason, printer),
        )


def hand_over_jobs(conn: apsw.Connection, printer: str, fallback: str) -> int:
    """Move the printer's waiting jobs to its fallback printer, each marked with whom it prints for (the first
    printer's name, should the fallback hand them on again), and record the hand-over for the console:
    printer_status.fallback_to and fallback_since, kept while it goes on (record_printer_status clears them when
    the printer can print again). Returns how many moved."""
    with conn:
        moved = conn.execute(
            "UPDATE print_jobs SET printer = ?, payload = json_set(coalesce(payload, '{}'), '$.fallback_for',"
            " coalesce(json_extract(payload, '$.fallback_for'), ?))"
            " WHERE printer = ? AND state IN ('pending', 'sending') RETURNING id",
            (fallback, printer, printer),
        ).fetchall()
        if moved:
            conn.execute(
                "UPDATE printer_status SET fallback_since = CASE WHEN fallback_to IS ? THEN fallback_since ELSE ? END,"
                " fallback_to = ? WHERE name = ?",
                (fallback, utc_now(), fallback, printer),
            )
    return len(moved)


def printer_fault_age(conn: apsw.Connection, printer: str) -> float:
    """How many seconds the printer's recorded status has said it cannot print (0 when it can, or was never seen)."""
    row = conn.execute("SELECT status, since FROM printer_status WHERE name = ?", (printer,)).fetchone()
    if row is None or PrinterStatus(row[0]) not in UNABLE_TO_PRINT:
        return 0.0
    since = datetime.fromisoformat(str(row[1]).replace("Z", "+00:00"))
    return max(0.0, (datetime.now(UTC) - since).total_seconds())


def record_printer_status(conn: apsw.Connection, printer: str, status: PrinterStatus, detail: str = "") -> None:
    """What the printer said, and when the worker last looked (`since` moves only when the status changes).
    A printer that can print again ends its hand-over to the fallback (its next ticket is its own)."""
    stamp = utc_now()
    able = status not in UNABLE_TO_PRINT
    with conn:
        conn.execute(
            "INSERT INTO printer_status (name, status, detail, since, checked_at) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name) DO UPDATE SET detail = excluded.detail, checked_at = excluded.checked_at,"
            " since = CASE WHEN printer_status.status = excluded.status THEN printer_status.since"
            " ELSE excluded.since END, status = excluded.status,"
            " fallback_to = CASE WHEN ? THEN NULL ELSE printer_status.fallback_to END,"
            " fallback_since = CASE WHEN ? THEN NULL ELSE printer_status.fallback_since END",
            (printer, status.value, detail or None, stamp, stamp, able, able),
        )


def station_labels(conn: apsw.Connection, lang: str) -> dict[str, str]:
    """Each station's name in `lang` (its key when it has none), for the tickets' headers."""
    return {
        key: translate(json.loads(names), lang) or key for key, names in conn.execute("SELECT key, names FROM stations")
    }


def bill_visit(conn: apsw.Connection, session_id: int) -> BillVisit:
    row = conn.execute(
        "SELECT s.status, t.name FROM table_sessions s JOIN tables t ON t.id = s.table_id WHERE s.id = ?", (session_id,)
    ).fetchone()
    if row is None:
        raise DomainError("unknown_visit", f"no visit {session_id}", session_id=session_id)
    status, table_name = row
    return BillVisit(table_name, status in ("paid", "closed"))


def sticker_payload(job: PrintJob) -> tuple[StickerInfo, WifiInfo | None]:
    """What a sticker job prints (as queue_stickers wrote it)."""
    payload = json.loads(job.payload or "{}")
    wifi = payload.get("wifi")
    info = StickerInfo(
        str(payload["store_name"]), str(payload["table_name"]), str(payload["area"]), str(payload["url"])
    )
    return info, (WifiInfo(str(wifi[0]), str(wifi[1]), str(wifi[2])) if wifi else None)


# -- Staff's side: the console and the command line -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PrinterRow:
    """A printer as staff see it: its settings, what it said last, its queue and why that queue waits."""

    name: str
    uri: str
    paper_mm: int
    text_mode: str
    stations: tuple[str, ...]
    fallback: str | None
    enabled: bool
    status: PrinterStatus | None  # None: the worker has never recorded one
    detail: str | None
    since: str | None
    checked_at: str | None
    queue: int  # jobs still to print
    waiting_because: str | None  # why the oldest of them waits (paper out...), None while it does not
    stale: bool  # no status for STALE_SECONDS: the print worker is not running
    reason: str  # the status in words (or that nobody checked)
    fallback_to: str | None = None  # its tickets go to this printer (it has been faulty too long) ...
    fallback_since: str | None = None  # ... since then (UTC)

    def hand_over_note(self, since_local: str) -> str | None:
        """ "tickets for kitchen going to spare since 12:01" while the worker hands its tickets over, else None."""
        if not self.fallback_to:
            return None
        whose = ", ".join(self.stations) or f"printer {self.name}"
        return f"tickets for {whose} going to {self.fallback_to} since {since_local}"


@dataclass(frozen=True, slots=True)
class Reprint:
    order_id: int
    jobs: tuple[int, ...]
    stations: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class PrintQueueHealth:
    pending_jobs: int
    failed_jobs: int
    oldest_pending_at: str | None


def printer_rows(conn: apsw.Connection, now: datetime | None = None) -> list[PrinterRow]:
    now = now or datetime.now(UTC)
    out = []
    for (
        name,
        uri,
        paper_mm,
        text_mode,
        stations,
        fallback,
        enabled,
        status_text,
        detail,
        since,
        checked_at,
        queue,
        waiting_because,
        fallback_to,
        fallback_since,
    ) in conn.execute(
        "SELECT p.name, p.uri, p.paper_mm, p.text_mode, p.stations, p.fallback, p.enabled,"
        " s.status, s.detail, s.since, s.checked_at,"
        " (SELECT count(*) FROM print_jobs j WHERE j.printer = p.name AND j.state IN ('pending', 'sending')),"
        " (SELECT last_error FROM print_jobs j WHERE j.printer = p.name AND j.state IN ('pending', 'sending')"
        "   AND last_error IS NOT NULL ORDER BY id LIMIT 1),"
        " s.fallback_to, s.fallback_since"
        " FROM printers p LEFT JOIN printer_status s ON s.name = p.name ORDER BY p.id"
    ):
        age = (now - datetime.fromisoformat(checked_at.replace("Z", "+00:00"))).total_seconds() if checked_at else None
        stale = age is None or age > STALE_SECONDS
        status = PrinterStatus(status_text) if status_text else None
        out.append(
            PrinterRow(
                name,
                uri,
                paper_mm,
                text_mode,
                tuple(json.loads(stations)),
                fallback,
                bool(enabled),
                status,
                detail,
                since,
                checked_at,
                queue,
                waiting_because,
                stale,
                NOT_CHECKED if stale or status is None else REASONS[status],
                fallback_to,
                fallback_since,
            )
        )
    return out


def unassigned_jobs(conn: apsw.Connection) -> list[tuple[str, int]]:
    """(station, how many) of the jobs no printer has taken yet (the worker gives them to a printer of the station)."""
    return [
        (station, count)
        for station, count in conn.execute(
            "SELECT station, count(*) FROM print_jobs WHERE printer IS NULL AND state = 'pending'"
            " GROUP BY station ORDER BY station"
        )
    ]


def print_queue_health(conn: apsw.Connection) -> PrintQueueHealth:
    """How deep the print queue is, and how many jobs failed (a kitchen missing a ticket): for /healthz."""
    pending = int(scalar(conn, "SELECT count(*) FROM print_jobs WHERE state = 'pending'"))
    oldest: str | None = scalar(conn, "SELECT min(created_at) FROM print_jobs WHERE state = 'pending'")
    failed = int(scalar(conn, "SELECT count(*) FROM print_jobs WHERE state = 'failed'"))
    return PrintQueueHealth(pending, failed, oldest)


def _require_printer(conn: apsw.Connection, printer: str) -> None:
    if scalar(conn, "SELECT 1 FROM printers WHERE name = ?", (printer,)) is None:
        raise DomainError("unknown_printer", f"no printer called {printer!r}", printer=printer)


def queue_test_page(conn: apsw.Connection, printer: str) -> int:
    _require_printer(conn, printer)
    return int(
        scalar(
            conn,
            "INSERT INTO print_jobs (station, kind, printer, created_at) VALUES ('', 'test', ?, ?) RETURNING id",
            (printer, utc_now()),
        )
    )


def queue_reprint(conn: apsw.Connection, order_id: int, station: str | None = None) -> list[int]:
    """A fresh copy of an order's tickets (one per station, or one station), headed REPRINT."""
    stations: list[str] = [
        s
        for (s,) in conn.execute(
            "SELECT DISTINCT station FROM order_lines WHERE order_id = ? AND status = 'active' ORDER BY station",
            (order_id,),
        )
    ]
    if not stations:
        raise DomainError("unknown_order", "no such order, or nothing left on it to print", order_id=order_id)
    if station is not None:
        if station not in stations:
            raise DomainError("unknown_station", f"order {order_id} has nothing for {station!r}", station=station)
        stations = [station]
    jobs = []
    for st in stations:
        n = (
            int(
                scalar(
                    conn,
                    "SELECT count(*) FROM print_jobs WHERE order_id = ? AND station = ? AND ref LIKE 'reprint-%'",
                    (order_id, st),
                )
            )
            + 1
        )
        session = scalar(conn, "SELECT session_id FROM orders WHERE id = ?", (order_id,))
        jobs.append(
            int(
                scalar(
                    conn,
                    "INSERT INTO print_jobs (order_id, session_id, station, kind, ref, created_at)"
                    " VALUES (?, ?, ?, 'ticket', ?, ?) RETURNING id",
                    (order_id, session, st, f"reprint-{n}", utc_now()),
                )
            )
        )
    return jobs


def reprint_ticket(conn: apsw.Connection, day: str, ticket_no: int) -> Reprint:
    """Reprint ticket `ticket_no` of business day `day` (every station of it)."""
    order_id = scalar(conn, "SELECT id FROM orders WHERE ticket_day = ? AND ticket_no = ?", (day, ticket_no))
    if order_id is None:
        raise DomainError("unknown_ticket", f"there is no ticket #{ticket_no} on {day}", ticket_no=ticket_no)
    jobs = queue_reprint(conn, order_id)
    stations = tuple(
        s
        for (s,) in conn.execute(
            f"SELECT station FROM print_jobs WHERE id IN ({','.join('?' * len(jobs))}) ORDER BY station", jobs
        )
    )
    return Reprint(int(order_id), tuple(jobs), stations)


def queue_bill(conn: apsw.Connection, table_name: str, printer: str) -> int:
    """The bill of the table's current visit, on that printer."""
    session = scalar(
        conn,
        "SELECT s.id FROM table_sessions s JOIN tables t ON t.id = s.table_id"
        " WHERE t.name = ? AND s.status != 'closed'",
        (table_name,),
    )
    if session is None:
        raise DomainError("no_open_visit", f"table {table_name} has no open visit to bill", table=table_name)
    _require_printer(conn, printer)
    return int(
        scalar(
            conn,
            "INSERT INTO print_jobs (session_id, station, kind, printer, created_at)"
            " VALUES (?, '', 'bill', ?, ?) RETURNING id",
            (session, printer, utc_now()),
        )
    )


def table_stickers(
    conn: apsw.Connection, secret: bytes, base_url: str, table_names: Sequence[str] | None = None
) -> list[StickerInfo]:
    """Stickers for every active table of the store (in the store's order), or for the named tables (in the
    order given), each with the table's current signed URL. ValueError when no table or an unknown one is named."""
    if table_names is not None and not table_names:
        raise ValueError("no tables named: name at least one, or leave the list out for every table")
    store = load_store_settings(conn)
    active = list_tables(conn)
    if table_names is None:
        chosen = active
        if not chosen:
            raise ValueError("the store has no active tables yet")
    else:
        by_name = {table.name: table for table in active}
        wanted = list(dict.fromkeys(name.strip() for name in table_names))
        missing = [name for name in wanted if name not in by_name]
        if missing:
            inactive = {t.name for t in tables_by_id(conn).values() if not t.active}
            described = ", ".join(f"{name} (inactive)" if name in inactive else name for name in missing)
            raise ValueError(f"no such active table: {described}")
        chosen = [by_name[name] for name in wanted]
    return [
        StickerInfo(
            store.store_name, table.name, table.area, table_url(base_url, table_token(secret, store.store_id, table))
        )
        for table in chosen
    ]


def queue_stickers(
    conn: apsw.Connection, printer: str, stickers: Sequence[StickerInfo], wifi: WifiInfo | None = None
) -> list[int]:
    """One sticker job per table on that printer; the print worker draws each at the printer's width."""
    _require_printer(conn, printer)
    if wifi is not None:
        try:
            wifi_payload(wifi)  # refuse now, not in the print worker later
        except ValueError as exc:
            raise DomainError("invalid_wifi", str(exc)) from None
    return [
        int(
            scalar(
                conn,
                "INSERT INTO print_jobs (station, kind, printer, payload, created_at)"
                " VALUES ('', 'sticker', ?, ?, ?) RETURNING id",
                (
                    printer,
                    dumps(
                        {
                            "store_name": s.store_name,
                            "table_name": s.table_name,
                            "area": s.area,
                            "url": s.url,
                            "wifi": [wifi.ssid, wifi.password, wifi.security] if wifi else None,
                        }
                    ),
                    utc_now(),
                ),
            )
        )
        for s in stickers
    ]


def save_printer(
    conn: apsw.Connection,
    name: str,
    uri: str,
    *,
    stations: list[str],
    paper_mm: int = 80,
    text_mode: str = "gb18030",
    copies: int = 1,
    cutter: bool = True,
    buzzer: bool = False,
    fallback: str | None = None,
    fallback_after_seconds: int = 60,
    large_print: bool = False,
    font_coverage: str = "gb2312",
    force: bool = False,
) -> list[str]:
    """Add a printer, or change one (same name). Every value is checked before anything is stored.

    A printer whose text mode cannot print the store's languages is refused as a station's printer or as the
    fallback of one (appliance.domain.printing.language_misfit says why and which mode would); `force` saves it
    anyway, and the returned notes say what its tickets will then look like (empty when nothing was forced)."""
    name = name.strip()
    if not name or len(name) > 32:
        raise DomainError("invalid_printer", "a printer needs a name of 1-32 characters")
    try:
        parse_printer_address(uri, resolve_virtual=lambda n: "tcp://127.0.0.1:9")  # the address's shape only
    except ValueError as exc:
        raise DomainError("invalid_printer", str(exc)) from None
    if paper_mm not in PAPER_WIDTHS_MM:
        raise DomainError("invalid_printer", "paper is 58 or 80 mm wide")
    if text_mode not in TEXT_MODES:
        raise DomainError("invalid_printer", f"text mode is one of {', '.join(TEXT_MODES)}")
    if not 1 <= copies <= MAX_COPIES:
        raise DomainError("invalid_printer", f"copies: 1 to {MAX_COPIES}")
    known = {key for (key,) in conn.execute("SELECT key FROM stations")}
    unknown = [s for s in stations if s not in known]
    if unknown:
        raise DomainError("unknown_station", f"no station {', '.join(unknown)} (stations: {', '.join(sorted(known))})")
    if fallback is not None and (
        fallback == name or scalar(conn, "SELECT 1 FROM printers WHERE name = ?", (fallback,)) is None
    ):
        raise DomainError("invalid_printer", f"the fallback must be another existing printer, not {fallback!r}")
    if not 5 <= fallback_after_seconds <= 3600:
        raise DomainError("invalid_printer", "the fallback takes over after 5 to 3600 seconds")
    if font_coverage not in FONT_COVERAGES:
        raise DomainError("invalid_printer", f"font coverage is one of {', '.join(FONT_COVERAGES)}")
    misfits = printer_language_misfits(conn, name, stations, text_mode, font_coverage, fallback)
    if misfits and not force:
        raise DomainError(
            "printer_language",
            "; ".join(m for _, m in misfits) + " (--force saves it anyway)",
            printer=name,
        )
    conn.execute(
        "INSERT INTO printers (name, uri, paper_mm, text_mode, stations, copies, cutter, buzzer, fallback,"
        " fallback_after_seconds, large_print, font_coverage)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET uri = excluded.uri,"
        " paper_mm = excluded.paper_mm, text_mode = excluded.text_mode, stations = excluded.stations,"
        " copies = excluded.copies, cutter = excluded.cutter, buzzer = excluded.buzzer, fallback = excluded.fallback,"
        " fallback_after_seconds = excluded.fallback_after_seconds, large_print = excluded.large_print,"
        " font_coverage = excluded.font_coverage",
        (
            name,
            uri,
            paper_mm,
            text_mode,
            json.dumps(stations),
            copies,
            int(cutter),
            int(buzzer),
            fallback,
            fallback_after_seconds,
            int(large_print),
            font_coverage,
        ),
    )
    if not misfits:
        return []
    lacking = dict.fromkeys(p for p, _ in misfits)
    return [
        *(f"saved anyway (--force): {m}" for _, m in misfits),
        FORCED_OUTCOME.format(names=", ".join(lacking), test=next(iter(lacking))),
    ]


# What a forced printer's tickets will look like: printers.render draws a row holding a character the printer's
# font lacks and sends it as an image (GS v 0); a character no bundled font has is drawn as 〓 (printers.fonts).
FORCED_OUTCOME = (
    "what will happen: on {names}, each row with characters its font lacks is drawn by the box and sent as an image"
    " (readable, but many more bytes: slower, most of all on a serial printer); see it with"
    " `tablebox printers test {test}` and a real order"
)


def printer_language_misfits(
    conn: apsw.Connection,
    name: str,
    stations: Sequence[str],
    text_mode: str,
    font_coverage: str,
    fallback: str | None,
) -> list[tuple[str, str]]:
    """Why the printer `name`, set up like this, would print tickets its font cannot show: as the printer of its
    stations, through its fallback printer, or as the fallback of another printer that has stations. Each
    problem as (the printer whose font lacks the languages, why)."""
    languages = load_store_settings(conn).languages
    problems: list[tuple[str, str]] = []
    own = language_misfit(text_mode, languages, font_coverage)
    if own and stations:
        problems.append((name, f"{name} prints the tickets of {', '.join(stations)}, but {own}"))
    if own:
        for (other,) in conn.execute(
            "SELECT name FROM printers WHERE fallback = ? AND name != ? AND stations != '[]' ORDER BY id",
            (name, name),
        ):
            problems.append((name, f"{name} is the fallback of {other}, but {own}"))
    if fallback is not None:
        row = conn.execute("SELECT text_mode, font_coverage FROM printers WHERE name = ?", (fallback,)).fetchone()
        theirs = language_misfit(row[0], languages, row[1]) if row else None
        if theirs and stations:
            problems.append(
                (fallback, f"the fallback {fallback} would print the tickets of {', '.join(stations)}, but {theirs}")
            )
    return problems


def remove_printer(conn: apsw.Connection, name: str) -> None:
    """Remove a printer; its waiting jobs go back to the queue of their station."""
    if conn.execute("DELETE FROM printers WHERE name = ? RETURNING id", (name,)).fetchone() is None:
        raise DomainError("unknown_printer", f"no printer called {name!r}", printer=name)
    conn.execute(
        "UPDATE print_jobs SET printer = NULL WHERE printer = ? AND state = 'pending' AND station != ''", (name,)
    )
    conn.execute("UPDATE printers SET fallback = NULL WHERE fallback = ?", (name,))
