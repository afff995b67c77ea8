"""Reading ESC/POS bytes back into printed rows: how tests (and a preview) see what the paper shows."""

from __future__ import annotations

from dataclasses import dataclass

# Commands with a fixed number of argument bytes after the two command bytes.
_ARGS = {b"\x1b@": 0, b"\x1ba": 1, b"\x1bE": 1, b"\x1d!": 1, b"\x1bt": 1, b"\x1bd": 1, b"\x1dV": 1, b"\x1bB": 2}


@dataclass(frozen=True)
class Row:
    text: str
    size: int
    bold: bool
    align: int


def printed_rows(data: bytes) -> tuple[list[Row], list[bytes]]:
    """(rows of text as printed, commands seen). Text in FS & ... FS . is GB18030, elsewhere the code page.
    Raises ValueError on a byte sequence this renderer never sends (so a stray control byte is caught)."""
    rows: list[Row] = []
    commands: list[bytes] = []
    text, size, bold, align, codepage = "", 1, False, 0, False
    i = 0
    while i < len(data):
        two = data[i : i + 2]
        if two in _ARGS:
            n = _ARGS[two]
            arg = data[i + 2 : i + 2 + n]
            commands.append(two + arg)
            if two == b"\x1bE":
                bold = arg == b"\x01"
            elif two == b"\x1d!":
                size = 2 if arg == b"\x11" else 1
            elif two == b"\x1ba":
                align = arg[0]
            elif two == b"\x1bt":
                codepage = True
            i += 2 + n
        elif two == b"\x1c&":
            end = data.find(b"\x1c.", i + 2)
            if end == -1:
                raise ValueError("FS & without FS .")
            text += data[i + 2 : end].decode("gb18030")
            i = end + 2
        elif data[i] == 0x0A:
            rows.append(Row(text, size, bold, align))
            text = ""
            i += 1
        elif data[i] < 0x20 or data[i] == 0x7F:
            raise ValueError(f"unexpected control byte {data[i]:#04x} at {i}")
        else:
            text += bytes([data[i]]).decode("cp858" if codepage else "ascii")
            i += 1
    if text:
        rows.append(Row(text, size, bold, align))
    return rows, commands
