"""The `raster` text mode: the whole ticket drawn with Pillow in the bundled fonts and sent as GS v 0 bands,
so any printer prints any script (no Chinese font, code page or GB18030 support needed on the printer); and the
rows a text mode's printer cannot print (printers.render draws them with `draw_rows`).

Rows are laid out by `columns.layout`, so they wrap exactly like the text modes, and each character is drawn
in its own cell of the printer's character grid: one column is DOTS / COLUMNS = 12 dots wide (a hanzi two
columns, 24 dots; a double-size line twice as wide and twice as tall), as many columns as the width model of the
mode says (raster's own: East Asian wide characters and emoji two; a gb18030 row: every non-ASCII character two).
Latin letters wider than their cell (the bundled font is proportional: `m` is 22 dots) are squeezed into it, so
prices line up as on paper. Characters the bundled font lacks (emoji) are named in words before layout
(printers.columns.stand_in: "[hot pepper]"); one without a name is drawn as the stand-in 〓 (fonts.STAND_IN), never
as an empty box."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import lru_cache

from PIL import Image, ImageDraw

from printers.columns import RASTER_MODEL, TextModel, ignorable, layout
from printers.document import Document, Line
from printers.fonts import drawing_font
from printers.render import BUZZER, COLUMNS, FEED_AND_CUT, INIT

DOTS = {58: 384, 80: 576}  # printable dots per line at 203 dpi
BAND_ROWS = 255  # GS v 0 bands of at most this many rows (some printers' buffers are small)

FONT_PX = 24  # size 1: a hanzi is 24 dots, the printer's own 12x24 font A
ROW_DOTS = 30  # size 1 row pitch (the printer's default line spacing)
BASELINE = 23  # size 1 baseline from a row's top: accents above, descenders below fit in 30
GLYPH_GAP = 1  # a squeezed Latin glyph keeps this many white dots from its neighbour
RULE_DOTS = 2  # thickness of a `rule` line at size 1

RASTER = b"\x1dv0"  # GS v 0
_INVERT = bytes(255 - b for b in range(256))  # Pillow: 0 = black; ESC/POS: 1 = black

# DLE EOT n (n = 1..4) is a real-time status query that printers act on even inside image data (see
# printers.virtual.StatusQueryParser): image bytes never contain it. Where the dots would spell it, one more
# dot is inked (04 -> 0C, the dot left of the lone one), which nobody can see at 203 dpi.
_STATUS_QUERY = re.compile(rb"\x10\x04(?=[\x01-\x04])")

# Commands render_raster sends besides GS v 0, with their argument byte counts (for decode_bands).
_SKIP = {b"\x1b@": 0, b"\x1bB": 2, b"\x1bd": 1, b"\x1dV": 1}


def _dots(paper_mm: int) -> int:
    try:
        return DOTS[paper_mm]
    except KeyError:
        raise ValueError(f"paper must be one of {sorted(DOTS)} mm, not {paper_mm!r}") from None


def _ink_bytes(image: Image.Image) -> bytes:
    """The rows of a mode "1" image (width a multiple of 8) as ESC/POS bits, 1 = black, with no DLE EOT n."""
    return _STATUS_QUERY.sub(b"\x10\x0c", image.tobytes().translate(_INVERT))


def _clusters(row: str, model: TextModel = RASTER_MODEL) -> list[tuple[str, int]]:
    """(text, columns) of each printed cell: a character with the combining marks (variation selectors, joiners,
    skin tones) that follow it, as wide as `model` counts it."""
    cells: list[tuple[str, int]] = []
    for ch in row:
        w = model.width(ch)
        if w == 0 and cells:
            text, cw = cells[-1]
            cells[-1] = (text + ch, cw)
        else:
            cells.append((ch, w))
    return cells


@lru_cache(maxsize=4096)
def _glyph(text: str, columns: int, col_w: int, size: int, bold: bool) -> Image.Image | None:
    """A mode "1" mask of one cell (255 = ink), `columns` grid columns of `col_w` dots (x size) wide and one
    row tall; None if the cell is blank."""
    cell_w = columns * col_w * size
    row_h = ROW_DOTS * size
    # a font draws the base and its accents; a variation selector, ZWJ or skin tone would draw a box
    text = "".join(ch for ch in text if not ignorable(ch) or unicodedata.combining(ch))
    if cell_w == 0 or not text.strip():
        return None
    font, base = drawing_font(text[0], FONT_PX * size)
    text = base + text[1:] if base == text[0] else base
    pad = 2 * size  # room for ink left of the origin (`_`, italic-ish kana)
    advance = font.getlength(text)
    canvas = Image.new("L", (max(cell_w, int(advance)) + 2 * pad, row_h), 0)
    ImageDraw.Draw(canvas).text((pad, BASELINE * size), text, fill=255, font=font, anchor="ls")
    box = canvas.getbbox()
    if box is None:
        return None
    left, _, right, _ = box
    ink_w = right - left
    fit = cell_w - GLYPH_GAP * size if ink_w < cell_w else cell_w
    canvas = canvas.crop((left, 0, right, row_h))
    if ink_w > fit:  # too wide for its cell (m, W, digits): squeeze it in
        canvas = canvas.resize((fit, row_h), Image.Resampling.LANCZOS)
        offset = (cell_w - fit) // 2
    else:  # the advance box centred in the cell, as a monospaced printer font does
        offset = round((cell_w - advance) / 2) + left - pad
        offset = min(max(offset, 0), cell_w - ink_w)
    mask = Image.new("L", (cell_w, row_h), 0)
    mask.paste(canvas, (offset, 0))
    mask = mask.point(lambda v: 255 if v >= 112 else 0)
    if bold:  # printer-style emphasis: the glyph again, one dot to the right
        shifted = Image.new("L", (cell_w, row_h), 0)
        shifted.paste(mask.crop((0, 0, cell_w - 1, row_h)), (1, 0))
        mask = Image.composite(shifted, mask, shifted)
    return mask.convert("1")


def _rows(document: Document, columns: int, model: TextModel = RASTER_MODEL) -> list[tuple[Line, str]]:
    return [(line, row) for line in document.lines for row in layout(line, columns, model)]


def draw(document: Document, *, paper_mm: int = 80) -> Image.Image:
    """The ticket as a mode "1" image (0 = black) DOTS[paper_mm] wide, one ROW_DOTS (x size) band per row."""
    _dots(paper_mm)  # an unknown paper refused before any layout
    return draw_rows(_rows(document, COLUMNS[paper_mm]), paper_mm=paper_mm)


def draw_rows(
    rows: Sequence[tuple[Line, str]],
    *,
    paper_mm: int = 80,
    columns: int | None = None,
    model: TextModel = RASTER_MODEL,
) -> Image.Image:
    """Rows already laid out (`columns.layout`), drawn as a mode "1" image DOTS[paper_mm] wide, one ROW_DOTS
    (x size) band per row, each character in the cells `model` counts for it. A row wider than the paper's
    `columns` is refused (ValueError): it would be cut off."""
    width = _dots(paper_mm)
    columns = columns or COLUMNS[paper_mm]
    col_w = width // columns
    image = Image.new("1", (width, sum(ROW_DOTS * line.size for line, _ in rows)), 1)
    pen = ImageDraw.Draw(image)
    top = 0
    for line, row in rows:
        size = line.size
        row_h = ROW_DOTS * size
        cells = _clusters(row, model)
        row_cols = sum(w for _, w in cells) * size
        if row_cols > columns:
            raise ValueError(f"row {row!r} is {row_cols} columns at size {size}, the paper {columns}")
        row_w = row_cols * col_w
        x = {"center": (width - row_w) // 2, "right": width - row_w}.get(line.align, 0)
        if line.rule:
            thick = RULE_DOTS * size
            y = top + (row_h - thick) // 2
            pen.rectangle((x, y, x + row_w - 1, y + thick - 1), fill=0)
        else:
            ink = 0
            if line.invert and row_w:  # white on black, as GS B 1 prints the row's character cells
                pen.rectangle((x, top, x + row_w - 1, top + row_h - 1), fill=0)
                ink = 1
            for text, w in cells:
                mask = _glyph(text, w, col_w, size, line.bold)
                if mask is not None:
                    image.paste(ink, (x, top), mask)
                x += w * col_w * size
        top += row_h
    if _STATUS_QUERY.search(image.tobytes().translate(_INVERT)):  # drawn exactly as it will be sent
        image = Image.frombytes("1", image.size, _ink_bytes(image).translate(_INVERT))
    return image


def raster_bands(image: Image.Image) -> bytes:
    """GS v 0 commands printing `image`, one per band of at most BAND_ROWS rows (1 = black dot, MSB first).
    Other modes are converted to "1" (dithered). The bytes never spell DLE EOT n (see _STATUS_QUERY)."""
    if image.mode != "1":
        image = image.convert("1")
    width, height = image.size
    if width % 8:  # Pillow pads rows with 0 bits (black): pad with white instead
        padded = Image.new("1", ((width + 7) // 8 * 8, height), 1)
        padded.paste(image, (0, 0))
        image = padded
    row_bytes = image.size[0] // 8
    if row_bytes > 0xFFFF:
        raise ValueError(f"image too wide for GS v 0: {width} dots")
    data = _ink_bytes(image)
    out = bytearray()
    for y in range(0, height, BAND_ROWS):
        rows = min(BAND_ROWS, height - y)
        out += RASTER + b"\x00" + row_bytes.to_bytes(2, "little") + rows.to_bytes(2, "little")
        out += data[y * row_bytes : (y + rows) * row_bytes]
    return bytes(out)


def render_raster(document: Document, *, paper_mm: int = 80) -> bytes:
    """The printer's bytes for `document` in raster mode: init, the drawn ticket, buzzer, feed and cut."""
    out = INIT + raster_bands(draw(document, paper_mm=paper_mm))
    if document.buzzer:
        out += BUZZER
    if document.cut:
        out += FEED_AND_CUT
    return out


