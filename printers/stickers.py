"""Table QR stickers drawn with qrcode and Pillow: one per table for the receipt printer, or A4 sheets (PDF/PNG)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import qrcode
import qrcode.constants
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


def qr_matrix(data: str, error_correction: str = "M") -> list[list[bool]]:
    """The code's modules (True = dark), including the 4-module quiet zone on every side."""
    if not data:
        raise ValueError("a QR code needs something to encode")
    level = ERROR_LEVELS.get(error_correction)
    if level is None:
        raise ValueError(f"error correction must be one of {', '.join(ERROR_LEVELS)}, not {error_correction!r}")
    code = qrcode.QRCode(version=None, error_correction=level, box_size=1, border=QUIET_ZONE)
    try:
        code.add_data(data)
        code.make(fit=True)
    except (DataOverflowError, ValueError):  # qrcode's fit=True says "Invalid version (was 41 ...)" for too much
        raise ValueError(f"{len(data)} characters are too many for one QR code") from None
    # qrcode shares one list between its border rows: copy so callers can't alias-edit them.
    return [[bool(module) for module in row] for row in code.get_matrix()]


def qr_image(data: str, dots_per_module: int = 8, error_correction: str = "M") -> Image.Image:
    """The code as a mode "1" image, white background, every module exactly `dots_per_module` dots square."""
    _check_dots(dots_per_module)
    return _qr_raster(data, dots_per_module, error_correction)


def _qr_raster(data: str, dots: int, error_correction: str) -> Image.Image:
    # Unchecked scale: an A4 sheet at 600 dpi needs more dots per module than a thermal printer ever should.
    matrix = qr_matrix(data, error_correction)
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
    wifi_dots = _sheet_dots(wifi_payload(wifi), SHEET_WIFI_QR_MIN_MM, dpi, "M") if wifi else 1
    drawn = [
        _draw_sticker(
            info,
            inner_w,
            dpi,
            _sheet_dots(info.url, SHEET_QR_MIN_MM, dpi, error_correction),
            wifi,
            wifi_dots,
            error_correction,
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


def _sheet_dots(data: str, min_mm: float, dpi: int, error_correction: str) -> int:
    # The minimum is for the dark symbol alone (the quiet zone comes on top), rounded up so the printed code is
    # never smaller; whole dots keep every module identical.
    symbol_modules = len(qr_matrix(data, error_correction)) - 2 * QUIET_ZONE
    return math.ceil(min_mm * dpi / 25.4 / symbol_modules)


def _draw_sticker(
    info: StickerInfo, width: int, dpi: int, qr_dots: int, wifi: WifiInfo | None, wifi_dots: int, error_correction: str
) -> Image.Image:
    """The sticker in greyscale ("L"), `width` wide and as tall as its content, everything centred."""
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
    blocks.append(_text(SCAN_TEXT, _mm(SCAN_MM, dpi), width))
    blocks.append(code)
    if wifi is not None:
        # Always level M: the Wi-Fi code is small and secondary, and M keeps it from growing a version.
        wifi_code = _qr_raster(wifi_payload(wifi), wifi_dots, "M").convert("L")
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
            font, lines, stroke = block
            ascent, descent = font.getmetrics()
            for number, line in enumerate(lines):
                draw.text(
                    (width / 2, y + number * (ascent + descent) + stroke),
                    line,
                    font=font,
                    fill=0,
                    anchor="ma",
                    stroke_width=stroke,
                    stroke_fill=0,
                )
        y += _block_height(block) + gap
    return sticker


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
