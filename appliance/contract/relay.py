"""The relay protocol (v1) between a box and the public relay, and the source key the box records what it applied
from the relay under.

Box -> relay (every request signed, `appliance.contract.signing`):
- `GET /v1/box/inbox?after=SEQ&wait=0..25` -> `InboxPage`: the store's `InboxMessage`s after SEQ, oldest first;
  asking after=SEQ acknowledges everything up to SEQ.
- `PUT /v1/box/menu` with a `MenuPush` -> {"version": the version the relay now holds}.
- `POST /v1/box/events` with `BoxEvents` -> {"stored", "new"}: the box's answers about the orders phones sent
  (`accepted` with the order view, `status` with the order as it is now, `refused` with the box's `ErrorBody`).
- `POST /v1/box/images/missing` with `ImageNames` -> {"missing": [...]}, `PUT /v1/box/images/NAME` (the JPEG).

Phone -> relay, beside the diner API's shapes: `POST /s/STORE/api/v1/tables/TOKEN/old-sticker-call` with
`OldStickerCallIn` (a waiter call from an old sticker's page), stored in the inbox as a `request` message whose body
is a `RelayedOldStickerCallIn` (marked `source: "old_sticker"`): the one message for which the box accepts an old
version of a table's code.

An order view (`order_view`) carries names in every language; the relay answers a phone in its language in the
diner API's `OrderOut` shape (`for_phone`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta, Struct

from appliance.contract.diner import ORDER_FIELDS, Id, Lang
from appliance.domain.menu import translate

RELAY_SOURCE_PREFIX = "relay:"
EVENT_TYPES = ("accepted", "refused", "status")
MAX_EVENTS = 500  # per POST /v1/box/events
MAX_IMAGE_NAMES = 500  # per POST /v1/box/images/missing
MAX_IMAGE_BYTES = 1_048_576  # a photo the relay takes (a box's are <= 640 px JPEGs of 40-80 KB)


def relay_source(target: str, relay_store: str) -> str:
    """The box's `inbox_seen.source` for what it applied from a relay target: "relay:TARGET@RELAY_STORE_ID" (the
    target's `store_id` setting). Sequence numbers are per relay store, so a box enrolled again (a new store id under
    the same target name) starts from its new store's first message instead of skipping as many as the old one had;
    and an order is the relay target's business only when its client key is a message of this source."""
    return f"{RELAY_SOURCE_PREFIX}{target}@{relay_store}"


# -- the inbox (GET /v1/box/inbox) ----------------------------------------------------------------------------------
class InboxMessage(Struct, kw_only=True):
    """An order or a waiter/bill request a phone sent through the relay, as the box polls it. Defaults keep a message
    the box cannot use readable (it is skipped or refused, and acknowledged, instead of stopping the line)."""

    seq: int  # per relay store, gap-free; the box's next after=
    kind: str = ""  # "order" | "request"; another kind is skipped by the box
    client_key: str | None = None  # an order's: the diner's client key (a request has none)
    key: str | None = None  # the relay's key: the client key of an order, "request:..." for a request
    token: str = ""  # the table code the phone used
    # RelayedOrderIn / RelayedRequestIn / RelayedOldStickerCallIn JSON, decoded by the box strictly (a factory: litestar's API description
    # cannot hash a Raw default)
    body: msgspec.Raw = msgspec.field(default_factory=lambda: msgspec.Raw(b"null"))
    received_at: str = ""


class InboxPage(Struct, kw_only=True):
    messages: list[InboxMessage]


# -- a waiter call from an old sticker ------------------------------------------------------------------------------
OLD_STICKER = "old_sticker"  # the mark on the message, and the box's service_requests.source for the call


class OldStickerCallIn(Struct, forbid_unknown_fields=True, kw_only=True):
    """What an old sticker's page sends (POST .../old-sticker-call): a waiter is all it can call."""

    kind: Literal["waiter"]


class RelayedOldStickerCallIn(OldStickerCallIn, forbid_unknown_fields=True, kw_only=True):
    """An old sticker's waiter call as the relay stores it (the body of a `request` message): marked
    `source: "old_sticker"`, the only message for which the box takes an OLD version of a table's code (its MAC
    still checked with the store secret), and then only as a waiter call; plus the phone's language."""

    source: Literal["old_sticker"]
    lang: Lang | None = None


