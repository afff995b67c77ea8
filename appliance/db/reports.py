"""The day's numbers for the manager: sales, orders, average ticket, covers, top dishes, sales by hour,
turnover, and what was cancelled or voided and why; also as CSV."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter, defaultdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import apsw

from appliance.db.connection import rows, scalar
from appliance.db.store_settings import load_store_settings
from appliance.domain.menu import translate


def day_report(conn: apsw.Connection, day: str, top: int = 10) -> dict[str, Any]:
    """Figures for one business day (YYYY-MM-DD, as ticket numbers count it)."""
    settings = load_store_settings(conn)
    tz, lang = ZoneInfo(settings.timezone), settings.languages[0]
    with conn:
        orders = list(rows(conn, "SELECT id, session_id, table_id, status, total_minor, created_at FROM orders"
                                 " WHERE ticket_day = ? ORDER BY id", (day,)))
        kept = [o for o in orders if o["status"] != "cancelled"]
        sessions = sorted({o["session_id"] for o in kept})
        marks = ",".join("?" * len(sessions))
        covers = scalar(conn, f"SELECT coalesce(sum(diners), 0) FROM table_sessions WHERE id IN ({marks})",
                        sessions) if sessions else 0
        dishes: dict[int, dict[str, Any]] = {}
        for item_id, names, qty, revenue in conn.execute(
            "SELECT l.item_id, l.item_names, sum(l.quantity), sum(l.line_total_minor) FROM order_lines l"
            " JOIN orders o ON o.id = l.order_id WHERE o.ticket_day = ? AND o.status != 'cancelled'"
            " AND l.status = 'active' GROUP BY l.item_id", (day,)):
            dishes[item_id] = {"item_id": item_id, "name": translate(json.loads(names), lang), "count": qty,
                               "revenue_minor": revenue}
        cancelled = [{"order_id": r["order_id"], "reason": r["reason"] or "", "at": r["at"]} for r in rows(
            conn, "SELECT e.order_id, e.reason, e.at FROM order_events e JOIN orders o ON o.id = e.order_id"
                  " WHERE o.ticket_day = ? AND e.to_status = 'cancelled' ORDER BY e.id", (day,))]
        voided = [{"order_id": r["order_id"], "line_no": r["line_no"], "name": translate(json.loads(r["item_names"]), lang),
                   "quantity": r["quantity"], "reason": r["void_reason"] or ""} for r in rows(
            conn, "SELECT l.order_id, l.line_no, l.item_names, l.quantity, l.void_reason FROM order_lines l"
                  " JOIN orders o ON o.id = l.order_id WHERE o.ticket_day = ? AND l.status = 'voided'"
                  " ORDER BY l.order_id, l.line_no", (day,))]
        table_names = dict(conn.execute("SELECT id, name FROM tables"))
    by_hour = [0] * 24
    for o in kept:
        local = datetime.fromisoformat(o["created_at"].replace("Z", "+00:00")).astimezone(tz)
        by_hour[local.hour] += o["total_minor"]
    visits_per_table: dict[str, set[int]] = defaultdict(set)
    for o in kept:
        visits_per_table[table_names[o["table_id"]]].add(o["session_id"])
    sales = sum(o["total_minor"] for o in kept)
    ranked = sorted(dishes.values(), key=lambda d: (-d["count"], -d["revenue_minor"], d["name"]))
    return {
        "day": day,
        "currency": settings.currency,
        "sales_minor": sales,
        "orders": len(kept),
        "average_ticket_minor": sales // len(kept) if kept else 0,
        "covers": covers,
        "top_by_count": ranked[:top],
        "top_by_revenue": sorted(dishes.values(), key=lambda d: (-d["revenue_minor"], d["name"]))[:top],
        "sales_by_hour_minor": by_hour,
        "turnover": dict(sorted(Counter({t: len(v) for t, v in visits_per_table.items()}).items())),
        "cancelled_orders": cancelled,
        "voided_lines": voided,
    }


def report_csv(report: dict[str, Any]) -> str:
    """The report as CSV sections a spreadsheet opens (money in minor units, as stored)."""
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(["day", "currency", "sales_minor", "orders", "average_ticket_minor", "covers"])
    w.writerow([report[k] for k in ("day", "currency", "sales_minor", "orders", "average_ticket_minor", "covers")])
    w.writerow([])
    w.writerow(["dish", "count", "revenue_minor"])
    for d in report["top_by_count"]:
        w.writerow([d["name"], d["count"], d["revenue_minor"]])
    w.writerow([])
    w.writerow(["hour", "sales_minor"])
    for hour, minor in enumerate(report["sales_by_hour_minor"]):
        w.writerow([f"{hour:02d}:00", minor])
    w.writerow([])
    w.writerow(["cancelled order", "reason"])
    for c in report["cancelled_orders"]:
        w.writerow([c["order_id"], c["reason"]])
    w.writerow([])
    w.writerow(["voided line", "dish", "quantity", "reason"])
    for v in report["voided_lines"]:
        w.writerow([f"{v['order_id']}/{v['line_no']}", v["name"], v["quantity"], v["reason"]])
    return out.getvalue()
