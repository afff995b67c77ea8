"""Diner-typed text made safe: control bytes and bidi overrides removed, whitespace folded, length bounded."""

from __future__ import annotations

import re
import unicodedata

from appliance.domain.errors import DomainError

NOTE_MAX_CHARS = 140

# Bidi embeddings/overrides/isolates can reorder what a cook reads; ESC/POS treats C0 bytes as commands.
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))}
_SPACES = re.compile(r"\s+")


def clean_text(value: str, max_chars: int = NOTE_MAX_CHARS, field: str = "note") -> str:
    """Strip control characters (C0, DEL, C1) and bidi controls, fold whitespace, enforce a length.

    Raises DomainError(`text_too_long`) when the cleaned text is longer than `max_chars`:
    the diner is told rather than having their note silently cut.
    """
    kept = []
    for ch in value:
        if ch in "\t\r\n":
            kept.append(" ")
        elif ch in _BIDI or unicodedata.category(ch) == "Cc":
            continue
        else:
            kept.append(ch)
    text = _SPACES.sub(" ", "".join(kept)).strip()
    if len(text) > max_chars:
        raise DomainError(
            "text_too_long",
            f"{field} is longer than {max_chars} characters",
            field=field,
            max_chars=max_chars,
        )
    return text
