"""One adapter over python-escpos for every kind of printer link: explicit timeouts, reopen after any failure,
retried status reads, and every library error turned into one PrinterFault with a reason."""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import parse_qs, urlparse

from printers.status import REASONS, PrinterStatus, parse_status

STATUS_QUERIES = (b"\x10\x04\x01", b"\x10\x04\x02", b"\x10\x04\x04")
STATUS_TRIES = 5            # Odoo's IoT box: the first USB status read often returns nothing
STATUS_RETRY_SECONDS = 0.05


class PrinterFault(Exception):
    """The printer cannot take or confirm a job now. `status` says why; `partial` that bytes may have
    reached the paper (the job must print again marked REPRINT, never silently twice)."""

    def __init__(self, status: PrinterStatus, detail: str = "", partial: bool = False) -> None:
        super().__init__(f"{REASONS[status]}{': ' + detail if detail else ''}")
        self.status = status
        self.detail = detail
        self.partial = partial


@dataclass(frozen=True)
class Target:
    kind: str                 # tcp / usb / serial / file
    options: dict[str, Any]

    @classmethod
    def parse(cls, uri: str, resolve_virtual: Callable[[str], str] | None = None) -> Target:
        parsed = urlparse(uri)
        query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
        if parsed.scheme == "virtual":
            if resolve_virtual is None:
                raise ValueError(f"{uri}: virtual printers exist only in the demo and tests")
            return cls.parse(resolve_virtual(parsed.netloc or parsed.path.strip("/")))
        if parsed.scheme == "tcp":
            if not parsed.hostname:
                raise ValueError(f"{uri}: a tcp:// printer needs a host, e.g. tcp://192.168.1.50:9100")
            return cls("tcp", {"host": parsed.hostname, "port": parsed.port or 9100})
        if parsed.scheme == "usb":
            vid, _, pid = parsed.netloc.partition(":")
            serial = parsed.path.strip("/") or None
            return cls("usb", {"vid": int(vid, 16), "pid": int(pid, 16), "serial": serial})
        if parsed.scheme == "serial":
            return cls("serial", {"device": parsed.path, "baudrate": int(query.get("baudrate", 19200))})
        if parsed.scheme == "file":
            return cls("file", {"path": parsed.path})
        raise ValueError(f"{uri}: unknown printer address (tcp://, usb://, serial://, file:// or virtual://)")


class EscposLink:
    """Opens lazily and again after every failure; never lets a python-escpos, usb, serial or socket
    exception escape."""

    def __init__(self, target: Target, timeout: float = 5.0, status_timeout: float = 0.5) -> None:
        self.target = target
        self.timeout = timeout
        self.status_timeout = status_timeout
        self._device: Any = None

    def _make(self) -> Any:
        from escpos import printer as escpos_printer

        o = self.target.options
        if self.target.kind == "tcp":
            return escpos_printer.Network(host=o["host"], port=o["port"], timeout=self.timeout)
        if self.target.kind == "usb":
            serial = o["serial"]
            usb_args = {"custom_match": (lambda dev: dev.serial_number == serial)} if serial else {}
            # Keywords always: the third positional argument of Usb is usb_args, and timeout=0 blocks forever.
            return escpos_printer.Usb(idVendor=o["vid"], idProduct=o["pid"], usb_args=usb_args,
                                      timeout=int(self.timeout * 1000))
        if self.target.kind == "serial":
            return escpos_printer.Serial(devfile=o["device"], baudrate=o["baudrate"], timeout=self.timeout)
        return escpos_printer.File(devfile=o["path"])

    def open(self) -> None:
        if self._device is not None:
            return
        device = self._make()
        try:
            if self.target.kind == "tcp":
                # python-escpos 3.1 leaks the socket when connect() fails; create_connection closes it.
                o = self.target.options
                sock = socket.create_connection((o["host"], o["port"]), timeout=self.timeout)
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
        if self.target.kind == "file":
            return PrinterStatus.READY  # a device file cannot answer; sending will tell
        if self.target.kind == "tcp":  # a printer that hangs must not hold the worker for minutes
            self._device.device.settimeout(self.status_timeout)
        # The three real-time queries go out together and the printer answers them in order: one round trip.
        reply = b""
        for attempt in range(STATUS_TRIES):
            try:
                if attempt == 0 or not reply:
                    reply = b""
                    self._device._raw(b"".join(STATUS_QUERIES))
                chunk = self._device._read() or b""
            except (socket.timeout, TimeoutError):
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
        replies = list(reply[-len(STATUS_QUERIES):])
        if self.target.kind == "tcp":
            self._device.device.settimeout(self.timeout)
        return parse_status(*replies)

    def send(self, data: bytes) -> None:
        self.open()
        try:
            self._device._raw(data)
        except Exception as exc:
            self.close()
            raise PrinterFault(PrinterStatus.UNPLUGGED, f"connection lost while sending: {exc}"[:200],
                               partial=True) from None
