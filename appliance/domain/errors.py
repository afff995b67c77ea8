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
