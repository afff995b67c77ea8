"""One adapter over python-escpos for every kind of printer link: explicit timeouts, reopen after any failure,
retried status reads, and every library error turned into one PrinterFault with a reason."""

from __future__ import annotations

import errno
import os
import socket
import termios
import time
from collections.abc import Callable
from typing import Any

from appliance.domain.printing import (
    REASONS,
    FileAddress,
    PrinterAddress,
    PrinterStatus,
    SerialAddress,
    TcpAddress,
    UsbAddress,
    parse_printer_address,
    parse_status,
)
from appliance.errors import TableboxError

STATUS_QUERIES = (b"\x10\x04\x01", b"\x10\x04\x02", b"\x10\x04\x04")
STATUS_TRIES = 5  # Odoo's IoT box: the first USB status read often returns nothing
STATUS_RETRY_SECONDS = 0.05


class PrinterFault(TableboxError):
    """The printer cannot take or confirm a job now. `status` says why; `partial` that bytes may have
    reached the paper (the job must print again marked REPRINT, never silently twice)."""

    def __init__(self, status: PrinterStatus, detail: str = "", partial: bool = False) -> None:
        super().__init__(f"{REASONS[status]}{': ' + detail if detail else ''}")
        self.status = status
        self.detail = detail
        self.partial = partial


# -- What a failure means, in the technician's terms -----------------------------------------------------------------
# python-escpos's own texts name a USB printer by `tuple(usb_args.values())` (a lambda's repr and the ids in
# decimal) and wrap the cause in DeviceNotFoundError, keeping the real exception as __context__: the open() of Usb,
# Serial and File catches (AssertionError | USBError), (ValueError | SerialException) and OSError respectively and
# raises DeviceNotFoundError inside the except block. The cause is read from that chain, never from its text.
_GONE = frozenset({errno.ENOENT, errno.ENODEV, errno.ENXIO})
_DENIED = frozenset({errno.EACCES, errno.EPERM})
_UNREACHABLE = frozenset({errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EHOSTDOWN})
_DROPPED = frozenset({errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED})
UDEV_RULE = "provision/udev/99-tablebox-printers.rules"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def _errno(chain: list[BaseException]) -> int | None:
    """The OS error number behind a failure (USBError and SerialException are OSErrors that carry one too)."""
    for exc in chain:
        number = getattr(exc, "errno", None)
        if isinstance(exc, termios.error) and exc.args and isinstance(exc.args[0], int):
            number = exc.args[0]  # pyserial's tcgetattr on a file that is no terminal: (ENOTTY, text)
        if isinstance(number, int):
            return number
    return None


def _raw(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}"[:160] if text else type(exc).__name__


def explain_failure(target: PrinterAddress, exc: BaseException, *, timeout: float) -> tuple[PrinterStatus, str]:
    """The status and the words for a failure to open, read from or write to a printer: its address as the
    technician typed it and the likely cause (not plugged in / switched off, no permission: the groups the
    service user needs, see systemd/tablebox-printd.service; busy; unreachable), never a library's repr."""
    chain = _chain(exc)
    number = _errno(chain)
    names = {type(e).__name__ for e in chain}
    where = target.uri
    if isinstance(target, UsbAddress):
        return _explain_usb(target, chain, number, names)
    if isinstance(target, TcpAddress):
        return _explain_tcp(target, chain, number, timeout)
    path = target.device if isinstance(target, SerialAddress) else target.path
    group = "dialout" if isinstance(target, SerialAddress) else "lp"
    listing = "ls /dev/ttyUSB* /dev/ttyACM*" if isinstance(target, SerialAddress) else "ls /dev/usb/"
    if number in _GONE:
        return PrinterStatus.UNPLUGGED, (
            f"{where}: there is no device {path}: not plugged in or switched off (`{listing}` shows what is there)"
        )
    if number in _DENIED:
        return PrinterStatus.NO_ACCESS, (
            f"{where}: no permission to open {path}: the print service's user must be in group {group} "
            f"(`ls -l {path}` shows the device's group)"
        )
    if number == errno.EBUSY:
        return PrinterStatus.NO_ACCESS, f"{where}: {path} is in use by another program (`fuser -v {path}` names it)"
    if number == errno.EROFS or number == errno.EISDIR:
        return PrinterStatus.NO_ACCESS, f"{where}: {path} is not a printer's device file (they are under /dev)"
    if number in (errno.ENOTTY, errno.EINVAL) and isinstance(target, SerialAddress):
        return PrinterStatus.NO_ACCESS, f"{where}: {path} is not a serial port (`{listing}` shows those there are)"
    if number == errno.EIO:
        return PrinterStatus.UNPLUGGED, f"{where}: input/output error on {path}: unplugged or switched off"
    if "TimeoutError" in names or "SerialTimeoutException" in names or number == errno.ETIMEDOUT:
        return PrinterStatus.UNPLUGGED, f"{where}: the printer took nothing in {timeout:g} s: switched off or stuck"
    return PrinterStatus.UNPLUGGED, f"{where}: cannot open {path}: {_raw(chain[-1])}"


