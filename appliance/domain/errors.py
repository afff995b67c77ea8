"""The one refusal type of the domain: a stable machine code, details, and an English fallback message."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A rule refused an action.

    `code` is stable and machine-readable (`sold_out`, `illegal_transition`, ...);
    `details` carries what a caller needs to explain it (which line, which item);
    the web layer turns code + details into a message in the diner's language.
    """

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def __repr__(self) -> str:
        return f"DomainError({self.code!r}, {self.message!r}, {self.details!r})"


# The HTTP status of each refusal code a diner can meet, the same on the box and on the relay (which passes the
# box's refusals on); every other code is about the request's content.
HTTP_STATUS_BY_CODE: dict[str, int] = {
    "forged_token": 403,
    "other_store": 403,
    "table_rekeyed": 410,
    "table_gone": 410,
    "not_found": 404,
    "unknown_order": 404,
    "price_changed": 409,
    "store_closed": 409,
    "table_not_open": 409,
    "no_open_visit": 409,
    "not_allowed": 409,
    "illegal_transition": 409,
    "malformed_json": 400,
    "body_too_large": 413,
    "unsupported_media_type": 415,
    "method_not_allowed": 405,
    "rate_limited": 429,
    "storage_unavailable": 503,
    "disk_full": 503,
    "shutting_down": 503,
    "internal_error": 500,
}
DEFAULT_HTTP_STATUS = 422
