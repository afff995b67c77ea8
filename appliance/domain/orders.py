"""The order and table-session state machines: which moves are legal, by whom, and why a move is refused."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from appliance.domain.errors import DomainError

REASON_MAX_CHARS = 140


class OrderStatus(StrEnum):
    SUBMITTED = "submitted"
    ACCEPTED = "accepted"
    PREPARING = "preparing"
    READY = "ready"
    SERVED = "served"
    CANCELLED = "cancelled"


class Actor(StrEnum):
    DINER = "diner"
    STAFF = "staff"
    SYSTEM = "system"


class Channel(StrEnum):
    LAN = "lan"
    RELAY = "relay"
    STAFF = "staff"


class LineStatus(StrEnum):
    ACTIVE = "active"
    VOIDED = "voided"


FINAL = frozenset({OrderStatus.SERVED, OrderStatus.CANCELLED})
OPEN_STATUSES = frozenset(OrderStatus) - FINAL
# The kitchen's forward path; each status's successor.
FORWARD: dict[OrderStatus, OrderStatus] = {
    OrderStatus.SUBMITTED: OrderStatus.ACCEPTED,
    OrderStatus.ACCEPTED: OrderStatus.PREPARING,
    OrderStatus.PREPARING: OrderStatus.READY,
    OrderStatus.READY: OrderStatus.SERVED,
}


@dataclass(frozen=True)
class Transition:
    source: OrderStatus
    target: OrderStatus
    actor: Actor
    reason: str | None


def transition(current: OrderStatus, target: OrderStatus, actor: Actor, reason: str | None = None) -> Transition:
    """Check one move of an order. Refuses with `illegal_transition`, `not_allowed` or `reason_required`."""
    reason = (reason or "").strip() or None
    if target == OrderStatus.CANCELLED:
        if current in FINAL:
            raise _illegal(current, target)
        if actor == Actor.DINER and current != OrderStatus.SUBMITTED:
            raise DomainError(
                "not_allowed",
                "the kitchen has already accepted this order; ask staff to cancel it",
                status=current.value,
            )
        if actor == Actor.STAFF and current != OrderStatus.SUBMITTED and reason is None:
            raise DomainError("reason_required", "cancelling an accepted order needs a reason")
    else:
        if FORWARD.get(current) != target:
            raise _illegal(current, target)
        if actor == Actor.DINER:
            raise DomainError("not_allowed", "only staff move an order forward", status=current.value)
    if reason is not None and len(reason) > REASON_MAX_CHARS:
        raise DomainError("text_too_long", f"reason is longer than {REASON_MAX_CHARS} characters", field="reason")
    return Transition(current, target, actor, reason)


def advance(current: OrderStatus, actor: Actor = Actor.STAFF) -> Transition:
    """The next step on the kitchen's path (accept, start preparing, ready, served)."""
    if current not in FORWARD:
        raise _illegal(current, None)
    return transition(current, FORWARD[current], actor)


def _illegal(current: OrderStatus, target: OrderStatus | None) -> DomainError:
    where = f"to {target.value}" if target else "forward"
    return DomainError(
        "illegal_transition",
        f"an order that is {current.value} cannot move {where}",
        status=current.value,
        target=target.value if target else None,
    )


def void_line(line_status: LineStatus, order_status: OrderStatus, reason: str | None) -> str:
    """Staff void one line of an order (the reason prints on the kitchen's void ticket)."""
    reason = (reason or "").strip()
    if line_status == LineStatus.VOIDED:
        raise DomainError("already_voided", "this line is already voided")
    if order_status in FINAL:
        raise DomainError(
            "illegal_transition",
            f"an order that is {order_status.value} cannot be corrected",
            status=order_status.value,
        )
    if not reason:
        raise DomainError("reason_required", "voiding a line needs a reason")
    if len(reason) > REASON_MAX_CHARS:
        raise DomainError("text_too_long", f"reason is longer than {REASON_MAX_CHARS} characters", field="reason")
    return reason


def void_quantity(line_quantity: int, asked: int | None) -> int:
    """How many of a line's dishes a void takes off (None: all of them): one of a 2x is voided as 1."""
    if asked is None:
        return line_quantity
    if not 1 <= asked <= line_quantity:
        raise DomainError(
            "bad_quantity",
            f"a line of {line_quantity} can have 1 to {line_quantity} voided, not {asked}",
            quantity=asked,
            line_quantity=line_quantity,
        )
    return asked


class SessionStatus(StrEnum):
    OPEN = "open"
    BILL_REQUESTED = "bill_requested"
    PAID = "paid"
    CLOSED = "closed"


SESSION_MOVES: dict[SessionStatus, frozenset[SessionStatus]] = {
    SessionStatus.OPEN: frozenset({SessionStatus.BILL_REQUESTED, SessionStatus.PAID, SessionStatus.CLOSED}),
    SessionStatus.BILL_REQUESTED: frozenset({SessionStatus.OPEN, SessionStatus.PAID, SessionStatus.CLOSED}),
    SessionStatus.PAID: frozenset({SessionStatus.OPEN, SessionStatus.CLOSED}),
    SessionStatus.CLOSED: frozenset(),
}
# A session in these states still takes orders (ordering again after asking for the bill reopens it).
ORDERING = frozenset({SessionStatus.OPEN, SessionStatus.BILL_REQUESTED, SessionStatus.PAID})


def session_transition(
    current: SessionStatus, target: SessionStatus, unpaid_minor: int = 0, confirm_unpaid: bool = False
) -> SessionStatus:
    """Check one move of a table session. Closing with money owed needs an explicit confirmation."""
    if target not in SESSION_MOVES[current]:
        raise DomainError(
            "illegal_transition",
            f"a table session that is {current.value} cannot become {target.value}",
            status=current.value,
            target=target.value,
        )
    if target == SessionStatus.CLOSED and unpaid_minor > 0 and not confirm_unpaid:
        raise DomainError("unpaid_session", "this table still has unpaid orders", unpaid_minor=unpaid_minor)
    return target
