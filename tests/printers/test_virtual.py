"""The virtual printer, driven over real sockets on 127.0.0.1 the way the print worker drives a network printer."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from printers.virtual import PrinterState, StatusQueryParser, VirtualPrinter, VirtualPrinterPool, status_byte

# The table from a real Epson-compatible emulator, written out again here rather than read from the module,
# so a typo there cannot agree with itself.
EXPECTED_STATUS = {
    (PrinterState.READY, 1): 0x12,
    (PrinterState.READY, 2): 0x12,
    (PrinterState.READY, 3): 0x12,
    (PrinterState.READY, 4): 0x12,
    (PrinterState.PAPER_NEAR_END, 1): 0x12,
    (PrinterState.PAPER_NEAR_END, 2): 0x12,
    (PrinterState.PAPER_NEAR_END, 3): 0x12,
    (PrinterState.PAPER_NEAR_END, 4): 0x1E,
    (PrinterState.PAPER_OUT, 1): 0x1A,
    (PrinterState.PAPER_OUT, 2): 0x32,
    (PrinterState.PAPER_OUT, 3): 0x12,
    (PrinterState.PAPER_OUT, 4): 0x7E,
    (PrinterState.COVER_OPEN, 1): 0x1A,
    (PrinterState.COVER_OPEN, 2): 0x16,
    (PrinterState.COVER_OPEN, 3): 0x12,
    (PrinterState.COVER_OPEN, 4): 0x12,
}


def query(n: int) -> bytes:
    return bytes([0x10, 0x04, n])


@pytest.fixture
def printer() -> Iterator[VirtualPrinter]:
    with VirtualPrinter(name="test") as p:
        yield p


def connect(printer: VirtualPrinter, timeout: float = 2.0) -> socket.socket:
    sock = socket.create_connection(printer.address, timeout=timeout)
    # Without Nagle each send() leaves as its own segment, which the split-query test relies on.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def test_bytes_are_recorded_exactly_across_two_connections(printer: VirtualPrinter) -> None:
    # DLE not followed by EOT, and DLE EOT with an n outside 1..4, are print data like any other byte;
    # the first job ends on a DLE the printer must hold back, then record when the connection closes.
    first = b"\x1b@Table A1\n\x10\x11\x10\x04\x00\x10\x04\x05 raster \x10"
    second = b"\x1dV\x00 cut \x10\x10\x04\x09"
    with connect(printer) as client:
        client.sendall(first)
    assert printer.wait_for(lambda got: got == first, timeout=3)
    with connect(printer) as client:
        client.sendall(second)
    assert printer.wait_for(lambda got: len(got) >= len(first + second), timeout=3)
    assert printer.received == first + second
    assert printer.discarded == b""
    assert printer.connections == 2
    printer.clear()
    assert printer.received == b""


def test_a_query_inside_a_job_is_answered_and_left_out_of_the_print_data(printer: VirtualPrinter) -> None:
    with connect(printer) as client:
        client.sendall(b"AB" + query(1) + b"CD" + query(4))
        assert client.recv(2) == bytes([0x12, 0x12])
        client.sendall(b"\x10\x04\x10\x04\x02EF")  # DLE EOT DLE: data; then a real DLE EOT 2
        assert client.recv(1) == b"\x12"
    assert printer.wait_for(lambda got: got.endswith(b"EF"), timeout=3)
    assert printer.received == b"ABCD\x10\x04EF"


@pytest.mark.parametrize("n", [1, 2, 3, 4])
@pytest.mark.parametrize("state", list(PrinterState))
@pytest.mark.parametrize("split", [False, True], ids=["whole", "split"])
def test_each_status_query_answers_the_emulator_byte(
    printer: VirtualPrinter, state: PrinterState, n: int, split: bool
) -> None:
    printer.state = state
    with connect(printer) as client:
        if split:
            client.sendall(b"\x10")
            time.sleep(0.02)  # let the lone DLE arrive on its own before the rest of the query
            client.sendall(bytes([0x04, n]))
        else:
            client.sendall(query(n))
        answer = client.recv(16)
    assert answer == bytes([EXPECTED_STATUS[state, n]])
    assert status_byte(state, n) == EXPECTED_STATUS[state, n]
    assert printer.received == b"" and printer.discarded == b""


def test_the_parser_finds_a_query_split_at_every_position() -> None:
    stream = b"x\x10y" + query(2) + b"z\x10\x04" + query(3) + b"\x10"
    expected_data = b"x\x10yz\x10\x04\x10"
    for cut in range(len(stream) + 1):
        for step in (1, 2, 3, len(stream)):
            parser = StatusQueryParser()
            pieces: list[bytes | int] = []
            for chunk in (stream[:cut], stream[cut:]):
                for i in range(0, len(chunk), step):
                    pieces += parser.feed(chunk[i : i + step])
            data = b"".join(p for p in pieces if isinstance(p, bytes)) + parser.flush()
            assert data == expected_data, (cut, step)
            assert [p for p in pieces if isinstance(p, int)] == [2, 3], (cut, step)


def test_status_byte_rejects_an_unknown_query() -> None:
    with pytest.raises(ValueError):
        status_byte(PrinterState.READY, 5)


def test_a_silent_printer_records_data_but_never_answers(printer: VirtualPrinter) -> None:
    printer.silent = True
    with connect(printer, timeout=0.3) as client:
        client.sendall(b"job" + query(1) + b"more")
        with pytest.raises(socket.timeout):
            client.recv(1)
    assert printer.wait_for(lambda got: got == b"jobmore", timeout=3)


def test_paper_out_discards_data_until_paper_is_back(printer: VirtualPrinter) -> None:
    printer.state = PrinterState.PAPER_OUT
    with connect(printer) as client:
        # A status query after the data doubles as a barrier: its answer means the data before it was handled.
        client.sendall(b"ticket 1" + query(4))
        assert client.recv(1) == b"\x7e"
        assert printer.discarded == b"ticket 1"
        assert printer.received == b""
        printer.state = "ready"
        client.sendall(b"ticket 2" + query(4))
        assert client.recv(1) == b"\x12"
    assert printer.received == b"ticket 2"
    assert printer.discarded == b"ticket 1"


def test_cover_open_discards_data_too(printer: VirtualPrinter) -> None:
    printer.state = PrinterState.COVER_OPEN
    with connect(printer) as client:
        client.sendall(b"ticket" + query(2))
        assert client.recv(1) == b"\x16"
    assert (printer.received, printer.discarded) == (b"", b"ticket")


def send_until_failure(client: socket.socket, job: bytes) -> str:
    """How the client saw the job end: "reset" (an error), "closed" (EOF), or "finished" (never cut off)."""
    try:
        for i in range(0, len(job), 16384):
            client.sendall(job[i : i + 16384])
        # Everything may have fit into socket buffers before the reset came back; the read shows it.
        return "closed" if client.recv(1) == b"" else "finished"
    except (ConnectionResetError, BrokenPipeError):
        return "reset"


def test_drop_after_cuts_the_connection_mid_job(printer: VirtualPrinter) -> None:
    job = bytes(range(256)) * 4096  # 1 MiB; has DLE only before 0x11, so no status query in it
    printer.drop_after = 1000
    with connect(printer) as client:
        outcome = send_until_failure(client, job)
    assert outcome in {"reset", "closed"}
    assert printer.wait_for(lambda got: len(got) >= 1000, timeout=3)
    assert printer.received == job[:1000]
    assert printer.drop_after is None
    # The printer is still up: the next connection prints in full.
    with connect(printer) as client:
        client.sendall(b"retry" + query(1))
        assert client.recv(1) == b"\x12"
    assert printer.received == job[:1000] + b"retry"
    assert printer.connections == 2


def test_drop_after_counts_only_print_data(printer: VirtualPrinter) -> None:
    printer.drop_after = 4
    with connect(printer) as client:
        client.sendall(b"ab" + query(1))
        assert client.recv(1) == b"\x12"
        assert printer.drop_after == 2
        outcome = send_until_failure(client, b"cdef" * 10000)
    assert outcome in {"reset", "closed"}
    assert printer.wait_for(lambda got: got == b"abcd", timeout=3)


def test_wait_for_returns_true_on_arrival_and_false_on_timeout(printer: VirtualPrinter) -> None:
    with connect(printer) as client:
        client.sendall(b"order 17 done")
        assert printer.wait_for(lambda got: got.endswith(b"done"), timeout=3) is True
    started = time.monotonic()
    assert printer.wait_for(lambda got: b"never" in got, timeout=0.2) is False
    waited = time.monotonic() - started
    assert 0.2 <= waited < 1.0


def test_stop_returns_promptly_with_an_idle_client_connected() -> None:
    printer = VirtualPrinter(name="idle").start()
    try:
        client = connect(printer)
    except BaseException:
        printer.stop()
        raise
    with client:
        client.sendall(b"\x10")  # a half-sent query must not keep the printer waiting either
        started = time.monotonic()
        printer.stop()
        elapsed = time.monotonic() - started
        assert elapsed < 1.0
        assert not any(t.name == "virtual-printer-idle" for t in threading.enumerate())
        # The printer closed our connection: EOF, or a reset if our DLE was still unread in its buffer.
        try:
            assert client.recv(1) == b""
        except ConnectionResetError:
            pass
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(printer.address, timeout=1).close()
    printer.stop()  # a second stop is harmless


def test_the_pool_starts_one_printer_per_name_and_stops_them_all() -> None:
    pool = VirtualPrinterPool()
    try:
        kitchen = pool.get_or_start("kitchen")
        bar = pool.get_or_start("bar")
        assert pool.get_or_start("kitchen") is kitchen
        assert kitchen is not bar and kitchen.address != bar.address
        assert pool.names() == ["bar", "kitchen"]
        assert kitchen.uri == f"tcp://127.0.0.1:{kitchen.address[1]}"
        for printer, ticket in ((kitchen, b"noodles"), (bar, b"tea")):
            with connect(printer) as client:
                client.sendall(ticket + query(1))
                assert client.recv(1) == b"\x12"
        assert (kitchen.received, bar.received) == (b"noodles", b"tea")
    finally:
        pool.stop_all()
    assert pool.names() == []
    for printer in (kitchen, bar):
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(printer.address, timeout=1).close()
