"""The relay's API description (`/schema`): what each operation answers, with which statuses, and the shapes of the
relay's own answers. The routes in `sync.relay.app` and `sync.relay.images` take their `responses` from here;
`appliance.httpapi.ExactJsonRenderPlugin` adds the request bodies (the contract's structs, which the relay decodes
strictly), the box API's signature headers and the inbox's query parameters, and describes every shape with msgspec.

Orders, menus and the store block are the box's: the relay hands on what the box pushed (for a box of this version,
the diner API's `OrderOut`, `MenuOut` and `StoreOut`), so they are described as objects, not as the box's shapes.
"""

from __future__ import annotations

from typing import Any, Literal

from litestar.openapi.datastructures import ResponseSpec
from msgspec import Struct

from appliance.contract.decode import MAX_JSON_DEPTH
from appliance.contract.diner import ErrorBody, ErrorOut, RelayedOrderIn, ServiceRequestIn
from appliance.contract.relay import MAX_IMAGE_BYTES, BoxEvents, ImageNames, InboxPage, MenuPush, OldStickerCallIn
from appliance.contract.signing import (
    NONCE,
    NONCE_HEADER,
    SIGNATURE,
    SIGNATURE_HEADER,
    STORE,
    STORE_HEADER,
    TIMESTAMP,
    TIMESTAMP_HEADER,
)


# -- the relay's own answers ----------------------------------------------------------------------------------------
class PhoneTableOut(Struct, kw_only=True):
    name: str
    area: str
    seats: int | None
    takes_orders: bool
    session: None  # the relay does not know the table's visit


class RelayTableInfoOut(Struct, kw_only=True):
    """The store block the box pushed (its `StoreOut`), the table its code names (null when the box pushed no
    tables) and whether the box is connected now."""

    store: dict[str, Any]
    table: PhoneTableOut | None
    online: bool


class OrderPendingOut(Struct, kw_only=True):
    """In the store's inbox; the box has not answered yet. Ask again with the same body and client key."""

    status: Literal["pending"]
    client_key: str


class RequestPendingOut(Struct, kw_only=True):
    """A waiter or bill call in the store's inbox; `client_key` is the relay's key for it (`request:...`), which a
    `request` event names if the box refuses the call."""

    status: Literal["pending"]
    kind: Literal["waiter", "bill"]
    client_key: str


class RefusedOrderOut(Struct, kw_only=True):
    client_key: str
    error: ErrorBody


class RelayVisitOut(Struct, kw_only=True):
    """`orders` the box accepted (each the box's order view in the phone's language, its `OrderOut`), `pending`
    client keys the box has not answered, `refused` ones with the box's refusal."""

    orders: list[dict[str, Any]]
    pending: list[str]
    refused: list[RefusedOrderOut]


class RelayHealthOut(Struct, kw_only=True):
    status: Literal["ok", "failing"]
    version: str
    database: Literal["sqlite", "postgresql"]


class MenuStoredOut(Struct, kw_only=True):
    version: int  # the menu version the relay holds now (an older push is ignored)


class EventsStoredOut(Struct, kw_only=True):
    stored: int
    new: int


class MissingImagesOut(Struct, kw_only=True):
    missing: list[str]


class ImageStoredOut(Struct, kw_only=True):
    stored: bool  # false: the relay had it already


SHAPES: tuple[type[Any], ...] = (
    RelayTableInfoOut,
    OrderPendingOut,
    RequestPendingOut,
    RelayVisitOut,
    RelayHealthOut,
    MenuStoredOut,
    EventsStoredOut,
    MissingImagesOut,
    ImageStoredOut,
    InboxPage,
    ErrorOut,
)
REQUEST_BODIES: dict[str, type[Any] | dict[str, Any]] = {
    "submitOrder": RelayedOrderIn,
    "requestService": ServiceRequestIn,
    "oldStickerCall": OldStickerCallIn,
    "boxPutMenu": MenuPush,
    "boxPostEvents": BoxEvents,
    "boxMissingImages": ImageNames,
    "boxPutImage": {
        "required": True,
        "description": "The JPEG; its name is the first 16 hex digits of its SHA-256 and `.jpg`.",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary", "maxLength": MAX_IMAGE_BYTES}}},
    },
}

# -- refusals -------------------------------------------------------------------------------------------------------
_MEANING = {
    304: "Not modified (If-None-Match matched the ETag).",
    400: f"Not JSON, an empty body, or JSON nested deeper than {MAX_JSON_DEPTH} levels (`malformed_json`).",
    401: "The request is not signed by an enrolled box (`missing_signature`, `bad_signature`, `stale_timestamp`, "
    "`replayed_nonce`, `unknown_store`); the message says why.",
    403: "A forged code (`forged_token`) or another restaurant's code (`other_store`).",
    404: "No restaurant with this id on the relay (`unknown_store`), or no such photo (`not_found`).",
    409: "The box refused the order: `price_changed`, `store_closed`, `table_not_open` (its own words).",
    410: "An old sticker (`table_rekeyed`) or a removed table (`table_gone`).",
    413: "The body is too large (`body_too_large`).",
    415: "The body was not sent as `application/json` (`unsupported_media_type`).",
    422: "A body of the wrong shape (`invalid_body`, details.field), an order with no lines (`empty_order`), a client "
    "key already used for another order (`idempotency_key_reused`), or the box's refusal of a line (`sold_out`, "
    "`unknown_item`, ...; details.line).",
    429: "Too many requests from this address, table code or restaurant (`rate_limited`); see Retry-After.",
    503: "The restaurant's box is not connected (`restaurant_offline`: join the store Wi-Fi to order), its menu has "
    "not arrived yet (`menu_unavailable`), or the relay's database does not answer (`storage_unavailable`).",
}


