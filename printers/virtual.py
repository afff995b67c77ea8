"""A simulated network ESC/POS receipt printer on a real TCP socket, for tests and the demo store's `virtual://` printers."""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from enum import StrEnum

__all__ = ["PrinterState", "StatusQueryParser", "VirtualPrinter", "VirtualPrinterPool", "status_byte"]

DLE = 0x10
EOT = 0x04
STATUS_QUERY_NUMBERS = (1, 2, 3, 4)


class PrinterState(StrEnum):
    READY = "ready"
    PAPER_NEAR_END = "paper_near_end"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"


# The answers of a real Epson-compatible emulator to DLE EOT n (n=1 printer, 2 offline cause, 4 paper sensor),
# copied byte for byte so the status decoder is tested against what hardware sends, not against our own guesses.
_STATUS: dict[PrinterState, dict[int, int]] = {
    PrinterState.READY: {1: 0x12, 2: 0x12, 4: 0x12},
    PrinterState.PAPER_NEAR_END: {1: 0x12, 2: 0x12, 4: 0x1E},
    PrinterState.PAPER_OUT: {1: 0x1A, 2: 0x32, 4: 0x7E},
    PrinterState.COVER_OPEN: {1: 0x1A, 2: 0x16, 4: 0x12},
}
# n=3 (error cause) reports "no error" in every state: none of the simulated faults is an error in ESC/POS terms.
_ERROR_STATUS_OK = 0x12

# States in which paper cannot come out, so print data is kept apart from what was "printed".
_CANNOT_PRINT = frozenset({PrinterState.PAPER_OUT, PrinterState.COVER_OPEN})


def status_byte(state: PrinterState, n: int) -> int:
    """The byte a printer in `state` answers to DLE EOT n (n in 1..4)."""
    if n not in STATUS_QUERY_NUMBERS:
        raise ValueError(f"DLE EOT n takes n in 1..4, not {n}")
    return _ERROR_STATUS_OK if n == 3 else _STATUS[PrinterState(state)][n]


class StatusQueryParser:
    """Splits a byte stream, fed in arbitrary pieces, into print data (bytes) and status queries (the int n).

    DLE EOT n is taken as a real-time status query wherever it appears, even inside raster image data or
    a command's parameters: real printers scan for real-time commands the same way, which is why drivers
    avoid sending those three bytes in data. A DLE, or DLE EOT, at the end of a piece is held back until the
    next piece says whether it starts a query; `flush` hands it over as data when the stream ends.
    """

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, chunk: bytes) -> list[bytes | int]:
        buf = self._pending + chunk
        out: list[bytes | int] = []
        start = 0  # first byte not yet emitted
        search = 0
        held = len(buf)  # where an incomplete query begins, if any
        while True:
            i = buf.find(DLE, search)
            if i == -1:
                break
            if i + 1 >= len(buf) or (buf[i + 1] == EOT and i + 2 >= len(buf)):
                held = i
                break
            if buf[i + 1] == EOT and buf[i + 2] in STATUS_QUERY_NUMBERS:
                if i > start:
                    out.append(buf[start:i])
                out.append(buf[i + 2])
                start = search = i + 3
            else:
                # A lone DLE (or DLE EOT with another n) is ordinary data; only its own byte is settled, the
                # next one may still start a query (as in DLE EOT DLE EOT 1).
                search = i + 1
        if held > start:
            out.append(buf[start:held])
        self._pending = buf[max(start, held) :]
        return out

    def flush(self) -> bytes:
        """The held-back bytes, which are data now that no more bytes will come."""
        tail, self._pending = self._pending, b""
        return tail


