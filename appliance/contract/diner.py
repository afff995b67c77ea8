"""The diner API's shapes: what a phone sends (decoded strictly, see `appliance.contract.decode`) and what it is
answered, on the box (`/api/v1/tables/{token}`, documented at /schema) and on the relay
(`/s/{store_id}/api/v1/tables/{token}`, the same shapes). Every refusal is an `ErrorOut`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from appliance.domain.pricing import MAX_LINES, MAX_QUANTITY
from appliance.domain.text import NOTE_MAX_CHARS

Id = Annotated[int, Meta(ge=1, le=2**31 - 1, description="A row id.")]
# At most 140 characters as sent: `clean_note` refuses a longer note (422 text_too_long, in the diner's words, naming
# the line), so the decoder leaves the length to it (the body's size bounds the string meanwhile).
RawNote = Annotated[
    str,
    Meta(
        extra_json_schema={"maxLength": NOTE_MAX_CHARS},
        description="Up to 140 characters; control characters are removed and white space folded.",
    ),
]
MinorUnits = Annotated[int, Meta(description="Money as an integer count of the currency's minor unit (fen for CNY).")]
Lang = Annotated[str, Meta(max_length=35)]


# -- what a phone sends ---------------------------------------------------------------------------------------------
class LineIn(Struct, forbid_unknown_fields=True, kw_only=True):
    item_id: Id
    quantity: Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]
    variant_id: Id | None = None
    option_ids: Annotated[list[Id], Meta(max_length=20)] = msgspec.field(default_factory=list)
    note: RawNote = ""


class OrderIn(Struct, forbid_unknown_fields=True, kw_only=True):
    """A diner's order. Prices are never sent: the box prices every line from its own menu."""

    client_key: Annotated[
        str,
        Meta(
            pattern=r"^[A-Za-z0-9_-]{8,64}$",
            description="Made once per submission (a UUID); a retry with the same key returns the same order.",
        ),
    ]
    # At least one line, says the description; an empty list is refused by the rules (422 `empty_order`, in the
    # diner's words) rather than by the decoder.
    lines: Annotated[list[LineIn], Meta(max_length=MAX_LINES, extra_json_schema={"minItems": 1})]
    expected_total_minor: Annotated[int, Meta(ge=0, le=10**12)] | None = None
    note: RawNote = ""
    diners: Annotated[int, Meta(ge=1, le=99)] | None = None


class RelayedOrderIn(OrderIn, forbid_unknown_fields=True, kw_only=True):
    """An order as a phone sends it to the relay and the relay stores it: the box's OrderIn plus the language the
    phone asked in (the relay has no Accept-Language of the phone to hand on otherwise)."""

    lang: Lang | None = None


class ServiceRequestIn(Struct, forbid_unknown_fields=True, kw_only=True):
    kind: Literal["waiter", "bill"]


class RelayedRequestIn(ServiceRequestIn, forbid_unknown_fields=True, kw_only=True):
    """A waiter or bill request as the relay stores it (plus the phone's language)."""

    lang: Lang | None = None


# -- what it is answered --------------------------------------------------------------------------------------------
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
    # The dish's name in the menu's first language when `name` is a translation of it (else null): shown small
    # under the translation so a diner can point the staff at the dish. Absent in menus pushed by older boxes.
    original_name: str | None = None


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
    # The dish's name in the menu's first language when the diner reads another and the two differ (what to show
    # the staff), else null.
    original_name: str | None = None
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


# An order's own fields as the API shows them (everything but its lines), in the API's order.
ORDER_FIELDS: tuple[str, ...] = tuple(f for f in OrderOut.__struct_fields__ if f != "lines")


class VisitOrdersOut(Struct, kw_only=True):
    session: SessionOut | None
    orders: list[OrderOut]
    total_minor: MinorUnits


class ServiceRequestOut(Struct, kw_only=True):
    id: int
    kind: Literal["waiter", "bill"]
    created_at: str
    already_waiting: bool


# -- refusals -------------------------------------------------------------------------------------------------------
class ErrorBody(Struct):
    """A refusal: a stable code, a message in the diner's language, and details naming what was wrong. The box's
    refusal of an order that came through the relay travels to the relay in this shape too."""

    code: str
    message: str
    details: dict[str, Any]


class ErrorOut(Struct):
    """Every refusal of the API (the box's and the relay's) has this shape."""

    error: ErrorBody
