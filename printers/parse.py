"""Reading ESC/POS bytes back into printed rows: how tests (and a preview) see what the paper shows, counting columns
the way the printer does (a byte outside FS & ... FS . one column, a character inside it two)."""

from __future__ import annotations

from dataclasses import dataclass, field

from PIL import Image

from printers.columns import TextModel
from printers.raster import RASTER, read_band

# Commands with a fixed number of argument bytes after the two command bytes.
_ARGS = {b"\x1b@": 0, b"\x1ba": 1, b"\x1bE": 1, b"\x1d!": 1, b"\x1bt": 1, b"\x1bd": 1, b"\x1dV": 1, b"\x1bB": 2}
_ARGS[b"\x1dB"] = 1  # GS B n: white/black reverse printing (an inverted line)


@dataclass(frozen=True)
class Row:
    text: str
    size: int
    bold: bool
    align: int
    invert: bool = False  # GS B 1: white on black
    columns: int = 0  # the columns the printer fills at size 1 (times `size` on paper); 0 for a drawn row
    image: Image.Image | None = field(default=None, compare=False, repr=False)  # a row drawn by the box (GS v 0)


def printed_rows(data: bytes, *, font_coverage: str | None = None) -> tuple[list[Row], list[bytes]]:
    """(rows as printed, commands seen). Text in FS & ... FS . is GB18030, elsewhere the code page (PC858 after
    ESC t, else ASCII); a GS v 0 band is a row of its own (`Row.image`). With `font_coverage` ('gb2312' or
    'gb18030'), a character in a Chinese section that such a printer's font lacks raises ValueError: it would print
    as junk. Raises ValueError on a byte sequence this renderer never sends (so a stray control byte is caught) and
    on bytes that do not decode."""
    model = TextModel("gb18030", font_coverage) if font_coverage else None
    rows: list[Row] = []
    commands: list[bytes] = []
    text, columns, size, bold, align, codepage, invert = "", 0, 1, False, 0, False, False
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
                width, height = (arg[0] >> 4) + 1, (arg[0] & 0x0F) + 1
                if width != height:
                    raise ValueError(f"GS ! {arg[0]:#04x}: width x{width} and height x{height} differ")
                size = width
            elif two == b"\x1ba":
                align = arg[0]
            elif two == b"\x1dB":
                invert = bool(arg[0] & 1)
            elif two == b"\x1bt":
                codepage = True
            i += 2 + n
        elif data.startswith(RASTER, i):
            if text:
                raise ValueError(f"GS v 0 at {i} after {text!r}: an image prints only at the start of a line")
            band, i = read_band(data, i)
            commands.append(RASTER)
            rows.append(Row("", size, bold, align, invert, 0, band))
        elif two == b"\x1c&":
            end = data.find(b"\x1c.", i + 2)
            if end == -1:
                raise ValueError("FS & without FS .")
            section = data[i + 2 : end].decode("gb18030")
            if model is not None:
                lacking = [ch for ch in section if not model.prints(ch)]
                if lacking:
                    raise ValueError(f"{lacking!r} at {i}: not in a {font_coverage} font, printed as junk")
            text += section
            columns += 2 * len(section)
            i = end + 2
        elif data[i] == 0x0A:
            rows.append(Row(text, size, bold, align, invert, columns))
            text, columns = "", 0
            i += 1
        elif data[i] < 0x20 or data[i] == 0x7F:
            raise ValueError(f"unexpected control byte {data[i]:#04x} at {i}")
        else:
            text += bytes([data[i]]).decode("cp858" if codepage else "ascii")
            columns += 1
            i += 1
    if text:
        rows.append(Row(text, size, bold, align, invert, columns))
    return rows, commands
