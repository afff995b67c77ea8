"""The print worker: turns print_jobs rows into paper, one thread per printer, in order, never losing a job
and never printing one twice silently (a job caught mid-send prints again headed REPRINT)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path

import apsw
import structlog

from appliance.daemon import STUCK_AFTER_SECONDS, WorkerGroup, WorkerLoop
from appliance.db.connection import open_connection
from appliance.db.order_events import data_version
from appliance.db.orders import order_view, session_orders
from appliance.db.printing import (
    PrinterConfig,
    PrintJob,
    bill_visit,
    claim_station_jobs,
    fail_job,
    hand_over_jobs,
    load_printers,
    mark_printed,
    note_waiting,
    record_printer_status,
    start_sending,
    station_labels,
    sticker_payload,
    waiting_jobs,
)
from appliance.db.store_settings import load_store_settings
from appliance.domain.menu import translate
from appliance.domain.money import format_money
from appliance.domain.printing import REASONS, UNABLE_TO_PRINT, PrinterStatus, parse_printer_address
from printers.connection import EscposLink, PrinterFault
from printers.document import Document, Line, PrinterTestPage, bill, kitchen_ticket
from printers.render import render

log = structlog.get_logger("printers.worker")

JOB_BATCH = 50
STATUS_HEARTBEAT_SECONDS = 60.0


def job_document(conn: apsw.Connection, job: PrintJob, printer: PrinterConfig, reprint: bool) -> Document:
    settings = load_store_settings(conn)
    lang = settings.languages[0]
    stations = station_labels(conn, lang)
    if job.kind == "test":
        return PrinterTestPage(printer.name, 48 if printer.paper_mm == 80 else 32).document()
    if job.kind == "bill":
        if job.session_id is None:
            raise ValueError(f"bill job {job.id} names no visit")
        visit = bill_visit(conn, job.session_id)
        money = settings.money
        return bill(
            session_orders(conn, job.session_id),
            store_name=settings.store_name,
            table=visit.table_name,
            lang=lang,
            timezone=settings.timezone,
            currency_format=lambda m: format_money(m, money),
            tax_rate_bp=settings.tax_rate_bp,
            paid=visit.paid,
        )
    if job.order_id is None:
        raise ValueError(f"{job.kind} job {job.id} names no order")
    order = order_view(conn, job.order_id)
    if job.kind == "void":
        payload = json.loads(job.payload or "{}")
        voided = [
            line
            for line in order["lines"]
            if line["station"] == job.station
            and (job.ref == "order" or str(line.get("line_no")) == str(payload.get("line_no")))
        ]
        lines = [
            Line("*** 作废 VOID ***", size=2, bold=True, align="center"),
            Line(order["table"], right=f"#{order['ticket_no']}", size=2, bold=True),
        ]
        lines += [Line(f"{line['quantity']} x {translate(line['names'], lang)}", size=2) for line in voided]
        if payload.get("reason"):
            lines.append(Line("原因 REASON: " + str(payload["reason"])[:140], bold=True))
        return Document(tuple(lines), buzzer=printer.buzzer, cut=printer.cutter, title=f"void {order['ticket_no']}")
    payload = json.loads(job.payload or "{}")
    doc = kitchen_ticket(
        order,
        job.station,
        lang=lang,
        timezone=settings.timezone,
        station_names=stations,
        reprint=reprint or job.ref.startswith("reprint"),
        fallback_for=payload.get("fallback_for"),
    )
    return Document(doc.lines, cut=printer.cutter, buzzer=printer.buzzer, title=doc.title)


def render_job(document: Document, printer: PrinterConfig) -> bytes:
    if printer.text_mode == "raster":  # drawn with the bundled font: any printer, any script
        from printers.raster import render_raster

        return render_raster(document, paper_mm=printer.paper_mm)
    return render(document, paper_mm=printer.paper_mm, mode=printer.text_mode)


def sticker_job_bytes(job: PrintJob, printer: PrinterConfig) -> bytes:
    """A table's QR sticker, drawn at the printer's width and sent as raster bands."""
    from printers.raster import raster_bands
    from printers.render import FEED_AND_CUT, INIT
    from printers.stickers import sticker_image

    info, wifi = sticker_payload(job)
    image = sticker_image(
        info,
        width_px=576 if printer.paper_mm == 80 else 384,
        dots_per_module=8 if printer.paper_mm == 80 else 6,
        wifi=wifi,
    )
    return INIT + raster_bands(image) + (FEED_AND_CUT if printer.cutter else b"")


class PrinterLoop(WorkerLoop):
    """One printer's thread: claims the jobs of its stations, prints them oldest first, waits out faults."""

    def __init__(
        self,
        db_path: Path,
        printer: PrinterConfig,
        stop: threading.Event,
        *,
        resolve_virtual: Callable[[str], str] | None,
        poll_seconds: float,
        fault_retry_seconds: float,
        fallback_after_seconds: float = 60.0,
        idle_status_seconds: float = 10.0,
        vfs: str | None = None,
    ) -> None:
        self.printer = printer
        self.stop = stop
        self.poll_seconds = poll_seconds
        self.fault_retry_seconds = fault_retry_seconds
        self.db_path = db_path
        self.vfs = vfs
        self.link = EscposLink(parse_printer_address(printer.uri, resolve_virtual))
        self.status: PrinterStatus | None = None
        self.fault_since: float | None = None
        self.last_status_at = 0.0
        self.idle_status_seconds = idle_status_seconds
        self.fallback_after_seconds = fallback_after_seconds
        self._recorded: tuple[str, str] | None = None
        self._recorded_at = 0.0
        self.printed = 0
        super().__init__(thread_name=f"printer-{printer.name}", what=f"printer {printer.name}")

    def run(self) -> None:
        conn = open_connection(self.db_path, vfs=self.vfs)
        try:
            seen, again = -1, True
            while not self.stop.is_set():
                self.touch()
                version = data_version(conn)
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
        record_printer_status(conn, self.printer.name, status, detail)
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
        moved = hand_over_jobs(conn, self.printer.name, self.printer.fallback)
        if moved:
            log.warning("print.fallback", printer=self.printer.name, to=self.printer.fallback, jobs=moved)
        return moved

    def claim(self, conn: apsw.Connection) -> None:
        claim_station_jobs(conn, self.printer.name, self.printer.stations)

    def step(self, conn: apsw.Connection) -> tuple[bool, int]:
        """Print what is queued for this printer. Returns (stopped by a fault, jobs printed)."""
        printed = 0
        self.claim(conn)
        jobs = waiting_jobs(conn, self.printer.name, JOB_BATCH)
        for job in jobs:
            if self.stop.is_set():
                return False, printed
            self.touch()
            try:
                self.status = self.link.status()
                self.last_status_at = time.monotonic()
                self.record_status(conn, self.status)
                if self.status in UNABLE_TO_PRINT:
                    raise PrinterFault(self.status)
                reprint = job.state == "sending"  # it may be on paper already: say so on the new one
                try:
                    if job.kind == "sticker":
                        data = sticker_job_bytes(job, self.printer)
                    else:
                        data = render_job(job_document(conn, job, self.printer, reprint), self.printer)
                except Exception as exc:  # a job that cannot be drawn must not stop the printer for the others
                    fail_job(conn, job.id, f"cannot render: {exc}")
                    log.error("print.render_failed", printer=self.printer.name, job=job.id, error=repr(exc))
                    continue
                start_sending(conn, job.id)
                self.link.send(data * max(1, self.printer.copies))
                self.status = self.link.status()  # the printer answers after the bytes: they arrived
                if self.status in UNABLE_TO_PRINT:
                    raise PrinterFault(self.status, partial=True)
            except PrinterFault as fault:
                self.status = fault.status
                if self.fault_since is None:
                    self.fault_since = time.monotonic()
                self.record_status(conn, fault.status, fault.detail)
                note_waiting(conn, self.printer.name, str(fault))
                log.warning(
                    "print.waiting",
                    printer=self.printer.name,
                    job=job.id,
                    reason=REASONS[fault.status],
                    partial=fault.partial,
                )
                self.hand_over(conn)
                return True, printed
            self.fault_since = None
            mark_printed(conn, job.id)
            self.printed += 1
            printed += 1
            log.info(
                "print.printed",
                printer=self.printer.name,
                job=job.id,
                kind=job.kind,
                order_id=job.order_id,
                reprint=reprint,
                bytes=len(data),
            )
        return False, printed


