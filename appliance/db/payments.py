"""Taking payment for a table's visit (split across methods), giving money back from a payment, and the visits still
owing money. Each payment and each refund queues one outbox row per ERP target in its own transaction, so the ERP
books it once, whatever happens to the box or the network in between."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any

import apsw

from appliance.db.connection import one, scalar, utc_now
from appliance.db.orders import queue_outbox
from appliance.db.store_settings import load_store_settings
from appliance.db.tables import get_visit, set_session_status, unpaid_minor
from appliance.domain.errors import DomainError
from appliance.domain.orders import SessionStatus
from appliance.domain.text import clean_text

METHODS = ("cash", "card", "wechat", "alipay", "other")
REFUND_REASON_MAX_CHARS = 140
PAYMENT_KIND = "payment.recorded"
REFUND_KIND = "payment.refunded"


def payment_ref(payment_key: str) -> str:
    """A payment's outbox idempotency key: what the ERP stores to recognise it (and what a refund names)."""
    return f"{PAYMENT_KIND}:{payment_key}"


def refund_ref(refund_key: str) -> str:
    return f"{REFUND_KIND}:{refund_key}"


def erp_targets(conn: apsw.Connection) -> list[str]:
    """The enabled sync targets that book money: every ERP. A target with an inbox of its own (the public relay) shows
    phones their orders and has no business with the store's takings, so it gets no payment rows."""
    return [
        str(name)
        for (name,) in conn.execute(
            "SELECT name FROM sync_targets WHERE enabled AND inbox_source IS NULL ORDER BY name"
        )
    ]


@dataclass(frozen=True)
class PaymentResult:
    due_before_minor: int
    paid_minor: int
    change_minor: int
    due_after_minor: int
    session_status: str
    payment_id: int
    payment_key: str


def amount_due(conn: apsw.Connection, session_id: int) -> int:
    """What the visit still owes: its orders (cancelled ones excluded) less what was paid, plus what was refunded."""
    return unpaid_minor(conn, session_id)


def _bill(conn: apsw.Connection, session_id: int) -> tuple[list[str], str, str]:
    """The visit's orders that count (not cancelled) by client key, oldest first; the currency its orders were taken
    in (the store's, for a visit without orders); the table's name."""
    refs = [
        str(key)
        for (key,) in conn.execute(
            "SELECT client_key FROM orders WHERE session_id = ? AND status != 'cancelled' ORDER BY id", (session_id,)
        )
    ]
    currency = scalar(conn, "SELECT currency FROM orders WHERE session_id = ? ORDER BY id LIMIT 1", (session_id,))
    table = scalar(
        conn, "SELECT t.name FROM table_sessions s JOIN tables t ON t.id = s.table_id WHERE s.id = ?", (session_id,)
    )
    return refs, str(currency or load_store_settings(conn).currency), str(table)


def record_payment(
    conn: apsw.Connection, session_id: int, method: str, amount_minor: int, taken_by: str = "staff"
) -> PaymentResult:
    """Take one payment, in the caller's transaction. Cash may be more than is due (the change is recorded); other
    methods may not. When nothing is left to pay, the visit becomes paid. Each ERP target gets a `payment.recorded`
    outbox row in the same transaction: what was kept (received less change), by which method, for which orders."""
    if method not in METHODS:
        raise DomainError("invalid_payment", f"payment method is one of {', '.join(METHODS)}", method=method)
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor <= 0:
        raise DomainError("invalid_payment", "a payment is a positive whole number of minor units")
    session = get_visit(conn, session_id)
    if session is None:
        raise DomainError("unknown_session", "no such table visit", session_id=session_id)
    if session.status == SessionStatus.CLOSED:
        raise DomainError("illegal_transition", "this visit is closed")
    due = amount_due(conn, session_id)
    if due <= 0:
        raise DomainError("nothing_due", "nothing is owed on this visit")
    change = 0
    if amount_minor > due:
        if method != "cash":
            raise DomainError("overpayment", "only cash can be more than is due", due_minor=due)
        change = amount_minor - due
    now = utc_now()
    key = uuid.uuid4().hex
    refs, currency, table = _bill(conn, session_id)
    payment_id: int = scalar(
        conn,
        "INSERT INTO payments (session_id, method, amount_minor, change_minor, taken_by, created_at, payment_key,"
        " order_refs) VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (session_id, method, amount_minor, change, taken_by, now, key, json.dumps(refs)),
    )
    queue_outbox(
        conn,
        erp_targets(conn),
        PAYMENT_KIND,
        payment_ref(key),
        {
            "order_refs": refs,
            "table": table,
            "method": method,
            "amount_minor": amount_minor - change,
            "currency": currency,
            "paid_at": now,
            "received_minor": amount_minor,
            "change_minor": change,
        },
        now,
    )
    after = due - (amount_minor - change)
    status: SessionStatus = session.status
    if after == 0 and status != SessionStatus.PAID:
        status = set_session_status(conn, session_id, SessionStatus.PAID)
    return PaymentResult(due, amount_minor, change, after, status.value, payment_id, key)


@dataclass(frozen=True, slots=True)
class Payment:
    id: int
    session_id: int
    method: str
    amount_minor: int
    change_minor: int
    taken_by: str
    created_at: str
    payment_key: str
    refunded_minor: int  # given back since, in refunds

    @property
    def kept_minor(self) -> int:
        """What the payment paid off: the amount received less the change given back."""
        return self.amount_minor - self.change_minor

    @property
    def refundable_minor(self) -> int:
        """What can still be given back from it: what it kept less what was refunded already."""
        return self.kept_minor - self.refunded_minor

    @property
    def ref(self) -> str:
        return payment_ref(self.payment_key)


