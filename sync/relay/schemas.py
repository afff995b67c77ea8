"""Typed shapes of what phones and boxes send the relay, decoded strictly (unknown fields and wrong types are
refused on the phone side, as the box does; a box may add fields a newer relay will read)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from appliance.domain.pricing import MAX_LINES, MAX_QUANTITY

Id = Annotated[int, Meta(ge=1, le=2**31 - 1)]
# Raw bound before control characters are stripped; the cleaned note must fit 140 characters (as on the box).
RawNote = Annotated[str, Meta(max_length=280)]
CLIENT_KEY = r"^[A-Za-z0-9_-]{16,64}$"


class LineIn(Struct, forbid_unknown_fields=True, kw_only=True):
    item_id: Id
    quantity: Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]
    variant_id: Id | None = None
    option_ids: Annotated[list[Id], Meta(max_length=20)] = msgspec.field(default_factory=list)
    note: RawNote = ""


class OrderIn(Struct, forbid_unknown_fields=True, kw_only=True):
    """A diner's order, as the box's diner API takes it (plus `lang`). Prices are never sent: the box prices it."""

    client_key: Annotated[str, Meta(pattern=CLIENT_KEY)]
    lines: Annotated[list[LineIn], Meta(max_length=MAX_LINES)]
    expected_total_minor: Annotated[int, Meta(ge=0, le=10**12)] | None = None
    note: RawNote = ""
    diners: Annotated[int, Meta(ge=1, le=99)] | None = None
    lang: Annotated[str, Meta(pattern=r"^[a-z]{2}$")] | None = None


class ServiceRequestIn(Struct, forbid_unknown_fields=True, kw_only=True):
    kind: Literal["waiter", "bill"]


class TablePushIn(Struct, kw_only=True):
    id: Id
    name: Annotated[str, Meta(max_length=64)]
    area: Annotated[str, Meta(max_length=64)] = ""
    seats: int | None = None
    version: Annotated[int, Meta(ge=0, le=65535)]
    active: bool = True


class MenuPushIn(Struct, kw_only=True):
    version: Annotated[int, Meta(ge=0, le=2**53)]
    store: dict[str, Any]
    menus: Annotated[dict[Annotated[str, Meta(pattern=r"^[a-z]{2}$")], dict[str, Any]], Meta(min_length=1, max_length=20)]
    # The store id inside its table codes, and its tables (name, code version): optional, a box before them
    # pushed neither and its phones then see no table name.
    token_store: Annotated[str, Meta(pattern=r"^[0-9a-f]{8}$")] | None = None
    tables: Annotated[list[TablePushIn], Meta(max_length=2000)] | None = None


EventId = Annotated[str, Meta(pattern=r"^[!-~]{1,200}$")]  # printable ASCII: it is an SSE id line


class EventIn(Struct, kw_only=True):
    id: EventId
    client_key: Annotated[str, Meta(pattern=r"^[!-~]{1,128}$")]
    type: Literal["accepted", "refused", "status"]
    order: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    at: Annotated[str, Meta(max_length=64)] = ""


class EventsIn(Struct, kw_only=True):
    events: Annotated[list[EventIn], Meta(max_length=500)]
