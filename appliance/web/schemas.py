"""Typed shapes of the diner API's requests and answers; they are what /schema documents."""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta, Struct

# The request shapes (OrderIn, LineIn, ServiceRequestIn) live with the store, in appliance/db/diner_input.py: the relay
# link checks the orders phones send through the relay with them too.

MinorUnits = Annotated[int, Meta(description="Money as an integer count of the currency's minor unit (fen for CNY).")]


class StoreOut(Struct, kw_only=True):
    name: str
    currency: str
    currency_exponent: int
    languages: list[str]
    open_now: bool
    opening_hours: list[str]
    service_charge_bp: int
    tax_rate_bp: int


class SessionOut(Struct, kw_only=True):
    id: int
    status: Literal["open", "bill_requested", "paid", "closed"]
    opened_at: str
    diners: int | None


class TableOut(Struct, kw_only=True):
    name: str
    area: str
    seats: int | None
    takes_orders: bool
    session: SessionOut | None


class TableInfoOut(Struct, kw_only=True):
    store: StoreOut
    table: TableOut


class OptionOut(Struct, kw_only=True):
    id: int
    name: str
    price_delta_minor: MinorUnits
    sold_out: bool


class OptionGroupOut(Struct, kw_only=True):
    id: int
    name: str
    min_choices: int
    max_choices: int
    options: list[OptionOut]


class VariantOut(Struct, kw_only=True):
    id: int
    name: str
    price_minor: MinorUnits


class ItemOut(Struct, kw_only=True):
    id: int
    name: str
    description: str
    price_minor: MinorUnits | None
    from_price_minor: MinorUnits
    variants: list[VariantOut]
    option_groups: list[OptionGroupOut]
    allergens: list[str]
    image: str | None
    prep_minutes: int | None
    sold_out: bool
    available_now: bool
    available_hours: str | None


class CategoryOut(Struct, kw_only=True):
    id: int
    name: str
    items: list[ItemOut]


class MenuOut(Struct, kw_only=True):
    version: int
    lang: str
    languages: list[str]
    currency: str
    currency_exponent: int
    service_charge_bp: int
    categories: list[CategoryOut]


class ChosenOptionOut(Struct, kw_only=True):
    id: int
    name: str
    price_delta_minor: MinorUnits


class LineOut(Struct, kw_only=True):
    line_no: int
    item_id: int
    name: str
    variant_id: int | None
    variant: str | None
    options: list[ChosenOptionOut]
    quantity: int
    unit_price_minor: MinorUnits
    line_total_minor: MinorUnits
    note: str
    status: Literal["active", "voided"]


class OrderOut(Struct, kw_only=True):
    id: int
    ticket_no: int
    status: Literal["submitted", "accepted", "preparing", "ready", "served", "cancelled"]
    channel: Literal["lan", "relay", "staff"]
    table: str
    client_key: str
    currency: str
    subtotal_minor: MinorUnits
    service_charge_minor: MinorUnits
    total_minor: MinorUnits
    tax_minor: MinorUnits
    note: str
    created_at: str
    updated_at: str
    cancel_reason: str | None
    lines: list[LineOut]


class VisitOrdersOut(Struct, kw_only=True):
    session: SessionOut | None
    orders: list[OrderOut]
    total_minor: MinorUnits


class ServiceRequestOut(Struct, kw_only=True):
    id: int
    kind: Literal["waiter", "bill"]
    created_at: str
    already_waiting: bool


class DatabaseHealth(Struct, kw_only=True):
    ok: bool
    schema_version: int
    error: str | None


class PrintersHealth(Struct, kw_only=True):
    pending_jobs: int
    failed_jobs: int
    oldest_pending_at: str | None


class SyncTargetHealth(Struct, kw_only=True):
    name: str
    kind: str
    state: Literal["ok", "retrying", "failing", "idle"]
    since: str | None            # retrying: when the oldest failing row was queued; failing: the first parking
    pending: int                 # rows still to send (parked ones not counted)
    parked: int                  # rows the ERP refused, waiting for a person (`tablebox sync retry`)
    last_success: str | None
    last_error: str | None


class HealthOut(Struct, kw_only=True):
    status: Literal["ok", "degraded", "failing"]
    version: str
    database: DatabaseHealth
    printers: PrintersHealth
    sync: list[SyncTargetHealth]
