"""The console's footer: the screen's footer keys (tui/keys.py, `footer=True`) that the person's role allows, on one
line that fits the terminal: both languages' words when there is room, then the store's first language only, then
the last keys give way (every key is in `?`, which always stays)."""

from __future__ import annotations

import unicodedata
from typing import Any

from rich.cells import cell_len
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

from tui.keys import KEYS, SCREENS, Key, keys_for

HELP_ACTION = "help"


def is_cjk(word: str) -> bool:
    return any(unicodedata.east_asian_width(c) in "WF" for c in word)


def short_label(label: str, language: str) -> str:
    """A label's words in one language ("Seat 开台" -> "开台" for zh, "Seat" otherwise); the label when it has no
    words of that language."""
    words = label.split()
    chinese = language.startswith("zh")
    picked = [w for w in words if is_cjk(w) == chinese]
    return " ".join(picked) or label


def without_key(label: str, key_display: str) -> str:
    """A label without the key itself ("Keys ?" -> "Keys": the footer shows the key before its words)."""
    return " ".join(w for w in label.split() if w != key_display) or label


def item_width(key_display: str, description: str) -> int:
    """A compact footer key's cells: "k words" and the one-cell gap after it."""
    return cell_len(key_display) + 1 + cell_len(description) + 1


def fit(items: list[tuple[str, str, str]], room: int, language: str) -> list[tuple[str, str]]:
    """items: (action, key as shown, label) in the footer's order, `?` last. Returns (action, words) to show."""
    for shorten in (False, True):
        words = [(action, short_label(label, language) if shorten else label) for action, _, label in items]
        if sum(item_width(shown, w) for (_, shown, _), (_, w) in zip(items, words, strict=True)) <= room:
            return words
    kept = list(zip(items, words, strict=True))
    while len(kept) > 1 and sum(item_width(shown, w) for (_, shown, _), (_, w) in kept) > room:
        drop = next((i for i in range(len(kept) - 1, -1, -1) if kept[i][0][0] != HELP_ACTION), None)
        if drop is None:
            break
        kept.pop(drop)
    return [w for _, w in kept]


def screen_mode(screen: object) -> str | None:
    """The mode (tui/keys.py SCREENS) a console screen belongs to."""
    name = type(screen).__name__
    return next((mode for mode, (_, cls, _) in SCREENS.items() if cls == name), None)


class ConsoleFooter(Footer):
    """Textual's footer, compact, without the palette's key (ctrl+p is in `?`), fitted as the module says."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(show_command_palette=False, compact=True, **kwargs)
        self.fitted_to = 0

    def keys_of_screen(self) -> dict[str, Key]:
        mode = screen_mode(self.screen)
        return {k.action: k for k in (keys_for(mode) if mode else [k for k in KEYS if "*" in k.screens])}

    def compose(self) -> ComposeResult:
        if not self._bindings_ready:
            return
        staff = getattr(self.app, "staff", None)
        store = getattr(self.app, "store", None)
        language = store.languages[0] if store else "zh"
        mapped = self.keys_of_screen()
        chosen: dict[str, tuple[Binding, bool, str]] = {}
        for _, binding, enabled, tooltip in self.screen.active_bindings.values():
            key = mapped.get(binding.action)
            if not binding.show or binding.action in chosen:
                continue
            if key is not None and key.permission and (staff is None or not staff.may(key.permission)):
                continue  # not this person's to use: left out (pressed anyway, the screen says why)
            chosen[binding.action] = (binding, enabled, tooltip)
        order = sorted(chosen, key=lambda action: action == HELP_ACTION)  # `?` last: it never gives way
        shown = {a: self.app.get_key_display(chosen[a][0]) for a in order}
        items = [(a, shown[a], without_key(chosen[a][0].description, shown[a])) for a in order]
        self.fitted_to = self.app.size.width
        for action, words in fit(items, self.fitted_to, language):
            binding, enabled, tooltip = chosen[action]
            # Compact by FooterKey's own default, not `.data_bind(compact=Footer.compact)` as Textual's footer does:
            # that leaves every key taken down on this footer's watcher list for good (Textualize/textual#6666), and
            # the footer is recomposed at every screen switch, dialog and focus change.
            yield FooterKey(
                binding.key,
                self.app.get_key_display(binding),
                words,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip or binding.description,
            )

    def on_resize(self, event: events.Resize) -> None:
        if self._bindings_ready and self.app.size.width != self.fitted_to:
            self.call_after_refresh(self.recompose)