def read_band(data: bytes, i: int) -> tuple[Image.Image, int]:
    """The GS v 0 band at data[i:] as a mode "1" image (0 = black), and the offset after it. A scaled, empty or
    truncated band raises ValueError."""
    header = data[i + 3 : i + 8]
    if not data.startswith(RASTER, i) or len(header) < 5:
        raise ValueError(f"GS v 0 at {i}: truncated header")
    mode = header[0]
    if mode not in (0, 48):
        raise ValueError(f"GS v 0 at {i}: unsupported scaling mode {mode}")
    row_bytes = int.from_bytes(header[1:3], "little")
    rows = int.from_bytes(header[3:5], "little")
    if row_bytes == 0 or rows == 0:
        raise ValueError(f"GS v 0 at {i}: empty band ({row_bytes} bytes x {rows} rows)")
    start, end = i + 8, i + 8 + row_bytes * rows
    if end > len(data):
        raise ValueError(f"GS v 0 at {i}: {row_bytes * rows} data bytes announced, {len(data) - start} present")
    return Image.frombytes("1", (row_bytes * 8, rows), data[start:end].translate(_INVERT)), end


def decode_bands(data: bytes) -> Image.Image:
    """Every GS v 0 band in `data`, stacked into one mode "1" image (0 = black), for tests and previews.
    The other commands render_raster sends (ESC @, ESC B, ESC d, GS V) are skipped; anything else, a scaled
    or truncated band, or bands of different widths raise ValueError. No band at all gives a 0 x 0 image."""
    bands: list[Image.Image] = []
    i = 0
    while i < len(data):
        if data.startswith(RASTER, i):
            band, end = read_band(data, i)
            if bands and bands[0].size[0] != band.size[0]:
                raise ValueError(f"GS v 0 at {i}: band {band.size[0]} dots wide after {bands[0].size[0]}")
            bands.append(band)
            i = end
            continue
        two = data[i : i + 2]
        if two in _SKIP:
            n = _SKIP[two]
            if i + 2 + n > len(data):
                raise ValueError(f"command {two!r} at {i}: truncated")
            i += 2 + n
            continue
        raise ValueError(f"unexpected byte {data[i]:#04x} at {i}")
    if not bands:
        return Image.new("1", (0, 0))
    image = Image.new("1", (bands[0].size[0], sum(b.size[1] for b in bands)), 1)
    top = 0
    for band in bands:
        image.paste(band, (0, top))
        top += band.size[1]
    return image
