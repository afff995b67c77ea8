"""What every ERP adapter offers the sync worker, and the two ways a delivery can fail.

The worker hands an adapter one outbox row at a time (or a batch, where the ERP allows), each with its
idempotency key; the adapter must make a retried delivery harmless (look up before create, or an
idempotency header the ERP honours). It raises `Retryable` for anything that may work later (network,
timeout, 5xx, 429, a lock) and `Rejected` for what retrying cannot fix (the ERP refused the data: a
4xx that names a bad field, an unknown item); the worker backs off on the first and parks the row on the
second, with the ERP's own message, for a person to look at.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar, Protocol

from appliance.errors import TableboxError


class DeliveryError(TableboxError):
    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class Retryable(DeliveryError):
    """Try again later (network down, timeout, 5xx, 429, the ERP busy). `retry_after`: the seconds the target asked
    to be left alone for (its Retry-After header), when it said."""

    def __init__(self, message: str, *, status: int | None = None, retry_after: float | None = None) -> None:
        super().__init__(message, status=status)
        self.retry_after = retry_after


class Rejected(DeliveryError):
    """The ERP refused this row for good; a person must fix something (then `tablebox sync retry`)."""


@dataclass(frozen=True)
class CatalogItem:
    code: str  # the ERP's item code (items.erp_code)
    names: Mapping[str, str]  # {"zh": ..., "en": ...}; at least one
    price_minor: int | None  # selling price in the currency's minor unit; None: not sold / no price
    category: str | None = None  # the ERP's item group / category name
    active: bool = True  # False (disabled in the ERP) counts as removed


@dataclass(frozen=True)
class Catalog:
    items: Sequence[CatalogItem]
    currency: str | None = None  # when the ERP says which; the worker refuses a catalog in another currency


@dataclass(frozen=True)
class OrderLine:
    code: str | None  # the dish's ERP item code (None: a dish the ERP does not know)
    key: str | None  # our dish key
    name: str
    quantity: int
    unit_price_minor: int
    line_total_minor: int
    note: str = ""


@dataclass(frozen=True)
class OrderDoc:
    """An order as the ERP gets it. `order_ref` (our client key, unique and stable) is what the ERP stores to
    recognise a retried delivery."""

    order_ref: str
    order_id: int
    ticket: str  # "2026-11-21#12"
    table: str
    created_at: str  # UTC ISO-8601
    currency: str
    lines: Sequence[OrderLine]
    subtotal_minor: int
    service_charge_minor: int
    total_minor: int
    tax_minor: int
    status: str = "submitted"
    note: str = ""
    view: Mapping[str, Any] | None = None  # the order as the store keeps it (names in every language): the relay's


@dataclass(frozen=True)
class PaymentDoc:
    payment_ref: str  # unique and stable (our outbox idempotency key)
    order_refs: Sequence[str]  # the visit's orders
    table: str
    method: str
    amount_minor: int
    currency: str
    paid_at: str
    extra: Mapping[str, Any] = field(default_factory=dict)
    kind: str = "payment"  # "payment" (money taken) or "refund" (money given back; amount_minor is still positive)
    refund_of: str | None = None  # a refund: the payment_ref of the payment it gives money back from
    reason: str = ""  # a refund's reason, as staff typed it (bounded, no control bytes)


@dataclass(frozen=True)
class OrderChange:
    """An order.status or order.line_voided row for an adapter declaring Capability.AMENDS. `order` is the order as
    the store has it at delivery (voided lines left out, totals recomputed; built like push_order's document), so
    applying the newest state twice changes nothing: adapters make each change idempotent against that state."""

    order_ref: str
    event: str  # "status" (payload to/from) or "line_voided"
    status: str  # the order's status after this change ("cancelled", "accepted", ...; a void: its status now)
    reason: str | None
    order: OrderDoc | None  # None only when the order has no active line left (every line voided)
    change_ref: str = ""  # the row's idempotency key: unique per change, for an ERP that wants one per document
    line_no: int | None = None  # a line void: which line (1-based, as the order's lines are numbered)
    quantity: int | None = None  # a line void: how many of its dishes (None: the whole line, as older rows say)
    left: int = 0  # a line void: how many of the line's dishes are still on the order (one of a 2x voided: 1)

    def void_words(self) -> str:
        """A line void as a note says it: "line 2 voided: sent back", "1 of line 2 voided (1 left): sent back"."""
        return voided_words(self.line_no, self.quantity, self.left, self.reason)


def voided_words(line_no: object, quantity: int | None, left: int, reason: str | None) -> str:
    """What a voided line (or part of one) reads as in an ERP's note or a status reason."""
    what = f"{quantity} of line {line_no} voided ({left} left)" if left and quantity else f"line {line_no} voided"
    return what + (f": {reason}" if reason else "")


class CheckState(StrEnum):
    OK = "ok"  # ✓
    WARN = "warn"  # ! works, but something is not as the box expects
    FAIL = "fail"  # ✗ orders, payments or the catalog will not get through until it is fixed


@dataclass(frozen=True)
class Check:
    """One line of `tablebox sync check`: what was checked, how it stands, what the server said, what to do."""

    name: str  # "reachable", "authenticated", "custom field tablebox_ref", "POS profile payment modes"...
    state: CheckState
    detail: str = ""  # what was found ("ERPNext 15.41.0 at https://erp...", "role Accounts User missing")
    fix: str = ""  # what to do about it, for a WARN or FAIL ("In ERPNext: Customize Form > Sales Order > ...")


class Capability(StrEnum):
    """What a target does beyond taking orders, statuses and payments. Each adapter class declares its set
    (`capabilities`); the outbox engine and the sync worker read the declaration, they never probe for methods."""

    CATALOG_PULL = "catalog_pull"  # pull_catalog/pull_stock answer: the worker pulls the menu from it on schedule
    ORDER_VIEW = "order_view"  # push_status also takes `order=` (OrderViewAdapter): a phone shows the whole order
    REFUSALS = "refusals"  # takes order.refused / request.refused rows (what the box refused from it)
    INBOX = "inbox"  # sends the box messages too (the relay): the worker runs its link beside the outbox
    AMENDS = "amends"  # order.status and order.line_voided rows go to push_change (ChangeAdapter) with the order as
    # it stands now, so the adapter can cancel, amend or credit a real document instead of writing a note


class Adapter(Protocol):
    """One ERP. Constructed from its settings (base URL, credentials, mapping); methods block (the worker
    runs them on its own thread) and must time out on their own."""

    name: str
    capabilities: ClassVar[frozenset[Capability]]
    # what `tablebox sync check` hands check() (sync/check.py sets both before calling it): the ERP codes of the
    # store's dishes, and the box's facts (currency, prices_include_tax, tax_rate_bp, payment_methods, languages)
    expected_codes: Sequence[str]
    box_facts: Mapping[str, Any]

    def pull_catalog(self) -> Catalog: ...

    def pull_stock(self) -> Mapping[str, int]:
        """Stock on hand per item code (only items the ERP counts)."""
        ...

    def push_order(self, order: OrderDoc) -> str:
        """Create the order once; return the ERP's reference for it. A retry of an order already there
        returns the existing reference instead of creating another."""
        ...

    def push_status(self, order_ref: str, status: str, reason: str | None) -> None:
        """An order was cancelled (or moved on); adapters that cannot record it return without error. An adapter
        declaring Capability.ORDER_VIEW is called as an OrderViewAdapter instead. With Capability.REFUSALS it also
        gets status "refused" with the box's error as JSON in `reason`."""
        ...

    def push_payment(self, payment: PaymentDoc) -> str:
        """Book a payment (kind "payment") or a refund (kind "refund") once, as the ERP's own payment document;
        return the ERP's reference. A retry of one already there returns the existing reference."""
        ...

    def check(self) -> Sequence[Check]:
        """`tablebox sync check`: the checklist against the real server, in order; stops adding checks that cannot
        run (no connection: only "reachable" failed). Raises nothing for a failed check: a Check says it."""
        ...

    def close(self) -> None: ...


class ChangeAdapter(Adapter, Protocol):
    """An adapter declaring Capability.AMENDS: cancels and voids become the ERP's own documents."""

    def push_change(self, change: OrderChange) -> None: ...


class OrderViewAdapter(Adapter, Protocol):
    """An adapter declaring Capability.ORDER_VIEW (the relay: a phone shows the whole order)."""

    def push_status(
        self, order_ref: str, status: str, reason: str | None, order: Mapping[str, Any] | None = None
    ) -> None:
        """As Adapter.push_status, also given `order`: the order as it is now, with `status` as of this change."""
        ...