class PrintWorker(WorkerGroup[PrinterLoop]):
    """All printers of the store, each in its own thread so a dead printer never holds up another. Healthy
    (appliance.daemon) while every printer thread loops: a faulty printer is not unhealthy, its thread keeps
    looping while it waits."""

    def __init__(
        self,
        db_path: Path,
        *,
        resolve_virtual: Callable[[str], str] | None = None,
        poll_seconds: float = 0.05,
        fault_retry_seconds: float = 2.0,
        fallback_after_seconds: float = 60.0,
        idle_status_seconds: float = 10.0,
        vfs: str | None = None,
        stuck_after_seconds: float = STUCK_AFTER_SECONDS,
    ) -> None:
        super().__init__(stuck_after_seconds=stuck_after_seconds)
        self.db_path = db_path
        conn = open_connection(db_path, vfs=vfs)
        try:
            printers = load_printers(conn)
        finally:
            conn.close()
        self.loops = [
            PrinterLoop(
                db_path,
                p,
                self.stop_event,
                resolve_virtual=resolve_virtual,
                poll_seconds=poll_seconds,
                fault_retry_seconds=fault_retry_seconds,
                fallback_after_seconds=fallback_after_seconds,
                idle_status_seconds=idle_status_seconds,
                vfs=vfs,
            )
            for p in printers
        ]

    def start(self) -> PrintWorker:
        self.start_loops()
        log.info("print.started", printers=[loop.printer.name for loop in self.loops])
        return self

    def stop(self) -> None:
        """Stop between jobs: a job in the middle of being sent finishes first (or stays 'sending')."""
        self.stop_event.set()
        for loop in self.loops:
            loop.thread.join(15)

    def __enter__(self) -> PrintWorker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
