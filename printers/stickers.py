"""Table QR stickers drawn with qrcode (segno for a Wi-Fi code that needs its text encoding marked) and Pillow:
one per table for the receipt printer, or A4 sheets (PDF/PNG)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import qrcode
import qrcode.constants
import segno
from PIL import Image, ImageDraw, ImageFont, features
from qrcode.exceptions import DataOverflowError

from appliance.domain.printing import StickerInfo, WifiInfo, wifi_payload
from printers.fonts import cjk_font

if TYPE_CHECKING:
    from appliance.settings import BoxSettings

QUIET_ZONE = 4  # modules; ISO/IEC 18004 asks for 4 and cheap phone cameras really do need them
ERROR_LEVELS = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
    "H": qrcode.constants.ERROR_CORRECT_H,
}
DOTS_PER_MODULE = range(4, 13)
RECEIPT_DPI = 203  # every common 58/80 mm thermal printer: 576 dots = 80 mm paper, 384 = 58 mm
SCAN_TEXT = "扫码点餐 / Scan to order"

A4_MM = (210.0, 297.0)
SHEET_MARGIN_MM = 8.0  # laser printers cannot print to the paper's edge
SHEET_COLUMNS = 3
SHEET_MAX_ROWS = 4
SHEET_QR_MIN_MM = 25.0  # the symbol alone (quiet zone extra): smaller codes are slow to focus from a seat
SHEET_WIFI_QR_MIN_MM = 18.0
SHEET_DPI = range(150, 1201)
SHEET_FORMATS = (".pdf", ".png")

# Text sizes in millimetres so the receipt (203 dpi) and the sheet (300 dpi) look alike on paper.
STORE_MM, TABLE_MM, SCAN_MM, WIFI_MM = 3.5, 9.0, 3.2, 2.6
GAP_MM, PAD_MM = 1.5, 2.0


def qr_matrix(data: str, error_correction: str = "M", *, utf8_eci: bool = False) -> list[list[bool]]:
    """The code's modules (True = dark), including the 4-module quiet zone on every side.

    Plain by default: the text in byte (or alphanumeric) mode with no encoding marked, which is what every scanner
    reads alike for ASCII such as the tables' URLs. `utf8_eci` marks the bytes as UTF-8 (ECI designator 26) when
    the text is not ASCII: without it a QR code's bytes are ISO-8859-1 by the standard, and decoders guess. zbar
    (zbar/qrcode/qrdectxt.c, qr_code_data_list_extract_text) tries Shift-JIS first for any non-ASCII byte run
    with no ECI, so "小笼" came out as "蟆冗ｬｼ" and every backslash as "¥"; with ECI 26 it converts from UTF-8.
    python-qrcode cannot write an ECI segment (its util.py knows only the numeric, alphanumeric, byte and kanji
    modes), so such a code is made by segno (`eci=True`), which writes the ECI header before the byte segment."""
    if not data:
        raise ValueError("a QR code needs something to encode")
    level = ERROR_LEVELS.get(error_correction)
    if level is None:
        raise ValueError(f"error correction must be one of {', '.join(ERROR_LEVELS)}, not {error_correction!r}")
    if utf8_eci and not data.isascii():
        try:
            # boost_error=False: the level asked for, as python-qrcode gives it (segno would raise it for free).
            symbol = segno.make_qr(data, error=error_correction, encoding="utf-8", eci=True, boost_error=False)
        except segno.DataOverflowError:
            raise ValueError(f"{len(data)} characters are too many for one QR code") from None
        return [[bool(module) for module in row] for row in symbol.matrix_iter(scale=1, border=QUIET_ZONE)]
    code = qrcode.QRCode(version=None, error_correction=level, box_size=1, border=QUIET_ZONE)
    try:
        code.add_data(data)
        code.make(fit=True)
    except (DataOverflowError, ValueError):  # qrcode's fit=True says "Invalid version (was 41 ...)" for too much
        raise ValueError(f"{len(data)} characters are too many for one QR code") from None
    # qrcode shares one list between its border rows: copy so callers can't alias-edit them.
    return [[bool(module) for module in row] for row in code.get_matrix()]


def wifi_matrix(wifi: WifiInfo) -> list[list[bool]]:
    """The Wi-Fi code's modules: level M (small and secondary, M keeps it from growing a version), the UTF-8 ECI
    when the name or password is not ASCII (so zbar and zxing-cpp read the same text), plain otherwise."""
    return qr_matrix(wifi_payload(wifi), "M", utf8_eci=True)


def qr_image(data: str, dots_per_module: int = 8, error_correction: str = "M") -> Image.Image:
    """The code as a mode "1" image, white background, every module exactly `dots_per_module` dots square."""
    _check_dots(dots_per_module)
    return _qr_raster(data, dots_per_module, error_correction)


def _qr_raster(data: str, dots: int, error_correction: str) -> Image.Image:
    return _matrix_raster(qr_matrix(data, error_correction), dots)


def _matrix_raster(matrix: list[list[bool]], dots: int) -> Image.Image:
    # Unchecked scale: an A4 sheet at 600 dpi needs more dots per module than a thermal printer ever should.
    size = len(matrix)
    small = Image.new("1", (size, size), 1)
    small.putdata([0 if dark else 255 for row in matrix for dark in row])
    # NEAREST at a whole-number scale keeps modules crisp squares: thermal heads and scanners hate fractional dots.
    return small.resize((size * dots, size * dots), Image.Resampling.NEAREST)


def sticker_image(
    info: StickerInfo,
    *,
    width_px: int = 576,
    dots_per_module: int = 8,
    wifi: WifiInfo | None = None,
    error_correction: str = "M",
) -> Image.Image:
    """One table's sticker for a 203 dpi receipt printer (576 px = 80 mm paper, 384 = 58 mm): mode "1",
    as tall as it needs to be. 6-8 dots per module suits 203 dpi."""
    _check_dots(dots_per_module)
    # The Wi-Fi code is secondary: smaller modules keep the table's own code the obvious one to scan.
    wifi_dots = max(DOTS_PER_MODULE.start, dots_per_module * 3 // 4)
    sticker = _draw_sticker(info, width_px, RECEIPT_DPI, dots_per_module, wifi, wifi_dots, error_correction)
    # A plain threshold, not dithering: dithered text edges print as grey fuzz on a thermal head.
    return sticker.convert("1", dither=Image.Dither.NONE)


def sheet_pages(
    stickers: Sequence[StickerInfo], *, wifi: WifiInfo | None = None, dpi: int = 300, error_correction: str = "M"
) -> list[Image.Image]:
    """A4 pages (RGB) of stickers in a grid, 3 across and up to 4 down, with dashed cut lines between them."""
    if not stickers:
        raise ValueError("no stickers to lay out: pick at least one table")
    if dpi not in SHEET_DPI:
        raise ValueError(f"the sheet's resolution must be {SHEET_DPI.start}-{SHEET_DPI.stop - 1} dpi, not {dpi}")
    page_w, page_h = (_mm(size, dpi) for size in A4_MM)
    margin = _mm(SHEET_MARGIN_MM, dpi)
    cell_w = (page_w - 2 * margin) // SHEET_COLUMNS
    inner_w = cell_w - 2 * _mm(GAP_MM, dpi)
    wifi_dots = _symbol_dots(wifi_matrix(wifi), SHEET_WIFI_QR_MIN_MM, dpi) if wifi else 1
    drawn = [
        _draw_sticker(
            info,
            inner_w,
            dpi,
            _symbol_dots(qr_matrix(info.url, error_correction), SHEET_QR_MIN_MM, dpi),
            wifi,
            wifi_dots,
            error_correction,
            wifi_beside=True,
        )
        for info in stickers
    ]
    # Rows follow the tallest sticker, so a sheet with the Wi-Fi code drops to fewer rows instead of clipping.
    tallest = max(image.height for image in drawn)
    rows = min(SHEET_MAX_ROWS, (page_h - 2 * margin) // tallest)
    if rows < 1:
        raise ValueError(f"a sticker is {tallest} px tall: it does not fit on an A4 page at {dpi} dpi")
    cell_h = (page_h - 2 * margin) // rows
    per_page = SHEET_COLUMNS * rows
    pages = []
    for first in range(0, len(drawn), per_page):
        chunk = drawn[first : first + per_page]
        page = Image.new("L", (page_w, page_h), 255)
        for index, sticker in enumerate(chunk):
            row, col = divmod(index, SHEET_COLUMNS)
            x, y = margin + col * cell_w, margin + row * cell_h
            page.paste(sticker, (x + (cell_w - sticker.width) // 2, y + (cell_h - sticker.height) // 2))
            _cut_box(page, (x, y, x + cell_w, y + cell_h), dpi)
        pages.append(page.convert("RGB"))
    return pages


def write_sheet(
    stickers: Sequence[StickerInfo],
    path: Path,
    *,
    wifi: WifiInfo | None = None,
    dpi: int = 300,
    error_correction: str = "M",
) -> list[Path]:
    """Write the A4 sheet: one multi-page PDF, or one PNG per page (name-1.png, name-2.png, ... when there are
    several). Returns the files written."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SHEET_FORMATS:
        raise ValueError(
            f"a sticker sheet is written as {' or '.join(SHEET_FORMATS)}, not {path.suffix or path.name!r}"
        )
    pages = sheet_pages(stickers, wifi=wifi, dpi=dpi, error_correction=error_correction)
    if suffix == ".pdf":
        # Pillow stores RGB pages in a PDF as JPEG; bilevel pages go in as lossless CCITT G4, which keeps the
        # module edges sharp (and the file small). Without libtiff Pillow would fall back to JPEG anyway.
        if features.check("libtiff"):
            pages = [page.convert("1", dither=Image.Dither.NONE) for page in pages]
        pages[0].save(path, "PDF", save_all=True, append_images=pages[1:], resolution=float(dpi))
        return [path]
    if len(pages) == 1:
        pages[0].save(path, "PNG", dpi=(dpi, dpi))
        return [path]
    written = []
    for number, page in enumerate(pages, start=1):
        target = path.with_name(f"{path.stem}-{number}{path.suffix}")
        page.save(target, "PNG", dpi=(dpi, dpi))
        written.append(target)
    return written


