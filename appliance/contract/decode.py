"""What a diner sends, checked the one way: bodies decoded strictly into the `appliance.contract.diner` shapes and
notes cleaned. The box's web API, the relay (before a phone's order reaches its inbox) and the box's relay link
(when it applies that order) all use these, so a body refused on the store's Wi-Fi is refused the same way, with the
same code and details, when it comes through the relay."""

from __future__ import annotations

from typing import TypeVar

import msgspec

from appliance.contract.diner import RelayedOrderIn, RelayedRequestIn
from appliance.domain.errors import DomainError
from appliance.domain.text import NOTE_MAX_CHARS, clean_text

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
        raise DomainError(
            "invalid_body",
            f"the request is not valid: {problem}",
            field=field,
            problem=f"{field}: {problem}" if field else problem,
            errors=[{"field": field, "problem": problem}],
        ) from None
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


def _json_bytes(body: object) -> bytes:
    """A message body as JSON bytes: as received (bytes or msgspec.Raw), or re-encoded when already parsed."""
    if isinstance(body, bytes):
        return body
    if isinstance(body, msgspec.Raw):
        return bytes(body)
    return msgspec.json.encode(body)


def relayed_order(body: object) -> RelayedOrderIn:
    """The phone's order body as the relay handed it on, checked exactly as the box's own POST /orders checks its
    body (the same decoder, so the same refusals)."""
    return strict_decode(_json_bytes(body), RelayedOrderIn)


def relayed_request(body: object) -> RelayedRequestIn:
    """A waiter or bill request as the relay handed it on, checked as the box's own POST /requests checks it."""
    return strict_decode(_json_bytes(body), RelayedRequestIn)
