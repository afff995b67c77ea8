"""Reading the order_events trail for live updates: what changed since an event id, and whether anything did."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apsw

from appliance.db.connection import scalar

_EVENTS_SQL = (
    "SELECT e.id, e.order_id, e.session_id, o.table_id, e.line_id, l.line_no, e.from_status, e.to_status, e.actor,"
    " e.reason, e.at, o.ticket_no, o.status AS order_status, o.total_minor"
    " FROM order_events e JOIN orders o ON o.id = e.order_id LEFT JOIN order_lines l ON l.id = e.line_id"
)
PAGE = 500


@dataclass(frozen=True, slots=True)
class OrderEvent:
    """One status change of an order (or of one of its lines), with the order as it stands now."""

    id: int
    order_id: int
    session_id: int
    table_id: int
    line_id: int | None
    line_no: int | None
    from_status: str | None
    to_status: str
    actor: str
    reason: str | None
    at: str
    ticket_no: int
    order_status: str
    total_minor: int

    def payload(self) -> dict[str, Any]:
        """What a diner's event stream carries (the diner API's `order` event)."""
        return {
            "event_id": self.id,
            "order_id": self.order_id,
            "ticket_no": self.ticket_no,
            "session_id": self.session_id,
            "from": self.from_status,
            "to": self.to_status,
            "line_no": self.line_no,
            "reason": self.reason,
            "at": self.at,
            "order_status": self.order_status,
            "total_minor": self.total_minor,
        }


def _events(conn: apsw.Connection, where: str, params: tuple[int, ...]) -> list[OrderEvent]:
    return [OrderEvent(*row) for row in conn.execute(f"{_EVENTS_SQL} WHERE {where} ORDER BY e.id LIMIT ?", params)]


def events_for_session(conn: apsw.Connection, session_id: int, after_id: int, limit: int = PAGE) -> list[OrderEvent]:
    """One visit's events after `after_id`, oldest first (a reconnecting stream's replay, Last-Event-ID)."""
    return _events(conn, "e.session_id = ? AND e.id > ?", (session_id, after_id, limit))


def events_after(conn: apsw.Connection, after_id: int, limit: int = PAGE) -> list[OrderEvent]:
    """Every event after `after_id`, oldest first, at most `limit`."""
    return _events(conn, "e.id > ?", (after_id, limit))


def data_version(conn: apsw.Connection) -> int:
    """SQLite's PRAGMA data_version: it moves when ANOTHER connection commits (cheap: no disk read)."""
    return int(scalar(conn, "PRAGMA data_version"))
