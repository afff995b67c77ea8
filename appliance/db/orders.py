"""Orders in the store: the one-transaction submit (order, lines, event, print jobs, outbox), status moves, voids."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import apsw

from appliance.db.connection import dumps, one, rows, scalar, utc_now
from appliance.db.menu import counted_stock, load_menu, take_stock
from appliance.db.store_settings import StoreSettings, load_store_settings
from appliance.db.tables import Table, session_for_order, tables_by_id
from appliance.domain import orders as rules
from appliance.domain.errors import DomainError
from appliance.domain.menu import Menu
from appliance.domain.orders import FORWARD, OPEN_STATUSES, Actor, Channel, LineStatus, OrderStatus
from appliance.domain.pricing import CartLine, PricedCart, check_stock, compute_totals, price_cart

ORDERS_PER_SESSION_LIMIT = 200
DINER_CHANNELS = frozenset({Channel.LAN, Channel.RELAY})


@dataclass(frozen=True)
class OrderRequest:
    """What a diner (or staff, or the relay) asks for. Prices are never part of it."""

    client_key: str
    lines: tuple[CartLine, ...]
    note: str = ""
    diners: int | None = None
    expected_total_minor: int | None = None
    lang: str | None = None
    channel: Channel = Channel.LAN

    def fingerprint(self, table_id: int) -> str:
        """Same key + same fingerprint = a retry; same key + another fingerprint = a reused key."""
        body = {
            "table": table_id,
            "channel": self.channel.value,
            "note": self.note,
            "diners": self.diners,
            "lines": [
                [line.item_id, line.variant_id, sorted(line.option_ids), line.quantity, line.note]
                for line in self.lines
            ],
        }
        return hashlib.sha256(dumps(body).encode()).hexdigest()


@dataclass(frozen=True)
class Snapshot:
    version: int
    menu: Menu
    settings: StoreSettings
    tables: Mapping[int, Table]


@dataclass
class MenuCache:
    """The menu and store settings at the current menu version; reloaded only when the version moves
    (any visible menu change or settings change bumps it, via triggers)."""

    snapshot: Snapshot | None = None
    loads: int = 0

    def get(self, conn: apsw.Connection) -> Snapshot:
        version = scalar(conn, "SELECT version FROM menu_meta")
        if self.snapshot is None or self.snapshot.version != version:
            with conn:
                menu = load_menu(conn)
                settings = load_store_settings(conn)
                tables = tables_by_id(conn)
            self.snapshot = Snapshot(menu.version, menu, settings, tables)
            self.loads += 1
        return self.snapshot


@dataclass
class SubmitResult:
    order: dict[str, Any]
    created: bool
    sold_out_now: list[int] = field(default_factory=list)


def submit_order(conn: apsw.Connection, table: Table, request: OrderRequest, cache: MenuCache) -> SubmitResult:
    """Price and store an order in the caller's transaction: order, lines, status event, one print job
    per station, one outbox row per sync target, stock taken. A repeated client key returns the original."""
    fingerprint = request.fingerprint(table.id)
    existing = conn.execute(
        "SELECT id, request_hash FROM orders WHERE client_key = ?", (request.client_key,)
    ).fetchone()
    if existing is not None:
        if existing[1] != fingerprint and existing[1] not in _other_diner_channel_fingerprints(request, table.id):
            raise DomainError("idempotency_key_reused", "this client_key was already used for a different order")
        return SubmitResult(order_view(conn, existing[0]), created=False)

    snap = cache.get(conn)
    settings = snap.settings
    minute = settings.minute_of_day()
    if request.channel != Channel.STAFF and not settings.open_at(minute):
        raise DomainError(
            "store_closed", "the restaurant is not taking orders now", opening_hours=list(settings.opening_hours)
        )
    cart = price_cart(
        snap.menu,
        request.lines,
        minute_of_day=minute,
        service_charge_bp=settings.service_charge_bp,
        tax_rate_bp=settings.tax_rate_bp,
    )
    taken = check_stock(cart, counted_stock(conn, sorted({line.item.id for line in cart.lines})))
    if request.expected_total_minor is not None and request.expected_total_minor != cart.totals.total_minor:
        raise DomainError(
            "price_changed",
            "prices changed since the menu was loaded",
            total_minor=cart.totals.total_minor,
            expected_total_minor=request.expected_total_minor,
            subtotal_minor=cart.totals.subtotal_minor,
            service_charge_minor=cart.totals.service_charge_minor,
        )

    session = session_for_order(conn, table, settings.tables_need_staff_open, request.diners)
    now = utc_now()
    day = settings.business_day()
    ticket_no = scalar(
        conn,
        "INSERT INTO ticket_counters (day, last) VALUES (?, 1)"
        " ON CONFLICT (day) DO UPDATE SET last = last + 1 RETURNING last",
        (day,),
    )
    accepted = request.channel == Channel.STAFF or settings.auto_accept
    status = OrderStatus.ACCEPTED if accepted else OrderStatus.SUBMITTED
    t = cart.totals
    order_id = scalar(
        conn,
        "INSERT INTO orders (ticket_day, ticket_no, table_id, session_id, channel, client_key, request_hash, status,"
        " currency, subtotal_minor, service_charge_minor, total_minor, tax_minor, note, lang, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (
            day,
            ticket_no,
            table.id,
            session.id,
            request.channel.value,
            request.client_key,
            fingerprint,
            status.value,
            settings.currency,
            t.subtotal_minor,
            t.service_charge_minor,
            t.total_minor,
            t.tax_minor,
            request.note,
            request.lang,
            now,
            now,
        ),
    )
    lines_view = _insert_lines(conn, order_id, cart)
    actor = Actor.STAFF if request.channel == Channel.STAFF else Actor.DINER
    _event(conn, order_id, session.id, None, OrderStatus.SUBMITTED, actor, None, now)
    if accepted:
        _event(
            conn,
            order_id,
            session.id,
            OrderStatus.SUBMITTED,
            OrderStatus.ACCEPTED,
            actor if request.channel == Channel.STAFF else Actor.SYSTEM,
            None,
            now,
        )
    sold_out_now = take_stock(conn, taken)
    if accepted or settings.print_on == "submit":
        _ticket_jobs(conn, order_id, session.id, cart.stations, now)
    order = {
        "id": order_id,
        "ticket_no": ticket_no,
        "ticket_day": day,
        "table_id": table.id,
        "table": table.name,
        "session_id": session.id,
        "channel": request.channel.value,
        "client_key": request.client_key,
        "status": status.value,
        "currency": settings.currency,
        "subtotal_minor": t.subtotal_minor,
        "service_charge_minor": t.service_charge_minor,
        "total_minor": t.total_minor,
        "tax_minor": t.tax_minor,
        "note": request.note,
        "created_at": now,
        "updated_at": now,
        "cancel_reason": None,
        "lines": lines_view,
    }
    _outbox(conn, "order.submitted", f"order.submitted:{request.client_key}", order, now, request.client_key)
    return SubmitResult(order, created=True, sold_out_now=sold_out_now)


def _other_diner_channel_fingerprints(request: OrderRequest, table_id: int) -> set[str]:
    """A phone that leaves (or joins) the store Wi-Fi retries its order through the relay (or on the LAN) with the
    same client key: the same order, not a reused key."""
    if request.channel not in DINER_CHANNELS:
        return set()
    return {replace(request, channel=c).fingerprint(table_id) for c in DINER_CHANNELS if c != request.channel}


def _insert_lines(conn: apsw.Connection, order_id: int, cart: PricedCart) -> list[dict[str, Any]]:
    views = []
    for line in cart.lines:
        options = [{"id": o.id, "names": dict(o.names), "price_delta_minor": o.price_delta_minor} for o in line.options]
        view = {
            "line_no": line.line_no,
            "item_id": line.item.id,
            "variant_id": line.variant.id if line.variant else None,
            "names": dict(line.item.names),
            "variant_names": dict(line.variant.names) if line.variant else None,
            "options": options,
            "quantity": line.quantity,
            "unit_price_minor": line.unit_price_minor,
            "line_total_minor": line.line_total_minor,
            "note": line.note,
            "station": line.station,
            "status": LineStatus.ACTIVE.value,
            "void_reason": None,
        }
        conn.execute(
            "INSERT INTO order_lines (order_id, line_no, item_id, variant_id, item_names, variant_names, options,"
            " quantity, unit_price_minor, line_total_minor, note, station) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                order_id,
                line.line_no,
                line.item.id,
                view["variant_id"],
                dumps(view["names"]),
                dumps(view["variant_names"]) if line.variant else None,
                dumps(options),
                line.quantity,
                line.unit_price_minor,
                line.line_total_minor,
                line.note,
                line.station,
            ),
        )
        views.append(view)
    return views


def _event(
    conn: apsw.Connection,
    order_id: int,
    session_id: int,
    source: OrderStatus | None,
    target: OrderStatus,
    actor: Actor,
    reason: str | None,
    at: str,
    line_id: int | None = None,
) -> int:
    event_id: int = scalar(
        conn,
        "INSERT INTO order_events (order_id, session_id, line_id, from_status, to_status, actor, reason, at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (order_id, session_id, line_id, source.value if source else None, target.value, actor.value, reason, at),
    )
    return event_id


def _ticket_jobs(conn: apsw.Connection, order_id: int, session_id: int, stations: tuple[str, ...], now: str) -> None:
    # OR IGNORE: the unique (order, station, kind) index makes a second attempt a no-op, never a second ticket.
    for station in stations:
        conn.execute(
            "INSERT OR IGNORE INTO print_jobs (order_id, session_id, station, kind, created_at)"
            " VALUES (?, ?, ?, 'ticket', ?)",
            (order_id, session_id, station, now),
        )


def _outbox(conn: apsw.Connection, kind: str, key: str, payload: dict[str, Any], now: str, client_key: str) -> int:
    """One row per enabled sync target. A target with an inbox of its own (`inbox_source`: the public relay) gets
    only the rows of orders that came in through it (their client key is in inbox_seen under that source): the relay
    has no business with the orders taken on the store's own network, and its phones could not see them anyway."""
    targets = [
        str(name)
        for (name,) in conn.execute(
            "SELECT t.name FROM sync_targets t WHERE t.enabled AND (t.inbox_source IS NULL OR EXISTS"
            " (SELECT 1 FROM inbox_seen s WHERE s.source = t.inbox_source AND s.message_id = ?)) ORDER BY t.name",
            (client_key,),
        )
    ]
    return queue_outbox(conn, targets, kind, key, payload, now)


