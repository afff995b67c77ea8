"""The day's numbers for the manager: sales, orders, average ticket, covers, top dishes, sales by hour,
turnover, and what was cancelled or voided and why; also as CSV."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import apsw

from appliance.db.connection import scalar
from appliance.db.store_settings import load_store_settings
from appliance.domain.menu import translate


@dataclass(frozen=True, slots=True)
class DishSales:
    item_id: int
    name: str  # in the store's first language
    count: int
    revenue_minor: int


@dataclass(frozen=True, slots=True)
class CancelledOrder:
    order_id: int
    ticket_no: int
    table: str
    reason: str
    at: str


@dataclass(frozen=True, slots=True)
class VoidedLine:
    order_id: int
    ticket_no: int
    line_no: int
    name: str
    quantity: int
    reason: str


@dataclass(frozen=True, slots=True)
class DayReport:
    day: str
    currency: str
    sales_minor: int
    orders: int
    average_ticket_minor: int
    covers: int
    top_by_count: tuple[DishSales, ...]
    top_by_revenue: tuple[DishSales, ...]
    sales_by_hour_minor: tuple[int, ...]  # 24 local clock hours, 00 first
    turnover: Mapping[str, int]  # table name -> visits, by name
    cancelled_orders: tuple[CancelledOrder, ...]
    voided_lines: tuple[VoidedLine, ...]


def day_report(conn: apsw.Connection, day: str, top: int = 10) -> DayReport:
    """Figures for one business day (YYYY-MM-DD, as ticket numbers count it)."""
    settings = load_store_settings(conn)
    tz, lang = ZoneInfo(settings.timezone), settings.languages[0]
    with conn:
        orders: list[tuple[int, int, int, str, int, str]] = list(
            conn.execute(
                "SELECT id, session_id, table_id, status, total_minor, created_at FROM orders"
                " WHERE ticket_day = ? ORDER BY id",
                (day,),
            )
        )
        kept = [o for o in orders if o[3] != "cancelled"]
        sessions = sorted({session_id for _, session_id, *_ in kept})
        marks = ",".join("?" * len(sessions))
        covers: int = (
            scalar(conn, f"SELECT coalesce(sum(diners), 0) FROM table_sessions WHERE id IN ({marks})", sessions)
            if sessions
            else 0
        )
        dishes = [
            DishSales(item_id, translate(json.loads(names), lang), qty, revenue)
            for item_id, names, qty, revenue in conn.execute(
                "SELECT l.item_id, l.item_names, sum(l.quantity), sum(l.line_total_minor) FROM order_lines l"
                " JOIN orders o ON o.id = l.order_id WHERE o.ticket_day = ? AND o.status != 'cancelled'"
                " AND l.status = 'active' GROUP BY l.item_id",
                (day,),
            )
        ]
        cancelled = tuple(
            CancelledOrder(order_id, ticket_no, table, reason or "", at)
            for order_id, ticket_no, table, reason, at in conn.execute(
                "SELECT e.order_id, o.ticket_no, t.name, e.reason, e.at FROM order_events e JOIN orders o ON o.id = e.order_id"
                " JOIN tables t ON t.id = o.table_id WHERE o.ticket_day = ? AND e.to_status = 'cancelled' ORDER BY e.id",
                (day,),
            )
        )
        voided = tuple(
            VoidedLine(order_id, ticket_no, line_no, translate(json.loads(names), lang), quantity, reason or "")
            for order_id, ticket_no, line_no, names, quantity, reason in conn.execute(
                "SELECT l.order_id, o.ticket_no, l.line_no, l.item_names, l.quantity, l.void_reason FROM order_lines l"
                " JOIN orders o ON o.id = l.order_id WHERE o.ticket_day = ? AND l.status = 'voided'"
                " ORDER BY l.order_id, l.line_no",
                (day,),
            )
        )
        table_names: dict[int, str] = dict(conn.execute("SELECT id, name FROM tables"))
    by_hour = [0] * 24
    for _, _, _, _, total, created_at in kept:
        local = datetime.fromisoformat(created_at.replace("Z", "+00:00")).astimezone(tz)
        by_hour[local.hour] += total
    visits_per_table: dict[str, set[int]] = defaultdict(set)
    for _, session_id, table_id, *_ in kept:
        visits_per_table[table_names[table_id]].add(session_id)
    sales = sum(o[4] for o in kept)
    return DayReport(
        day=day,
        currency=settings.currency,
        sales_minor=sales,
        orders=len(kept),
        average_ticket_minor=sales // len(kept) if kept else 0,
        covers=covers,
        top_by_count=tuple(sorted(dishes, key=lambda d: (-d.count, -d.revenue_minor, d.name))[:top]),
        top_by_revenue=tuple(sorted(dishes, key=lambda d: (-d.revenue_minor, d.name))[:top]),
        sales_by_hour_minor=tuple(by_hour),
        turnover=dict(sorted(Counter({t: len(v) for t, v in visits_per_table.items()}).items())),
        cancelled_orders=cancelled,
        voided_lines=voided,
    )


def report_csv(report: DayReport) -> str:
    """The report as CSV sections a spreadsheet opens (money in minor units, as stored)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["day", "currency", "sales_minor", "orders", "average_ticket_minor", "covers"])
    w.writerow(
        [report.day, report.currency, report.sales_minor, report.orders, report.average_ticket_minor, report.covers]
    )
    w.writerow([])
    w.writerow(["dish", "count", "revenue_minor"])
    for d in report.top_by_count:
        w.writerow([d.name, d.count, d.revenue_minor])
    w.writerow([])
    w.writerow(["hour", "sales_minor"])
    for hour, minor in enumerate(report.sales_by_hour_minor):
        w.writerow([f"{hour:02d}:00", minor])
    w.writerow([])
    w.writerow(["cancelled order", "reason"])
    for c in report.cancelled_orders:
        w.writerow([c.order_id, c.reason])
    w.writerow([])
    w.writerow(["voided line", "dish", "quantity", "reason"])
    for v in report.voided_lines:
        w.writerow([f"{v.order_id}/{v.line_no}", v.name, v.quantity, v.reason])
    return out.getvalue()
