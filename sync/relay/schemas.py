"""Typed shapes of what phones and boxes send the relay, decoded strictly (unknown fields and wrong types are
refused on the phone side, as the box does; a box may add fields a newer relay will read)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from msgspec import Meta, Struct

# What a phone sends is checked exactly as the box checks it (the same shapes, bounds and client_key rule), so a
# body the box would refuse on the LAN is refused here the same way, before it reaches the inbox.
from appliance.db.diner_input import Id, ServiceRequestIn
from appliance.db.diner_input import RelayedOrderIn as OrderIn

__all__ = ["EventIn", "EventsIn", "MenuPushIn", "OrderIn", "ServiceRequestIn", "TablePushIn"]


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
