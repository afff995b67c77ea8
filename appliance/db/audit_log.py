"""The staff audit trail of one business day as the console's Audit screen reads it: each line with what it was done
to named as people know it (an order by its ticket and table, a dish by its name), not by the store's ids."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import apsw

from appliance.db.connection import scalar
from appliance.db.staff import AuditEntry
from appliance.db.store_settings import StoreSettings, load_store_settings
from appliance.domain.menu import parse_hhmm, translate

# A day's trail longer than this shows its newest lines only (and says so).
DAY_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class AuditLine:
    """One line of the trail, with its subject resolved."""

    entry: AuditEntry
    details: dict[str, Any]  # the entry's JSON details
    ticket_no: int | None = None  # an order's ticket number (subject "order 12 ...")
    table: str = ""  # and its table
    dish: str = ""  # a dish's name in the store's first language (menu.* subjects are dish keys)


@dataclass(frozen=True, slots=True)
class AuditDay:
    day: str
    lines: tuple[AuditLine, ...]  # newest first
    more: bool  # the day had more than DAY_LIMIT lines: the oldest are left out
    newest_id: int  # the trail's newest line of any day when this was read (nothing new while newest_audit_id says so)


def newest_audit_id(conn: apsw.Connection) -> int:
    """The newest line's id (0 for none): a cheap look whether anything was written since a day was read."""
    return int(scalar(conn, "SELECT coalesce(max(id), 0) FROM audit_log"))


def day_span(store: StoreSettings, day: str) -> tuple[str, str]:
    """The business day `day` as stored UTC times [start, end): from `day_starts_at` local time that day to the
    same time the next (each end in its own UTC offset, so a daylight-saving change moves nothing)."""
    starts = parse_hhmm(store.day_starts_at)
    first = date.fromisoformat(day)

    def at(d: date) -> str:
        local = datetime.combine(d, time(starts // 60, starts % 60), store.tz)
        return local.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    return at(first), at(first + timedelta(days=1))


def _order_id(subject: str) -> int | None:
    """The order id of a subject "order 12" or "order 12 line 3"."""
    words = subject.split()
    return int(words[1]) if len(words) >= 2 and words[0] == "order" and words[1].isdigit() else None


def audit_day(conn: apsw.Connection, day: str, limit: int = DAY_LIMIT) -> AuditDay:
    """The business day's audit lines, newest first (at most `limit`)."""
    store = load_store_settings(conn)
    start, end = day_span(store, day)
    lang = store.languages[0]
    with conn:  # one read transaction: the lines and the names they refer to as of one moment
        newest = newest_audit_id(conn)
        entries = [
            AuditEntry(*row)
            for row in conn.execute(
                "SELECT id, at, staff_id, staff_name, action, subject, details FROM audit_log"
                " WHERE at >= ? AND at < ? ORDER BY at DESC, id DESC LIMIT ?",
                (start, end, limit + 1),
            )
        ]
        more = len(entries) > limit
        entries = entries[:limit]
        order_ids = sorted({i for e in entries if (i := _order_id(e.subject)) is not None})
        dish_keys = sorted({e.subject for e in entries if e.action.startswith("menu.") and e.subject})
        orders: dict[int, tuple[int, str]] = {}
        for chunk in range(0, len(order_ids), 500):
            ids = order_ids[chunk : chunk + 500]
            orders.update(
                (order_id, (ticket_no, table))
                for order_id, ticket_no, table in conn.execute(
                    "SELECT o.id, o.ticket_no, t.name FROM orders o JOIN tables t ON t.id = o.table_id"
                    f" WHERE o.id IN ({','.join('?' * len(ids))})",
                    ids,
                )
            )
        dishes: dict[str, str] = {}
        for chunk in range(0, len(dish_keys), 500):
            keys = dish_keys[chunk : chunk + 500]
            dishes.update(
                (key, translate(json.loads(names), lang))
                for key, names in conn.execute(
                    f"SELECT key, names FROM items WHERE key IN ({','.join('?' * len(keys))})", keys
                )
            )
    lines = []
    for e in entries:
        try:
            details = json.loads(e.details)
        except ValueError:
            details = {}
        ticket_no, table = orders.get(_order_id(e.subject) or -1, (None, ""))
        dish = dishes.get(e.subject, "") if e.action.startswith("menu.") else ""
        lines.append(AuditLine(e, details if isinstance(details, dict) else {}, ticket_no, table, dish))
    return AuditDay(day, tuple(lines), more, newest)
