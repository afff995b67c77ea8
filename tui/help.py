"""`?`: the keys of the screen on top, from tui/keys.py, only those the person's role allows; and the README's key
table, written from the same map (tests/tui/test_keys.py checks the README against `readme_key_table()`)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static

from appliance.db.staff import PERMISSIONS
from tui.dialogs import DIALOG_CSS
from tui.keys import ANY, APP_KEYS, KEYS, Key, allowed, keys_for

ASKS_WORDS = "asks first 先确认"


def grouped(keys: Iterable[Key]) -> list[tuple[str, Key]]:
    """The keys with those of one action together ("a / Enter"), in the map's order."""
    shown: dict[tuple[str, tuple[str, ...]], list[Key]] = {}
    for key in keys:
        shown.setdefault((key.action, key.screens), []).append(key)
    return [(" / ".join(k.shown for k in same), same[0]) for same in shown.values()]


def screen_keys(mode: str, may: Callable[[str], bool]) -> list[tuple[str, Key]]:
    """What `?` lists for a screen: its keys the role allows (the app's `?` last, with the app's keys)."""
    return grouped(k for k in allowed(keys_for(mode), may) if ANY not in k.screens)


class HelpScreen(ModalScreen[None]):
    """The keys of one screen; Esc or `?` closes it."""

    DEFAULT_CSS = (
        DIALOG_CSS.replace("ModalScreen", "HelpScreen")
        + """
    HelpScreen > Vertical { width: 78; }
    HelpScreen #keys { height: auto; max-height: 20; }
    """
    )
    BINDINGS = [
        Binding("escape", "close", "Close"),
        Binding("question_mark", "close", "Close", show=False),
        Binding("q", "close", "Close", show=False),
    ]

    def __init__(self, mode: str, title: str, may: Callable[[str], bool]) -> None:
        super().__init__()
        self.mode, self.screen_title, self.may = mode, title, may

    def rows(self) -> list[tuple[str, Text]]:
        """(keys, what they do) for this screen, then for every screen."""
        rows = []
        for shown, key in screen_keys(self.mode, self.may):
            what = Text(key.label, style="bold")
            what.append(f"  {key.help}")
            if key.asks and "asks first" not in key.help:
                what.append(f" ({ASKS_WORDS})", style="italic")
            rows.append((shown, what))
        rows.append(("", Text("Every screen 所有界面", style="bold underline")))
        rows.extend((k.shown, Text(k.help)) for k in KEYS if ANY in k.screens)
        rows.extend((shown, Text(what)) for shown, what in APP_KEYS)
        return rows

    def compose(self) -> ComposeResult:
        table = Table.grid(padding=(0, 1))
        table.add_column(no_wrap=True, style="bold")
        table.add_column(overflow="fold")
        for shown, what in self.rows():
            table.add_row(shown, what)
        with Vertical():
            yield Static(f"Keys: {self.screen_title} 快捷键", classes="title", id="help-title")
            with VerticalScroll(id="keys"):
                yield Static(table, id="key-list")
            yield Label("Esc / ? close 关闭 · ctrl+p finds any action by name")

    def on_mount(self) -> None:
        self.query_one("#keys").focus()  # up / down scroll a long list

    def action_close(self) -> None:
        self.dismiss(None)


def who(key: Key) -> str:
    """ "managers" when a waiter may not use the key (appliance.db.staff.PERMISSIONS)."""
    return "" if key.permission is None or key.permission in PERMISSIONS["waiter"] else " (managers)"


def readme_key_table() -> str:
    """The README's key table (markdown), one row per key and action, from tui/keys.py."""
    lines = ["| key | screen | what it does |", "|---|---|---|"]
    for shown, key in grouped(KEYS):
        keys = " / ".join(f"`{s}`" for s in shown.split(" / "))
        where = "every screen" if ANY in key.screens else ", ".join(m.capitalize() for m in key.screens)
        label = " ".join(w for w in key.label.split() if w != key.shown)  # "Keys ?" -> "Keys"
        asks = "; asks first" if key.asks and "asks first" not in key.help else ""
        help_text = re.sub(r"(<[^>]*>[^ ]*)", r"`\1`", key.help)  # `<data folder>/exports/`, not an HTML tag
        what = f"**{label}**: {help_text}{who(key)}{asks}"
        lines.append(f"| {keys} | {where} | {what} |")
    for shown, what in APP_KEYS:
        keys = " / ".join(f"`{s.strip()}`" for s in shown.split(" / "))
        lines.append(f"| {keys} | every screen | {what} |")
    return "\n".join(lines) + "\n"


def key_hint(mode: str, actions: Iterable[str]) -> str:
    """A screen's short line of keys ("n order · v void · R refund"), from the map: the key and its label's
    first-language words in English, lower case."""
    keys = {k.action: k for k in keys_for(mode)}
    words = []
    for action in actions:
        key = keys[action]
        english = " ".join(w for w in key.label.split() if w.isascii() and w != key.shown)
        words.append(f"{key.shown} {english.lower()}")
    return " · ".join(words)
