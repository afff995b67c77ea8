"""The day's numbers for the manager: sales, orders, average ticket, covers, tax included, top dishes, sales by
hour, turnover, what was cancelled or voided and why, and the money: takings by payment method, the cash the drawer
should hold, and the visits paid and still owing; also as CSV (one table with a section column, money in the
currency's units)."""

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
from appliance.db.payments import METHODS
from appliance.db.store_settings import load_store_settings
from appliance.db.tables import unpaid_minor
from appliance.domain.menu import translate
from appliance.domain.money import Currency


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
class MethodTakings:
    """One payment method over the day's visits: what was handed over, the change given back, the refunds."""

    method: str  # one of appliance.db.payments.METHODS
    payments: int
    received_minor: int
    change_minor: int
    refunded_minor: int

    @property
    def net_minor(self) -> int:
        """What the store keeps by this method: received less change less refunds."""
        return self.received_minor - self.change_minor - self.refunded_minor


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
    tax_minor: int = 0  # the tax contained in the sales (prices include it)
    takings: tuple[MethodTakings, ...] = ()  # the methods used, in METHODS order
    visits_paid: int = 0  # visits with a kept order that owe nothing
    visits_unpaid: int = 0  # visits with a kept order that still owe
    unpaid_minor: int = 0  # what those still owe

    @property
    def takings_minor(self) -> int:
        return sum(t.net_minor for t in self.takings)

    @property
    def cash_expected_minor(self) -> int:
        """What the cash drawer should hold from the day: cash taken less change given less cash refunded."""
        return sum(t.net_minor for t in self.takings if t.method == "cash")


def day_report(conn: apsw.Connection, day: str, top: int = 10) -> DayReport:
    """Figures for one business day (YYYY-MM-DD, as ticket numbers count it)."""
    settings = load_store_settings(conn)
    tz, lang = ZoneInfo(settings.timezone), settings.languages[0]
    with conn:
        orders: list[tuple[int, int, int, str, int, str, int]] = list(
            conn.execute(
                "SELECT id, session_id, table_id, status, total_minor, created_at, tax_minor FROM orders"
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
        takings = _takings(conn, sessions)
        owing = [due for due in (unpaid_minor(conn, session_id) for session_id in sessions) if due > 0]
    by_hour = [0] * 24
    for _, _, _, _, total, created_at, _ in kept:
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
        tax_minor=sum(o[6] for o in kept),
        takings=takings,
        visits_paid=len(sessions) - len(owing),
        visits_unpaid=len(owing),
        unpaid_minor=sum(owing),
    )


def _takings(conn: apsw.Connection, sessions: list[int]) -> tuple[MethodTakings, ...]:
    """The payments and refunds of the day's visits, by method (each query one probe of its by-session index)."""
    if not sessions:
        return ()
    marks = ",".join("?" * len(sessions))
    paid: dict[str, tuple[int, int, int]] = {
        str(method): (int(n), int(received), int(change))
        for method, n, received, change in conn.execute(
            "SELECT method, count(*), sum(amount_minor), sum(change_minor) FROM payments"
            f" WHERE session_id IN ({marks}) GROUP BY method",
            sessions,
        )
    }
    refunded: dict[str, int] = {
        str(method): int(total)
        for method, total in conn.execute(
            "SELECT p.method, sum(r.amount_minor) FROM refunds r JOIN payments p ON p.id = r.payment_id"
            f" WHERE r.session_id IN ({marks}) GROUP BY p.method",
            sessions,
        )
    }
    return tuple(
        MethodTakings(method, *paid.get(method, (0, 0, 0)), refunded.get(method, 0))
        for method in METHODS
        if method in paid or method in refunded
    )


CSV_HEADER = ("section", "item", "count", "amount", "detail")
CsvRow = tuple[str, str, str, str, str]


def csv_amount(minor: int, currency: Currency) -> str:
    """Money as a spreadsheet reads a number: `12.50` for 1250 fen, `1200` for 1200 yen (no symbol, no grouping)."""
    whole, frac = divmod(abs(minor), currency.factor)
    return ("-" if minor < 0 else "") + str(whole) + (f".{frac:0{currency.exponent}d}" if currency.exponent else "")


def report_rows(report: DayReport) -> list[CsvRow]:
    """The report as one table: each row a section, an item, a count, an amount (in the currency's units, e.g.
    yuan) and a detail; a cell a row has no use for is empty. A spreadsheet opens it as one sheet and filters or
    pivots by section."""
    cur = Currency.of(report.currency)

    def row(section: str, item: str, count: int | None = None, amount: int | None = None, detail: str = "") -> CsvRow:
        return (
            section,
            item,
            "" if count is None else str(count),
            "" if amount is None else csv_amount(amount, cur),
            detail,
        )

    rows = [
        row("summary", "day", detail=report.day),
        row("summary", "sales", report.orders, report.sales_minor, "orders, not cancelled"),
        row("summary", "average ticket", amount=report.average_ticket_minor),
        row("summary", "covers", report.covers),
        row("summary", "tax included", amount=report.tax_minor),
        row("summary", "takings", sum(t.payments for t in report.takings), report.takings_minor, "payments, net"),
        row(
            "summary",
            "cash expected in drawer",
            amount=report.cash_expected_minor,
            detail="cash less change less cash refunds",
        ),
        row("summary", "visits paid", report.visits_paid),
        row("summary", "visits unpaid", report.visits_unpaid, report.unpaid_minor, "still owed"),
    ]
    for t in report.takings:
        rows.append(
            row(
                "payments",
                t.method,
                t.payments,
                t.net_minor,
                f"received {csv_amount(t.received_minor, cur)}, change {csv_amount(t.change_minor, cur)},"
                f" refunded {csv_amount(t.refunded_minor, cur)}",
            )
        )
    rows += [row("top dishes", d.name, d.count, d.revenue_minor) for d in report.top_by_count]
    rows += [row("sales by hour", f"{hour:02d}:00", amount=m) for hour, m in enumerate(report.sales_by_hour_minor)]
    rows += [row("turnover", table, visits) for table, visits in report.turnover.items()]
    rows += [
        row("cancelled orders", f"#{c.ticket_no} table {c.table}", detail=c.reason) for c in report.cancelled_orders
    ]
    rows += [row("voided lines", f"#{v.ticket_no} {v.name}", v.quantity, detail=v.reason) for v in report.voided_lines]
    return rows


def report_csv(report: DayReport) -> str:
    """The report as one CSV table (CSV_HEADER, then report_rows), money in the currency's units: `216.00`."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow([*CSV_HEADER[:3], f"amount ({report.currency})", CSV_HEADER[4]])
    w.writerows(report_rows(report))
    return out.getvalue()