# -- the menu (PUT /v1/box/menu) ------------------------------------------------------------------------------------
def table_code_hash(token: str) -> str:
    """What the relay keeps of a table's current code: the SHA-256 (hex) of the token string the sticker carries.
    The box computes it with the store secret's code; the relay compares a phone's code with it and so refuses a
    forged code without holding the secret, and a copy of the relay's database cannot make a code from it (that
    takes finding an 80-bit MAC, `appliance.domain.tokens`)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


# How many of a table's voided codes (the newest) the box pushes the hashes of: a forged "old sticker" of those
# versions is refused by the relay itself (it would otherwise reach the box, and use up the table's old-sticker calls
# at the relay, before the box refused it). An older version is left to the box.
OLD_CODES_PUSHED = 3


class TablePush(Struct, kw_only=True):
    """A table as the relay needs it to name a sticker's table, refuse an old or another store's sticker early, and
    refuse a forged code (`code_hash`, see `table_code_hash`; a box before it pushed none: the box checks alone).
    `old_code_hashes`: the hashes of its last OLD_CODES_PUSHED voided codes, newest first (versions version-1,
    version-2, ...; fewer for a table re-keyed fewer times), so the relay can tell a genuine old sticker (whose
    waiter call it takes) from a forged one; None from a box before them."""

    id: Id
    name: Annotated[str, Meta(max_length=64)]
    area: Annotated[str, Meta(max_length=64)] = ""
    seats: int | None = None
    version: Annotated[int, Meta(ge=0, le=65535)]  # the table's code version (a re-keyed table's old stickers)
    active: bool = True
    code_hash: Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")] | None = None  # table_code_hash(its current code)
    old_code_hashes: (
        Annotated[list[Annotated[str, Meta(pattern=r"^[0-9a-f]{64}$")]], Meta(max_length=OLD_CODES_PUSHED)] | None
    ) = None


class MenuPush(Struct, kw_only=True):
    """The box's menu snapshot: the store block (`StoreOut`) and, per language, exactly what the box's GET .../menu
    answers (`MenuOut`). The relay keeps both as the box sent them (a newer box's fields pass through an older
    relay) and answers phones with them."""

    version: Annotated[int, Meta(ge=0, le=2**53)]
    store: dict[str, Any]
    menus: Annotated[
        dict[Annotated[str, Meta(pattern=r"^[a-z]{2}$")], dict[str, Any]], Meta(min_length=1, max_length=20)
    ]
    # The store id inside its table codes, and its tables: optional, a box before them pushed neither and its phones
    # then see no table name.
    token_store: Annotated[str, Meta(pattern=r"^[0-9a-f]{8}$")] | None = None
    tables: Annotated[list[TablePush], Meta(max_length=2000)] | None = None


# -- the box's answers (POST /v1/box/events) ------------------------------------------------------------------------
EventId = Annotated[str, Meta(pattern=r"^[!-~]{1,200}$")]  # printable ASCII: it is an SSE id line


class BoxEvent(Struct, kw_only=True):
    """One answer of the box about an order (or a waiter/bill call) a phone sent through the relay. Ids:
    `accepted:<client_key>`, `status:<client_key>:<status>`, `refused:<client_key>`; the relay ignores an id it
    already has, so a retried delivery is harmless."""

    id: EventId
    client_key: Annotated[str, Meta(pattern=r"^[!-~]{1,128}$")]
    type: Literal["accepted", "refused", "status"]
    order: dict[str, Any] | None = None  # `order_view`: the order as the box keeps it, names in every language
    error: dict[str, Any] | None = None  # a refusal: `ErrorBody` {code, message, details}
    at: Annotated[str, Meta(max_length=64)] = ""


class BoxEvents(Struct, kw_only=True):
    events: Annotated[list[BoxEvent], Meta(max_length=MAX_EVENTS)]


# -- dish photos ----------------------------------------------------------------------------------------------------
# A photo's name: the first 16 hex digits of its bytes' SHA-256 and ".jpg" (appliance.images, matched whole).
ImageName = Annotated[str, Meta(pattern=r"^[0-9a-f]{16}\.jpg$")]


class ImageNames(Struct, kw_only=True):
    """POST /v1/box/images/missing: which of these photos (named by content) does the relay lack?"""

    names: Annotated[list[ImageName], Meta(max_length=MAX_IMAGE_NAMES)]


# -- the order view phones are shown --------------------------------------------------------------------------------
# What a phone is shown of an order (ORDER_FIELDS: the fields the box's diner API shows, and of each line these):
# never the kitchen's station, the staff's void reason or the store's internal ids.
LINE_FIELDS = (
    "line_no",
    "item_id",
    "names",
    "variant_id",
    "variant_names",
    "options",
    "quantity",
    "unit_price_minor",
    "line_total_minor",
    "note",
    "status",
)


def order_view(order: Mapping[str, Any]) -> dict[str, Any]:
    """What the box lets the relay show a phone of an order (as the store keeps it): the fields the box's own diner
    API shows, names in every language so the relay can answer in the phone's."""
    view = {k: order.get(k) for k in ORDER_FIELDS}
    view["lines"] = [{k: line.get(k) for k in LINE_FIELDS} for line in order.get("lines") or []]
    return view


def for_phone(order: Mapping[str, Any], lang: str, original_lang: str | None = None) -> dict[str, Any]:
    """An order view the box pushed, in the phone's language: the box's own diner API shape (`OrderOut`: a line's
    `name`, `original_name` (in `original_lang`, the store's first language, when it differs) and `variant`, an
    option's `name`)."""
    out = {k: v for k, v in order.items() if k != "lines"}
    lines = []
    for line in order.get("lines") or []:
        if not isinstance(line, dict):
            continue
        shown = {k: v for k, v in line.items() if k not in ("names", "variant_names")}
        names, variants = line.get("names"), line.get("variant_names")
        shown["name"] = translate(names, lang) if isinstance(names, dict) else str(line.get("name") or "")
        original = translate(names, original_lang) if isinstance(names, dict) and original_lang else None
        shown["original_name"] = original if original and original != shown["name"] else None
        shown["variant"] = translate(variants, lang) if isinstance(variants, dict) else line.get("variant")
        shown["options"] = [
            {k: v for k, v in o.items() if k != "names"}
            | {"name": translate(o["names"], lang) if isinstance(o.get("names"), dict) else str(o.get("name") or "")}
            for o in line.get("options") or []
            if isinstance(o, dict)
        ]
        lines.append(shown)
    out["lines"] = lines
    return out
