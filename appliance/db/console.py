"""Reads the manager's console needs that belong to no one table: whether anything changed since it last looked."""

from __future__ import annotations

from dataclasses import dataclass

import apsw

from appliance.db.connection import scalar
from appliance.db.orders import newest_order_id


@dataclass(frozen=True, slots=True)
class Changes:
    """What the console compares between two looks: `data_version` moves only when another connection committed,
    and a newest order id above the last one seen means a new order came in."""

    data_version: int
    newest_order_id: int


def changes(conn: apsw.Connection) -> Changes:
    """The connection's data version and the newest order id (a cheap read, made four times a second)."""
    version: int = scalar(conn, "PRAGMA data_version")
    return Changes(version, newest_order_id(conn))


@dataclass(frozen=True, slots=True)
class NewOrder:
    """A diner's order the console has not announced yet."""

    id: int
    ticket_no: int
    table: str


@dataclass(frozen=True, slots=True)
class NewCall:
    """A diner's call (waiter or bill) the console has not announced yet."""

    id: int
    table: str
    kind: str  # waiter / bill


@dataclass(frozen=True, slots=True)
class Alerts:
    """What the console's header badge and bell need: what diners did since it last looked, what is still waiting."""

    new_orders: tuple[NewOrder, ...]  # diners' orders after `after_order_id`, oldest first
    new_calls: tuple[NewCall, ...]  # diners' calls after `after_request_id`, oldest first
    unseen_orders: int  # diners' orders after `seen_order_id` (at most UNSEEN_LIMIT)
    waiter_calls: int  # calls for a waiter still waiting
    bill_calls: int  # bills asked for and still waiting
    newest_order_id: int  # every channel: the console's own staff orders too
    newest_request_id: int


# Orders from staff (the console's own staff order, another console's) are no news to staff: no bell, no count.
STAFF_CHANNEL = "staff"
ANNOUNCE_LIMIT = 50
UNSEEN_LIMIT = 999


def newest_request_id(conn: apsw.Connection) -> int:
    """The highest service request id so far (0 before the first call)."""
    newest: int = scalar(conn, "SELECT coalesce(max(id), 0) FROM service_requests")
    return newest


def alerts(conn: apsw.Connection, after_order_id: int, after_request_id: int, seen_order_id: int) -> Alerts:
    """Diners' orders and calls after the ids given (what to announce), how many diners' orders came after
    `seen_order_id` (the unseen count), and how many calls are still waiting (each its own read: a poll a moment
    later corrects a count that raced a commit; the lists stop at the newest ids read first, so an order committed
    in between is announced next time, never skipped)."""
    newest_order, newest_request = newest_order_id(conn), newest_request_id(conn)
    orders = tuple(
        NewOrder(*row)
        for row in conn.execute(
            "SELECT o.id, o.ticket_no, t.name FROM orders o JOIN tables t ON t.id = o.table_id"
            " WHERE o.id > ? AND o.id <= ? AND o.channel != ? ORDER BY o.id LIMIT ?",
            (after_order_id, newest_order, STAFF_CHANNEL, ANNOUNCE_LIMIT),
        )
    )
    calls = tuple(
        NewCall(*row)
        for row in conn.execute(
            "SELECT r.id, t.name, r.kind FROM service_requests r JOIN tables t ON t.id = r.table_id"
            " WHERE r.id > ? AND r.id <= ? AND r.handled_at IS NULL ORDER BY r.id LIMIT ?",
            (after_request_id, newest_request, ANNOUNCE_LIMIT),
        )
    )
    unseen: int = scalar(
        conn,
        "SELECT count(*) FROM (SELECT 1 FROM orders WHERE id > ? AND channel != ? LIMIT ?)",
        (seen_order_id, STAFF_CHANNEL, UNSEEN_LIMIT),
    )
    waiting: dict[str, int] = {
        str(kind): int(count)
        for kind, count in conn.execute(
            "SELECT kind, count(*) FROM (SELECT kind FROM service_requests WHERE handled_at IS NULL LIMIT ?)"
            " GROUP BY kind",
            (UNSEEN_LIMIT,),
        )
    }
    return Alerts(
        orders,
        calls,
        unseen,
        waiting.get("waiter", 0),
        waiting.get("bill", 0),
        newest_order,
        newest_request,
    )