def _explain_usb(
    target: UsbAddress, chain: list[BaseException], number: int | None, names: set[str]
) -> tuple[PrinterStatus, str]:
    where, ids = target.uri, target.ids
    permission = (
        f"the print service's user must be in group lp, and a udev rule must give this printer to lp "
        f"({UDEV_RULE} lists the usual vendors and any printer-class device; `lsusb -d {ids}` then "
        f"`ls -l /dev/bus/usb/BUS/DEVICE` shows its group)"
    )
    if "NoBackendError" in names:
        return PrinterStatus.NO_ACCESS, f"{where}: libusb is not installed on this box (apt install libusb-1.0-0)"
    if number in _DENIED:
        return PrinterStatus.NO_ACCESS, f"{where}: no permission to open USB device {ids}: {permission}"
    if any(isinstance(e, ValueError) and "langid" in str(e) for e in chain):
        # pyusb reads the serial number to match it; without permission it reads no language id and says so.
        return PrinterStatus.NO_ACCESS, (
            f"{where}: no permission to read the serial numbers of the USB devices {ids}: {permission}"
        )
    if number == errno.EBUSY:
        return PrinterStatus.NO_ACCESS, f"{where}: USB device {ids} is in use by another program (CUPS?)"
    if number == errno.ETIMEDOUT or "USBTimeoutError" in names:
        return PrinterStatus.UNPLUGGED, f"{where}: the USB printer {ids} did not answer in time: switched off or stuck"
    if number in _GONE or number == errno.EIO or number == errno.EPIPE:
        return PrinterStatus.UNPLUGGED, f"{where}: USB device {ids} went away: unplugged or switched off"
    if any(isinstance(e, AssertionError) for e in chain) or "DeviceNotFoundError" in names:
        which = f"USB device {ids} with serial number {target.serial}" if target.serial else f"USB device {ids}"
        serials = f"; `lsusb -v -d {ids} | grep iSerial` shows the serial numbers" if target.serial else ""
        return PrinterStatus.UNPLUGGED, (
            f"{where}: no {which} is connected: not plugged in or switched off (`lsusb` lists what is{serials})"
        )
    return PrinterStatus.UNPLUGGED, f"{where}: cannot open USB device {ids}: {_raw(chain[-1])}"


def _explain_tcp(
    target: TcpAddress, chain: list[BaseException], number: int | None, timeout: float
) -> tuple[PrinterStatus, str]:
    where, host, port = target.uri, target.host, target.port
    selftest = "the printer's self-test page shows its IP address and port"
    if any(isinstance(e, socket.gaierror) for e in chain):
        return (
            PrinterStatus.NO_ACCESS,
            f"{where}: the box does not know the host name {host}: give its IP address ({selftest})",
        )
    if number == errno.ECONNREFUSED:
        return PrinterStatus.UNPLUGGED, (
            f"{where}: {host} refused port {port}: a printer still starting up, another port, or another device "
            f"at that address ({selftest})"
        )
    if number in _DENIED:
        # systemd/tablebox-printd.service: IPAddressAllow= lets the worker reach private addresses only (EPERM).
        return PrinterStatus.NO_ACCESS, (
            f"{where}: the print service may not reach {host}: it reaches the store's network only"
        )
    if number in _UNREACHABLE:
        return PrinterStatus.UNPLUGGED, f"{where}: no route to {host}: switched off or not on this network ({selftest})"
    if number in _DROPPED:
        return PrinterStatus.UNPLUGGED, (
            f"{where}: the printer closed the connection: switched off, or another program holds its one connection"
        )
    if number == errno.ETIMEDOUT or any(isinstance(e, TimeoutError) for e in chain):
        return PrinterStatus.UNPLUGGED, (
            f"{where}: no answer from {host} within {timeout:g} s: switched off, its network cable out, or its "
            f"address changed ({selftest})"
        )
    return PrinterStatus.UNPLUGGED, f"{where}: cannot connect: {_raw(chain[-1])}"


