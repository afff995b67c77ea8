"""Taking payment for a table's visit (split across methods), and the visits still owing money."""

from __future__ import annotations

from dataclasses import dataclass

import apsw

from appliance.db.connection import utc_now
from appliance.db.tables import get_visit, set_session_status, unpaid_minor
from appliance.domain.errors import DomainError
from appliance.domain.orders import SessionStatus

METHODS = ("cash", "card", "wechat", "alipay", "other")


@dataclass(frozen=True)
class PaymentResult:
    due_before_minor: int
    paid_minor: int
    change_minor: int
    due_after_minor: int
    session_status: str


def amount_due(conn: apsw.Connection, session_id: int) -> int:
    """What the visit still owes: its orders (cancelled ones excluded) less what was paid."""
    return unpaid_minor(conn, session_id)


def record_payment(conn: apsw.Connection, session_id: int, method: str, amount_minor: int) -> PaymentResult:
    """Take one payment. Cash may be more than is due (the change is recorded); other methods may not.
    When nothing is left to pay, the visit becomes paid."""
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
    conn.execute(
        "INSERT INTO payments (session_id, method, amount_minor, change_minor, created_at) VALUES (?, ?, ?, ?, ?)",
        (session_id, method, amount_minor, change, utc_now()),
    )
    after = due - (amount_minor - change)
    status: SessionStatus = session.status
    if after == 0 and status != SessionStatus.PAID:
        status = set_session_status(conn, session_id, SessionStatus.PAID)
    return PaymentResult(due, amount_minor, change, after, status.value)


@dataclass(frozen=True, slots=True)
class Payment:
    id: int
    session_id: int
    method: str
    amount_minor: int
    change_minor: int
    taken_by: str
    created_at: str

    @property
    def kept_minor(self) -> int:
        """What the payment paid off: the amount received less the change given back."""
        return self.amount_minor - self.change_minor


def payments_of(conn: apsw.Connection, session_id: int) -> list[Payment]:
    return [
        Payment(*row)
        for row in conn.execute(
            "SELECT id, session_id, method, amount_minor, change_minor, taken_by, created_at FROM payments"
            " WHERE session_id = ? ORDER BY id",
            (session_id,),
        )
    ]


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
