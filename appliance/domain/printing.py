"""Printing's pure rules: what a printer's status means, what a printer address looks like, and what a table's
QR sticker says. The store (appliance.db.printing) and the print worker (printers) both use them; no I/O here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import parse_qs, urlparse


class PrinterStatus(StrEnum):
    """Printer status from the DLE EOT replies, as an enum with named sets (callers ask membership, never bytes)."""

    READY = "ready"
    PAPER_NEAR_END = "paper_near_end"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"
    NO_ANSWER = "no_answer"  # connected, but the status query got no reply
    UNPLUGGED = "unplugged"  # cannot even connect / open the device


UNABLE_TO_PRINT = frozenset(
    {
        PrinterStatus.PAPER_OUT,
        PrinterStatus.COVER_OPEN,
        PrinterStatus.OFFLINE,
        PrinterStatus.NO_ANSWER,
        PrinterStatus.UNPLUGGED,
    }
)

# What staff read on the console for each status.
REASONS = {
    PrinterStatus.READY: "ready",
    PrinterStatus.PAPER_NEAR_END: "paper low",
    PrinterStatus.PAPER_OUT: "paper out",
    PrinterStatus.COVER_OPEN: "cover open",
    PrinterStatus.OFFLINE: "offline",
    PrinterStatus.NO_ANSWER: "not answering",
    PrinterStatus.UNPLUGGED: "unplugged or switched off",
}

# The print worker records each printer's status at least once a minute: an older record means printd is not running.
STALE_SECONDS = 120
NOT_CHECKED = "not checked: is the print worker running?"


def parse_status(printer: int, offline_cause: int, paper: int) -> PrinterStatus:
    """DLE EOT 1 (printer), 2 (offline cause) and 4 (paper sensor) replies, Epson bit meanings."""
    if offline_cause & 0x20 or paper & 0x60 == 0x60:
        return PrinterStatus.PAPER_OUT
    if offline_cause & 0x04:
        return PrinterStatus.COVER_OPEN
    if printer & 0x08:
        return PrinterStatus.OFFLINE
    if paper & 0x0C == 0x0C:
        return PrinterStatus.PAPER_NEAR_END
    return PrinterStatus.READY


# -- Printer settings -----------------------------------------------------------------------------------------------

TEXT_MODES = ("gb18030", "codepage", "raster")
PAPER_WIDTHS_MM = (58, 80)
MAX_COPIES = 5


@dataclass(frozen=True, slots=True)
class TcpAddress:
    host: str
    port: int = 9100


@dataclass(frozen=True, slots=True)
class UsbAddress:
    vid: int
    pid: int
    serial: str | None = None  # two identical printers in one kitchen differ only by their serial number


@dataclass(frozen=True, slots=True)
class SerialAddress:
    device: str
    baudrate: int = 19200


@dataclass(frozen=True, slots=True)
class FileAddress:
    path: str


PrinterAddress = TcpAddress | UsbAddress | SerialAddress | FileAddress


def parse_printer_address(uri: str, resolve_virtual: Callable[[str], str] | None = None) -> PrinterAddress:
    """Where a printer is, from its settings URI: tcp://HOST[:PORT], usb://VID:PID[/SERIAL],
    serial:///dev/X[?baudrate=N], file:///dev/X, or virtual://NAME (the demo's and the tests' printers, which
    `resolve_virtual` turns into a real address). ValueError says what is wrong with the address."""
    parsed = urlparse(uri)
    query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
    if parsed.scheme == "virtual":
        if resolve_virtual is None:
            raise ValueError(f"{uri}: virtual printers exist only in the demo and tests")
        return parse_printer_address(resolve_virtual(parsed.netloc or parsed.path.strip("/")))
    if parsed.scheme == "tcp":
        if not parsed.hostname:
            raise ValueError(f"{uri}: a tcp:// printer needs a host, e.g. tcp://192.168.1.50:9100")
        return TcpAddress(parsed.hostname, parsed.port or 9100)
    if parsed.scheme == "usb":
        vid, _, pid = parsed.netloc.partition(":")
        return UsbAddress(int(vid, 16), int(pid, 16), parsed.path.strip("/") or None)
    if parsed.scheme == "serial":
        return SerialAddress(parsed.path, int(query.get("baudrate", 19200)))
    if parsed.scheme == "file":
        return FileAddress(parsed.path)
    raise ValueError(f"{uri}: unknown printer address (tcp://, usb://, serial://, file:// or virtual://)")


# -- Table QR stickers ----------------------------------------------------------------------------------------------

WIFI_SECURITY = ("WPA", "WEP", "nopass")


@dataclass(frozen=True, slots=True)
class StickerInfo:
    """What one table's QR sticker says: the store, the table, its area and its signed URL."""

    store_name: str
    table_name: str
    area: str
    url: str


@dataclass(frozen=True, slots=True)
class WifiInfo:
    ssid: str
    password: str = ""
    security: str = "WPA"  # "WPA" | "WEP" | "nopass"


def wifi_payload(wifi: WifiInfo) -> str:
    """The `WIFI:` text phones offer to join (the ZXing convention Android and iOS cameras follow)."""
    if wifi.security not in WIFI_SECURITY:
        raise ValueError(f"Wi-Fi security must be one of {', '.join(WIFI_SECURITY)}, not {wifi.security!r}")
    if not wifi.ssid:
        raise ValueError("the Wi-Fi network needs a name (SSID)")
    if len(wifi.ssid.encode("utf-8")) > 32:
        raise ValueError(f"the Wi-Fi name {wifi.ssid!r} is longer than 32 bytes, which no network can have")
    if wifi.security == "nopass":
        if wifi.password:
            raise ValueError("an open (nopass) Wi-Fi network has no password")
        return f"WIFI:T:nopass;S:{_wifi_escape(wifi.ssid)};;"
    if not wifi.password:
        raise ValueError(f"{wifi.security} Wi-Fi needs a password (use security='nopass' for an open network)")
    if wifi.security == "WPA" and not 8 <= len(wifi.password) <= 64:
        raise ValueError("a WPA password has 8 to 63 characters (or 64 hex digits)")
    return f"WIFI:T:{wifi.security};S:{_wifi_escape(wifi.ssid)};P:{_wifi_escape(wifi.password)};;"


def _wifi_escape(text: str) -> str:
    # Backslash first, or the escapes added for the other characters would be doubled.
    for special in ("\\", ";", ",", ":", '"'):
        text = text.replace(special, "\\" + special)
    return text
