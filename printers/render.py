"""ESC/POS bytes for a ticket document: columns laid out by display width, Chinese via FS & ... FS . (GB18030)
or a single-byte code page for Latin menus."""

from __future__ import annotations

import unicodedata

from printers.document import Document, Line

ESC, GS, FS, LF = b"\x1b", b"\x1d", b"\x1c", b"\n"
INIT = ESC + b"@"
CHINESE_ON = FS + b"&"
CHINESE_OFF = FS + b"."
CODEPAGE_PC858 = ESC + b"t\x13"  # Latin-1 with the euro sign
FEED_AND_CUT = ESC + b"d\x04" + GS + b"V\x00"
BUZZER = ESC + b"B\x03\x02"  # a vendor extension most Chinese printers accept (3 beeps)
ALIGN = {"left": 0, "center": 1, "right": 2}
COLUMNS = {58: 32, 80: 48}
MODES = ("gb18030", "codepage")

# Printers' Chinese fonts cover GB2312: send the full-width yen sign (A3A4), never the Latin one.
SUBSTITUTES = str.maketrans({"¥": "￥"})


def char_width(ch: str) -> int:
    if unicodedata.combining(ch):
        return 0
    return 2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1


def display_width(text: str) -> int:
    return sum(char_width(ch) for ch in text)


def wrap(text: str, width: int) -> list[str]:
    """Break text into rows of at most `width` columns (a hanzi takes two), preferring spaces."""
    rows: list[str] = []
    row, used = "", 0
    for ch in text:
        w = char_width(ch)
        if used + w > width:
            cut = row.rfind(" ")
            if cut > 0 and display_width(row[cut + 1 :]) < width // 2:
                rows.append(row[:cut])
                row = row[cut + 1 :]
                used = display_width(row)
            else:
                rows.append(row)
                row, used = "", 0
        row += ch
        used += w
    rows.append(row)
    return [r.rstrip() for r in rows]


def layout(line: Line, columns: int) -> list[str]:
    """The rows of one line, in characters of its own size (double size halves the columns)."""
    width = columns // line.size
    if line.rule:
        return ["-" * width]
    if not line.right:
        return wrap(line.text, width) if line.text else [""]
    right_w = display_width(line.right)
    rows = wrap(line.text, max(1, width - right_w - 1))
    last = rows[-1]
    gap = width - display_width(last) - right_w
    if gap >= 1:
        rows[-1] = last + " " * gap + line.right
    else:
        rows.append(" " * (width - right_w) + line.right)
    return rows


def encode_text(text: str, mode: str) -> bytes:
    text = text.translate(SUBSTITUTES)
    if mode == "codepage":
        return text.encode("cp858", errors="replace")
    out = bytearray()
    run: list[str] = []
    for ch in text + "\0":
        if ch == "\0" or ch.isascii():
            if run:
                out += CHINESE_ON + "".join(run).encode("gb18030") + CHINESE_OFF
                run = []
            if ch != "\0":
                out += ch.encode("ascii")
        else:
            run.append(ch)
    return bytes(out)


def render(document: Document, *, paper_mm: int = 80, mode: str = "gb18030", columns: int | None = None) -> bytes:
    if mode not in MODES:
        raise ValueError(f"text mode must be one of {MODES} (raster is drawn by printers.raster)")
    cols = columns or COLUMNS[paper_mm]
    out = bytearray(INIT)
    if mode == "codepage":
        out += CODEPAGE_PC858
    for line in document.lines:
        out += ESC + b"a" + bytes([ALIGN[line.align]])
        out += ESC + b"E" + (b"\x01" if line.bold else b"\x00")
        out += GS + b"!" + (b"\x11" if line.size == 2 else b"\x00")
        for row in layout(line, cols):
            out += encode_text(row, mode) + LF
    out += ESC + b"E\x00" + GS + b"!\x00" + ESC + b"a\x00"
    if document.buzzer:
        out += BUZZER
    if document.cut:
        out += FEED_AND_CUT
    return bytes(out)


def chinese_sections(data: bytes) -> list[str]:
    """The text of every FS & ... FS . section, decoded as GB18030 (what the printer's Chinese font prints)."""
    sections = []
    start = data.find(CHINESE_ON)
    while start != -1:
        end = data.find(CHINESE_OFF, start + 2)
        if end == -1:
            raise ValueError("FS & without FS .")
        sections.append(data[start + 2 : end].decode("gb18030"))
        start = data.find(CHINESE_ON, end + 2)
    return sections
