"""Fitting a list's columns to the terminal: the columns that must stay whole (a price, a state) keep their width,
and a name column gets the room that is left, cut with `…` (wide Chinese characters counted as two cells)."""

from __future__ import annotations

from collections.abc import Iterable

from rich.console import Console
from rich.text import Text

CELL_PADDING = 1  # DataTable's default, either side of every cell
SCROLLBAR = 2  # a vertical scrollbar's width, kept free so a long list does not push the last column out
MIN_NAME = 8  # a name column is never narrower than this: a narrower terminal scrolls sideways instead
_WRAPPING = Console(width=1000)  # Text.wrap wants a console (for tabs); nothing is printed on it


def fit(text: str | Text, width: int) -> Text:
    """Text cut to `width` terminal cells, an ellipsis marking the cut."""
    fitted = Text(text) if isinstance(text, str) else text.copy()
    if fitted.cell_len > width:
        fitted.truncate(width, overflow="ellipsis")
    fitted.no_wrap = True
    return fitted


def widest(header: str, cells: Iterable[str | Text]) -> int:
    """The cells a column needs to show its header and every cell whole."""
    return max([Text(header).cell_len, *(Text(c).cell_len if isinstance(c, str) else c.cell_len for c in cells)])


def room_left(width: int, whole: Iterable[int], columns: int, *, scrollbar: bool = True) -> int:
    """The cells left for the one column that gives way, in a table `width` cells wide with `columns` columns in
    all, the others needing `whole` cells each (never less than MIN_NAME); `scrollbar`: room kept for one (a list
    that may be longer than the screen)."""
    padding = 2 * CELL_PADDING * columns
    return max(MIN_NAME, width - (SCROLLBAR if scrollbar else 0) - padding - sum(whole))


def hang(line: Text, width: int, indent: int) -> Text:
    """`line` wrapped to `width` cells, its second and later rows indented by `indent` cells (under the dish, not
    back at column 1); as it is when it fits, or when the width is not known yet (0)."""
    if line.cell_len <= width or width < indent + MIN_NAME:
        return line
    hung = Text()
    for n, row in enumerate(line.wrap(_WRAPPING, width - indent)):
        row.rstrip()
        if n:
            hung.append("\n" + " " * indent)
        hung.append_text(row)
    return hung
