"""Tables, their signed codes, visits (table sessions) and diners' waiter and bill requests."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import apsw

from appliance.db.connection import scalar, utc_now
from appliance.db.store_settings import load_store_settings
from appliance.domain.errors import DomainError
from appliance.domain.orders import ORDERING, SessionStatus, session_transition
from appliance.domain.tokens import TableRef, read_table_token, sign_table_token


@dataclass(frozen=True)
class Table:
    id: int
    name: str
    area: str
    seats: int | None
    token_version: int
    active: bool


_TABLE_COLUMNS = "id, name, area, seats, token_version, active"


def _table(row: tuple[Any, ...]) -> Table:
    tid, name, area, seats, version, active = row
    return Table(tid, name, area, seats, version, bool(active))


def add_table(conn: apsw.Connection, name: str, area: str = "", seats: int | None = None) -> Table:
    name = name.strip()
    if not name or len(name) > 32:
        raise DomainError("invalid_table", "a table needs a name of 1-32 characters")
    if scalar(conn, "SELECT 1 FROM tables WHERE name = ?", (name,)):
        raise DomainError("duplicate_table", f"there is already a table called {name}", name=name)
    sort = scalar(conn, "SELECT coalesce(max(sort), 0) + 1 FROM tables")
    row = conn.execute(
        f"INSERT INTO tables (name, area, seats, sort) VALUES (?, ?, ?, ?) RETURNING {_TABLE_COLUMNS}",
        (name, area.strip(), seats, sort),
    ).fetchone()
    assert row is not None  # INSERT ... RETURNING gives the row it inserted
    return _table(row)


def get_table(conn: apsw.Connection, table_id: int) -> Table | None:
    row = conn.execute(f"SELECT {_TABLE_COLUMNS} FROM tables WHERE id = ?", (table_id,)).fetchone()
    return _table(row) if row else None


def list_tables(conn: apsw.Connection) -> list[Table]:
    return [_table(r) for r in conn.execute(f"SELECT {_TABLE_COLUMNS} FROM tables WHERE active ORDER BY sort, id")]


def table_token(secret: bytes, store_id: str, table: Table) -> str:
    return sign_table_token(secret, TableRef(store_id, table.id, table.token_version))


def table_url(public_base_url: str, token: str) -> str:
    return f"{public_base_url.rstrip('/')}/t/{token}"


class TableLine(NamedTuple):
    """One active table as `tablebox tables` and the server's banner show it."""

    area: str
    name: str
    url: str  # its ordering URL: what its QR sticker carries


def table_lines(conn: apsw.Connection, secret: bytes, public_base_url: str) -> list[TableLine]:
    """Every active table, in the store's order, with its current ordering URL."""
    store_id = load_store_settings(conn).store_id
    return [
        TableLine(t.area, t.name, table_url(public_base_url, table_token(secret, store_id, t)))
        for t in list_tables(conn)
    ]


def tables_by_id(conn: apsw.Connection) -> Mapping[int, Table]:
    """Every table, active or not (an inactive one answers 410, not 403)."""
    return {t.id: t for t in map(_table, conn.execute(f"SELECT {_TABLE_COLUMNS} FROM tables"))}


def resolve_token(lookup: Callable[[int], Table | None], secret: bytes, store_id: str, token: str) -> Table:
    """The table a sticker's code names. 403 `forged_token` / `other_store`; 410 `table_rekeyed` for an old sticker.
    `lookup` finds a table by id (the web process keeps the tables in memory beside the menu)."""
    ref = read_table_token(secret, store_id, token)
    table = lookup(ref.table_id)
    if table is None or not table.active:
        raise DomainError("table_gone", "this table no longer takes orders; please ask staff")
    if ref.version < table.token_version:
        raise DomainError(
            "table_rekeyed", "this QR code is out of date; please ask staff for the table's new code", table=table.name
        )
    if ref.version > table.token_version:
        raise DomainError("forged_token", "this table code is not valid")
    return table


def resolve_old_or_current_token(
    lookup: Callable[[int], Table | None], secret: bytes, store_id: str, token: str
) -> tuple[Table, bool]:
    """The table a GENUINE code of this store names, old or current: (table, True) for an old sticker (a version the
    table's re-keying voided: its MAC is still the store's), (table, False) for the current code. Only for a waiter
    call from an old sticker's page: a forged code, another store's, a removed table are refused as by
    `resolve_token`."""
    try:
        return resolve_token(lookup, secret, store_id, token), False
    except DomainError as exc:
        if exc.code != "table_rekeyed":
            raise
    table = lookup(read_table_token(secret, store_id, token).table_id)  # the MAC was verified by resolve_token
    assert table is not None  # resolve_token refused a missing table as table_gone
    return table, True


def rekey_table(conn: apsw.Connection, table_id: int) -> int:
    """Void the table's printed codes; returns the new version (print new stickers)."""
    version = scalar(
        conn, "UPDATE tables SET token_version = token_version + 1 WHERE id = ? RETURNING token_version", (table_id,)
    )
    if version is None:
        raise DomainError("unknown_table", "no such table", table_id=table_id)
    return int(version)


