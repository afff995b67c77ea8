"""The command palette (ctrl+p): every action the person's role allows, on every screen, by name.

Each command is a key of tui/keys.py (its words, its screen and the key to press next time), plus going to each
screen the role may open, the keys list, lock and quit. Choosing an action on another screen goes to that screen
first, then runs the action there, exactly as its key would (a destructive one still asks first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from tui.keys import ANY, SCREENS, allowed, keys_for

if TYPE_CHECKING:
    from tui.app import ConsoleApp


@dataclass(frozen=True)
class Command:
    name: str  # what the palette lists and matches
    help: str
    run: Callable[[], object]  # may be async (Textual awaits it)


def screen_word(mode: str) -> str:
    return mode.capitalize()


def commands(app: ConsoleApp) -> Iterator[Command]:
    """The palette's commands for whoever is logged in (none while the console is locked)."""
    staff = app.staff
    if staff is None:
        return
    for mode, (_, _, digit) in SCREENS.items():
        if not app.may_open(mode):
            continue
        word = screen_word(mode)
        yield Command(f"{word}: go to the screen ({digit} / F{digit})", f"open {word}", partial(app.action_go, mode))
        seen: set[str] = set()
        for key in allowed(keys_for(mode), staff.may):
            if ANY in key.screens or key.action in seen:
                continue
            seen.add(key.action)
            asks = " (asks first)" if key.asks and "asks first" not in key.help else ""
            yield Command(
                f"{word}: {key.label} ({key.shown})", f"{key.help}{asks}", partial(app.run_key_action, mode, key.action)
            )
    yield Command("Keys of this screen (?)", "the keys of the screen you are on", app.action_help)
    yield Command("Lock the console (F12 / ctrl+l)", "back to the PIN screen", app.action_lock)
    yield Command("Quit the console (ctrl+q)", "asks first", app.action_quit)


class ConsoleCommands(Provider):
    """Textual's palette provider over `commands()`."""

    @property
    def console(self) -> ConsoleApp:
        return cast("ConsoleApp", self.app)

    async def discover(self) -> Hits:
        for command in commands(self.console):
            yield DiscoveryHit(command.name, command.run, help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in commands(self.console):
            score = matcher.match(command.name)
            if score > 0:
                yield Hit(score, matcher.highlight(command.name), command.run, text=command.name, help=command.help)
