"""The print worker: turns print_jobs rows into paper, one thread per printer, in order, never losing a job
and never printing one twice silently (a job caught mid-send prints again headed REPRINT)."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import apsw
import structlog

from appliance.daemon import STUCK_AFTER_SECONDS, WorkerGroup, WorkerLoop
from appliance.db.connection import BUSY_TIMEOUT_MS, open_connection
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
    mark_printed_from_journal,
    note_waiting,
    printer_fault_age,
    record_printer_status,
    start_sending,
    station_labels,
    sticker_payload,
    waiting_jobs,
)
from appliance.db.store_settings import load_store_settings
from appliance.domain.printing import REASONS, UNABLE_TO_PRINT, PrinterStatus
from printers.connection import PrinterFault, link_for
from printers.document import PAPER_COLUMNS, Document, PrinterTestPage, bill, kitchen_ticket, void_ticket
from printers.render import money_format, render

log = structlog.get_logger("printers.worker")

JOB_BATCH = 50
STATUS_HEARTBEAT_SECONDS = 60.0
BUSY_RETRY_SECONDS = 0.001
FRESH_STATUS_SECONDS = 1.0  # a printer's answer younger than this is not asked again before the next job


def job_document(conn: apsw.Connection, job: PrintJob, printer: PrinterConfig, reprint: bool) -> Document:
    settings = load_store_settings(conn)
    lang = settings.languages[0]
    stations = station_labels(conn, lang)
    columns, large_print = PAPER_COLUMNS[printer.paper_mm], printer.large_print  # the table number fits the paper
    if job.kind == "test":
        return PrinterTestPage(printer.name, columns, large_print=large_print).document()
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
            currency_format=money_format(money, printer.text_mode, printer.font_coverage),
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
        void = void_ticket(
            order,
            voided,
            lang=lang,
            reason=payload.get("reason"),
            fallback_for=payload.get("fallback_for"),
            columns=columns,
            large_print=large_print,
        )
        return Document(void.lines, buzzer=printer.buzzer, cut=printer.cutter, title=void.title)
    payload = json.loads(job.payload or "{}")
    doc = kitchen_ticket(
        order,
        job.station,
        lang=lang,
        timezone=settings.timezone,
        station_names=stations,
        reprint=reprint or job.ref.startswith("reprint"),
        fallback_for=payload.get("fallback_for"),
        columns=columns,
        large_print=large_print,
    )
    return Document(doc.lines, cut=printer.cutter, buzzer=printer.buzzer, title=doc.title)


def render_job(document: Document, printer: PrinterConfig) -> bytes:
    if printer.text_mode == "raster":  # drawn with the bundled font: any printer, any script
        from printers.raster import render_raster

        return render_raster(document, paper_mm=printer.paper_mm)
    return render(document, paper_mm=printer.paper_mm, mode=printer.text_mode, font_coverage=printer.font_coverage)


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


def short_busy_waits(timeout_seconds: float = BUSY_TIMEOUT_MS / 1000) -> Callable[[int], bool]:
    """A busy handler that tries again every millisecond, up to the store's busy timeout. SQLite's own
    (sqlite3_busy_timeout: sqliteDefaultBusyCallback in main.c) sleeps 1, 2, 5, 10, 15, 20, 25, 25, 25, 50, 50,
    100 ms: a printer waiting behind the web server's few-millisecond commits in a burst slept 50 ms at a time."""
    deadline = 0.0

    def handler(prior_calls: int) -> bool:
        nonlocal deadline
        now = time.monotonic()
        if prior_calls == 0:
            deadline = now + timeout_seconds
        elif now >= deadline:
            return False
        time.sleep(BUSY_RETRY_SECONDS)
        return True

    return handler


JOURNAL_GLOB = "printed-*.journal"
JOURNAL_TRIM_BYTES = 64 * 1024


