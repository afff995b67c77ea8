"""One adapter over python-escpos for every kind of printer link: explicit timeouts, reopen after any failure,
retried status reads, and every library error turned into one PrinterFault with a reason."""

from __future__ import annotations

import socket
import time
from typing import Any

from appliance.domain.printing import (
    REASONS,
    FileAddress,
    PrinterAddress,
    PrinterStatus,
    SerialAddress,
    TcpAddress,
    UsbAddress,
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
            else:
                device.open()
        except Exception as exc:  # DeviceNotFoundError, USBError, NoBackendError, SerialException, OSError
            raise PrinterFault(PrinterStatus.UNPLUGGED, str(exc).splitlines()[0][:200]) from None
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
        if isinstance(self.target, TcpAddress):  # a printer that hangs must not hold the worker for minutes
            self._device.device.settimeout(self.status_timeout)
        # The three real-time queries go out together and the printer answers them in order: one round trip.
        reply = b""
        for attempt in range(STATUS_TRIES):
            try:
                if attempt == 0 or not reply:
                    reply = b""
                    self._device._raw(b"".join(STATUS_QUERIES))
                chunk = self._device._read() or b""
            except TimeoutError:
                chunk = b""
            except Exception as exc:
                self.close()
                raise PrinterFault(PrinterStatus.UNPLUGGED, str(exc)[:200]) from None
            reply += chunk
            if len(reply) >= len(STATUS_QUERIES):
                break
            if not chunk:
                time.sleep(STATUS_RETRY_SECONDS)
        if len(reply) < len(STATUS_QUERIES):
            self.close()  # an empty or short reply is never read as "paper adequate"
            raise PrinterFault(PrinterStatus.NO_ANSWER, "no reply to a status query")
        replies = list(reply[-len(STATUS_QUERIES) :])
        if isinstance(self.target, TcpAddress):
            self._device.device.settimeout(self.timeout)
        return parse_status(*replies)

    def send(self, data: bytes) -> None:
        self.open()
        try:
            self._device._raw(data)
        except Exception as exc:
            self.close()
            raise PrinterFault(
                PrinterStatus.UNPLUGGED, f"connection lost while sending: {exc}"[:200], partial=True
            ) from None
