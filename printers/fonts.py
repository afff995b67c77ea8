"""The font the box draws with, bundled from PyPI so raster tickets, drawn rows and stickers draw Chinese on a fresh
box with no system fonts: WenQuanYi Micro Hei (hanzi, kana, Latin, Greek, Cyrillic, many symbols). What it lacks
(emoji, rare symbols) never reaches a drawing: printers.columns names it in words first ("[hot pepper]"), and a
character without a name is drawn as the stand-in 〓."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from fontTools.ttLib import TTFont
from PIL import ImageFont

# What the box draws for a character none of its fonts has: the geta mark 〓, the sign Chinese and Japanese
# typesetting uses for a missing glyph (a printer's empty box or a `?` would read as a mistake or as nothing).
STAND_IN = "\u3013"


def cjk_font_path() -> Path:
    return Path(str(resources.files("paperang_p2_fonts_cjk").joinpath("fonts/wqy-microhei.ttc")))


@lru_cache(maxsize=16)
def cjk_font(size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(cjk_font_path()), size_px)


def has_glyph(ch: str) -> bool:
    """Whether the bundled font draws `ch` (FreeType would otherwise draw its empty box, silently)."""
    return ord(ch) in font_codepoints(str(cjk_font_path()))


def drawing_font(ch: str, size_px: int) -> tuple[ImageFont.FreeTypeFont, str]:
    """(font, text) to draw the character `ch` with: the bundled font and `ch`, or STAND_IN where it has no glyph."""
    return cjk_font(size_px), ch if has_glyph(ch) else STAND_IN


@lru_cache(maxsize=4096)
def wide_glyph(ch: str) -> bool:
    """Whether the box draws `ch` wider than 1.4 columns of the printer's 12 x 24 grid (½ ™ © ‰ →): squeezed into one column it would be a blot, so a drawn row gives it two."""
    font, text = drawing_font(ch, 24)
    return font.getlength(text) > 1.4 * 12


@lru_cache(maxsize=8)
def font_codepoints(path: str, index: int = 0) -> frozenset[int]:
    """Every code point the font's best Unicode character map maps to a real glyph (not .notdef, the 'missing'
    box), read with fontTools: Pillow has no way to ask."""
    font = TTFont(path, fontNumber=index, lazy=True)
    try:
        return frozenset(code for code, glyph in font.getBestCmap().items() if glyph != ".notdef")
    finally:
        font.close()
