"""Printing's pure rules: what a printer's status means, what a printer address looks like, and what a table's
QR sticker says. The store (appliance.db.printing) and the print worker (printers) both use them; no I/O here."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import SplitResult, parse_qsl, urlsplit


class PrinterStatus(StrEnum):
    """Printer status from the DLE EOT replies, as an enum with named sets (callers ask membership, never bytes)."""

    READY = "ready"
    PAPER_NEAR_END = "paper_near_end"
    PAPER_OUT = "paper_out"
    COVER_OPEN = "cover_open"
    OFFLINE = "offline"
    NO_ANSWER = "no_answer"  # connected, but the status query got no reply
    UNPLUGGED = "unplugged"  # cannot even connect / open the device
    NO_ACCESS = "no_access"  # the device is there, but the box may not open it (permissions, libusb): set-up


UNABLE_TO_PRINT = frozenset(
    {
        PrinterStatus.PAPER_OUT,
        PrinterStatus.COVER_OPEN,
        PrinterStatus.OFFLINE,
        PrinterStatus.NO_ANSWER,
        PrinterStatus.UNPLUGGED,
        PrinterStatus.NO_ACCESS,
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
    PrinterStatus.NO_ACCESS: "set-up fault: the box cannot open it",
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
# gb18030 mode: the characters the printer's own Chinese font has. Most printers: GB2312's (hanzi, kana, Greek,
# Cyrillic, full-width forms); some have the whole GB18030 font. A character outside it is drawn by the box.
FONT_COVERAGES = ("gb2312", "gb18030")
PAPER_WIDTHS_MM = (58, 80)
MAX_COPIES = 5


# -- Which languages a text mode prints -----------------------------------------------------------------------------

# The letters each language cannot do without, beyond ASCII (for Chinese and Japanese: characters every menu uses).
# A mode prints a language when its character set has every one of them:
#   codepage: CP858, the Western European code page printers/render.py selects (no œ: French writes "oe");
#   gb18030 with a GB2312 font: GB2312 (simplified hanzi, kana, unaccented Greek, Russian Cyrillic, pinyin vowels
#     é è à ü, but not ñ ç ö ä, nor ー or 円: the characters a font lacks are drawn by the box, see printers.render);
#   gb18030 with the whole GB18030 font: the GBK repertoire (traditional hanzi, ー, 円, still no hangul or ñ);
#   raster: everything (the box draws the ticket with its own font).
LANGUAGE_LETTERS: dict[str, tuple[str, str]] = {
    "en": ("English", ""),
    "id": ("Indonesian", ""),
    "ms": ("Malay", ""),
    "fr": ("French", "àâçéèêëîïôùûüÿ"),
    "de": ("German", "äöüßÄÖÜ"),
    "es": ("Spanish", "áéíñóúü¡¿"),
    "it": ("Italian", "àèéìòù"),
    "pt": ("Portuguese", "ãõáâàçéêíóôú"),
    "nl": ("Dutch", "éëïö"),
    "ca": ("Catalan", "àçèéíïòóúü·"),
    "da": ("Danish", "æøå"),
    "nb": ("Norwegian", "æøå"),
    "sv": ("Swedish", "åäö"),
    "fi": ("Finnish", "äö"),
    "ru": ("Russian", "абвгдеёжзийклмнопрстуфхцчшщъыьэюя"),
    "uk": ("Ukrainian", "абвгґдеєжзиіїйклмнопрстуфхцчшщьюя"),
    "el": ("Greek", "αβγδεζηθικλμνξοπρστυφχψωάέήίόύώ"),
    "vi": ("Vietnamese", "ăâđêôơưạảấầẩẫậắằẳẵặẹẻẽếềểễệỉịọỏốồổỗộớờởỡợụủứừửữựỳỵỷỹ"),
    "zh": ("Chinese", "菜饭面汤鸡鸭鱼肉虾饺茶备注，。（）"),
    "zh-hant": ("traditional Chinese", "菜飯麵湯雞鴨魚肉蝦餃茶備註，。（）"),
    "ja": (
        "Japanese",
        "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん"
        "アイウエオカキクケコサシスセソタチツテトナニヌネノハヒフヘホマミムメモヤユヨラリルレロワヲン定食肉",
    ),
    "ko": ("Korean", "가나다라마바사아자차카타파하국밥"),
    "th": ("Thai", "กขคงจฉชซญดตถทนบปผพฟมยรลวสหอฮะาิีึืุูเแโใไ"),
    "ar": ("Arabic", "ابتثجحخدذرزسشصضطظعغفقكلمنهوي"),
}
_CHARSETS = {"codepage": "cp858", "gb2312": "gb2312", "gb18030": "gbk"}
_TRADITIONAL = ("zh-hant", "zh-tw", "zh-hk", "zh-mo")


def language_key(language: str) -> str:
    """A store's language tag as LANGUAGE_LETTERS knows it: 'zh-TW' and 'zh-Hant' are traditional Chinese,
    'pt-BR' is Portuguese, 'no' is Norwegian."""
    tag = language.strip().lower().replace("_", "-")
    if tag.startswith(_TRADITIONAL):
        return "zh-hant"
    primary = tag.split("-")[0]
    return {"no": "nb", "nn": "nb", "in": "id"}.get(primary, primary)


def mode_prints(text_mode: str, language: str, font_coverage: str = "gb2312") -> bool | None:
    """Whether a printer in `text_mode` prints `language` in its own font (raster: the box's font, every language).
    None for a language this table does not know (nothing is refused for it)."""
    known = LANGUAGE_LETTERS.get(language_key(language))
    if known is None:
        return None
    if text_mode == "raster":
        return True
    charset = _CHARSETS["codepage" if text_mode == "codepage" else font_coverage]
    try:
        known[1].encode(charset)
    except UnicodeEncodeError:
        return False
    return True


def language_name(language: str) -> str:
    known = LANGUAGE_LETTERS.get(language_key(language))
    return f"{known[0]} ({language})" if known else language


def modes_that_print(languages: Sequence[str], font_coverage: str = "gb2312") -> tuple[str, ...]:
    """The text modes that print every one of `languages` (raster always does)."""
    return tuple(m for m in TEXT_MODES if all(mode_prints(m, lang, font_coverage) is not False for lang in languages))


def language_misfit(text_mode: str, languages: Sequence[str], font_coverage: str = "gb2312") -> str | None:
    """Why a printer in `text_mode` cannot print the store's `languages` (None when it can): the languages it
    lacks, what the mode prints, and the modes that would print them all."""
    missing = [lang for lang in languages if mode_prints(text_mode, lang, font_coverage) is False]
    if not missing:
        return None
    prints = [k for k in LANGUAGE_LETTERS if mode_prints(text_mode, k, font_coverage)]
    what = {
        "codepage": "its code page (CP858) has Latin letters only",
        "gb18030": f"its Chinese font ({font_coverage.upper()}) prints {', '.join(prints)} only",
    }.get(text_mode, "")
    better = [f"--mode {m}" for m in modes_that_print(languages, font_coverage)]
    if (
        "--mode gb18030" not in better
        and font_coverage == "gb2312"
        and "gb18030" in modes_that_print(languages, "gb18030")
    ):
        better.insert(0, "--mode gb18030 --font-coverage gb18030 (a printer with the whole GB18030 font)")
    return (
        f"{text_mode} mode cannot print {', '.join(language_name(lang) for lang in missing)}: {what}; "
        f"the store's languages ({', '.join(languages)}) print with {' or '.join(better)}"
    )


ADDRESS_FORMS = (
    "usb://VID:PID[/SERIAL] (e.g. usb://04b8:0e15)",
    "tcp://HOST[:PORT] (e.g. tcp://192.168.1.50:9100)",
    "serial:///dev/DEVICE[?baudrate=N] (e.g. serial:///dev/ttyUSB0?baudrate=19200)",
    "file:///dev/DEVICE (e.g. file:///dev/usb/lp0)",
)
# The rates receipt printers are set to (DIP switches or their setup mode): Epson's TM-T90 takes 2400-115200,
# Star's SP298 1200-9600. pyserial would open a port at any number, and the printer would print garbage.
SERIAL_BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)
DEFAULT_BAUD_RATE = 19200
DEFAULT_TCP_PORT = 9100


@dataclass(frozen=True, slots=True)
class TcpAddress:
    host: str
    port: int = DEFAULT_TCP_PORT

    @property
    def uri(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"tcp://{host}:{self.port}"


@dataclass(frozen=True, slots=True)
class UsbAddress:
    vid: int
    pid: int
    serial: str | None = None  # two identical printers in one kitchen differ only by their serial number

    @property
    def ids(self) -> str:
        """The ids as lsusb shows them: 04b8:0e15."""
        return f"{self.vid:04x}:{self.pid:04x}"

    @property
    def uri(self) -> str:
        return f"usb://{self.ids}" + (f"/{self.serial}" if self.serial else "")


@dataclass(frozen=True, slots=True)
class SerialAddress:
    device: str
    baudrate: int = DEFAULT_BAUD_RATE

    @property
    def uri(self) -> str:
        return f"serial://{self.device}?baudrate={self.baudrate}"


@dataclass(frozen=True, slots=True)
class FileAddress:
    path: str

    @property
    def uri(self) -> str:
        return f"file://{self.path}"


PrinterAddress = TcpAddress | UsbAddress | SerialAddress | FileAddress

_USB_IDS = re.compile(r"([0-9A-Fa-f]{4}):([0-9A-Fa-f]{4})")
_HOST_NAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?(\.[A-Za-z0-9_]([A-Za-z0-9_-]*[A-Za-z0-9_])?)*\.?")


def parse_printer_address(uri: str, resolve_virtual: Callable[[str], str] | None = None) -> PrinterAddress:
    """Where a printer is, from its settings URI: tcp://HOST[:PORT], usb://VID:PID[/SERIAL],
    serial:///dev/X[?baudrate=N], file:///dev/X, or virtual://NAME (the demo's and the tests' printers, which
    `resolve_virtual` turns into a real address). Every form is checked: ValueError says, in the technician's
    terms, what is wrong with the address and gives an example of the right one."""
    if not uri:
        raise ValueError(f"a printer needs an address: {_forms()}")
    if any(c.isspace() or not c.isprintable() for c in uri):
        raise ValueError(f"{uri!r}: a printer address has no spaces or control characters: {_forms()}")
    if "://" not in uri:
        raise ValueError(f"{uri}: {_guess(uri)}")
    try:
        parsed = urlsplit(uri)
    except ValueError as exc:  # an unclosed [ of an IPv6 host
        raise ValueError(f"{uri}: {exc}; {_forms()}") from None
    scheme = parsed.scheme.lower()
    if parsed.fragment or "#" in uri:
        raise ValueError(f"{uri}: a printer address has no #: {_forms()}")
    if scheme == "virtual":
        name = parsed.netloc or parsed.path.strip("/")
        if not name:
            raise ValueError(f"{uri}: a virtual printer needs a name, e.g. virtual://kitchen")
        if resolve_virtual is None:
            raise ValueError(f"{uri}: virtual printers exist only in the demo and tests")
        return parse_printer_address(resolve_virtual(name))
    if scheme == "tcp":
        return _tcp(uri, parsed)
    if scheme == "usb":
        return _usb(uri, parsed)
    if scheme in ("serial", "file"):
        device = _device_path(uri, scheme, parsed)
        query = _query(uri, parsed.query, ("baudrate",) if scheme == "serial" else ())
        if scheme == "file":
            return FileAddress(device)
        return SerialAddress(device, _baudrate(uri, query.get("baudrate")))
    raise ValueError(f"{uri}: unknown printer address {parsed.scheme + '://'!r}: {_forms()}")


def _forms() -> str:
    return "an address is " + ", ".join(ADDRESS_FORMS[:-1]) + " or " + ADDRESS_FORMS[-1]


def _guess(uri: str) -> str:
    """What a bare address probably meant (a technician types what lsusb, ls /dev or the self-test page shows)."""
    scheme, colon, rest = uri.partition(":")
    if colon and scheme.lower() in ("usb", "tcp", "serial", "file"):
        slashes = "///" if rest.startswith("/") and scheme.lower() in ("serial", "file") else "//"
        return f"the kind of address is followed by ://, e.g. {scheme.lower()}:{slashes}{rest.lstrip('/')}"
    if _USB_IDS.fullmatch(uri.split("/")[0]):
        return f"a USB printer's address starts with usb://, e.g. usb://{uri.lower()}"
    if uri.startswith(("/dev/tty", "/dev/serial/")):
        return f"a serial printer's address starts with serial://, e.g. serial://{uri}?baudrate={DEFAULT_BAUD_RATE}"
    if uri.startswith("/"):
        return f"a device file's address starts with file://, e.g. file://{uri}"
    host = uri.split(":")[0]
    if host and _HOST_NAME.fullmatch(host):
        return f"a network printer's address starts with tcp://, e.g. tcp://{host}:{DEFAULT_TCP_PORT}"
    return _forms()


def _query(uri: str, text: str, known: tuple[str, ...]) -> dict[str, str]:
    """The ?key=value options; a key this kind of address does not take is refused, never ignored."""
    query: dict[str, str] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        if key not in known:
            takes = f"takes only ?{known[0]}=N" if known else "takes no ?options"
            raise ValueError(f"{uri}: unknown option {key!r}: this kind of address {takes}")
        if key in query:
            raise ValueError(f"{uri}: {key} is given twice")
        query[key] = value
    if text and not query:
        raise ValueError(f"{uri}: the ?options are key=value, e.g. ?baudrate={DEFAULT_BAUD_RATE}")
    return query


def _tcp(uri: str, parsed: SplitResult) -> TcpAddress:
    example = f"e.g. tcp://192.168.1.50:{DEFAULT_TCP_PORT}"
    if parsed.username is not None or parsed.path.strip("/") or parsed.query:
        raise ValueError(f"{uri}: a tcp:// address is the printer's host and port only, {example}")
    host = parsed.hostname
    if not host:
        raise ValueError(f"{uri}: a tcp:// address needs the printer's host (its IP address), {example}")
    try:
        port = parsed.port
    except ValueError:
        port = 0
    if port is None:
        port = DEFAULT_TCP_PORT
    if not 1 <= port <= 65535:
        port_text = parsed.netloc.rpartition(":")[2]
        raise ValueError(
            f"{uri}: the port {port_text!r} is not a number from 1 to 65535 (receipt printers listen on "
            f"{DEFAULT_TCP_PORT}), {example}"
        )
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_NAME.fullmatch(host) or host.replace(".", "").isdigit():
            raise ValueError(f"{uri}: {host!r} is neither an IP address nor a host name, {example}") from None
        return TcpAddress(host, port)
    if ip.is_global or ip.is_multicast or ip.is_unspecified:
        # systemd/tablebox-printd.service: IPAddressAllow= lets the print worker reach the store's LAN only.
        raise ValueError(
            f"{uri}: {host} is not an address on the store's network (10.x, 172.16-31.x, 192.168.x, 169.254.x, "
            f"100.64-127.x, fc00::/7): the print service reaches printers on the store's network only, {example}"
        )
    return TcpAddress(host, port)


def _usb(uri: str, parsed: SplitResult) -> UsbAddress:
    example = "e.g. usb://04b8:0e15 or, to tell two identical printers apart, usb://04b8:0e15/SN12345"
    ids = _USB_IDS.fullmatch(parsed.netloc)
    if ids is None:
        raise ValueError(
            f"{uri}: the vendor and product ids are 4 hex digits each, as lsusb shows them, e.g. usb://04b8:0e15"
        )
    vid, pid = int(ids[1], 16), int(ids[2], 16)
    if vid == 0 or pid == 0:
        # python-escpos leaves a zero id out of its search, which would then open whichever USB device comes first.
        raise ValueError(f"{uri}: 0000 is no vendor or product id (lsusb shows the printer's), {example}")
    serial = parsed.path.strip("/")
    if "/" in serial:
        raise ValueError(f"{uri}: after the ids comes only the printer's serial number (lsusb -v: iSerial), {example}")
    _query(uri, parsed.query, ())
    return UsbAddress(vid, pid, serial or None)


def _device_path(uri: str, scheme: str, parsed: SplitResult) -> str:
    example = f"serial:///dev/ttyUSB0?baudrate={DEFAULT_BAUD_RATE}" if scheme == "serial" else "file:///dev/usb/lp0"
    if parsed.netloc:
        meant = f"/{parsed.netloc}{parsed.path}" if parsed.netloc == "dev" else f"/dev/{parsed.netloc}{parsed.path}"
        raise ValueError(
            f"{uri}: the device's path follows three slashes ({scheme}:// and the path, which starts with /), "
            f"e.g. {scheme}://{meant}"
        )
    if not parsed.path or parsed.path == "/":
        where = (
            "ls /dev/ttyUSB* /dev/ttyACM* /dev/serial/by-id/ shows them"
            if scheme == "serial"
            else "ls /dev/usb/ shows USB printers' device files"
        )
        raise ValueError(f"{uri}: a {scheme}:// printer needs its device's path ({where}), e.g. {example}")
    if parsed.path.endswith("/"):
        raise ValueError(f"{uri}: {parsed.path} names a folder, not a device, e.g. {example}")
    return parsed.path


def _baudrate(uri: str, text: str | None) -> int:
    rates = ", ".join(map(str, SERIAL_BAUD_RATES))
    if text is None:
        return DEFAULT_BAUD_RATE
    if not text.isdigit() or int(text) not in SERIAL_BAUD_RATES:
        raise ValueError(
            f"{uri}: the baud rate {text!r} is not one a printer is set to ({rates}; the printer's self-test page "
            f"shows its own), e.g. serial:///dev/ttyUSB0?baudrate={DEFAULT_BAUD_RATE}"
        )
    return int(text)


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