def queue_outbox(
    conn: apsw.Connection, targets: Sequence[str], kind: str, key: str, payload: Mapping[str, Any], now: str
) -> int:
    """The same row (kind, idempotency key, payload) for each target, in the caller's transaction; a key a target
    already has is left as it is. Returns how many targets were named."""
    if not targets:
        return 0
    body = dumps(payload)
    for target in targets:
        conn.execute(
            "INSERT OR IGNORE INTO outbox (target, kind, idempotency_key, payload, created_at) VALUES (?, ?, ?, ?, ?)",
            (target, kind, key, body, now),
        )
    return len(targets)


_LINE_COLUMNS = (
    "order_id, line_no, item_id, variant_id, item_names, variant_names, options, quantity,"
    " unit_price_minor, line_total_minor, note, station, status, void_reason"
)


def _line_view(row: tuple[Any, ...]) -> dict[str, Any]:
    (_, line_no, item_id, variant_id, names, vnames, options, qty, unit, total, note, station, status, reason) = row
    return {
        "line_no": line_no,
        "item_id": item_id,
        "variant_id": variant_id,
        "names": json.loads(names),
        "variant_names": json.loads(vnames) if vnames else None,
        "options": json.loads(options),
        "quantity": qty,
        "unit_price_minor": unit,
        "line_total_minor": total,
        "note": note,
        "station": station,
        "status": status,
        "void_reason": reason,
    }


