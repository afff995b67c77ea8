"""Staff, their PINs and roles, what each role may do, and the audit trail of staff actions.

A PIN is stored only as an HMAC keyed with the store secret, so a copied database does not give PINs
away, and two people cannot share one PIN (the console knows who you are from the PIN alone).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import apsw

from appliance.db.connection import dumps, scalar, utc_now
from appliance.domain.errors import DomainError

ROLES = ("manager", "waiter")

# What each role may do. Waiters run service (orders, tables, payments, sold out, stock, printing);
# prices, hiding dishes, availability windows, re-keying tables, reports, settings, staff, closing the day and
# closing a table that still owes are the manager's.
WAITER = frozenset({"orders", "tables", "payments", "sold_out", "stock", "print", "sync"})
MANAGER = WAITER | {"price", "hide", "windows", "rekey", "reports", "settings", "staff", "close_day", "close_unpaid"}
PERMISSIONS: Mapping[str, frozenset[str]] = {"waiter": WAITER, "manager": frozenset(MANAGER)}

PERMISSION_WORDS = {
    "price": "change prices",
    "hide": "hide dishes",
    "windows": "change when dishes are served",
    "rekey": "re-key tables",
    "reports": "see reports",
    "settings": "change settings",
    "staff": "manage staff",
    "close_day": "close the day",
    "close_unpaid": "close a table that still owes",
}

PIN_DIGITS = (4, 8)


@dataclass(frozen=True)
class Staff:
    id: int | None
    name: str
    role: str

    def may(self, permission: str) -> bool:
        return permission in PERMISSIONS.get(self.role, frozenset())

    def require(self, permission: str) -> None:
        if not self.may(permission):
            what = PERMISSION_WORDS.get(permission, permission)
            raise DomainError("not_allowed", f"a {self.role} cannot {what}: ask a manager", permission=permission)


def pin_hash(secret: bytes, pin: str) -> str:
    return hmac.new(secret, b"tablebox-pin:" + pin.encode(), hashlib.sha256).hexdigest()


def check_pin(pin: str) -> str:
    low, high = PIN_DIGITS
    if not (isinstance(pin, str) and pin.isascii() and pin.isdigit() and low <= len(pin) <= high):
        raise DomainError("invalid_pin", f"a PIN is {low} to {high} digits")
    return pin


def add_staff(conn: apsw.Connection, secret: bytes, name: str, role: str, pin: str) -> Staff:
    name = " ".join(str(name).split())
    if not name or len(name) > 40:
        raise DomainError("invalid_staff", "a staff name is 1 to 40 characters")
    if role not in ROLES:
        raise DomainError("invalid_staff", f"role is one of {', '.join(ROLES)}", role=role)
    digest = pin_hash(secret, check_pin(pin))
    if scalar(conn, "SELECT 1 FROM staff WHERE name = ?", (name,)):
        raise DomainError("staff_exists", f"there is already someone called {name!r}")
    if scalar(conn, "SELECT 1 FROM staff WHERE pin_hash = ?", (digest,)):
        raise DomainError("pin_taken", "that PIN is already someone's: choose another")
    staff_id = scalar(
        conn,
        "INSERT INTO staff (name, role, pin_hash, created_at) VALUES (?, ?, ?, ?) RETURNING id",
        (name, role, digest, utc_now()),
    )
    assert staff_id is not None  # INSERT ... RETURNING gives the row it inserted
    return Staff(int(staff_id), name, role)


def remove_staff(conn: apsw.Connection, name: str) -> None:
    """Deactivate (kept, because the audit trail names them)."""
    if scalar(conn, "UPDATE staff SET active = 0 WHERE name = ? AND active = 1 RETURNING id", (name,)) is None:
        raise DomainError("unknown_staff", f"no active staff member called {name!r}")


@dataclass(frozen=True, slots=True)
class StaffMember:
    """Someone on the staff list, active or removed (a staff row without its PIN hash)."""

    id: int
    name: str
    role: str  # manager / waiter
    active: bool
    created_at: str


def list_staff(conn: apsw.Connection) -> list[StaffMember]:
    """Everyone, active first, then by name."""
    return [
        StaffMember(staff_id, name, role, bool(active), created_at)
        for staff_id, name, role, active, created_at in conn.execute(
            "SELECT id, name, role, active, created_at FROM staff ORDER BY active DESC, name"
        )
    ]


def staff_count(conn: apsw.Connection) -> int:
    return int(scalar(conn, "SELECT count(*) FROM staff WHERE active = 1"))


def login(conn: apsw.Connection, secret: bytes, pin: str) -> Staff:
    try:
        check_pin(pin)
    except DomainError:
        raise DomainError("wrong_pin", "wrong PIN") from None
    row = conn.execute(
        "SELECT id, name, role FROM staff WHERE pin_hash = ? AND active = 1", (pin_hash(secret, pin),)
    ).fetchone()
    if row is None:
        raise DomainError("wrong_pin", "wrong PIN")
    staff_id, name, role = row
    return Staff(staff_id, name, role)


def audit(
    conn: apsw.Connection, staff: Staff, action: str, subject: str = "", details: Mapping[str, Any] | None = None
) -> None:
    """One line of the audit trail; call it inside the transaction of the action it records."""
    conn.execute(
        "INSERT INTO audit_log (at, staff_id, staff_name, action, subject, details) VALUES (?, ?, ?, ?, ?, ?)",
        (utc_now(), staff.id, staff.name, action, subject, dumps(dict(details or {}))),
    )


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the audit trail: who did what to what, and when."""

    id: int
    at: str
    staff_id: int | None
    staff_name: str  # as it was then, even if the person was removed since
    action: str  # order.advance / menu.price / table.close / ...
    subject: str  # "order 12", "dish har_gow", "table A5"; '' when nothing in particular
    details: str  # JSON


def audit_trail(conn: apsw.Connection, limit: int = 100) -> list[AuditEntry]:
    """The latest lines of the audit trail, newest first."""
    return [
        AuditEntry(*row)
        for row in conn.execute(
            "SELECT id, at, staff_id, staff_name, action, subject, details FROM audit_log ORDER BY id DESC LIMIT ?",
            (limit,),
        )
    ]