@dataclass(frozen=True, slots=True)
class Visit:
    """One party's visit to a table (a table_sessions row): from seating, or the first order, to closing."""

    id: int
    table_id: int
    status: SessionStatus
    diners: int | None
    opened_at: str
    opened_by: str  # who seated them, or 'diner' when the first order opened the visit
    bill_requested_at: str | None
    paid_at: str | None
    closed_at: str | None


_VISIT_COLUMNS = "id, table_id, status, diners, opened_at, opened_by, bill_requested_at, paid_at, closed_at"


def _visit(row: tuple[Any, ...]) -> Visit:
    sid, table_id, status, diners, opened_at, opened_by, bill_at, paid_at, closed_at = row
    return Visit(sid, table_id, SessionStatus(status), diners, opened_at, opened_by, bill_at, paid_at, closed_at)


def get_visit(conn: apsw.Connection, session_id: int) -> Visit | None:
    """A visit by id, open or closed."""
    row = conn.execute(f"SELECT {_VISIT_COLUMNS} FROM table_sessions WHERE id = ?", (session_id,)).fetchone()
    return _visit(row) if row else None


def live_session(conn: apsw.Connection, table_id: int) -> Visit | None:
    """The table's visit that is not closed yet, if there is one (there is at most one)."""
    row = conn.execute(
        f"SELECT {_VISIT_COLUMNS} FROM table_sessions WHERE table_id = ? AND status != 'closed'", (table_id,)
    ).fetchone()
    return _visit(row) if row else None


def open_session(conn: apsw.Connection, table_id: int, opened_by: str, diners: int | None = None) -> Visit:
    """Staff seat guests (or the first order opens the visit). Refuses a second live visit."""
    if live_session(conn, table_id) is not None:
        raise DomainError("session_open", "this table already has an open visit", table_id=table_id)
    if get_table(conn, table_id) is None:
        raise DomainError("unknown_table", "no such table", table_id=table_id)
    row = conn.execute(
        "INSERT INTO table_sessions (table_id, status, diners, opened_at, opened_by) VALUES (?, 'open', ?, ?, ?)"
        f" RETURNING {_VISIT_COLUMNS}",
        (table_id, diners, utc_now(), opened_by),
    ).fetchone()
    assert row is not None  # INSERT ... RETURNING gives the row it inserted
    return _visit(row)


def session_for_order(conn: apsw.Connection, table: Table, need_staff_open: bool, diners: int | None) -> Visit:
    """The visit a new order belongs to: the live one, or a new one unless staff must open tables first.

    Ordering again after asking for the bill (or paying) puts the visit back to open.
    """
    session = live_session(conn, table.id)
    if session is None:
        if need_staff_open:
            raise DomainError(
                "table_not_open", "this table is not open for orders yet; please ask staff", table=table.name
            )
        return open_session(conn, table.id, "diner", diners)
    if session.status not in ORDERING:
        raise DomainError("table_not_open", "this table is not open for orders", table=table.name)
    if session.status != SessionStatus.OPEN:
        set_session_status(conn, session.id, SessionStatus.OPEN)
        session = replace(session, status=SessionStatus.OPEN)
    if diners and not session.diners:
        conn.execute("UPDATE table_sessions SET diners = ? WHERE id = ?", (diners, session.id))
        session = replace(session, diners=diners)
    return session


def unpaid_minor(conn: apsw.Connection, session_id: int) -> int:
    """Orders of the visit (cancelled ones excluded) less the payments taken, plus what was refunded from them."""
    billed = scalar(
        conn,
        "SELECT coalesce(sum(total_minor), 0) FROM orders WHERE session_id = ? AND status != 'cancelled'",
        (session_id,),
    )
    paid = scalar(
        conn, "SELECT coalesce(sum(amount_minor - change_minor), 0) FROM payments WHERE session_id = ?", (session_id,)
    )
    refunded = scalar(conn, "SELECT coalesce(sum(amount_minor), 0) FROM refunds WHERE session_id = ?", (session_id,))
    return int(billed) - int(paid) + int(refunded)


def move_session(conn: apsw.Connection, session_id: int, to_table_id: int) -> None:
    """Guests move to another table: their visit, orders and bill go with them."""
    session = get_visit(conn, session_id)
    if session is None or session.status == SessionStatus.CLOSED:
        raise DomainError("unknown_session", "no open visit to move", session_id=session_id)
    target = get_table(conn, to_table_id)
    if target is None or not target.active:
        raise DomainError("unknown_table", "no such table", table_id=to_table_id)
    if live_session(conn, to_table_id) is not None:
        raise DomainError("session_open", f"table {target.name} already has guests", table=target.name)
    conn.execute("UPDATE table_sessions SET table_id = ? WHERE id = ?", (to_table_id, session_id))
    conn.execute("UPDATE orders SET table_id = ? WHERE session_id = ?", (to_table_id, session_id))
    conn.execute("UPDATE service_requests SET table_id = ? WHERE session_id = ?", (to_table_id, session_id))