class PrintedJournal:
    """One printer thread's journal of jobs the printer has taken, a line "job attempt" written (one append, no
    fsync) the moment the printer's answer behind the bytes arrives, before the store's commit. A kill -9 leaves
    the line in the file (the kernel has it), so a crash whole-ticket-twice needs the kill to fall between the
    printer taking the last byte and this one write: the printer's answer on its way back and its reading. The
    next printd stores the lines' jobs printed before it prints (settle_journals); a power cut may lose the line,
    and the job then prints again headed REPRINT, never silently twice. Emptied once past JOURNAL_TRIM_BYTES, by
    its own thread after its commit, when every line in it is stored, and when its thread stops cleanly (lines are
    left only by a crash)."""

    def __init__(self, directory: Path, printer: str) -> None:
        key = hashlib.sha256(printer.encode()).hexdigest()[:16]  # any printer name makes a file name
        self.path = directory / JOURNAL_GLOB.replace("*", key)
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)

    def note(self, job_id: int, attempt: int) -> None:
        os.write(self.fd, f"{job_id} {attempt}\n".encode())

    def stored(self) -> None:
        """Every line so far is in the store: trim the file when it has grown."""
        if os.fstat(self.fd).st_size > JOURNAL_TRIM_BYTES:
            self.empty()

    def empty(self) -> None:
        os.ftruncate(self.fd, 0)

    def close(self) -> None:
        os.close(self.fd)


def settle_journals(conn: apsw.Connection, directory: Path) -> int:
    """Before printing: the jobs the last printd's journals name, still 'sending' in the store, stored printed;
    then the journals emptied. Returns how many were settled."""
    entries: list[tuple[int, int]] = []
    paths = sorted(directory.glob(JOURNAL_GLOB))
    for path in paths:
        for line in path.read_text(errors="replace").splitlines():
            fields = line.split()
            if len(fields) == 2 and all(f.isdigit() for f in fields):  # a torn last line is not a line
                entries.append((int(fields[0]), int(fields[1])))
    settled = mark_printed_from_journal(conn, entries) if entries else 0
    for path in paths:
        path.write_bytes(b"")
    if settled:
        log.warning("print.settled_from_journal", jobs=settled)
    return settled


