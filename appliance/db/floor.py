"""The floor as staff see it: every table's state (free, ordering, eating, bill requested, waiter called, paid),
what its visit owes and its orders, payments and calls; and what staff do there beyond the single moves in
tables / orders / payments: a staff order, a payment with who took it, closing a visit or the whole day,
marking diners' calls handled."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import apsw

from appliance.contract.decode import clean_note
from appliance.db.connection import scalar, utc_now
from appliance.db.orders import MenuCache, OrderRequest, OrderRow, order_row, submit_order, visit_orders
from appliance.db.payments import Payment, PaymentResult, payments_of, record_payment
from appliance.db.tables import get_table, live_session, set_session_status, unpaid_minor
from appliance.domain.errors import DomainError
from appliance.domain.orders import OPEN_STATUSES, Channel, SessionStatus
from appliance.domain.pricing import CartLine

STATES = ("free", "ordering", "eating", "bill", "waiter", "paid")


def table_state(session_status: str | None, order_statuses: Iterable[str], calls: Iterable[str]) -> str:
    """A waiting call for the waiter comes first; then the bill; then whether every dish has been served."""
    kinds = set(calls)
    if "waiter" in kinds:
        return "waiter"
    if session_status is None:
        return "free"
    if session_status == SessionStatus.BILL_REQUESTED.value or "bill" in kinds:
        return "bill"
    if session_status == SessionStatus.PAID.value:
        return "paid"
    live = [s for s in order_statuses if s != "cancelled"]
    return "eating" if live and all(s == "served" for s in live) else "ordering"


@dataclass(frozen=True, slots=True)
class Call:
    """A diner's waiting call for the waiter or the bill."""

    id: int
    kind: str
    created_at: str
    source: str | None = None  # 'old_sticker': called from an old sticker's page (bring the new code)


@dataclass(frozen=True, slots=True)
class FloorTable:
    """One active table: its live visit (session_id None when free) with orders, payments and what is due, its
    waiting calls, and its state (one of STATES)."""

    id: int
    name: str
    area: str
    seats: int | None
    session_id: int | None
    session_status: str | None
    diners: int | None
    opened_at: str | None
    opened_by: str | None
    orders: tuple[OrderRow, ...]
    payments: tuple[Payment, ...]
    due_minor: int
    calls: tuple[Call, ...]
    state: str


def floor(conn: apsw.Connection) -> list[FloorTable]:
    """Every active table in floor order with its live visit (or none), read in one transaction."""
    with conn:
        calls: dict[int, list[Call]] = defaultdict(list)
        for call_id, table_id, kind, created_at, source in conn.execute(
            "SELECT id, table_id, kind, created_at, source FROM service_requests WHERE handled_at IS NULL ORDER BY id"
        ):
            calls[table_id].append(Call(call_id, kind, created_at, source))
        tables = []
        for tid, name, area, seats, sid, status, diners, opened_at, opened_by in conn.execute(
            "SELECT t.id, t.name, t.area, t.seats, s.id, s.status, s.diners, s.opened_at, s.opened_by"
            " FROM tables t LEFT JOIN table_sessions s ON s.table_id = t.id AND s.status != 'closed'"
            " WHERE t.active ORDER BY t.sort, t.id"
        ):
            orders = tuple(visit_orders(conn, sid)) if sid else ()
            waiting = tuple(calls[tid])
            tables.append(
                FloorTable(
                    tid,
                    name,
                    area,
                    seats,
                    sid,
                    status,
                    diners,
                    opened_at,
                    opened_by,
                    orders,
                    tuple(payments_of(conn, sid)) if sid else (),
                    unpaid_minor(conn, sid) if sid else 0,
                    waiting,
                    table_state(status, (o.status for o in orders), (c.kind for c in waiting)),
                )
            )
    return tables


def open_visit_count(conn: apsw.Connection) -> int:
    """How many tables have guests (a visit not yet closed)."""
    count: int = scalar(conn, "SELECT count(*) FROM table_sessions WHERE status != 'closed'")
    return count


def dish_keys(conn: apsw.Connection) -> dict[int, str]:
    """Item id -> its short key (staff search dishes by name or key)."""
    return dict(conn.execute("SELECT id, key FROM items WHERE removed_at IS NULL"))


def staff_order(
    conn: apsw.Connection,
    table_id: int,
    lines: Sequence[CartLine],
    client_key: str,
    cache: MenuCache,
    note: str = "",
) -> OrderRow:
    """An order staff enter for a seated table (channel staff: accepted at once, tickets print); returns it. Its
    notes (each line's and the order's) are cleaned and bounded as a diner's are (`clean_note`: at most 140
    characters, control characters removed), and its choices checked as a diner's (`price_cart`)."""
    table = get_table(conn, table_id)
    if table is None or not table.active:
        raise DomainError("unknown_table", "no such table", table_id=table_id)
    if live_session(conn, table_id) is None:
        raise DomainError(
            "table_not_open", f"table {table.name} has no open visit: seat the guests first", table=table.name
        )
    request = OrderRequest(
        client_key=client_key,
        lines=tuple(replace(line, note=clean_note(line.note, n)) for n, line in enumerate(lines, start=1)),
        note=clean_note(note, None),
        channel=Channel.STAFF,
    )
    placed = submit_order(conn, table, request, cache)
    return order_row(conn, placed.order["id"])


