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
    size: int = 1  # 1 normal, 2 double width and height
    bold: bool = False
    align: str = "left"  # left / center / right
    rule: bool = False  # a full-width separator instead of text


@dataclass(frozen=True)
class Document:
    lines: tuple[Line, ...]
    cut: bool = True
    buzzer: bool = False
    title: str = ""  # for logs and the console, never printed


CHANNEL_MARKS = {"staff": "[员工下单 STAFF]", "relay": "[外网 RELAY]"}


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
) -> Document:
    """One station's ticket: big table and ticket number, time, the station's lines with quantities,
    variants, options and notes. Only active lines of that station."""
    created = datetime.fromisoformat(order["created_at"].replace("Z", "+00:00")).astimezone(ZoneInfo(timezone))
    lines: list[Line] = []
    if reprint:
        lines.append(Line("*** 重印 REPRINT ***", size=2, bold=True, align="center"))
    if fallback_for:
        lines.append(Line(f"代打 for printer {_safe(fallback_for, 32)}", bold=True, align="center"))
    lines.append(Line(_safe(order["table"], 32), right=f"#{order['ticket_no']}", size=2, bold=True))
    station_label = (station_names or {}).get(station, station)
    lines.append(Line(_safe(station_label, 32), right=created.strftime("%H:%M")))
    mark = CHANNEL_MARKS.get(order.get("channel", ""))
    if mark:
        lines.append(Line(mark, bold=True))
    lines.append(Line(rule=True))
    for item in order["lines"]:
        if item["station"] != station or item.get("status", "active") != "active":
            continue
        lines.append(Line(f"{item['quantity']} x {_safe(translate(item['names'], lang), 60)}", size=2, bold=True))
        details = []
        if item.get("variant_names"):
            details.append(translate(item["variant_names"], lang))
        details.extend(translate(o["names"], lang) for o in item.get("options", []))
        if details:
            lines.append(Line("  " + _safe(" / ".join(details), 120)))
        if item.get("note"):
            lines.append(Line("  ! " + _safe(item["note"], 140), bold=True))
    if order.get("note"):
        lines.append(Line(rule=True))
        lines.append(Line("备注 NOTE: " + _safe(order["note"], 140), bold=True))
    lines.append(Line(rule=True))
    return Document(tuple(lines), title=f"ticket {order['ticket_no']} {station}")


@dataclass
class PrinterTestPage:
    """A page that shows a printer works and what it can print (Chinese, ￥, full-width punctuation, kana)."""

    name: str
    columns: int
    extra: list[str] = field(default_factory=list)

    def document(self) -> Document:
        lines = [
            Line("Tablebox", size=2, bold=True, align="center"),
            Line(f"打印测试 / Test page: {self.name}", align="center"),
            Line(rule=True),
            Line("中文：宫保鸡丁（微辣）", right="￥48.00"),
            Line("日本語：からあげ・カタカナ"),
            Line("English: Kung pao chicken", right="x 2"),
            Line("1234567890" * 10),
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