class _Client:
    __slots__ = ("outbox", "parser", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.parser = StatusQueryParser()
        self.outbox = bytearray()  # status answers the client has not taken yet


class VirtualPrinter:
    """A printer listening on TCP like a JetDirect/port 9100 receipt printer, recording what it is sent.

    Serving happens in one daemon thread with a selector, so a dead or idle client never blocks another
    one or `stop()`. Everything the tests read or set (state, received, drop_after, ...) is guarded by one
    lock, because the serving thread changes it while the test thread looks.
    """

    def __init__(self, name: str = "virtual", host: str = "127.0.0.1", port: int = 0) -> None:
        self.name = name
        self.host = host
        self.port = port
        self._cond = threading.Condition()
        self._state = PrinterState.READY
        self._silent = False
        self._drop_after: int | None = None
        self._received = bytearray()
        self._discarded = bytearray()
        self._connections = 0
        self._open = 0
        self._queries = 0
        self._address: tuple[str, int] | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._selector: selectors.BaseSelector | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._clients: set[_Client] = set()
        # Called from the serving thread with each piece of print data as it is kept, and the
        # time.perf_counter() of its arrival: a bench times the cut's arrival without polling `received`.
        self.on_data: Callable[[bytes, float], None] | None = None

    def __repr__(self) -> str:
        where = self.uri if self._address else "not started"
        return f"<VirtualPrinter {self.name!r} {where} {self.state}>"

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> VirtualPrinter:
        if self._thread is not None:
            raise RuntimeError(f"virtual printer {self.name!r} is already running")
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        listener = socket.socket(family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind((self.host, self.port))
            listener.listen(16)
            listener.setblocking(False)
            wake_r, wake_w = socket.socketpair()
        except BaseException:
            listener.close()
            raise
        wake_r.setblocking(False)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ, "listener")
        selector.register(wake_r, selectors.EVENT_READ, "wake")
        host, port = listener.getsockname()[:2]
        self._address = (host, port)
        self._listener, self._selector, self._wake_r, self._wake_w = listener, selector, wake_r, wake_w
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name=f"virtual-printer-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._stopping.set()
        assert self._wake_w is not None
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # the loop also re-checks the flag on its own timeout
        thread.join()
        # Closed here, after the join, so the serving thread never touches a closed socket.
        for client in list(self._clients):
            client.sock.close()
        self._clients.clear()
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        if self._selector is not None:
            self._selector.close()
        self._listener = self._wake_r = self._wake_w = None
        self._selector = None
        self._thread = None

    def __enter__(self) -> VirtualPrinter:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._thread is not None

    @property
    def address(self) -> tuple[str, int]:
        # Kept after stop() so a test can show the port now refuses connections.
        if self._address is None:
            raise RuntimeError(f"virtual printer {self.name!r} has not been started")
        return self._address

    @property
    def uri(self) -> str:
        host, port = self.address
        return f"tcp://[{host}]:{port}" if ":" in host else f"tcp://{host}:{port}"

    # -- what tests set and read -----------------------------------------------------------------------

    @property
    def state(self) -> PrinterState:
        with self._cond:
            return self._state

    @state.setter
    def state(self, value: PrinterState | str) -> None:
        with self._cond:
            self._state = PrinterState(value)

    @property
    def silent(self) -> bool:
        with self._cond:
            return self._silent

    @silent.setter
    def silent(self, value: bool) -> None:
        with self._cond:
            self._silent = bool(value)

    @property
    def drop_after(self) -> int | None:
        """Print data bytes still to accept before resetting the connection; None never drops."""
        with self._cond:
            return self._drop_after

    @drop_after.setter
    def drop_after(self, value: int | None) -> None:
        if value is not None and value < 0:
            raise ValueError("drop_after counts bytes and cannot be negative")
        with self._cond:
            self._drop_after = value

    @property
    def received(self) -> bytes:
        with self._cond:
            return bytes(self._received)

    @property
    def discarded(self) -> bytes:
        """Print data that arrived while the printer could not print (paper out, cover open)."""
        with self._cond:
            return bytes(self._discarded)

    @property
    def connections(self) -> int:
        with self._cond:
            return self._connections

    @property
    def open_connections(self) -> int:
        """Clients connected now (a killed client's connection closes once its last bytes are read)."""
        with self._cond:
            return self._open

    def clear(self) -> None:
        """Forget the received (and discarded) bytes."""
        with self._cond:
            self._received.clear()
            self._discarded.clear()

    @property
    def queries(self) -> int:
        """Status queries (DLE EOT n) received so far, answered or not."""
        with self._cond:
            return self._queries

    def wait_idle(self, timeout: float = 5.0) -> bool:
        """Block until no client is connected (a killed client's last bytes read and its connection closed)."""
        with self._cond:
            return self._cond.wait_for(lambda: self._open == 0, timeout)

    def wait_for(self, predicate: Callable[[bytes], bool], timeout: float = 5.0) -> bool:
        """Block until predicate(received) holds; False on timeout. The predicate runs under the lock: keep it quick."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(bytes(self._received)), timeout)

    # -- serving thread --------------------------------------------------------------------------------

    def _serve(self) -> None:
        selector = self._selector
        assert selector is not None
        while not self._stopping.is_set():
            # The timeout is only a safety net; stop() wakes the loop through the socket pair.
            for key, mask in selector.select(timeout=0.5):
                if key.data == "listener":
                    self._accept()
                elif key.data == "wake":
                    self._drain_wake()
                else:
                    client: _Client = key.data
                    if mask & selectors.EVENT_READ and client in self._clients:
                        self._on_readable(client)
                    if mask & selectors.EVENT_WRITE and client in self._clients:
                        self._flush(client)

    def _drain_wake(self) -> None:
        assert self._wake_r is not None
        try:
            self._wake_r.recv(64)
        except OSError:
            pass

    def _accept(self) -> None:
        assert self._listener is not None and self._selector is not None
        while True:
            try:
                sock, _ = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # e.g. the client reset before we accepted: nothing to serve
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # answer status queries at once
            client = _Client(sock)
            self._clients.add(client)
            self._selector.register(sock, selectors.EVENT_READ, client)
            with self._cond:
                self._connections += 1
                self._open += 1

    def _on_readable(self, client: _Client) -> None:
        try:
            chunk = client.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._close(client)
            return
        if not chunk:
            tail = client.parser.flush()
            if tail:
                self._record(tail)
            self._close(client)
            return
        for piece in client.parser.feed(chunk):
            if isinstance(piece, int):
                answer = self._answer(piece)
                if answer is not None:
                    client.outbox.append(answer)
            elif not self._record(piece):
                self._close(client, reset=True)
                return
        self._flush(client)

    def _answer(self, n: int) -> int | None:
        with self._cond:
            self._queries += 1
            if self._silent:
                return None
            return status_byte(self._state, n)

    def _record(self, data: bytes) -> bool:
        """Keep print data; False when drop_after was reached and the connection must be reset."""
        at = time.perf_counter()
        keep = True
        with self._cond:
            if self._drop_after is not None:
                if len(data) >= self._drop_after:
                    data = data[: self._drop_after]
                    self._drop_after = None
                    keep = False
                else:
                    self._drop_after -= len(data)
            printed = self._state not in _CANNOT_PRINT
            (self._received if printed else self._discarded).extend(data)
            self._cond.notify_all()
        if printed and self.on_data is not None:
            self.on_data(data, at)
        return keep

    def _flush(self, client: _Client) -> None:
        while client.outbox:
            try:
                sent = client.sock.send(client.outbox)
            except (BlockingIOError, InterruptedError):
                break
            except OSError:
                self._close(client)
                return
            del client.outbox[:sent]
        # Only ask to be told about writability while answers are waiting, or select would spin.
        assert self._selector is not None
        wanted = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.outbox else 0)
        if self._selector.get_key(client.sock).events != wanted:
            self._selector.modify(client.sock, wanted, client)

    def _close(self, client: _Client, reset: bool = False) -> None:
        assert self._selector is not None
        self._clients.discard(client)
        self._selector.unregister(client.sock)
        with self._cond:
            self._open -= 1
            self._cond.notify_all()
        if reset:
            # Linger 0 makes close() send RST, so the client sees the abrupt failure of a printer losing power.
            try:
                client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        client.sock.close()


class VirtualPrinterPool:
    """One running VirtualPrinter per name, so every `virtual://NAME` printer URI of a store gets its own."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        self.host = host
        self._lock = threading.Lock()
        self._printers: dict[str, VirtualPrinter] = {}

    def get_or_start(self, name: str) -> VirtualPrinter:
        with self._lock:
            printer = self._printers.get(name)
            if printer is None:
                printer = VirtualPrinter(name=name, host=self.host).start()
                self._printers[name] = printer
            return printer

    def get(self, name: str) -> VirtualPrinter | None:
        with self._lock:
            return self._printers.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return sorted(self._printers)

    def stop_all(self) -> None:
        with self._lock:
            printers = list(self._printers.values())
            self._printers.clear()
        for printer in printers:
            printer.stop()

    def __enter__(self) -> VirtualPrinterPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop_all()