def take_payment(
    conn: apsw.Connection, session_id: int, method: str, amount_minor: int, taken_by: str
) -> PaymentResult:
    """record_payment (with its outbox rows for the ERPs), with the name of who took it on the payment row."""
    return record_payment(conn, session_id, method, amount_minor, taken_by)


def _handle(conn: apsw.Connection, where: str, params: tuple[int, ...], handled_by: str) -> list[str]:
    return [
        kind
        for (kind,) in conn.execute(
            f"UPDATE service_requests SET handled_at = ?, handled_by = ? WHERE handled_at IS NULL AND {where}"
            " RETURNING kind",
            (utc_now(), handled_by, *params),
        )
    ]


def handle_calls(conn: apsw.Connection, table_id: int, handled_by: str) -> list[str]:
    """Mark the table's waiting waiter / bill calls handled; returns their kinds."""
    kinds = _handle(conn, "table_id = ?", (table_id,), handled_by)
    if not kinds:
        raise DomainError("no_calls", "nobody at this table is waiting for staff", table_id=table_id)
    return sorted(kinds)


def close_visit(conn: apsw.Connection, session_id: int, closed_by: str, confirm_unpaid: bool = False) -> int:
    """Close a visit (the table is free again); its waiting calls are handled with it. Money still owed needs
    confirm_unpaid (the domain refuses otherwise). Returns what was left unpaid."""
    owed = max(unpaid_minor(conn, session_id), 0)
    set_session_status(conn, session_id, SessionStatus.CLOSED, confirm_unpaid=confirm_unpaid)
    _handle(conn, "session_id = ?", (session_id,), closed_by)
    return owed


@dataclass(frozen=True, slots=True)
class DayClosed:
    closed: int  # visits closed
    unpaid: Mapping[str, int]  # table name -> what its visit left unpaid
    unpaid_minor: int  # their sum
    kept: tuple[str, ...] = ()  # tables left open because an order of theirs is still in the kitchen (keep_busy)
    kitchen_closed: tuple[str, ...] = ()  # tables closed with an order still in the kitchen (busy_known)

    @property
    def audit_details(self) -> Mapping[str, object]:
        """What the day.closed audit line records, as the closing transaction found it: what each closed table left
        unpaid, and the tables with kitchen work kept open or closed anyway."""
        details: dict[str, object] = {"unpaid": dict(self.unpaid)}
        if self.kept:
            details["kept_open"] = list(self.kept)
        if self.kitchen_closed:
            details["kitchen_closed"] = list(self.kitchen_closed)
        return details


def kitchen_busy(conn: apsw.Connection) -> dict[int, str]:
    """Open visits with an order still in the kitchen (new, accepted, cooking or ready: not yet served or
    cancelled): session id -> table name, in floor order."""
    marks = ", ".join("?" * len(OPEN_STATUSES))
    return dict(
        conn.execute(
            "SELECT s.id, t.name FROM table_sessions s JOIN tables t ON t.id = s.table_id"
            f" WHERE s.status != 'closed' AND EXISTS (SELECT 1 FROM orders o WHERE o.session_id = s.id"
            f" AND o.status IN ({marks})) ORDER BY t.sort, t.id",
            tuple(sorted(OPEN_STATUSES)),
        )
    )


def close_day(
    conn: apsw.Connection,
    closed_by: str,
    confirm_unpaid: bool = False,
    *,
    keep_busy: bool = False,
    busy_known: Collection[str] | None = None,
) -> DayClosed:
    """Close every open visit. Visits still owing are refused unless confirm_unpaid (they stay in the records
    as unpaid; nothing is silently dropped). Visits with an order still in the kitchen (kitchen_busy) stay open
    with keep_busy; else, when busy_known is given (the busy tables the person was shown and agreed to close),
    a busy table not in it (an order arrived meanwhile) refuses the whole close. Returns how many closed, what
    they left unpaid and which busy tables were kept."""
    busy = kitchen_busy(conn)
    if not keep_busy and busy_known is not None and (unseen := [n for n in busy.values() if n not in busy_known]):
        raise DomainError(
            "kitchen_busy",
            f"new orders came in meanwhile at {', '.join(unseen)}: nothing closed, look again",
            tables=unseen,
        )
    visits: list[tuple[int, str]] = [
        (session_id, name)
        for session_id, name in conn.execute(
            "SELECT s.id, t.name FROM table_sessions s JOIN tables t ON t.id = s.table_id"
            " WHERE s.status != 'closed' ORDER BY t.sort, t.id"
        )
        if not (keep_busy and session_id in busy)
    ]
    owing = {name: due for session_id, name in visits if (due := unpaid_minor(conn, session_id)) > 0}
    if owing and not confirm_unpaid:
        raise DomainError(
            "unpaid_session", f"{len(owing)} table(s) still owe money: {', '.join(owing)}", tables=sorted(owing)
        )
    for session_id, _ in visits:
        close_visit(conn, session_id, closed_by, confirm_unpaid=True)
    kept = tuple(busy.values()) if keep_busy else ()
    return DayClosed(len(visits), owing, sum(owing.values()), kept, () if keep_busy else tuple(busy.values()))
