"""What a diner sends, checked the one way the box checks it: the order and request bodies decoded strictly, notes
cleaned, and the OrderRequest built. The web API (`appliance/web/diner.py`) and the relay link (`sync/relay_link.py`,
orders that came through the public relay) both use it, so a body refused on the LAN is refused the same way, with
the same code and details, when it comes through the relay."""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

import msgspec
from msgspec import Meta, Struct

from appliance.db.orders import OrderRequest
from appliance.domain.errors import DomainError
from appliance.domain.orders import Channel
from appliance.domain.pricing import MAX_LINES, MAX_QUANTITY, CartLine
from appliance.domain.text import NOTE_MAX_CHARS, clean_text

Id = Annotated[int, Meta(ge=1, le=2**31 - 1, description="A row id.")]
# Raw bound before control characters are stripped; the cleaned note must fit 140 characters.
RawNote = Annotated[str, Meta(max_length=280, description="Up to 140 characters once control characters are removed.")]


class LineIn(Struct, forbid_unknown_fields=True, kw_only=True):
    item_id: Id
    quantity: Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]
    variant_id: Id | None = None
    option_ids: Annotated[list[Id], Meta(max_length=20)] = msgspec.field(default_factory=list)
    note: RawNote = ""


class OrderIn(Struct, forbid_unknown_fields=True, kw_only=True):
    """A diner's order. Prices are never sent: the box prices every line from its own menu."""

    client_key: Annotated[str, Meta(pattern=r"^[A-Za-z0-9_-]{8,64}$",
                                    description="Made once per submission (a UUID); a retry with the same key returns the same order.")]
    lines: Annotated[list[LineIn], Meta(max_length=MAX_LINES)]
    expected_total_minor: Annotated[int, Meta(ge=0, le=10**12)] | None = None
    note: RawNote = ""
    diners: Annotated[int, Meta(ge=1, le=99)] | None = None


class RelayedOrderIn(OrderIn, forbid_unknown_fields=True, kw_only=True):
    """An order as the relay stores it: the phone's body plus the language the phone asked in (the relay has no
    Accept-Language of the phone to hand on otherwise)."""

    lang: Annotated[str, Meta(max_length=35)] | None = None


class ServiceRequestIn(Struct, forbid_unknown_fields=True, kw_only=True):
    kind: Literal["waiter", "bill"]


class RelayedRequestIn(ServiceRequestIn, forbid_unknown_fields=True, kw_only=True):
    """A waiter or bill request as the relay stores it (plus the phone's language)."""

    lang: Annotated[str, Meta(max_length=35)] | None = None


T = TypeVar("T")


def strict_decode(body: bytes, kind: type[T]) -> T:
    """Decode a body strictly (litestar's own parse converts "2" to 2 and 2.0 to 2: a phone sending the wrong type
    is a bug to report, not to guess at). Refuses with `invalid_body` naming the field, or `malformed_json`."""
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        text = str(exc)
        problem, _, where = text.rpartition(" - at `$")
        field = where.rstrip("`").lstrip(".") if problem else ""
        problem = problem or text
        raise DomainError("invalid_body", f"the request is not valid: {problem}", field=field,
                          problem=f"{field}: {problem}" if field else problem,
                          errors=[{"field": field, "problem": problem}]) from None
    except msgspec.DecodeError:
        raise DomainError("malformed_json", "the request is not valid JSON") from None


def normalize_lang(tag: str | None, default: str = "zh") -> str:
    """A language tag as the box keys its texts: "zh-CN" -> "zh", "en-GB" -> "en"."""
    if not tag:
        return default
    return "zh" if tag.lower().startswith("zh") else tag.lower()[:2]


def clean_note(text: str, line_no: int | None) -> str:
    """A diner's note without control characters, at most 140 characters (a line's note names its line)."""
    try:
        return clean_text(text, NOTE_MAX_CHARS, "note")
    except DomainError as exc:
        if line_no is not None:
            exc.details["line"] = line_no
        raise


def order_request(data: OrderIn, *, lang: str, channel: Channel) -> OrderRequest:
    """The OrderRequest for a decoded body: notes cleaned (refusing one too long), never a price."""
    return OrderRequest(
        client_key=data.client_key,
        lines=tuple(
            CartLine(item_id=l.item_id, quantity=l.quantity, variant_id=l.variant_id,
                     option_ids=tuple(l.option_ids), note=clean_note(l.note, n))
            for n, l in enumerate(data.lines, start=1)
        ),
        note=clean_note(data.note, None),
        diners=data.diners,
        expected_total_minor=data.expected_total_minor,
        lang=lang,
        channel=channel,
    )


def relayed_order(body: Any) -> RelayedOrderIn:
    """The phone's order body as the relay handed it on (already parsed JSON), checked exactly as the box's own
    POST /orders checks its body (re-encoded, so the same decoder gives the same refusals)."""
    return strict_decode(msgspec.json.encode(body), RelayedOrderIn)


def relayed_request(body: Any) -> RelayedRequestIn:
    """A waiter or bill request as the relay handed it on, checked as the box's own POST /requests checks it."""
    return strict_decode(msgspec.json.encode(body), RelayedRequestIn)
