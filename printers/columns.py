"""One width model per text mode: which characters the printer prints from its own font, how many columns each
takes on paper, and the rows a line is laid out in. The renderer sends what the model says; tests read the bytes
back and count the columns the way the printer does.

- `gb18030`: ASCII is one column; every other character the printer prints is sent double-byte inside FS & ... FS .
  and takes two columns (“ ” … — · ￥ ‘ ’, Greek, Cyrillic, pinyin é as much as a hanzi). The printer's Chinese font
  has GB2312 (`coverage="gb2312"`, most printers) or GB18030's mandatory set (`"gb18030"`: GBK's two-byte
  characters and CJK extension A).
- `codepage`: PC858 (Latin-1 and €), one column each.
- `raster`: the box draws everything (printers.raster); East Asian wide characters (hanzi, kana, emoji) two
  columns, and symbols the bundled fonts draw wide (❤ ½ ™ ©), the rest one.

A character the printer's font lacks (an emoji, ñ ç ½ έ on a GB2312 font, a hanzi in PC858) is never sent: its row
is drawn by the box (printers.raster) in the same columns, each character the width `width` gives."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from functools import lru_cache

from appliance.domain.printing import FONT_COVERAGES, TEXT_MODES
from printers.document import Line
from printers.fonts import STAND_IN, has_glyph, wide_glyph

# Swapped in before layout, so the columns counted are the columns printed.
SUBSTITUTES = {
    # The printer's Chinese font is GB2312's: its yen/pound/cent signs are the full-width ones (A3A4, A1EA, A1E9);
    # GB2312's middle dot and dash (A1A4, A1AA) are U+00B7 and U+2014 in GB18030, their katakana/horizontal-bar
    # twins are not in GB2312 at all; it has no en dash: the hyphen stands in for it.
    "gb18030": str.maketrans({"¥": "￥", "£": "￡", "¢": "￠", "・": "·", "―": "—", "–": "-"}),
    # PC858 has the Latin signs, not the full-width ones, and no typographic quotes or dashes (a phone's
    # "smart punctuation" in a note): their ASCII stand-ins, rather than drawing the whole row.
    "codepage": str.maketrans(
        {"￥": "¥", "￡": "£", "￠": "¢", "“": '"', "”": '"', "„": '"', "‘": "'", "’": "'", "‚": "'"}
        | {"…": "...", "—": "-", "–": "-", "‐": "-", "−": "-"}
    ),
    "raster": str.maketrans({}),
}

# GB18030's four-byte characters a printer's "GB18030" font has: CJK Unified Ideographs Extension A (the rest of
# the four-byte area, Latin-1 letters, emoji, is in no printer font).
_CJK_EXT_A = range(0x3400, 0x4DC0)


NAMED_STAND_INS = 8  # per text; after that (a note of 140 emoji) each is the one-column STAND_IN


def stand_in(ch: str) -> str:
    """What prints for a character neither the printer's font nor the box's has (an emoji): its Unicode name in
    brackets, so the cook still reads it ("no [hot pepper]"), or 〓 for one without a name."""
    name = unicodedata.name(ch, "")
    return f"[{name.lower()}]" if name else STAND_IN


def ignorable(ch: str) -> bool:
    """Drawn with the character before it and taking no column: combining marks, variation selectors, ZWJ and
    other format characters, emoji skin-tone modifiers."""
    return unicodedata.category(ch) in ("Mn", "Me", "Cf") or 0x1F3FB <= ord(ch) <= 0x1F3FF


@lru_cache(maxsize=65536)
def _prints(mode: str, coverage: str, ch: str) -> bool:
    if mode == "raster":
        return False
    if mode == "codepage":
        try:
            byte = ch.encode("cp858")
        except UnicodeEncodeError:
            return False
        return byte[0] >= 0x20 and byte != b"\x7f"
    if " " <= ch <= "~":
        return True
    if ch.isascii() or unicodedata.category(ch) in ("Co", "Cs", "Cn"):  # controls, user-defined, unassigned
        return False
    encoded = ch.encode("gb18030")
    if len(encoded) == 4:
        return coverage == "gb18030" and ord(ch) in _CJK_EXT_A
    if coverage == "gb18030":
        return True
    try:  # in GB2312 if its bytes are a GB2312 position (the mapping differences are substituted above)
        encoded.decode("gb2312")
    except UnicodeDecodeError:
        return False
    return True


@lru_cache(maxsize=65536)
def _width(mode: str, coverage: str, ch: str) -> int:
    if _prints(mode, coverage, ch):
        return 1 if mode == "codepage" or ch.isascii() else 2
    if ignorable(ch):
        return 0
    if unicodedata.east_asian_width(ch) in ("W", "F"):
        return 2
    # a symbol or number sign drawn wide (❤ ½ ™ ©; not a letter: Cyrillic Ж squeezes into one column as Latin M does)
    return 2 if unicodedata.category(ch)[0] in "SN" and wide_glyph(ch) else 1


@dataclass(frozen=True)
class TextModel:
    """A text mode's width model (and, for gb18030, the printer's font coverage)."""

    mode: str = "raster"
    coverage: str = "gb2312"

    def __post_init__(self) -> None:
        if self.mode not in TEXT_MODES:
            raise ValueError(f"text mode must be one of {TEXT_MODES}, not {self.mode!r}")
        if self.coverage not in FONT_COVERAGES:
            raise ValueError(f"font coverage must be one of {FONT_COVERAGES}, not {self.coverage!r}")

    def substitute(self, text: str) -> str:
        """The text composed (e + ◌́ = é, one character the fonts have) and with this mode's substitutions."""
        return unicodedata.normalize("NFC", text).translate(SUBSTITUTES[self.mode])

    def prepare(self, text: str) -> str:
        """The text as it will be printed: `substitute`d, and each character no font at hand has (the printer's nor the box's: emoji) named in words (`stand_in`), the
        skin tones, variation selectors and joiners after it dropped."""
        text = self.substitute(text)
        if all(_prints(self.mode, self.coverage, ch) or has_glyph(ch) for ch in text):
            return text
        out: list[str] = []
        named, after_stand_in = 0, False
        for ch in text:
            if after_stand_in and ignorable(ch) and not unicodedata.combining(ch):
                continue
            after_stand_in = False
            if _prints(self.mode, self.coverage, ch) or has_glyph(ch) or ignorable(ch):
                out.append(ch)
                continue
            named += 1
            out.append(stand_in(ch) if named <= NAMED_STAND_INS else STAND_IN)
            after_stand_in = True
        return "".join(out)

    def prints(self, ch: str) -> bool:
        """Whether the printer prints `ch` from its own font (sent as text); if not, the box draws it."""
        return _prints(self.mode, self.coverage, ch)

    def width(self, ch: str) -> int:
        """Columns `ch` takes on paper at size 1."""
        return _width(self.mode, self.coverage, ch)

    def text_width(self, text: str) -> int:
        return sum(_width(self.mode, self.coverage, ch) for ch in text)

    def drawn(self, row: str) -> bool:
        """Whether the row must be drawn by the box (some character is not in the printer's font)."""
        return any(not _prints(self.mode, self.coverage, ch) for ch in row)