_ORDER_SQL = (
    'SELECT o.id, o.ticket_no, o.ticket_day, o.table_id, t.name AS "table", o.session_id, o.channel, o.client_key,'
    " o.status, o.currency, o.subtotal_minor, o.service_charge_minor, o.total_minor, o.tax_minor, o.note,"
    " o.created_at, o.updated_at, CASE WHEN o.status = 'cancelled' THEN (SELECT reason FROM order_events e"
    " WHERE e.order_id = o.id AND e.to_status = 'cancelled' ORDER BY e.id DESC LIMIT 1) END AS cancel_reason"
    " FROM orders o JOIN tables t ON t.id = o.table_id"
)


def _with_lines(conn: apsw.Connection, orders: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if not orders:
        return orders
    by_id = {o["id"]: o for o in orders}
    for o in orders:
        o["lines"] = []
    marks = ",".join("?" * len(by_id))
    for row in conn.execute(
        f"SELECT {_LINE_COLUMNS} FROM order_lines WHERE order_id IN ({marks}) ORDER BY order_id, line_no", list(by_id)
    ):
        by_id[row[0]]["lines"].append(_line_view(row))
    return orders


def order_view(conn: apsw.Connection, order_id: int) -> dict[str, Any]:
    order = one(conn, _ORDER_SQL + " WHERE o.id = ?", (order_id,))
    if order is None:
        raise DomainError("unknown_order", "no such order", order_id=order_id)
    return _with_lines(conn, [order])[0]


def session_orders(conn: apsw.Connection, session_id: int) -> list[dict[str, Any]]:
    """A visit's orders, oldest first, with their lines (bounded: a visit never holds hundreds)."""
    with conn:
        orders = _with_lines(
            conn,
            list(
                rows(
                    conn,
                    _ORDER_SQL + " WHERE o.session_id = ? ORDER BY o.id LIMIT ?",
                    (session_id, ORDERS_PER_SESSION_LIMIT),
                )
            ),
        )
    return orders  # noqa: RET504 - outside the `with`: apsw's __exit__ may swallow, for the type checker


# -- Typed rows for staff (the console): the same orders as `order_view`, as frozen dataclasses ----------------------


@dataclass(frozen=True, slots=True)
class LineOption:
    """An option chosen on an order line, as frozen when the order was taken."""

    id: int
    names: Mapping[str, str]
    price_delta_minor: int


@dataclass(frozen=True, slots=True)
class OrderLineRow:
    line_no: int
    item_id: int
    variant_id: int | None
    names: Mapping[str, str]
    variant_names: Mapping[str, str] | None
    options: tuple[LineOption, ...]
    quantity: int
    unit_price_minor: int
    line_total_minor: int
    note: str
    station: str
    status: LineStatus
    void_reason: str | None


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One order with its lines (all of them, or only the active ones where the reader says so)."""

    id: int
    ticket_no: int
    ticket_day: str
    table_id: int
    table: str
    session_id: int
    channel: Channel
    client_key: str
    status: OrderStatus
    currency: str
    subtotal_minor: int
    service_charge_minor: int
    total_minor: int
    tax_minor: int
    note: str
    created_at: str
    updated_at: str
    cancel_reason: str | None
    lines: tuple[OrderLineRow, ...]


def _line_row(row: tuple[Any, ...]) -> OrderLineRow:
    (_, line_no, item_id, variant_id, names, vnames, options, qty, unit, total, note, station, status, reason) = row
    chosen = tuple(LineOption(int(o["id"]), dict(o["names"]), int(o["price_delta_minor"])) for o in json.loads(options))
    return OrderLineRow(
        line_no,
        item_id,
        variant_id,
        json.loads(names),
        json.loads(vnames) if vnames else None,
        chosen,
        qty,
        unit,
        total,
        note,
        station,
        LineStatus(status),
        reason,
    )


def _order_rows(
    conn: apsw.Connection, where: str, params: Sequence[object], *, active_lines_only: bool = False
) -> list[OrderRow]:
    """Orders (`_ORDER_SQL` + where) with their lines, in two statements (the caller holds the transaction)."""
    found: list[tuple[Any, ...]] = list(conn.execute(_ORDER_SQL + where, params))
    if not found:
        return []
    lines: dict[int, list[OrderLineRow]] = {row[0]: [] for row in found}
    active = " AND status = 'active'" if active_lines_only else ""
    for row in conn.execute(
        f"SELECT {_LINE_COLUMNS} FROM order_lines WHERE order_id IN ({','.join('?' * len(lines))})"
        f"{active} ORDER BY order_id, line_no",
        list(lines),
    ):
        lines[row[0]].append(_line_row(row))
    out = []
    for (
        oid,
        ticket_no,
        day,
        table_id,
        table,
        session_id,
        channel,
        client_key,
        status,
        currency,
        subtotal,
        service,
        total,
        tax,
        note,
        created_at,
        updated_at,
        cancel_reason,
    ) in found:
        out.append(
            OrderRow(
                oid,
                ticket_no,
                day,
                table_id,
                table,
                session_id,
                Channel(channel),
                client_key,
                OrderStatus(status),
                currency,
                subtotal,
                service,
                total,
                tax,
                note,
                created_at,
                updated_at,
                cancel_reason,
                tuple(lines[oid]),
            )
        )
    return out


def order_row(conn: apsw.Connection, order_id: int) -> OrderRow:
    """One order with all its lines (voided ones too)."""
    found = _order_rows(conn, " WHERE o.id = ?", (order_id,))
    if not found:
        raise DomainError("unknown_order", "no such order", order_id=order_id)
    return found[0]


def visit_orders(conn: apsw.Connection, session_id: int) -> list[OrderRow]:
    """A visit's orders, oldest first, with all their lines (bounded like `session_orders`)."""
    with conn:
        found = _order_rows(
            conn, " WHERE o.session_id = ? ORDER BY o.id LIMIT ?", (session_id, ORDERS_PER_SESSION_LIMIT)
        )
    return found  # noqa: RET504 - outside the `with`: apsw's __exit__ may swallow, for the type checker


def open_orders(
    conn: apsw.Connection,
    *,
    status: str | None = None,
    table: str | None = None,
    station: str | None = None,
    dish: str | None = None,
    limit: int = 200,
) -> list[OrderRow]:
    """The kitchen board: orders not yet served or cancelled, newest first, with their active lines; narrowed to
    one status, one table (by name), orders with an active line for one station, or with an active line whose dish
    is named with `dish` in any of its languages (any case: "HAR gow" finds Har gow, "虾饺" 水晶虾饺). One read
    transaction."""
    where = [f"o.status IN ({','.join('?' * len(OPEN_STATUSES))})"]
    params: list[object] = [*sorted(s.value for s in OPEN_STATUSES)]
    if status:
        where.append("o.status = ?")
        params.append(status)
    if table:
        where.append("t.name = ?")
        params.append(table)
    if station:
        where.append(
            "EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND l.station = ? AND l.status = 'active')"
        )
        params.append(station)
    if dish:
        where.append(
            "EXISTS (SELECT 1 FROM order_lines l, json_each(l.item_names) n WHERE l.order_id = o.id"
            " AND l.status = 'active' AND instr(casefold(n.value), ?) > 0)"
        )
        params.append(dish.casefold())
        conn.create_scalar_function("casefold", _casefold, 1, deterministic=True)  # SQLite's lower() is ASCII only
    with conn:
        found = _order_rows(
            conn, f" WHERE {' AND '.join(where)} ORDER BY o.id DESC LIMIT ?", (*params, limit), active_lines_only=True
        )
    return found  # noqa: RET504 - outside the `with`: apsw's __exit__ may swallow, for the type checker


def _casefold(*args: Any) -> Any:
    """SQL casefold(text): Python's (SQLite's lower() folds ASCII only)."""
    (value,) = args
    return value.casefold() if isinstance(value, str) else value


class Advanced(NamedTuple):
    """One step an order moved: the status it had and the order after the move (unpacks as a pair)."""

    before: OrderStatus
    order: OrderRow

    @property
    def audit_details(self) -> Mapping[str, str]:
        """What the staff audit line records of the step: its from and to states, as they were in the store."""
        return {"from": self.before.value, "to": self.order.status.value}


def advance_order(conn: apsw.Connection, order_id: int) -> Advanced:
    """Staff move an order one step along the kitchen's path (accept, cooking, ready, served): the step from its
    status as it is now (read in the same transaction, so two quick presses move it two steps, and a board a moment
    behind cannot move it the wrong way). Returns the status it had and the order after the move."""
    status = scalar(conn, "SELECT status FROM orders WHERE id = ?", (order_id,))
    if status is None:
        raise DomainError("unknown_order", "no such order", order_id=order_id)
    before = OrderStatus(status)
    target = FORWARD.get(before)
    if target is None:
        raise DomainError("illegal_transition", f"an order that is {before} has no next step")
    return Advanced(before, change_status(conn, order_id, target, Actor.STAFF))


def accept_order(conn: apsw.Connection, order_id: int) -> Advanced:
    """Staff accept an order that is still new, as `advance_order` does from new (tickets, event, outbox): for
    accepting every new order at once, where an order another console accepted or cancelled since the question was
    asked is refused (`order_changed`, saying what it is now), never moved a step further."""
    status = scalar(conn, "SELECT status FROM orders WHERE id = ?", (order_id,))
    if status is None:
        raise DomainError("unknown_order", "no such order", order_id=order_id)
    if status != OrderStatus.SUBMITTED:
        raise DomainError("order_changed", f"it is {status} now", order_id=order_id, status=status)
    return Advanced(OrderStatus.SUBMITTED, change_status(conn, order_id, OrderStatus.ACCEPTED, Actor.STAFF))


def ticket_order_id(conn: apsw.Connection, day: str, ticket_no: int) -> int | None:
    """The order behind ticket `ticket_no` of business day `day` (None: no such ticket)."""
    found: int | None = scalar(conn, "SELECT id FROM orders WHERE ticket_day = ? AND ticket_no = ?", (day, ticket_no))
    return found


def ticket_status(conn: apsw.Connection, day: str, ticket_no: int) -> OrderStatus | None:
    """Where ticket `ticket_no` of business day `day` stands (None: no such ticket)."""
    status = scalar(conn, "SELECT status FROM orders WHERE ticket_day = ? AND ticket_no = ?", (day, ticket_no))
    return None if status is None else OrderStatus(status)


def newest_order_id(conn: apsw.Connection) -> int:
    """The highest order id so far (0 before the first order): a new order is one above what was seen."""
    newest: int = scalar(conn, "SELECT coalesce(max(id), 0) FROM orders")
    return newest


def change_status(
    conn: apsw.Connection, order_id: int, target: OrderStatus, actor: Actor, reason: str | None = None
) -> OrderRow:
    """Move an order (accept, preparing, ready, served, cancel) if the rules allow it, with its event,
    its kitchen tickets (printing on accept) or void tickets (cancel), and its outbox rows."""
    row = one(conn, "SELECT id, status, session_id, client_key FROM orders WHERE id = ?", (order_id,))
    if row is None:
        raise DomainError("unknown_order", "no such order", order_id=order_id)
    move = rules.transition(OrderStatus(row["status"]), target, actor, reason)
    now = utc_now()
    conn.execute("UPDATE orders SET status = ?, updated_at = ? WHERE id = ?", (target.value, now, order_id))
    event_id = _event(conn, order_id, row["session_id"], move.source, target, actor, move.reason, now)
    stations = tuple(
        s
        for (s,) in conn.execute(
            "SELECT DISTINCT station FROM order_lines WHERE order_id = ? AND status = 'active' ORDER BY line_no",
            (order_id,),
        )
    )
    if target == OrderStatus.ACCEPTED:
        _ticket_jobs(conn, order_id, row["session_id"], stations, now)
    elif target == OrderStatus.CANCELLED:
        for (station,) in conn.execute(
            "SELECT station FROM print_jobs WHERE order_id = ? AND kind = 'ticket'", (order_id,)
        ).fetchall():
            conn.execute(
                "INSERT OR IGNORE INTO print_jobs (order_id, session_id, station, kind, ref, payload, created_at)"
                " VALUES (?, ?, ?, 'void', 'order', ?, ?)",
                (order_id, row["session_id"], station, dumps({"reason": move.reason}), now),
            )
    _outbox(
        conn,
        "order.status",
        f"order.status:{row['client_key']}:{event_id}",
        {
            "order_id": order_id,
            "client_key": row["client_key"],
            "from": move.source.value,
            "to": target.value,
            "actor": actor.value,
            "reason": move.reason,
            "at": now,
        },
        now,
        row["client_key"],
    )
    return order_row(conn, order_id)


def void_line(conn: apsw.Connection, order_id: int, line_no: int, reason: str, quantity: int | None = None) -> OrderRow:
    """Staff take a line off an order, or `quantity` of its dishes (one of a 2x): totals recomputed, a void ticket
    for its station, an event and an outbox row.

    Part of a line splits it: the line keeps its number with what is left (its total with it), and the part voided
    becomes a voided line of its own at the end of the order (the same dish, size, choices, unit price and note),
    so the bill, the day's report, the diner's page and the void ticket read it as any voided line ("1x"). The
    event and the void ticket name that voided line; the outbox row names the line as the ERP has it (`line_no`,
    the line as submitted) with `quantity` voided and `left` on it, once per void (its key is the event's)."""
    order = one(conn, "SELECT id, status, session_id, client_key FROM orders WHERE id = ?", (order_id,))
    line = one(
        conn,
        "SELECT id, status, station, quantity, unit_price_minor FROM order_lines WHERE order_id = ? AND line_no = ?",
        (order_id, line_no),
    )
    if order is None or line is None:
        raise DomainError("unknown_order", "no such order line", order_id=order_id, line=line_no)
    reason = rules.void_line(LineStatus(line["status"]), OrderStatus(order["status"]), reason)
    voided = rules.void_quantity(line["quantity"], quantity)
    left = line["quantity"] - voided
    now = utc_now()
    if left:
        voided_no = scalar(conn, "SELECT max(line_no) + 1 FROM order_lines WHERE order_id = ?", (order_id,))
        voided_id = scalar(
            conn,
            "INSERT INTO order_lines (order_id, line_no, item_id, variant_id, item_names, variant_names, options,"
            " quantity, unit_price_minor, line_total_minor, note, station, status, void_reason)"
            " SELECT order_id, ?, item_id, variant_id, item_names, variant_names, options, ?, unit_price_minor, ?,"
            " note, station, 'voided', ? FROM order_lines WHERE id = ? RETURNING id",
            (voided_no, voided, line["unit_price_minor"] * voided, reason, line["id"]),
        )
        conn.execute(
            "UPDATE order_lines SET quantity = ?, line_total_minor = ? WHERE id = ?",
            (left, line["unit_price_minor"] * left, line["id"]),
        )
    else:
        voided_no, voided_id = line_no, line["id"]
        conn.execute("UPDATE order_lines SET status = 'voided', void_reason = ? WHERE id = ?", (reason, line["id"]))
    settings = load_store_settings(conn)
    totals = compute_totals(
        (
            t
            for (t,) in conn.execute(
                "SELECT line_total_minor FROM order_lines WHERE order_id = ? AND status = 'active'", (order_id,)
            )
        ),
        settings.service_charge_bp,
        settings.tax_rate_bp,
    )
    conn.execute(
        "UPDATE orders SET subtotal_minor = ?, service_charge_minor = ?, total_minor = ?, tax_minor = ?, updated_at = ?"
        " WHERE id = ?",
        (totals.subtotal_minor, totals.service_charge_minor, totals.total_minor, totals.tax_minor, now, order_id),
    )
    status = OrderStatus(order["status"])
    event_id = _event(conn, order_id, order["session_id"], status, status, Actor.STAFF, reason, now, line_id=voided_id)
    if scalar(
        conn,
        "SELECT 1 FROM print_jobs WHERE order_id = ? AND station = ? AND kind = 'ticket'",
        (order_id, line["station"]),
    ):
        conn.execute(
            "INSERT OR IGNORE INTO print_jobs (order_id, session_id, station, kind, ref, payload, created_at)"
            " VALUES (?, ?, ?, 'void', ?, ?, ?)",
            (
                order_id,
                order["session_id"],
                line["station"],
                str(voided_id),
                dumps({"reason": reason, "line_no": voided_no}),
                now,
            ),
        )
    _outbox(
        conn,
        "order.line_voided",
        f"order.line_voided:{order['client_key']}:{event_id}",
        {
            "order_id": order_id,
            "client_key": order["client_key"],
            "line_no": line_no,
            "quantity": voided,
            "left": left,
            "reason": reason,
            "total_minor": totals.total_minor,
            "at": now,
        },
        now,
        order["client_key"],
    )
    return order_row(conn, order_id)


def last_event_id(conn: apsw.Connection) -> int:
    return int(scalar(conn, "SELECT coalesce(max(id), 0) FROM order_events"))