class PrinterLoop(WorkerLoop):
    """One printer's thread: claims the jobs of its stations, prints them oldest first, waits out faults."""

    journal: PrintedJournal | None = None  # opened by run()

    def __init__(
        self,
        db_path: Path,
        printer: PrinterConfig,
        stop: threading.Event,
        *,
        resolve_virtual: Callable[[str], str] | None,
        poll_seconds: float,
        fault_retry_seconds: float,
        fallback_after_seconds: float | None = None,
        idle_status_seconds: float = 10.0,
        vfs: str | None = None,
    ) -> None:
        self.printer = printer
        self.stop = stop
        self.poll_seconds = poll_seconds
        self.fault_retry_seconds = fault_retry_seconds
        self.db_path = db_path
        self.vfs = vfs
        self.link = link_for(printer.uri, resolve_virtual)  # a bad stored address: a fault, not a crash
        self.status: PrinterStatus | None = None
        self.fault_since: float | None = None
        self.last_status_at = 0.0
        self.idle_status_seconds = idle_status_seconds
        # faulty this long, its tickets go to the fallback: the printer's own setting unless a test overrides it
        self.fallback_after_seconds: float = (
            printer.fallback_after_seconds if fallback_after_seconds is None else fallback_after_seconds
        )
        self._recorded: tuple[str, str] | None = None
        self._recorded_at = 0.0
        self.printed = 0
        super().__init__(thread_name=f"printer-{printer.name}", what=f"printer {printer.name}")

    def run(self) -> None:
        conn = open_connection(self.db_path, vfs=self.vfs)
        conn.set_busy_handler(short_busy_waits())
        self.journal = PrintedJournal(self.db_path.parent, self.printer.name)
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
            self.journal.empty()  # a clean stop: every line is in the store, none is left for a later store
        except Exception:
            log.exception("print.loop_crashed", printer=self.printer.name)
            raise
        finally:
            self.link.close()
            conn.close()
            self.journal.close()
            self.journal = None

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

    def handing_over(self, conn: apsw.Connection) -> bool:
        """Whether this printer's tickets go to its fallback now: it has one, and has been unable to print for
        fallback_after_seconds (it stops when the printer says it can print again). The time counts from the
        first failed job, or from when the worker first recorded the fault, whichever is earlier: a printer
        found switched off while idle hands the next ticket over at once, not fallback_after_seconds later."""
        if self.printer.fallback is None or self.status not in UNABLE_TO_PRINT:
            return False
        faulty_for = 0.0 if self.fault_since is None else time.monotonic() - self.fault_since
        if faulty_for < self.fallback_after_seconds:
            faulty_for = max(faulty_for, printer_fault_age(conn, self.printer.name))
        return faulty_for >= self.fallback_after_seconds

    def hand_over(self, conn: apsw.Connection) -> int:
        """After the printer has been faulty for fallback_after_seconds, its waiting jobs go to the fallback
        printer, whose tickets say for whom they print; the store records the hand-over for the console
        (printer_status.fallback_to/fallback_since). Returns how many moved."""
        if self.printer.fallback is None or not self.handing_over(conn):
            return 0
        moved = hand_over_jobs(conn, self.printer.name, self.printer.fallback)
        if moved:
            log.warning("print.fallback", printer=self.printer.name, to=self.printer.fallback, jobs=moved)
        return moved

    def status_fresh(self) -> bool:
        """Whether the printer's last answer still stands: it could print, FRESH_STATUS_SECONDS ago at most (the
        answer behind the previous job's bytes, in a burst). Then the next job goes without asking first; a
        printer that ran out of paper since answers so behind the job's bytes, and the job prints again."""
        return (
            self.status is not None
            and self.status not in UNABLE_TO_PRINT
            and time.monotonic() - self.last_status_at < FRESH_STATUS_SECONDS
        )

    def claim(self, conn: apsw.Connection) -> None:
        """Take the new jobs of this printer's stations; while they go to the fallback, hand them on at once
        rather than after another status round trip to a printer known to be down."""
        claim_station_jobs(conn, self.printer.name, self.printer.stations)
        self.hand_over(conn)

    def step(self, conn: apsw.Connection) -> tuple[bool, int]:
        """Print what is queued for this printer. Returns (stopped by a fault, jobs printed)."""
        printed = 0
        self.claim(conn)
        jobs = waiting_jobs(conn, self.printer.name, JOB_BATCH)
        for job in jobs:
            if self.stop.is_set():
                return False, printed
            self.touch()
            picked_at, marks = time.time(), [time.perf_counter()]
            try:
                if not self.status_fresh():
                    self.status = self.link.status()
                    self.last_status_at = time.monotonic()
                    self.record_status(conn, self.status)
                    if self.status in UNABLE_TO_PRINT:
                        raise PrinterFault(self.status)
                marks.append(time.perf_counter())
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
                marks.append(time.perf_counter())
                attempt = start_sending(conn, job.id)
                marks.append(time.perf_counter())
                # The status queries ride behind the bytes: the answer says the printer has taken them all.
                status = self.link.send_confirmed(data * max(1, self.printer.copies))
                marks.append(time.perf_counter())
                if status in UNABLE_TO_PRINT:
                    raise PrinterFault(status, partial=True)
                # Noted before anything else: a crash from the printer taking the last byte to this line is the
                # only one that prints a whole ticket twice (REPRINT on the second). The commit follows.
                if self.journal is not None:
                    self.journal.note(job.id, attempt)
                mark_printed(conn, job.id)
                if self.journal is not None:
                    self.journal.stored()
                marks.append(time.perf_counter())
                self.status, self.last_status_at = status, time.monotonic()
                self.record_status(conn, status)
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
                picked_at=picked_at,
                ms=[round((b - a) * 1000, 2) for a, b in itertools.pairwise(marks)],  # bench/printing.py reads them
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
        poll_seconds: float = 0.02,
        fault_retry_seconds: float = 2.0,
        fallback_after_seconds: float | None = None,  # None: each printer's own (a test's override)
        idle_status_seconds: float = 10.0,
        vfs: str | None = None,
        stuck_after_seconds: float = STUCK_AFTER_SECONDS,
    ) -> None:
        super().__init__(stuck_after_seconds=stuck_after_seconds)
        self.db_path = db_path
        conn = open_connection(db_path, vfs=vfs)
        try:
            settle_journals(conn, db_path.parent)  # what the last printd saw printed but had not stored
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
