"""The print worker: turns print_jobs rows into paper, one thread per printer, in order, never losing a job
and never printing one twice silently (a job caught mid-send prints again headed REPRINT)."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import apsw
import structlog

from appliance.db.connection import open_connection, scalar, utc_now
from appliance.db.orders import order_view, session_orders
from appliance.domain.money import format_money
from appliance.db.store_settings import load_store_settings
from appliance.domain.menu import translate
from printers.connection import EscposLink, PrinterFault, Target
from printers.document import Document, Line, PrinterTestPage, bill, kitchen_ticket
from printers.render import render
from printers.status import REASONS, UNABLE_TO_PRINT, PrinterStatus

log = structlog.get_logger("printers.worker")

JOB_BATCH = 50
STATUS_HEARTBEAT_SECONDS = 60.0
# A printer thread that has not come round its loop (or begun its next job) for this long is stuck. Each
# printer I/O has a 5 s timeout and each database statement a 5 s busy timeout, but a big raster job on a
# slow serial printer takes tens of seconds to send: far below this, so a slow job never counts as a hang
# (a restart mid-job would print it again, headed REPRINT).
STUCK_AFTER_SECONDS = 300.0


@dataclass(frozen=True)
class PrinterConfig:
    name: str
    uri: str
    paper_mm: int
    text_mode: str
    stations: tuple[str, ...]
    copies: int
    cutter: bool
    buzzer: bool
    fallback: str | None = None


def load_printers(conn: apsw.Connection) -> list[PrinterConfig]:
    return [
        PrinterConfig(name, uri, paper, mode, tuple(json.loads(stations)), copies, bool(cutter), bool(buzzer),
                      fallback or None)
        for name, uri, paper, mode, stations, copies, cutter, buzzer, fallback in conn.execute(
            "SELECT name, uri, paper_mm, text_mode, stations, copies, cutter, buzzer, fallback FROM printers"
            " WHERE enabled ORDER BY id")
    ]


def job_document(conn: apsw.Connection, job: dict[str, Any], printer: PrinterConfig, reprint: bool) -> Document:
    settings = load_store_settings(conn)
    lang = settings.languages[0]
    stations = {key: translate(json.loads(names), lang) or key
                for key, names in conn.execute("SELECT key, names FROM stations")}
    if job["kind"] == "test":
        return PrinterTestPage(printer.name, 48 if printer.paper_mm == 80 else 32).document()
    if job["kind"] == "bill":
        session = conn.execute("SELECT s.status, t.name FROM table_sessions s JOIN tables t ON t.id = s.table_id"
                               " WHERE s.id = ?", (job["session_id"],)).fetchone()
        money = settings.money
        return bill(session_orders(conn, job["session_id"]), store_name=settings.store_name, table=session[1],
                    lang=lang, timezone=settings.timezone, currency_format=lambda m: format_money(m, money),
                    tax_rate_bp=settings.tax_rate_bp, paid=session[0] in ("paid", "closed"))
    order = order_view(conn, job["order_id"])
    if job["kind"] == "void":
        payload = json.loads(job["payload"] or "{}")
        voided = [l for l in order["lines"] if l["station"] == job["station"] and (
            job["ref"] == "order" or str(l.get("line_no")) == str(payload.get("line_no")))]
        lines = [Line("*** 作废 VOID ***", size=2, bold=True, align="center"),
                 Line(order["table"], right=f"#{order['ticket_no']}", size=2, bold=True)]
        lines += [Line(f"{l['quantity']} x {translate(l['names'], lang)}", size=2) for l in voided]
        if payload.get("reason"):
            lines.append(Line("原因 REASON: " + str(payload["reason"])[:140], bold=True))
        return Document(tuple(lines), buzzer=printer.buzzer, cut=printer.cutter, title=f"void {order['ticket_no']}")
    payload = json.loads(job.get("payload") or "{}")
    doc = kitchen_ticket(order, job["station"], lang=lang, timezone=settings.timezone, station_names=stations,
                         reprint=reprint or str(job.get("ref", "")).startswith("reprint"),
                         fallback_for=payload.get("fallback_for"))
    return Document(doc.lines, cut=printer.cutter, buzzer=printer.buzzer, title=doc.title)


def render_job(document: Document, printer: PrinterConfig) -> bytes:
    if printer.text_mode == "raster":  # drawn with the bundled font: any printer, any script
        from printers.raster import render_raster

        return render_raster(document, paper_mm=printer.paper_mm)
    return render(document, paper_mm=printer.paper_mm, mode=printer.text_mode)


def sticker_job_bytes(job: dict[str, Any], printer: PrinterConfig) -> bytes:
    """A table's QR sticker, drawn at the printer's width and sent as raster bands."""
    from printers.raster import raster_bands
    from printers.render import FEED_AND_CUT, INIT
    from printers.stickers import StickerInfo, WifiInfo, sticker_image

    payload = json.loads(job["payload"])
    wifi = WifiInfo(*payload["wifi"]) if payload.get("wifi") else None
    info = StickerInfo(payload["store_name"], payload["table_name"], payload["area"], payload["url"])
    image = sticker_image(info, width_px=576 if printer.paper_mm == 80 else 384,
                          dots_per_module=8 if printer.paper_mm == 80 else 6, wifi=wifi)
    return INIT + raster_bands(image) + (FEED_AND_CUT if printer.cutter else b"")


class PrinterLoop:
    """One printer's thread: claims the jobs of its stations, prints them oldest first, waits out faults."""

    def __init__(self, db_path: Path, printer: PrinterConfig, stop: threading.Event, *,
                 resolve_virtual: Callable[[str], str] | None, poll_seconds: float, fault_retry_seconds: float,
                 fallback_after_seconds: float = 60.0, idle_status_seconds: float = 10.0,
                 vfs: str | None = None) -> None:
        self.printer = printer
        self.stop = stop
        self.poll_seconds = poll_seconds
        self.fault_retry_seconds = fault_retry_seconds
        self.db_path = db_path
        self.vfs = vfs
        self.link = EscposLink(Target.parse(printer.uri, resolve_virtual))
        self.status: PrinterStatus | None = None
        self.fault_since: float | None = None
        self.last_status_at = 0.0
        self.idle_status_seconds = idle_status_seconds
        self.fallback_after_seconds = fallback_after_seconds
        self._recorded: tuple[str, str] | None = None
        self._recorded_at = 0.0
        self.printed = 0
        self.beat = time.monotonic()  # last time the thread came round its loop (or began a job): see PrintWorker.health
        self.thread = threading.Thread(target=self.run, name=f"printer-{printer.name}", daemon=True)

    def run(self) -> None:
        conn = open_connection(self.db_path, vfs=self.vfs)
        try:
            seen, again = -1, True
            while not self.stop.is_set():
                self.beat = time.monotonic()
                version = scalar(conn, "PRAGMA data_version")
                if version == seen and not again:
                    if time.monotonic() - self.last_status_at >= self.idle_status_seconds:
                        self.look(conn)  # idle: still notice paper running out or a printer switched off
                    self.stop.wait(self.poll_seconds)  # nothing committed elsewhere since the last look
                    continue
                seen = version
                faulted, printed = self.step(conn)
                again = faulted or printed > 0  # our own commits do not move data_version: look again
                if faulted:
                    self.stop.wait(self.fault_retry_seconds)
        except Exception:
            log.exception("print.loop_crashed", printer=self.printer.name)
            raise
        finally:
            self.link.close()
            conn.close()

    def record_status(self, conn: apsw.Connection, status: PrinterStatus, detail: str = "") -> None:
        """Tell the console what the printer said: on every change, and once a minute as a heartbeat
        (not on every look: an SD card should not be written ten times a second)."""
        now = time.monotonic()
        if self._recorded == (status.value, detail) and now - self._recorded_at < STATUS_HEARTBEAT_SECONDS:
            return
        stamp = utc_now()
        with conn:
            conn.execute(
                "INSERT INTO printer_status (name, status, detail, since, checked_at) VALUES (?, ?, ?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET detail = excluded.detail, checked_at = excluded.checked_at,"
                " since = CASE WHEN printer_status.status = excluded.status THEN printer_status.since"
                " ELSE excluded.since END, status = excluded.status",
                (self.printer.name, status.value, detail or None, stamp, stamp))
        self._recorded, self._recorded_at = (status.value, detail), now

    def look(self, conn: apsw.Connection) -> PrinterStatus:
        """Ask the printer how it is and record the answer."""
        self.last_status_at = time.monotonic()
        try:
            self.status = self.link.status()
            self.record_status(conn, self.status)
        except PrinterFault as fault:
            self.status = fault.status
            self.record_status(conn, fault.status, fault.detail)
        return self.status

    def hand_over(self, conn: apsw.Connection) -> int:
        """After the printer has been faulty for fallback_after_seconds, its waiting jobs go to the fallback
        printer, whose tickets say for whom they print. Returns how many moved."""
        if not self.printer.fallback or self.fault_since is None:
            return 0
        if time.monotonic() - self.fault_since < self.fallback_after_seconds:
            return 0
        with conn:
            moved = conn.execute(
                "UPDATE print_jobs SET printer = ?, payload = json_set(coalesce(payload, '{}'), '$.fallback_for', ?)"
                " WHERE printer = ? AND state IN ('pending', 'sending') RETURNING id",
                (self.printer.fallback, self.printer.name, self.printer.name)).fetchall()
        if moved:
            log.warning("print.fallback", printer=self.printer.name, to=self.printer.fallback, jobs=len(moved))
        return len(moved)

    def claim(self, conn: apsw.Connection) -> None:
        if not self.printer.stations:
            return
        marks = ",".join("?" * len(self.printer.stations))
        with conn:
            conn.execute(f"UPDATE print_jobs SET printer = ? WHERE printer IS NULL AND state = 'pending'"
                         f" AND station IN ({marks})", (self.printer.name, *self.printer.stations))

    def step(self, conn: apsw.Connection) -> tuple[bool, int]:
        """Print what is queued for this printer. Returns (stopped by a fault, jobs printed)."""
        printed = 0
        self.claim(conn)
        jobs = [dict(zip(("id", "order_id", "session_id", "station", "kind", "ref", "state", "payload"), row))
                for row in conn.execute(
            "SELECT id, order_id, session_id, station, kind, ref, state, payload FROM print_jobs"
            " WHERE printer = ? AND state IN ('pending', 'sending') ORDER BY id LIMIT ?",
            (self.printer.name, JOB_BATCH))]
        for job in jobs:
            if self.stop.is_set():
                return False, printed
            self.beat = time.monotonic()
            try:
                self.status = self.link.status()
                self.last_status_at = time.monotonic()
                self.record_status(conn, self.status)
                if self.status in UNABLE_TO_PRINT:
                    raise PrinterFault(self.status)
                reprint = job["state"] == "sending"  # it may be on paper already: say so on the new one
                try:
                    if job["kind"] == "sticker":
                        data = sticker_job_bytes(job, self.printer)
                    else:
                        data = render_job(job_document(conn, job, self.printer, reprint), self.printer)
                except Exception as exc:  # a job that cannot be drawn must not stop the printer for the others
                    with conn:
                        conn.execute("UPDATE print_jobs SET state = 'failed', last_error = ? WHERE id = ?",
                                     (f"cannot render: {exc}"[:300], job["id"]))
                    log.error("print.render_failed", printer=self.printer.name, job=job["id"], error=repr(exc))
                    continue
                with conn:
                    conn.execute("UPDATE print_jobs SET state = 'sending', attempts = attempts + 1 WHERE id = ?",
                                 (job["id"],))
                self.link.send(data * max(1, self.printer.copies))
                self.status = self.link.status()  # the printer answers after the bytes: they arrived
                if self.status in UNABLE_TO_PRINT:
                    raise PrinterFault(self.status, partial=True)
            except PrinterFault as fault:
                self.status = fault.status
                if self.fault_since is None:
                    self.fault_since = time.monotonic()
                self.record_status(conn, fault.status, fault.detail)
                with conn:
                    conn.execute("UPDATE print_jobs SET last_error = ? WHERE printer = ? AND state IN ('pending', 'sending')",
                                 (str(fault), self.printer.name))
                log.warning("print.waiting", printer=self.printer.name, job=job["id"], reason=REASONS[fault.status],
                            partial=fault.partial)
                self.hand_over(conn)
                return True, printed
            self.fault_since = None
            with conn:
                conn.execute("UPDATE print_jobs SET state = 'printed', printed_at = ?, last_error = NULL WHERE id = ?",
                             (utc_now(), job["id"]))
            self.printed += 1
            printed += 1
            log.info("print.printed", printer=self.printer.name, job=job["id"], kind=job["kind"],
                     order_id=job["order_id"], reprint=reprint, bytes=len(data))
        return False, printed


