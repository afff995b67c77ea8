"""What every console screen shares: header, a message line (with the busy spinner), the footer, and
`act()`, the one path by which a staff action reaches the store."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from contextlib import suppress
from typing import TYPE_CHECKING, Any

import apsw
from rich.text import Text
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Static
from textual.worker import Worker

from appliance.db.staff import Staff
from appliance.domain.errors import DomainError
from tui.dialogs import ConfirmScreen
from tui.keys import SCREENS
from tui.widgets.footer import ConsoleFooter
from tui.widgets.header import ConsoleHeader


def _as_worker(fn: Callable[..., Awaitable[Any]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def start(self: ConsoleScreen, *args: Any) -> None:
        self.run_worker(functools.partial(fn, self, *args), group="action")  # started lazily, as below

    return start


if TYPE_CHECKING:
    from tui.app import ConsoleApp

# Worker groups that are a staff action (a key's binding): `_as_worker` below and the screens' `@work` dialogs.
ACTION_GROUPS = frozenset({"action", "dialog"})


class ConsoleScreen(Screen[None]):
    """Subclasses set NAME (shown in the header), PERMISSION (needed to open the screen, None = anyone logged
    in), and implement body() and reload()."""

    NAME = ""
    PERMISSION: str | None = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Every `async def action_*` of a screen runs as a worker: a key press returns at once, so the screen
        keeps taking keys while the database works (a key handler that awaited the database would hold up
        every key after it)."""
        super().__init_subclass__(**kwargs)
        for name, fn in list(vars(cls).items()):
            if name.startswith("action_") and inspect.iscoroutinefunction(fn):
                setattr(cls, name, _as_worker(fn))

    def run_worker(self, work: Any, *args: Any, **kwargs: Any) -> Worker[Any]:
        """A worker; for an action (group "action", or "dialog" for `@work` actions) keys typed after the one that
        started it wait until it opens its dialog or is done: they belong in the dialog, or come after the
        action, and must not race it to the screen behind (the app lets them go after a moment anyway)."""
        if kwargs.get("group") not in ACTION_GROUPS or kwargs.get("thread"):
            return super().run_worker(work, *args, **kwargs)
        started = object()
        self.console.hold_keys(started)

        async def run() -> Any:
            try:
                result = work() if callable(work) else work
                return (await result) if inspect.isawaitable(result) else result
            finally:
                self.console.release_keys(started)

        return super().run_worker(run, *args, **kwargs)  # started lazily: a worker cancelled first leaves no coroutine

    def __init__(self) -> None:
        super().__init__()
        # The header shows the store (the app's title); the screen's name goes in the sub-title with who is
        # logged in. (A TITLE set by a subclass is taken as its name.)
        self.screen_name = self.NAME or self.TITLE or ""
        self.title = None

    DEFAULT_CSS = """
    ConsoleScreen #nav { height: 1; padding: 0 1; background: $panel; }
    ConsoleScreen #message { height: 1; padding: 0 1; background: $boost; }
    ConsoleScreen #message.error { color: $text; background: $error 40%; }
    ConsoleScreen .filters { height: 1; padding: 0 1; color: $text-muted; }
    /* one line each: what does not fit is cut with … (not wrapped onto a second line nobody sees) */
    ConsoleScreen #message, ConsoleScreen .filters { text-wrap: nowrap; text-overflow: ellipsis; }
    """

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    @property
    def staff(self) -> Staff:
        assert self.console.staff is not None
        return self.console.staff

    def compose(self) -> ComposeResult:
        yield ConsoleHeader(icon="▤")
        yield Static("", id="nav")
        yield from self.body()
        yield Static("", id="message")
        yield ConsoleFooter()

    def selected_key(self) -> str | None:
        """The row key under the cursor of the screen's table (its first DataTable), None when it is empty."""
        found = self.query(DataTable)
        if not found:
            return None
        table = found.first()
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return None if key.value is None else str(key.value)

    def show_detail(self) -> None:
        """Show the highlighted row's details (screens with a detail panel override this)."""

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_detail()

    def today(self) -> str:
        """The store's business day now (after midnight, until day_starts_at, it is still yesterday's)."""
        store = self.console.store
        return store.business_day(self.console.now()) if store else self.console.now().date().isoformat()

    def nav_text(self) -> Text:
        """The screens the person may open and their keys; this one in brackets (not only highlighted). In a narrow
        terminal the tabs close up, then the lock hint goes (it is in `?`), so that every tab stays in sight."""
        tabs = [
            (f"{key} {mode.capitalize()}", mode == self.app.current_mode)
            for mode, (_, _, key) in SCREENS.items()
            if self.console.may_open(mode)
        ]
        room = self.app.size.width - 2  # less the line's padding
        for wide, hint in ((True, " ^L lock"), (False, " ^L lock"), (False, "")):
            text = Text()
            for n, (tab, current) in enumerate(tabs):
                if current:
                    text.append(f"{' ' if n and not wide else ''}[{tab}]", style="bold reverse")
                else:
                    text.append(f" {tab} " if wide else f" {tab}" if n else tab)
            text.append(hint)
            if text.cell_len <= room:
                break
        return text

    def on_resize(self) -> None:
        with suppress(NoMatches):  # not composed yet: on_screen_resume draws the tabs
            self.query_one("#nav", Static).update(self.nav_text())  # the tabs close up or open out

    def body(self) -> ComposeResult:
        yield from ()

    async def reload(self) -> None:
        """Read what the screen shows again (another process committed, or this screen acted)."""

    def on_screen_resume(self) -> None:
        self.console.screen_shown(self)
        self.query_one("#nav", Static).update(self.nav_text())
        self.run_worker(self.reload_if_shown, group="reload")

    async def reload_if_shown(self) -> None:
        """reload() for a worker or the live poll: the database call may return after the screen's widgets were
        taken down (the console closing, the screen switched away), and then there is nothing to draw on. A screen
        on top but not mounted yet (switch_mode puts it there at once; compose and on_mount follow) is left to its own
        first read: its tables have no columns yet (bench/console_keys.py found the console failing so)."""
        if not self.is_mounted:
            return
        try:
            await self.reload()
        except NoMatches:
            if self.is_running_here():
                raise

    def is_running_here(self) -> bool:
        """Whether this screen is still the one on top of a running console."""
        return self.is_attached and self.app.is_running and self.app.screen is self

    def say(self, text: str, *, error: bool = False) -> None:
        self.console.last_message = text
        try:
            message = self.query_one("#message", Static)
        except NoMatches:  # the screen was taken down (the console closing) while the poll had news for it
            return
        message.set_class(error, "error")
        message.update(Text(text))

    async def confirm(self, question: str) -> bool:
        """Ask yes/no (call from a worker: `@work` methods)."""
        answer: bool = await self.app.push_screen_wait(ConfirmScreen(question))
        return answer

    async def act(
        self,
        permission: str,
        action: str,
        subject: str,
        fn: Callable[..., Any],
        *args: Any,
        done: str | Callable[[Any], str] = "",
        details: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Run a staff action through the store; say what happened or why it was refused (the domain's own
        message). Returns the result, or None when refused."""
        try:
            result = await self.console.db.act(
                self.staff, permission, action, subject, fn, *args, details=details, **kwargs
            )
        except DomainError as exc:
            self.say(f"✗ refused: {exc.message}", error=True)
            return None
        except apsw.BusyError:
            self.say("✗ not done: the database stayed busy (another program is writing); try again", error=True)
            return None
        text = done(result) if callable(done) else done
        self.say(f"✓ {text or action}")
        await self.reload()
        await self.console.refresh_alerts()  # a call handled leaves the badge (this console's own commit)
        return result if result is not None else True