def _refusals(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        status: ResponseSpec(data_container=None if status == 304 else ErrorOut, description=_MEANING[status])
        for status in statuses
    }


def _ok(shape: Any, description: str, status: int = 200) -> dict[int, ResponseSpec]:
    return {status: ResponseSpec(data_container=shape, description=description)}


_PHONE = (403, 404, 410, 429)
_BOX = (401, 429, 503)
ANSWERS: dict[str, dict[int, ResponseSpec]] = {
    "getTable": {**_ok(RelayTableInfoOut, "The restaurant and the table."), **_refusals(*_PHONE, 503)},
    "getMenu": {**_ok(dict[str, Any], "The menu the box pushed (its MenuOut)."), **_refusals(304, *_PHONE, 503)},
    "submitOrder": {
        **_ok(OrderPendingOut, "In the store's inbox, not yet answered by the box.", 202),
        **_ok(dict[str, Any], "The box accepted this order (its OrderOut, in the phone's language)."),
        **_refusals(400, *_PHONE, 409, 413, 415, 422, 503),
    },
    "listVisitOrders": {**_ok(RelayVisitOut, "This table code's recent orders."), **_refusals(*_PHONE, 503)},
    "streamEvents": _refusals(*_PHONE, 503),
    "requestService": {
        **_ok(RequestPendingOut, "In the store's inbox.", 202),
        **_refusals(400, *_PHONE, 413, 415, 422, 503),
    },
    "oldStickerCall": {
        **_ok(RequestPendingOut, "A waiter call in the store's inbox (marked old_sticker for an old code).", 202),
        **_refusals(400, *_PHONE, 413, 415, 422, 503),
    },
    "getImage": _refusals(404, 429, 503),
    "health": {
        **_ok(RelayHealthOut, "The database answers."),
        **_ok(RelayHealthOut, "The relay's database does not answer.", 503),
    },
    "boxInbox": {**_ok(InboxPage, "The messages after `after`, oldest first."), **_refusals(*_BOX, 422)},
    "boxPutMenu": {
        **_ok(MenuStoredOut, "Stored (or older than the one held)."),
        **_refusals(400, *_BOX, 413, 415, 422),
    },
    "boxPostEvents": {
        **_ok(EventsStoredOut, "Stored; ids already held ignored."),
        **_refusals(400, *_BOX, 413, 415, 422),
    },
    "boxMissingImages": {
        **_ok(MissingImagesOut, "The photos the relay lacks, in the order asked."),
        **_refusals(400, *_BOX, 413, 415, 422),
    },
    "boxPutImage": {**_ok(ImageStoredOut, "Stored (false: already there)."), **_refusals(*_BOX, 413, 422)},
}


# -- what handlers read themselves ----------------------------------------------------------------------------------
def _header(name: str, pattern: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "header",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": f"^{pattern}$"},
    }


SIGNED_HEADERS = [
    _header(STORE_HEADER, STORE.pattern, "The store id the relay enrolled the box under."),
    _header(TIMESTAMP_HEADER, TIMESTAMP.pattern, "Unix seconds; at most 5 minutes off the relay's clock."),
    _header(NONCE_HEADER, NONCE.pattern, "Random, never used before by this store (kept 10 minutes)."),
    _header(
        SIGNATURE_HEADER,
        SIGNATURE.pattern,
        "HMAC-SHA256 with the store's relay secret over method, path with query, timestamp, nonce and the SHA-256 of "
        "the body, one a line (appliance/contract/signing.py).",
    ),
]
BOX_OPERATIONS = ("boxInbox", "boxPutMenu", "boxPostEvents", "boxMissingImages", "boxPutImage")


def parameters(max_wait_seconds: int) -> dict[str, list[dict[str, Any]]]:
    """The parameters handlers read themselves, by operation: every box request's signature headers, and the
    inbox's `after` and `wait`."""
    described: dict[str, list[dict[str, Any]]] = {op: list(SIGNED_HEADERS) for op in BOX_OPERATIONS}
    described["boxInbox"] += [
        {
            "name": "after",
            "in": "query",
            "required": False,
            "description": "The last sequence number the box applied: everything up to it is acknowledged.",
            "schema": {"type": "integer", "minimum": 0, "maximum": 2**62},
        },
        {
            "name": "wait",
            "in": "query",
            "required": False,
            "description": "Seconds to wait for a message when there is none (a long-poll).",
            "schema": {"type": "number", "minimum": 0, "maximum": max_wait_seconds},
        },
    ]
    return described