def store_stickers(settings: BoxSettings, table_names: Sequence[str] | None = None) -> list[StickerInfo]:
    """Stickers for every active table of the store (in the store's order), or for the named tables (in the
    order given), each with the table's current signed URL."""
    # Deferred: the store layer (apsw) loads only when stickers come from a real store.
    from appliance.db.connection import open_connection
    from appliance.db.printing import table_stickers
    from appliance.settings import public_base_url
    from appliance.store import StoreError, read_secret

    if not settings.db_path.exists():
        raise StoreError(f"no store at {settings.db_path}: run `tablebox init --data-dir {settings.data_dir}`")
    secret = read_secret(settings.secret_path)
    conn = open_connection(settings.db_path, readonly=True)
    try:
        return table_stickers(conn, secret, public_base_url(settings), table_names)
    finally:
        conn.close()


def _check_dots(dots_per_module: int) -> None:
    if dots_per_module not in DOTS_PER_MODULE:
        raise ValueError(
            f"dots per module must be {DOTS_PER_MODULE.start}-{DOTS_PER_MODULE.stop - 1}, not {dots_per_module}"
        )


def _mm(mm: float, dpi: int) -> int:
    return round(mm * dpi / 25.4)


def _symbol_dots(matrix: list[list[bool]], min_mm: float, dpi: int) -> int:
    # The minimum is for the dark symbol alone (the quiet zone comes on top), rounded up so the printed code is
    # never smaller; whole dots keep every module identical.
    symbol_modules = len(matrix) - 2 * QUIET_ZONE
    return math.ceil(min_mm * dpi / 25.4 / symbol_modules)