_PAYMENT_SQL = (
    "SELECT p.id, p.session_id, p.method, p.amount_minor, p.change_minor, p.taken_by, p.created_at, p.payment_key,"
    " (SELECT coalesce(sum(r.amount_minor), 0) FROM refunds r WHERE r.payment_id = p.id) FROM payments p"
)


def payments_of(conn: apsw.Connection, session_id: int) -> list[Payment]:
    return [
        Payment(*row) for row in conn.execute(_PAYMENT_SQL + " WHERE p.session_id = ? ORDER BY p.id", (session_id,))
    ]


def get_payment(conn: apsw.Connection, payment_id: int) -> Payment | None:
    row = conn.execute(_PAYMENT_SQL + " WHERE p.id = ?", (payment_id,)).fetchone()
    return Payment(*row) if row else None


def _targets_holding(conn: apsw.Connection, key: str) -> list[str]:
    """The targets that were sent the row with this key: a refund goes where its payment went (a target added since
    never had the payment, and would refuse a refund of it). Each look-up is one probe of UNIQUE(target, key)."""
    return [
        str(name)
        for (name,) in conn.execute(
            "SELECT t.name FROM sync_targets t WHERE EXISTS"
            " (SELECT 1 FROM outbox o WHERE o.target = t.name AND o.idempotency_key = ?) ORDER BY t.name",
            (key,),
        )
    ]


@dataclass(frozen=True)
class RefundResult:
    refund_id: int
    refund_key: str
    payment_id: int
    refunded_minor: int
    refundable_after_minor: int  # what the payment can still give back
    due_after_minor: int  # what the visit owes now
    session_status: str


def refund_payment(conn: apsw.Connection, payment_id: int, amount_minor: int, reason: str, by: str) -> RefundResult:
    """Give money back from one payment, in the caller's transaction: never more than the payment kept less what was
    refunded from it before; a reason is required (control bytes stripped, at most REFUND_REASON_MAX_CHARS). The
    visit owes that much again (a paid visit that now owes is open again, so closing it asks), and each target the
    payment was sent to (every ERP target, when its rows were pruned or it predates payments reaching the ERP) gets a
    `payment.refunded` outbox row naming the payment it came from."""
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or amount_minor <= 0:
        raise DomainError("invalid_refund", "a refund is a positive whole number of minor units")
    if not isinstance(reason, str):
        raise DomainError("reason_required", "a refund needs a reason")
    reason = clean_text(reason, REFUND_REASON_MAX_CHARS, field="reason")
    if not reason:
        raise DomainError("reason_required", "a refund needs a reason")
    payment = get_payment(conn, payment_id)
    if payment is None:
        raise DomainError("unknown_payment", "no such payment", payment_id=payment_id)
    session = get_visit(conn, payment.session_id)
    if session is None or session.status == SessionStatus.CLOSED:
        raise DomainError("illegal_transition", "this visit is closed: its payments can no longer be refunded here")
    refundable = payment.refundable_minor
    if refundable <= 0:
        raise DomainError("nothing_to_refund", "everything this payment kept was given back already")
    if amount_minor > refundable:
        raise DomainError(
            "over_refund",
            "a refund cannot be more than the payment kept less what was refunded from it",
            refundable_minor=refundable,
        )
    now = utc_now()
    key = uuid.uuid4().hex
    refund_id: int = scalar(
        conn,
        "INSERT INTO refunds (payment_id, session_id, amount_minor, reason, refunded_by, refund_key, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        (payment.id, payment.session_id, amount_minor, reason, by, key, now),
    )
    stored = one(conn, "SELECT order_refs FROM payments WHERE id = ?", (payment.id,))
    refs, currency, table = _bill(conn, payment.session_id)
    paid_for: list[Any] = json.loads(stored["order_refs"]) if stored else []
    queue_outbox(
        conn,
        _targets_holding(conn, payment.ref) or erp_targets(conn),
        REFUND_KIND,
        refund_ref(key),
        {
            "refund_of": payment.ref,
            "order_refs": paid_for or refs,
            "table": table,
            "method": payment.method,
            "amount_minor": amount_minor,
            "currency": currency,
            "paid_at": now,
            "reason": reason,
        },
        now,
    )
    after = amount_due(conn, payment.session_id)
    status: SessionStatus = session.status
    if after > 0 and status == SessionStatus.PAID:
        status = set_session_status(conn, payment.session_id, SessionStatus.OPEN)
    return RefundResult(refund_id, key, payment.id, amount_minor, refundable - amount_minor, after, status.value)


@dataclass(frozen=True, slots=True)
class OwingVisit:
    session_id: int
    status: str
    opened_at: str
    table_name: str
    due_minor: int


def visits_owing(conn: apsw.Connection) -> list[OwingVisit]:
    """Open visits with money still due: what closing the day must ask about, never silently drop."""
    out = []
    for session_id, status, opened_at, table_name in conn.execute(
        "SELECT s.id, s.status, s.opened_at, t.name FROM table_sessions s JOIN tables t ON t.id = s.table_id"
        " WHERE s.status != 'closed' ORDER BY t.sort, t.id"
    ):
        due = amount_due(conn, session_id)
        if due > 0:
            out.append(OwingVisit(session_id, status, opened_at, table_name, due))
    return out
