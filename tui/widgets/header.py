"""The console's header: the title (the badge, then the store) and the sub-title (the screen and who is logged in)
on one line that fits the terminal, the store's name giving up room first."""

from __future__ import annotations

from textual import events
from textual.content import Content
from textual.css.query import NoMatches
from textual.widgets import Header
from textual.widgets._header import HeaderTitle

SEPARATOR = " — "
ICON_WIDTH = 3  # "▤" with a space either side


def fit_title(title: str, sub_title: str, room: int) -> Content:
    """`title — sub_title` in `room` cells. What gives up room first is the title's end (the store's name: the
    title starts with the badge), cut with `…`; then the sub-title's end (who is logged in: it starts with the
    screen's name); the title's first part (the badge, up to its first " · ") is kept whole while anything else can
    give way."""
    sub = Content(sub_title).stylize("dim")
    whole = Content.assemble(Content(title), (SEPARATOR, "dim"), sub) if sub_title else Content(title)
    if room <= 0 or whole.cell_length <= room:
        return whole
    if not sub_title:
        return whole.truncate(room, ellipsis=True)
    head = title.split(" · ")[0]
    shown = Content(title).truncate(room - len(SEPARATOR) - sub.cell_length, ellipsis=True)
    if shown.cell_length >= Content(head).cell_length + 2:  # the badge whole, and something of the rest
        return Content.assemble(shown, (SEPARATOR, "dim"), sub)
    shown = Content(head if head == title else f"{head} …")
    sub_room = room - shown.cell_length - len(SEPARATOR)
    if sub_room >= 2:
        return Content.assemble(shown, (SEPARATOR, "dim"), sub.truncate(sub_room, ellipsis=True))
    return whole.truncate(room, ellipsis=True)


class ConsoleHeader(Header):
    """Textual's header without the clock's empty space, its icon narrow, its title fitted to the width (Textual's
    own cuts the line's end: the screen's name and who is logged in)."""

    DEFAULT_CSS = """
    ConsoleHeader HeaderIcon { width: 3; padding: 0 1; }
    ConsoleHeader HeaderClockSpace { display: none; }
    ConsoleHeader HeaderTitle { padding: 0 1 0 0; }
    """

    def format_title(self) -> Content:
        room = self.size.width - ICON_WIDTH - 1  # less the title's right padding
        return fit_title(self.screen_title, self.screen_sub_title, room)

    def on_resize(self, event: events.Resize) -> None:
        try:
            self.query_one(HeaderTitle).update(self.format_title())
        except NoMatches:  # not composed yet: the title is set when it is
            pass