def set_session_status(
    conn: apsw.Connection, session_id: int, target: SessionStatus, confirm_unpaid: bool = False
) -> SessionStatus:
    session = get_visit(conn, session_id)
    if session is None:
        raise DomainError("unknown_session", "no such table visit", session_id=session_id)
    current = session.status
    owed = unpaid_minor(conn, session_id) if current not in {SessionStatus.PAID} else 0
    session_transition(current, target, unpaid_minor=owed, confirm_unpaid=confirm_unpaid)
    column = {
        SessionStatus.BILL_REQUESTED: "bill_requested_at",
        SessionStatus.PAID: "paid_at",
        SessionStatus.CLOSED: "closed_at",
    }.get(target)
    stamp = f", {column} = :now" if column else ""
    conn.execute(
        f"UPDATE table_sessions SET status = :status{stamp} WHERE id = :id",
        {"status": target.value, "now": utc_now(), "id": session_id},
    )
    return target


@dataclass(frozen=True, slots=True)
class ServiceRequest:
    """A diner's call for the waiter or for the bill (a service_requests row); waiting until handled_at is set."""

    id: int
    table_id: int
    session_id: int | None  # None: a waiter called before anyone was seated
    kind: str  # waiter / bill
    created_at: str
    handled_at: str | None
    handled_by: str | None
    source: str | None = None  # None: the table's sticker; 'old_sticker': the page of a sticker re-keying voided


_REQUEST_COLUMNS = "id, table_id, session_id, kind, created_at, handled_at, handled_by, source"
REQUEST_SOURCES = frozenset({"old_sticker"})


def request_service(
    conn: apsw.Connection, table: Table, kind: str, source: str | None = None
) -> tuple[ServiceRequest, bool]:
    """A diner calls the waiter or asks for the bill. A request already waiting is returned, not repeated
    (so impatient tapping does not flood the console). Returns (request, created). `source` 'old_sticker': the call
    came from an old sticker's page (staff see it, and bring the table's new code)."""
    if kind not in {"waiter", "bill"}:
        raise DomainError("invalid_request_kind", "a request is either 'waiter' or 'bill'", kind=kind)
    if source is not None and source not in REQUEST_SOURCES:
        raise DomainError("invalid_request_source", "a request comes from the table's sticker or an old one")
    waiting = conn.execute(
        f"SELECT {_REQUEST_COLUMNS} FROM service_requests WHERE table_id = ? AND kind = ? AND handled_at IS NULL",
        (table.id, kind),
    ).fetchone()
    if waiting is not None:
        return ServiceRequest(*waiting), False
    session = live_session(conn, table.id)
    if kind == "bill":
        if session is None:
            raise DomainError("no_open_visit", "there is nothing to pay at this table yet")
        if session.status == SessionStatus.OPEN:
            set_session_status(conn, session.id, SessionStatus.BILL_REQUESTED)
    row = conn.execute(
        "INSERT INTO service_requests (table_id, session_id, kind, created_at, source) VALUES (?, ?, ?, ?, ?)"
        f" RETURNING {_REQUEST_COLUMNS}",
        (table.id, session.id if session else None, kind, utc_now(), source),
    ).fetchone()
    assert row is not None  # INSERT ... RETURNING gives the row it inserted
    return ServiceRequest(*row), True


def open_requests(conn: apsw.Connection, limit: int = 100) -> list[ServiceRequest]:
    """Requests still waiting for staff, oldest first."""
    return [
        ServiceRequest(*row)
        for row in conn.execute(
            f"SELECT {_REQUEST_COLUMNS} FROM service_requests WHERE handled_at IS NULL ORDER BY id LIMIT ?", (limit,)
        )
    ]


# The address the printed stickers carry, kept in the settings table (outside the store settings people edit) so
# that `tablebox doctor` can warn once it is no longer this box's address (appliance.fieldaddress).
STICKER_ADDRESS_KEY = "stickers_printed_for"


class StickerAddress(NamedTuple):
    base_url: str
    printed_at: str  # UTC, ISO 8601
    tables: int


def record_sticker_address(conn: apsw.Connection, base_url: str, tables: int) -> None:
    """Note that stickers of `tables` tables were just made for `base_url` (the newest wins)."""
    value = json.dumps({"base_url": base_url.rstrip("/"), "printed_at": utc_now(), "tables": tables})
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (STICKER_ADDRESS_KEY, value),
    )


def sticker_address(conn: apsw.Connection) -> StickerAddress | None:
    """The base URL the last stickers were printed with; None when none were printed (or the note is unreadable)."""
    raw = scalar(conn, "SELECT value FROM settings WHERE key = ?", (STICKER_ADDRESS_KEY,))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        return StickerAddress(str(data["base_url"]), str(data["printed_at"]), int(data["tables"]))
    except (ValueError, KeyError, TypeError):
        return None
