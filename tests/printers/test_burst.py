"""A burst through the print worker: one status round trip per ticket (the queries ride behind its bytes), the
answer behind the bytes caught when paper ran out mid-burst, 'printed' stored at once without leaving the store's
connection unsynced, and SQLite's busy waits retried every millisecond. Speed is bench/printing.py's; here only
what the code did."""

from __future__ import annotations

import apsw
import pytest

from appliance.db.connection import open_connection
from appliance.db.printing import mark_printed, start_sending
from appliance.domain.printing import FileAddress, PrinterStatus, TcpAddress
from printers import worker as worker_module
from printers.connection import EscposLink, PrinterFault
from printers.virtual import PrinterState, VirtualPrinter
from printers.worker import short_busy_waits
from tests.printers.test_worker import TICKET_END, job_states, place, settle, tickets

DATA = b"\x1b@hello\n\x1bd\x04\x1dV\x00"


def link_to(printer: VirtualPrinter) -> EscposLink:
    host, port = printer.address
    return EscposLink(TcpAddress(host, port), timeout=2.0, status_timeout=0.05)


def test_a_burst_asks_each_printer_once_per_ticket(settings, shop, printers):
    orders = place(shop, 20, items=("har_gow", "mineral_water"))
    with worker_module.PrintWorker(
        settings.db_path, poll_seconds=0.01, fault_retry_seconds=0.05, idle_status_seconds=600
    ):
        assert settle(shop, {"printed": 2 * len(orders)})
    for printer in printers.values():
        printed = tickets(printer.received)
        assert len(printed) == len(orders)
        assert not any("REPRINT" in row for t in printed for row in t)
        # one status query of three before the first ticket, then the three behind each ticket's bytes (the
        # worker used to ask before and after every ticket: 6 per ticket)
        assert printer.queries == 3 * (len(orders) + 1)


def test_paper_out_found_behind_a_tickets_bytes_prints_it_again_headed_reprint(settings, shop, printers, monkeypatch):
    monkeypatch.setattr(worker_module, "FRESH_STATUS_SECONDS", 600.0)  # never ask before a ticket once answered
    kitchen = printers["kitchen"]
    place(shop, 1)
    with worker_module.PrintWorker(
        settings.db_path, poll_seconds=0.01, fault_retry_seconds=0.05, idle_status_seconds=600
    ):
        assert settle(shop, {"printed": 1})
        kitchen.state = PrinterState.PAPER_OUT  # runs out between two tickets: the worker's last answer was 'ready'
        second = place(shop, 1)[0]
        assert kitchen.wait_for(lambda _: TICKET_END in kitchen.discarded, timeout=10)
        assert settle(shop, {"printed": 1, "sending": 1})  # it went out, the printer said paper out behind it
        kitchen.state = PrinterState.READY
        assert kitchen.wait_for(lambda b: b.count(TICKET_END) == 2, timeout=10)
        assert settle(shop, {"printed": 2})
    first, again = tickets(kitchen.received)
    assert not any("REPRINT" in row for row in first)
    assert again[0] == "*** 重印 REPRINT ***" and f"#{second['ticket_no']}" in " ".join(again)
    assert kitchen.discarded.count(TICKET_END) == 1


def test_send_confirmed_answers_after_the_bytes(printers):
    kitchen = printers["kitchen"]
    link = link_to(kitchen)
    try:
        assert link.send_confirmed(DATA) == PrinterStatus.READY
        assert kitchen.received == DATA and kitchen.queries == 3  # one write: the bytes, then the three queries
        kitchen.state = PrinterState.PAPER_OUT
        assert link.send_confirmed(DATA) == PrinterStatus.PAPER_OUT
        assert kitchen.discarded == DATA and kitchen.received == DATA
    finally:
        link.close()


def test_send_confirmed_with_no_answer_is_a_partial_fault(printers):
    kitchen = printers["kitchen"]
    kitchen.silent = True
    link = link_to(kitchen)
    with pytest.raises(PrinterFault) as caught:
        link.send_confirmed(DATA)
    assert caught.value.status == PrinterStatus.NO_ANSWER and caught.value.partial
    assert kitchen.received == DATA  # the bytes went once; only the queries were asked again
    assert kitchen.queries == 3 * 5