class PrintWorker:
    """All printers of the store, each in its own thread so a dead printer never holds up another."""

    def __init__(self, db_path: Path, *, resolve_virtual: Callable[[str], str] | None = None,
                 poll_seconds: float = 0.05, fault_retry_seconds: float = 2.0, fallback_after_seconds: float = 60.0,
                 idle_status_seconds: float = 10.0, vfs: str | None = None,
                 stuck_after_seconds: float = STUCK_AFTER_SECONDS) -> None:
        self.db_path = db_path
        self.stop_event = threading.Event()
        self.stuck_after_seconds = stuck_after_seconds
        conn = open_connection(db_path, vfs=vfs)
        try:
            printers = load_printers(conn)
        finally:
            conn.close()
        self.loops = [PrinterLoop(db_path, p, self.stop_event, resolve_virtual=resolve_virtual,
                                  poll_seconds=poll_seconds, fault_retry_seconds=fault_retry_seconds,
                                  fallback_after_seconds=fallback_after_seconds,
                                  idle_status_seconds=idle_status_seconds, vfs=vfs)
                      for p in printers]

    def start(self) -> PrintWorker:
        for loop in self.loops:
            loop.thread.start()
        log.info("print.started", printers=[l.printer.name for l in self.loops])
        return self

    def health(self, now: float | None = None) -> str | None:
        """None while every printer thread is alive and has come round its loop (or begun a job) within
        stuck_after_seconds; otherwise what is wrong. `tablebox printd` pings the systemd watchdog only
        while this is None. A faulty printer is not unhealthy: its thread keeps looping while it waits."""
        now = time.monotonic() if now is None else now
        for loop in self.loops:
            if not loop.thread.is_alive():
                return f"the thread of printer {loop.printer.name} has stopped"
            if now - loop.beat > self.stuck_after_seconds:
                return f"printer {loop.printer.name} has been stuck for {now - loop.beat:.0f} s"
        return None

    def stop(self) -> None:
        """Stop between jobs: a job in the middle of being sent finishes first (or stays 'sending')."""
        self.stop_event.set()
        for loop in self.loops:
            loop.thread.join(15)

    def __enter__(self) -> PrintWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
