"""What a diner sends, checked the one way: bodies decoded strictly into the `appliance.contract.diner` shapes and
notes cleaned. The box's web API, the relay (before a phone's order reaches its inbox) and the box's relay link
(when it applies that order) all use these, so a body refused on the store's Wi-Fi is refused the same way, with the
same code and details, when it comes through the relay."""

from __future__ import annotations

import functools
import re
from typing import TypeVar

import msgspec

from appliance.contract.diner import RelayedOrderIn, RelayedRequestIn
from appliance.domain.errors import DomainError
from appliance.domain.text import NOTE_MAX_CHARS, clean_text

T = TypeVar("T")

# JSON a phone or a box sends is at most a handful of levels deep (a menu push, the deepest, about ten); deeper is
# refused before decoding, so a body nested thousands deep never reaches a recursive decoder.
MAX_JSON_DEPTH = 32
JSON_MEDIA_TYPE = "application/json"

_ESCAPED = re.compile(rb"\\.", re.DOTALL)  # a backslash and the character it escapes
_STRING = re.compile(rb'"[^"]*"')  # a string once its escapes are gone
_AS_BRACKETS = bytes.maketrans(b"{}", b"[]")  # objects and arrays nest alike
_NOT_BRACKET = bytes(b for b in range(256) if b not in b"[]{}")


@functools.lru_cache(maxsize=4)
def _nested_at_most(limit: int) -> re.Pattern[bytes]:
    r"""Balanced brackets nested at most `limit` deep: `(?:\[(?:\[...\])*+\])*+`, possessive (no backtracking)."""
    level = rb"\[\]"
    for _ in range(limit - 1):
        level = rb"\[(?:" + level + rb")*+\]"
    return re.compile(rb"(?:" + level + rb")*+")


def nested_deeper_than(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the arrays and objects in `body` nest deeper than `limit` (or its brackets do not pair up, which the
    decoder would refuse anyway), told without decoding it: escapes and strings are dropped, the brackets left are
    matched by a regular expression of `limit` levels. Linear in the body's length at C speed, no recursion: a
    4 MB body takes about 25 ms."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _STRING.sub(b"", _ESCAPED.sub(b"", body)).translate(_AS_BRACKETS, _NOT_BRACKET)
    return _nested_at_most(limit).fullmatch(brackets) is None


def _refuse_deep(body: bytes) -> None:
    if nested_deeper_than(body):
        raise DomainError(
            "malformed_json", f"the JSON nests deeper than {MAX_JSON_DEPTH} levels", max_depth=MAX_JSON_DEPTH
        )


def check_json_body(content_type: str | None, body: bytes) -> None:
    """What every JSON body of the diner API and the relay must be before it is decoded: not empty (400
    `malformed_json`), sent as `application/json` (a charset, when given, utf-8; else 415 `unsupported_media_type`:
    a web page can post `text/plain` to another site without asking first, never `application/json`), and nested at
    most MAX_JSON_DEPTH deep (400 `malformed_json`, checked by `strict_decode`, which decodes every such body)."""
    if not body.strip():
        raise DomainError("malformed_json", "the request has no body: send the JSON", problem="empty body")
    media_type, _, params = (content_type or "").partition(";")
    charset = params.strip().lower().replace(" ", "")
    if media_type.strip().lower() != JSON_MEDIA_TYPE or charset not in ("", "charset=utf-8", 'charset="utf-8"'):
        raise DomainError(
            "unsupported_media_type", "send the body as application/json", content_type=(content_type or "")[:100]
        )


def strict_decode(body: bytes, kind: type[T]) -> T:
    """Decode a body strictly: a string is never taken for a number nor a number for a string (litestar's own parse
    converts "2" to 2: a phone sending the wrong type is a bug to report, not to guess at). A number is an integer
    when it has no fraction, however it is written (2, 2.0, 2e0), as JSON and the API description (JSON Schema) say.
    Refuses with `invalid_body` naming the field, or `malformed_json` (also for JSON nested deeper than
    MAX_JSON_DEPTH, checked before decoding)."""
    _refuse_deep(body)
    try:
        return msgspec.json.decode(body, type=kind)
    except msgspec.ValidationError as exc:
        refusal = exc
    except msgspec.DecodeError:
        raise DomainError("malformed_json", "the request is not valid JSON") from None
    try:  # only after a refusal, so a valid body is decoded once: is it a number written as 2.0 where 2 is wanted?
        return msgspec.convert(_INTEGRAL_NUMBERS.decode(body), kind, strict=True)
    except msgspec.ValidationError as exc:
        refusal = exc
    except (TypeError, ValueError):  # a shape convert() cannot build (msgspec.Raw): the first refusal stands
        pass
    text = str(refusal)
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


def _integral(literal: str) -> int | float:
    value = float(literal)
    return int(value) if value.is_integer() else value


_INTEGRAL_NUMBERS = msgspec.json.Decoder(float_hook=_integral)


def normalize_lang(tag: str | None, default: str = "zh") -> str:
    """A language tag as the box keys its texts: "zh-CN" -> "zh", "en-GB" -> "en"."""
    if not tag:
        return default
    return "zh" if tag.lower().startswith("zh") else tag.lower()[:2]


def clean_note(text: str, line_no: int | None) -> str:
    """A diner's note of at most 140 characters as sent (the diner page's limit, and what the API description says:
    JSON Schema's maxLength), returned without control characters and with white space folded (a line's note names
    its line when refused)."""
    try:
        if len(text) > NOTE_MAX_CHARS:
            raise DomainError(
                "text_too_long",
                f"note is longer than {NOTE_MAX_CHARS} characters",
                field="note",
                max_chars=NOTE_MAX_CHARS,
            )
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
