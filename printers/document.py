"""What a ticket says, before any printer's bytes: lines with size, weight and alignment, built from an order."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from appliance.domain.errors import DomainError
from appliance.domain.menu import translate
from appliance.domain.text import clean_text


@dataclass(frozen=True)
class Line:
    text: str = ""
    right: str = ""  # a right-aligned column on the same line (a price, a quantity)
    size: int = 1  # 1 normal, 2 double width and height, up to 4 (printers.render.MAX_SIZE)
    bold: bool = False
    align: str = "left"  # left / center / right
    rule: bool = False  # a full-width separator instead of text
    invert: bool = False  # white on black (GS B 1): stands out where a bigger size would not fit the paper


@dataclass(frozen=True)
class Document:
    lines: tuple[Line, ...]
    cut: bool = True
    buzzer: bool = False
    title: str = ""  # for logs and the console, never printed


CHANNEL_MARKS = {"staff": "[员工下单 STAFF]", "relay": "[外网 RELAY]"}

PAPER_COLUMNS = {58: 32, 80: 48}  # the printer's font A columns (printers.render.COLUMNS, which imports this module)
TABLE_SIZE = 4  # the table number: GS ! 0x33, a 48 x 96 dot hanzi, read across a kitchen
NUMBER_SIZE = 2  # the ticket number under it


@dataclass(frozen=True)
class Sizes:
    """The sizes a ticket's lines print at: normal, or the printer's large print (`printers.large_print`)."""

    dish: int = 2
    detail: int = 1  # variant and options
    note: int = 1  # a line's note and the order's note

    @classmethod
    def for_printer(cls, large_print: bool) -> Sizes:
        return cls(dish=3, detail=2, note=2) if large_print else cls()


def widest(text: str) -> int:
    """The columns `text` takes in the widest of the text modes: an ASCII character one, any other two (GB18030
    mode prints every non-ASCII character double-byte, two columns; codepage and raster never take more). A
    ticket's layout decisions use it, so they hold whichever mode the printer is in."""
    return sum(1 if ch.isascii() else 2 for ch in text)


def table_heading(table: str, ticket_no: object, columns: int) -> list[Line]:
    """The table as big as the paper allows and the ticket number under it. Four times the normal size when
    the name fits one row at that size (8 columns on 58 mm, 12 on 80 mm); otherwise white on black at the
    largest size that fits one row (3, then 2), wrapped at double size when even that is too long."""
    name = _safe(table, 32)
    lines: list[Line]
    if widest(name) * TABLE_SIZE <= columns:
        lines = [Line(name, size=TABLE_SIZE, bold=True, align="center")]
    else:
        size = next((s for s in (3, 2) if widest(name) * s <= columns), 2)
        lines = [Line(name, size=size, bold=True, align="center", invert=True)]
    lines.append(Line(f"#{ticket_no}", size=NUMBER_SIZE, bold=True, align="center"))
    return lines


def banner(text: str, columns: int, size: int = 2, *, invert: bool = False) -> Line:
    """A centred heading in stars, with as many stars as fit one row at `size` (so it never wraps)."""
    for stars in ("***", "**", "*"):
        framed = f"{stars} {text} {stars}"
        if widest(framed) * size <= columns:
            return Line(framed, size=size, bold=True, align="center", invert=invert)
    return Line(text, size=size, bold=True, align="center", invert=invert)


def _safe(text: str, limit: int = 200) -> str:
    """Diner or staff text made inert for a printer: control bytes gone, length bounded."""
    try:
        return clean_text(text or "", limit)
    except DomainError:  # longer than the bound: keep the start, it is only a ticket
        return clean_text((text or "")[:limit], limit)


def kitchen_ticket(
    order: Mapping[str, Any],
    station: str,
    *,
    lang: str,
    timezone: str,
    station_names: Mapping[str, str] | None = None,
    reprint: bool = False,
    fallback_for: str | None = None,
    columns: int = 48,
    large_print: bool = False,
) -> Document:
    """One station's ticket: the table four times the normal size (or white on black where that cannot fit the
    `columns` of the paper), the ticket number under it, station and time, the station's lines with
    quantities, variants, options and notes (larger still with `large_print`). Only active lines of that
    station."""
    created = datetime.fromisoformat(order["created_at"].replace("Z", "+00:00")).astimezone(ZoneInfo(timezone))
    sizes = Sizes.for_printer(large_print)
    lines: list[Line] = []
    if reprint:
        lines.append(banner("重印 REPRINT", columns))
    if fallback_for:
        lines.append(Line(f"代打 for printer {_safe(fallback_for, 32)}", bold=True, align="center"))
    lines += table_heading(order["table"], order["ticket_no"], columns)
    station_label = (station_names or {}).get(station, station)
    lines.append(Line(_safe(station_label, 32), right=created.strftime("%H:%M")))
    mark = CHANNEL_MARKS.get(order.get("channel", ""))
    if mark:
        lines.append(Line(mark, bold=True))
    lines.append(Line(rule=True))
    for item in order["lines"]:
        if item["station"] != station or item.get("status", "active") != "active":
            continue
        name = _safe(translate(item["names"], lang), 60)
        lines.append(Line(f"{item['quantity']} x {name}", size=sizes.dish, bold=True))
        details = []
        if item.get("variant_names"):
            details.append(translate(item["variant_names"], lang))
        details.extend(translate(o["names"], lang) for o in item.get("options", []))
        if details:
            lines.append(Line("  " + _safe(" / ".join(details), 120), size=sizes.detail))
        if item.get("note"):
            lines.append(Line("  ! " + _safe(item["note"], 140), size=sizes.note, bold=True))
    if order.get("note"):
        lines.append(Line(rule=True))
        lines.append(Line("备注 NOTE: " + _safe(order["note"], 140), size=sizes.note, bold=True))
    lines.append(Line(rule=True))
    return Document(tuple(lines), title=f"ticket {order['ticket_no']} {station}")


