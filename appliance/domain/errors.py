"""The one refusal type of the domain: a stable machine code, details, and an English fallback message."""

from __future__ import annotations

from typing import Any, ClassVar


class TableboxError(Exception):
    """The root of every Tablebox error: an expected failure with a message for people.

    `exit_code` is what `tablebox` exits with when one reaches the command line: `main()` prints the message
    (no traceback) and exits with it. 2 means "refused as configured" (bad settings, no store, a damaged
    database, a bad secret): the systemd units' RestartPreventExitStatus=2 keeps such a start from being
    retried forever. The root lives here, in the pure layer, so that every package may derive from it;
    import it from `appliance.errors`, which also holds the command line's own subclasses.
    """

    exit_code: ClassVar[int] = 1

    def for_people(self) -> str:
        """The message `tablebox` prints (after "tablebox: ")."""
        return str(self)


class DomainError(TableboxError):
    """A rule refused an action.

    `code` is stable and machine-readable (`sold_out`, `illegal_transition`, ...);
    `details` carries what a caller needs to explain it (which line, which item);
    the web layer turns code + details into a message in the diner's language.
    """

    exit_code: ClassVar[int] = 2

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details

    def for_people(self) -> str:
        return self.message

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
