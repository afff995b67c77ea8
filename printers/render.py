"""ESC/POS bytes for a ticket document, laid out by the text mode's width model (printers.columns): Chinese via
FS & ... FS . (GB18030 bytes) or PC858 for Latin menus; a row with a character the printer's font lacks is drawn by
the box and sent as a GS v 0 band in its place, never as `?` or as bytes the font turns into junk."""

from __future__ import annotations

from collections.abc import Callable

from appliance.domain.money import Currency, format_money
from printers.columns import TextModel, layout
from printers.columns import char_width as char_width  # re-exported: the width model lived here
from printers.columns import display_width as display_width
from printers.columns import wrap as wrap
from printers.document import Document, Line

ESC, GS, FS, LF = b"\x1b", b"\x1d", b"\x1c", b"\n"
INIT = ESC + b"@"
CHINESE_ON = FS + b"&"
CHINESE_OFF = FS + b"."
CODEPAGE_PC858 = ESC + b"t\x13"  # Latin-1 with the euro sign
FEED_AND_CUT = ESC + b"d\x04" + GS + b"V\x00"
# White/black reverse printing, GS B n (python-escpos: TXT_STYLE["invert"]); sent only around an inverted line.
REVERSE_ON, REVERSE_OFF = GS + b"B\x01", GS + b"B\x00"
BUZZER = ESC + b"B\x03\x02"  # a vendor extension most Chinese printers accept (3 beeps)
ALIGN = {"left": 0, "center": 1, "right": 2}
COLUMNS = {58: 32, 80: 48}
MODES = ("gb18030", "codepage")


MAX_SIZE = 4  # GS ! allows 8; four times is the table number's, and no row of it fits 58 mm beyond that


def size_byte(size: int) -> bytes:
    """GS ! n for a character `size` times as wide and as tall (1-4)."""
    if not 1 <= size <= MAX_SIZE:
        raise ValueError(f"a line's size is 1 to {MAX_SIZE}, not {size!r}")
    return bytes([(size - 1) * 0x11])


def money_format(currency: Currency, mode: str, coverage: str = "gb2312") -> Callable[[int], str]:
    """How a bill in `mode` writes amounts: the currency's sign where the printer prints it from its own font
    (`￥12.00` in gb18030 mode; raster draws any sign), else its ISO code: codepage mode always (`CNY 12.00`,
    never `?12.00`), gb18030 mode for a sign its Chinese font lacks (`EUR 12.00`: GB2312 has no €)."""
    model = TextModel(mode, coverage)
    signed = format_money(100, currency)
    sign = signed[: len(signed) - len(format_money(100, currency, symbol=False))]
    if mode == "raster" or (mode != "codepage" and all(model.prints(ch) for ch in model.substitute(sign))):
        return lambda minor: format_money(minor, currency)
    return lambda minor: f"{currency.code} {format_money(minor, currency, symbol=False)}"


def encode_text(text: str, mode: str) -> bytes:
    """A row the printer prints from its own font (`TextModel.drawn` is False), as bytes: PC858, or ASCII with
    every other character's GB18030 bytes inside FS & ... FS . (python-escpos's "magic encode" writes GB18030
    without FS &, so a printer not already in Chinese mode prints it as code page junk)."""
    if mode == "codepage":
        return text.encode("cp858")
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


def drawn_row(line: Line, row: str, *, paper_mm: int, columns: int, model: TextModel) -> bytes:
    """One row drawn by the box, as a GS v 0 band as wide as the paper (the row's alignment drawn into it, so the
    printer's justification moves nothing), each character in the columns `model` counts for it."""
    from printers.raster import draw_rows, raster_bands  # raster imports this module's commands

    return raster_bands(draw_rows([(line, row)], paper_mm=paper_mm, columns=columns, model=model))


def render(
    document: Document,
    *,
    paper_mm: int = 80,
    mode: str = "gb18030",
    columns: int | None = None,
    font_coverage: str = "gb2312",
) -> bytes:
    """The printer's bytes for `document` in a text mode. `font_coverage` is what the printer's Chinese font has
    (gb18030 mode). Rows are laid out by the mode's width model; a row holding a character the printer cannot
    print (an emoji; ñ on a GB2312 font; a hanzi in PC858) is drawn and sent as an image band in its place."""
    if mode not in MODES:
        raise ValueError(f"text mode must be one of {MODES} (raster is drawn by printers.raster)")
    model = TextModel(mode, font_coverage)
    cols = columns or COLUMNS[paper_mm]
    out = bytearray(INIT)
    if mode == "codepage":
        out += CODEPAGE_PC858
    for line in document.lines:
        out += ESC + b"a" + bytes([ALIGN[line.align]])
        out += ESC + b"E" + (b"\x01" if line.bold else b"\x00")
        out += GS + b"!" + size_byte(line.size)
        if line.invert:
            out += REVERSE_ON
        for row in layout(line, cols, model):
            if model.drawn(row):  # after an LF: GS v 0 prints only at the start of a line
                out += drawn_row(line, row, paper_mm=paper_mm, columns=cols, model=model)
            else:
                out += encode_text(row, mode) + LF
        if line.invert:
            out += REVERSE_OFF
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