def no_answer_detail(target: PrinterAddress) -> str:
    """Why a printer that took the status queries may have said nothing."""
    if isinstance(target, SerialAddress):
        return (
            f"{target.uri}: no reply to a status query at {target.baudrate} baud: switched off, or the printer is "
            f"set to another baud rate (its self-test page shows it; ?baudrate=N in the address) or another "
            f"handshake"
        )
    if isinstance(target, TcpAddress):
        return f"{target.uri}: connected, but no reply to a status query: not an ESC/POS printer on that port?"
    return f"{target.uri}: no reply to a status query: switch the printer off and on"


def link_for(uri: str, resolve_virtual: Callable[[str], str] | None = None, **options: float) -> EscposLink:
    """The link to a printer from its stored address. An address that does not parse (saved before `printers add`
    checked every form, or edited in the database) gives a link whose every use is a set-up fault saying what is
    wrong with it: one printer's bad address must not stop the worker, and the others print on."""
    try:
        return EscposLink(parse_printer_address(uri, resolve_virtual), **options)
    except ValueError as exc:
        return InvalidAddressLink(uri, str(exc))


class EscposLink:
    """Opens lazily and again after every failure; never lets a python-escpos, usb, serial or socket
    exception escape."""

    def __init__(self, target: PrinterAddress, timeout: float = 5.0, status_timeout: float = 0.5) -> None:
        self.target = target
        self.timeout = timeout
        self.status_timeout = status_timeout
        self._device: Any = None

    def _make(self) -> Any:
        from escpos import printer as escpos_printer

        target = self.target
        if isinstance(target, TcpAddress):
            return escpos_printer.Network(host=target.host, port=target.port, timeout=self.timeout)
        if isinstance(target, UsbAddress):
            serial = target.serial
            usb_args = {"custom_match": (lambda dev: dev.serial_number == serial)} if serial else {}
            # Keywords always: the third positional argument of Usb is usb_args, and timeout=0 blocks forever.
            return escpos_printer.Usb(
                idVendor=target.vid, idProduct=target.pid, usb_args=usb_args, timeout=int(self.timeout * 1000)
            )
        if isinstance(target, SerialAddress):
            return escpos_printer.Serial(devfile=target.device, baudrate=target.baudrate, timeout=self.timeout)
        return escpos_printer.File(devfile=target.path)

    def open(self) -> None:
        if self._device is not None:
            return
        device = self._make()
        try:
            if isinstance(self.target, TcpAddress):
                # python-escpos 3.1 leaks the socket when connect() fails; create_connection closes it.
                sock = socket.create_connection((self.target.host, self.target.port), timeout=self.timeout)
                # Status queries are a few bytes each way: without NODELAY, Nagle and delayed ACKs add ~40 ms.
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                device.device = sock
            elif isinstance(self.target, FileAddress) and not os.path.exists(self.target.path):
                # python-escpos's File opens with "wb": a missing device would become a new empty file that
                # swallows every ticket (where the directory is writable) or a misleading "permission denied".
                raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), self.target.path)
            else:
                device.open()
        except Exception as exc:  # DeviceNotFoundError, USBError, NoBackendError, SerialException, OSError
            raise PrinterFault(*explain_failure(self.target, exc, timeout=self.timeout)) from None
        self._device = device

    def close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            try:
                device.close()
            except Exception:
                pass

    def status(self) -> PrinterStatus:
        """Ask DLE EOT 1, 2 and 4; an empty reply is retried, never read as 'paper adequate'."""
        self.open()
        if isinstance(self.target, FileAddress):
            return PrinterStatus.READY  # a device file cannot answer; sending will tell
        return self._ask(b"")

    def _ask(self, before: bytes) -> PrinterStatus:
        """Write `before` (print data, or nothing) and the three status queries in one write, and read the
        answers. The printer answers a real-time query when it reaches it in the stream (Epson: DLE EOT is
        processed as it is received, even while the receive buffer is full: Epson's ESC/POS reference, DLE EOT,
        download4.epson.biz/sec_pubs/pos/reference_en/escpos/dle_eot.html), so an answer that comes after print
        data says the printer has taken every byte before it. The answers may come a byte a packet (an Epson
        TM-m30III over LAN does: node-escpos/driver issue 108): the reads gather them."""
        queries = b"".join(STATUS_QUERIES)  # answered in order: one round trip for the three
        try:
            self._device._raw(before + queries)  # the link's full timeout: a long job may take a while to go
        except Exception as exc:
            self.close()
            status, detail = explain_failure(self.target, exc, timeout=self.timeout)
            what = "connection lost while sending" if before else "connection lost"
            raise PrinterFault(status, f"{what}: {detail}", partial=bool(before)) from None
        self._read_timeout(self.status_timeout)  # a printer that hangs must not hold the worker for minutes
        reply = b""
        for attempt in range(STATUS_TRIES):
            try:
                if attempt and not reply:
                    self._device._raw(queries)  # asked again; the print data is never sent twice
                chunk = self._device._read() or b""
            except TimeoutError:
                chunk = b""
            except Exception as exc:
                self.close()
                status, detail = explain_failure(self.target, exc, timeout=self.status_timeout)
                raise PrinterFault(status, detail, partial=bool(before)) from None
            reply += chunk
            if len(reply) >= len(STATUS_QUERIES):
                break
            if not chunk:
                time.sleep(STATUS_RETRY_SECONDS)
        if len(reply) < len(STATUS_QUERIES):
            self.close()  # an empty or short reply is never read as "paper adequate"
            raise PrinterFault(PrinterStatus.NO_ANSWER, no_answer_detail(self.target), partial=bool(before))
        self._read_timeout(self.timeout)
        return parse_status(*reply[-len(STATUS_QUERIES) :])

    def _read_timeout(self, seconds: float) -> None:
        """How long a read waits: short for status answers, the link's own for the rest. TCP and serial (a silent
        serial printer held its loop 5 tries x 5 s); python-escpos's USB read has its own timeout."""
        device = self._device.device
        if isinstance(self.target, TcpAddress):
            device.settimeout(seconds)
        elif isinstance(self.target, SerialAddress):
            device.timeout = seconds  # pyserial: applies to the next read

    def send(self, data: bytes) -> None:
        self.open()
        try:
            self._device._raw(data)
        except Exception as exc:
            self.close()
            status, detail = explain_failure(self.target, exc, timeout=self.timeout)
            raise PrinterFault(status, f"connection lost while sending: {detail}", partial=True) from None

    def send_confirmed(self, data: bytes) -> PrinterStatus:
        """Send a job's bytes with the status queries right behind them (one write, one round trip) and return
        the printer's answer, which comes once it has taken the bytes. A device file cannot answer: there the
        write returning is all that can be known (READY)."""
        self.open()
        if isinstance(self.target, FileAddress):
            self.send(data)
            return PrinterStatus.READY
        return self._ask(data)


class InvalidAddressLink(EscposLink):
    """A printer whose stored address is not valid: opening it is a set-up fault that says why."""

    def __init__(self, uri: str, problem: str) -> None:
        super().__init__(FileAddress(uri))  # never opened: open() below refuses first
        self.problem = problem

    def open(self) -> None:
        raise PrinterFault(PrinterStatus.NO_ACCESS, f"the address is not valid: {self.problem}")