def void_ticket(
    order: Mapping[str, Any],
    voided: Sequence[Mapping[str, Any]],
    *,
    lang: str,
    reason: str | None = None,
    fallback_for: str | None = None,
    columns: int = 48,
    large_print: bool = False,
) -> Document:
    """What a station must not make (a cancelled order, a voided line): big VOID, the table and ticket number as
    on the kitchen ticket, the lines, the reason; on a fallback printer it says for whom it prints, as a kitchen
    ticket does."""
    sizes = Sizes.for_printer(large_print)
    lines = [banner("作废 VOID", columns, invert=True)]  # white on black: not mistaken for an order
    if fallback_for:
        lines.append(Line(f"代打 for printer {_safe(fallback_for, 32)}", bold=True, align="center"))
    lines += table_heading(order["table"], order["ticket_no"], columns)
    for line in voided:
        lines.append(Line(f"{line['quantity']} x {_safe(translate(line['names'], lang), 60)}", size=sizes.dish))
    if reason:
        lines.append(Line("原因 REASON: " + _safe(reason, 140), size=sizes.note, bold=True))
    return Document(tuple(lines), title=f"void {order['ticket_no']}")


@dataclass
class PrinterTestPage:
    """A page that shows a printer works and what it can print (Chinese, ￥, full-width punctuation, kana), and
    the sizes its tickets use: the table number at four times, white on black, a dish at the printer's size
    (larger with large print), so a technician sees at once a printer that ignores GS ! 0x33 or GS B."""

    name: str
    columns: int
    extra: list[str] = field(default_factory=list)
    large_print: bool = False

    def document(self) -> Document:
        sizes = Sizes.for_printer(self.large_print)
        lines = [
            Line("Tablebox", size=2, bold=True, align="center"),
            Line(f"打印测试 / Test page: {self.name}", align="center"),
            Line(rule=True),
            Line("中文：宫保鸡丁（微辣）", right="￥48.00"),
            Line("日本語：からあげ・カタカナ"),
            Line("English: Kung pao chicken", right="x 2"),
            Line("1234567890" * 10),
            Line(rule=True),
            Line("桌号 Table number (x4):", align="center"),
            Line("A12", size=TABLE_SIZE, bold=True, align="center"),
            Line("反白 Inverted", size=2, bold=True, align="center", invert=True),
            Line(f"大字 Large print: {'on' if self.large_print else 'off'}"),
            Line("2 x 水饺", size=sizes.dish, bold=True),  # 8 columns: one row at x3 on 58 mm
            Line("  ! 不要葱", size=sizes.note, bold=True),
            Line(rule=True),
        ]
        lines.extend(Line(e) for e in self.extra)
        return Document(tuple(lines), title=f"test page {self.name}")


def bill(
    orders: Sequence[Mapping[str, Any]],
    *,
    store_name: str,
    table: str,
    lang: str,
    timezone: str,
    currency_format: Callable[[int], str],
    tax_rate_bp: int,
    paid: bool,
    now: datetime | None = None,
) -> Document:
    """The bill of a table's visit: every dish still on it, subtotal, service charge, total, the tax the
    prices include, and whether it is paid. Cancelled orders and voided lines are left out."""
    when = (now or datetime.now(ZoneInfo(timezone))).astimezone(ZoneInfo(timezone))
    lines = [
        Line(_safe(store_name, 48), size=2, bold=True, align="center"),
        Line("账单 BILL", bold=True, align="center"),
        Line(f"{_safe(table, 32)}", right=when.strftime("%Y-%m-%d %H:%M")),
        Line(rule=True),
    ]
    subtotal = service = 0
    for order in orders:
        if order["status"] == "cancelled":
            continue
        subtotal += order["subtotal_minor"]
        service += order["service_charge_minor"]
        for item in order["lines"]:
            if item.get("status", "active") != "active":
                continue
            name = translate(item["names"], lang)
            if item.get("variant_names"):
                name += f" ({translate(item['variant_names'], lang)})"
            lines.append(
                Line(f"{item['quantity']} x {_safe(name, 80)}", right=currency_format(item["line_total_minor"]))
            )
    total = subtotal + service
    lines.append(Line(rule=True))
    lines.append(Line("小计 Subtotal", right=currency_format(subtotal)))
    if service:
        lines.append(Line("服务费 Service charge", right=currency_format(service)))
    lines.append(Line("合计 TOTAL", bold=True))
    lines.append(Line(currency_format(total), size=2, bold=True, align="right"))  # fits 58 mm at double size
    if tax_rate_bp:
        from appliance.domain.money import included_tax

        lines.append(
            Line(f"含税 Tax included {tax_rate_bp / 100:g}%", right=currency_format(included_tax(total, tax_rate_bp)))
        )
    lines.append(Line(rule=True))
    lines.append(Line("已付款 PAID" if paid else "未付款 UNPAID", size=2, bold=True, align="center"))
    return Document(tuple(lines), title=f"bill {table}")