RASTER_MODEL = TextModel("raster")


def model_for(mode: str, coverage: str = "gb2312") -> TextModel:
    return TextModel(mode, coverage)


def char_width(ch: str, model: TextModel = RASTER_MODEL) -> int:
    return model.width(ch)


def display_width(text: str, model: TextModel = RASTER_MODEL) -> int:
    return model.text_width(text)


def wrap(text: str, width: int, model: TextModel = RASTER_MODEL) -> list[str]:
    """Break text into rows of at most `width` columns (as `model` counts them), preferring spaces. A character
    wider than the whole row (a hanzi in one column) gets a row of its own."""
    rows: list[str] = []
    row, used = "", 0
    for ch in text:
        w = model.width(ch)
        if used + w > width and row:
            cut = row.rfind(" ")
            if cut > 0 and model.text_width(row[cut + 1 :]) < width // 2:
                rows.append(row[:cut])
                row = row[cut + 1 :]
                used = model.text_width(row)
            else:
                rows.append(row)
                row, used = "", 0
        row += ch
        used += w
    rows.append(row)
    return [r.rstrip() for r in rows]


def layout(line: Line, columns: int, model: TextModel = RASTER_MODEL) -> list[str]:
    """The rows of one line, in characters of its own size (double size halves the columns), substitutions made."""
    width = columns // line.size
    if line.rule:
        return ["-" * width]
    text, right = model.prepare(line.text), model.prepare(line.right)
    if not right:
        return wrap(text, width, model) if text else [""]
    right_w = model.text_width(right)
    if right_w > width:  # a right column wider than the paper: its own rows after the text
        return (wrap(text, width, model) if text else []) + wrap(right, width, model)
    text_w = width - right_w - 1
    # A text column narrower than a third of the row would be a character or two a row: the text takes whole rows
    # and the right column goes after it.
    rows = wrap(text, text_w if text_w >= width // 3 else width, model)
    last = rows[-1]
    gap = width - model.text_width(last) - right_w
    if gap >= 1:
        rows[-1] = last + " " * gap + right
    else:
        rows.append(" " * (width - right_w) + right)
    return rows