def _draw_sticker(
    info: StickerInfo,
    width: int,
    dpi: int,
    qr_dots: int,
    wifi: WifiInfo | None,
    wifi_dots: int,
    error_correction: str,
    *,
    wifi_beside: bool = False,
) -> Image.Image:
    """The sticker in greyscale ("L"), `width` wide and as tall as its content, everything centred. With
    `wifi_beside` (the A4 sheet) the Wi-Fi code stands to the right of the table's code when both fit the width,
    each under its own caption; otherwise (and always on receipt paper) it comes below the table's code."""
    code = _qr_raster(info.url, qr_dots, error_correction).convert("L")
    blocks: list[Image.Image | tuple[ImageFont.FreeTypeFont, list[str], int]] = []
    if code.width > width:
        raise ValueError(
            f"the QR code is {code.width} px wide ({code.width // qr_dots} modules x {qr_dots} dots): "
            f"it does not fit a {width} px sticker; use fewer dots per module or wider paper"
        )
    if info.store_name.strip():
        blocks.append(_text(info.store_name.strip(), _mm(STORE_MM, dpi), width))
    table_size = _mm(TABLE_MM, dpi)
    stroke = max(1, table_size // 30)  # the font has no bold face: a stroke makes the table name heavy
    table_font, table_lines, _ = _text(info.table_name.strip() or "?", table_size, width - 2 * stroke)
    blocks.append((table_font, table_lines, stroke))
    side_by_side = _codes_side_by_side(code, wifi, wifi_dots, width, dpi) if wifi is not None and wifi_beside else None
    if side_by_side is not None:
        blocks.append(side_by_side)
    else:
        blocks.append(_text(SCAN_TEXT, _mm(SCAN_MM, dpi), width))
        blocks.append(code)
    if wifi is not None and side_by_side is None:
        wifi_code = _matrix_raster(wifi_matrix(wifi), wifi_dots).convert("L")
        if wifi_code.width > width:
            raise ValueError(f"the Wi-Fi QR code is {wifi_code.width} px wide: it does not fit a {width} px sticker")
        blocks.append(wifi_code)
        blocks.append(_text(f"连接 Wi-Fi / Join Wi-Fi: {wifi.ssid}", _mm(WIFI_MM, dpi), width))

    gap, pad = _mm(GAP_MM, dpi), _mm(PAD_MM, dpi)
    height = 2 * pad + gap * (len(blocks) - 1) + sum(_block_height(block) for block in blocks)
    sticker = Image.new("L", (width, height), 255)
    draw = ImageDraw.Draw(sticker)
    y = pad
    for block in blocks:
        if isinstance(block, Image.Image):
            sticker.paste(block, ((width - block.width) // 2, y))
        else:
            _draw_lines(draw, width / 2, y, block)
        y += _block_height(block) + gap
    return sticker


def _codes_side_by_side(code: Image.Image, wifi: WifiInfo, wifi_dots: int, width: int, dpi: int) -> Image.Image | None:
    """The table's code and the Wi-Fi code in one row, each captioned above ("扫码点餐 / Scan to order" over the
    table's, "连接 Wi-Fi / Join Wi-Fi" over the Wi-Fi one, the network's name under it), tops level; None when the
    two codes do not fit `width` side by side. Two short columns instead of a stack keep a Wi-Fi sticker as short
    as a plain one, so an A4 page holds 4 rows of them rather than 3. The quiet zones (inside each code image)
    keep the codes apart for a scanner; the gap is for the eye."""
    wifi_code = _matrix_raster(wifi_matrix(wifi), wifi_dots).convert("L")
    gap = _mm(GAP_MM, dpi)
    if code.width + gap + wifi_code.width > width:
        return None
    scan_size, wifi_size = _mm(SCAN_MM, dpi), _mm(WIFI_MM, dpi)
    left_caption = _lines(["扫码点餐", "Scan to order"], scan_size, code.width)
    right_caption = _lines(["连接 Wi-Fi", "Join Wi-Fi"], scan_size, wifi_code.width)
    name = _lines([wifi.ssid], wifi_size, wifi_code.width)
    code_top = max(_block_height(left_caption), _block_height(right_caption)) + gap
    height = code_top + max(code.height, wifi_code.height + gap + _block_height(name))
    row = Image.new("L", (code.width + gap + wifi_code.width, height), 255)
    draw = ImageDraw.Draw(row)
    right_x = code.width + gap
    _draw_lines(draw, code.width / 2, code_top - gap - _block_height(left_caption), left_caption)
    _draw_lines(draw, right_x + wifi_code.width / 2, code_top - gap - _block_height(right_caption), right_caption)
    row.paste(code, (0, code_top))
    row.paste(wifi_code, (right_x, code_top))
    _draw_lines(draw, right_x + wifi_code.width / 2, code_top + wifi_code.height + gap, name)
    return row


def _lines(texts: list[str], size: int, width: int) -> tuple[ImageFont.FreeTypeFont, list[str], int]:
    """Each text on its own line(s) at `size`, wrapped to `width` (a narrow column: no shrinking to one line)."""
    font = cjk_font(size)
    return font, [line for text in texts for line in _wrap(text, font, width)], 0


def _draw_lines(
    draw: ImageDraw.ImageDraw, centre_x: float, top: int, block: tuple[ImageFont.FreeTypeFont, list[str], int]
) -> None:
    font, lines, stroke = block
    ascent, descent = font.getmetrics()
    for number, line in enumerate(lines):
        draw.text(
            (centre_x, top + number * (ascent + descent) + stroke),
            line,
            font=font,
            fill=0,
            anchor="ma",
            stroke_width=stroke,
            stroke_fill=0,
        )


def _cut_box(page: Image.Image, box: tuple[int, int, int, int], dpi: int) -> None:
    """A dashed rectangle around one sticker (neighbours share their edges): dark enough to survive the
    bilevel PDF, dashed so it reads as "cut here" rather than a frame."""
    draw = ImageDraw.Draw(page)
    dash, space, line = _mm(3, dpi), _mm(2, dpi), max(1, round(dpi / 300))
    left, top, right, bottom = box
    for start in range(left, right, dash + space):
        end = min(start + dash, right)
        draw.line([(start, top), (end, top)], fill=96, width=line)
        draw.line([(start, bottom), (end, bottom)], fill=96, width=line)
    for start in range(top, bottom, dash + space):
        end = min(start + dash, bottom)
        draw.line([(left, start), (left, end)], fill=96, width=line)
        draw.line([(right, start), (right, end)], fill=96, width=line)


def _block_height(block: Image.Image | tuple[ImageFont.FreeTypeFont, list[str], int]) -> int:
    if isinstance(block, Image.Image):
        return block.height
    font, lines, stroke = block
    ascent, descent = font.getmetrics()
    return len(lines) * (ascent + descent) + 2 * stroke


def _text(text: str, size: int, width: int) -> tuple[ImageFont.FreeTypeFont, list[str], int]:
    """The largest font (down to 60% of `size`) that fits the text on one line; at the floor, wrap it."""
    floor = max(8, size * 6 // 10)
    for candidate in range(size, floor - 1, -max(1, size // 20)):
        font = cjk_font(candidate)
        if font.getlength(text) <= width:
            return font, [text], 0
    font = cjk_font(floor)
    return font, _wrap(text, font, width), 0


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    # Break at a space when one is near, otherwise anywhere: hanzi have no spaces to break at.
    lines: list[str] = []
    line = ""
    for ch in text:
        if line and font.getlength(line + ch) > width:
            cut = line.rfind(" ")
            if cut > len(line) // 2:
                lines.append(line[:cut])
                line = line[cut + 1 :]
            else:
                lines.append(line)
                line = ""
            if ch == " " and not line:
                continue
        line += ch
    if line:
        lines.append(line)
    return lines