def test_send_confirmed_cut_off_mid_job_is_a_partial_fault(printers):
    kitchen = printers["kitchen"]
    kitchen.drop_after = 5
    link = link_to(kitchen)
    with pytest.raises(PrinterFault) as caught:
        link.send_confirmed(DATA)
    assert caught.value.status == PrinterStatus.UNPLUGGED and caught.value.partial
    assert kitchen.received == DATA[:5]


def test_send_confirmed_to_a_device_file(tmp_path):
    device = tmp_path / "lp0"
    device.write_bytes(b"")
    link = EscposLink(FileAddress(str(device)))
    try:
        assert link.send_confirmed(DATA) == PrinterStatus.READY  # a file cannot answer: written is all we know
    finally:
        link.close()
    assert device.read_bytes() == DATA


def test_mark_printed_leaves_the_connection_synced(settings, shop):
    place(shop, 1)
    job = shop.execute("SELECT id FROM print_jobs").fetchone()[0]
    start_sending(shop, job)
    mark_printed(shop, job)
    assert job_states(shop) == {"printed": 1}
    assert shop.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL again for every other commit


def test_short_busy_waits_retry_until_the_lock_is_free_then_give_up_after_the_timeout(settings, shop):
    place(shop, 1)
    job = shop.execute("SELECT id FROM print_jobs").fetchone()[0]
    holder = open_connection(settings.db_path)
    calls: list[int] = []
    handler = short_busy_waits(10.0)

    def counting(prior: int) -> bool:
        calls.append(prior)
        if prior == 3:
            holder.execute("COMMIT")  # the other writer finishes while we wait
        return handler(prior)

    shop.set_busy_handler(counting)
    holder.execute("BEGIN IMMEDIATE")
    start_sending(shop, job)
    assert calls == [0, 1, 2, 3]  # asked again after each 1 ms wait; in on the try after the commit
    assert job_states(shop) == {"sending": 1}

    shop.set_busy_handler(short_busy_waits(0.0))
    holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(apsw.BusyError):
            mark_printed(shop, job)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert shop.execute("PRAGMA synchronous").fetchone()[0] == 2


def test_a_busy_handler_alone_gives_up_only_after_its_timeout():
    handler = short_busy_waits(0.0)
    assert handler(0) is True  # the first wait always happens
    assert handler(1) is False
    waits = short_busy_waits(60.0)
    assert all(waits(n) for n in range(5))


def test_the_journal_settles_what_the_printer_took_and_nothing_else(settings, shop):
    from printers.worker import PrintedJournal, settle_journals

    place(shop, 4)
    jobs = [j for (j,) in shop.execute("SELECT id FROM print_jobs ORDER BY id")]
    attempts = {j: start_sending(shop, j) for j in jobs[:3]}
    assert attempts == dict.fromkeys(jobs[:3], 1)
    assert start_sending(shop, jobs[2]) == 2  # tried again since: the journal's first attempt is not this one
    journal = PrintedJournal(settings.data_dir, "kitchen 厨房/1")  # any name makes a file name
    journal.note(jobs[0], 1)  # taken by the printer, the kill came before the commit
    journal.note(jobs[2], 1)
    journal.close()
    with journal.path.open("ab") as torn:
        torn.write(f"{jobs[1]} ".encode())  # the kill tore the last line: not a line
    assert settle_journals(shop, settings.data_dir) == 1
    states = dict(shop.execute("SELECT id, state FROM print_jobs"))
    assert [states[j] for j in jobs] == ["printed", "sending", "sending", "pending"]
    assert journal.path.read_bytes() == b""  # emptied once stored
    assert settle_journals(shop, settings.data_dir) == 0


def test_a_clean_stop_leaves_the_journals_empty(settings, shop, printers):
    place(shop, 3)
    with worker_module.PrintWorker(settings.db_path, poll_seconds=0.01, fault_retry_seconds=0.05):
        assert settle(shop, {"printed": 3})
        journals = sorted(settings.data_dir.glob(worker_module.JOURNAL_GLOB))
        assert len(journals) == 2  # one per printer thread
        assert sum(len(j.read_bytes().splitlines()) for j in journals) == 3  # a line per printed job, so far
    assert [j.read_bytes() for j in journals] == [b"", b""]
