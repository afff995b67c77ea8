"""The CJK font bundled from PyPI (WenQuanYi Micro Hei: hanzi, kana, Latin), so raster tickets and stickers
draw Chinese on a fresh box with no system fonts."""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from PIL import ImageFont


def cjk_font_path() -> Path:
    return Path(str(resources.files("paperang_p2_fonts_cjk").joinpath("fonts/wqy-microhei.ttc")))


@lru_cache(maxsize=16)
def cjk_font(size_px: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(cjk_font_path()), size_px)
