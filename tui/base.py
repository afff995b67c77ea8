"""What every console screen shares: header, a message line (with the busy spinner), the footer, and
`act()`, the one path by which a staff action reaches the store."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

import apsw
from rich.text import Text
from textual.app import ComposeResult
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from appliance.db.orders import OrderRow, void_line
from appliance.db.staff import Staff
from appliance.domain.errors import DomainError
from appliance.domain.money import format_money
from appliance.domain.text import clean_text
from tui.dialogs import ConfirmScreen, ReasonScreen


def _as_worker(fn: Callable[..., Awaitable[Any]]) -> Callable[..., None]:
    @functools.wraps(fn)
    def start(self: ConsoleScreen, *args: Any) -> None:
        self.run_worker(fn(self, *args), group="action")

    return start


if TYPE_CHECKING:
    from tui.app import ConsoleApp


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
    """

    @property
    def console(self) -> ConsoleApp:
        return self.app  # type: ignore[return-value]

    @property
    def staff(self) -> Staff:
        assert self.console.staff is not None
        return self.console.staff

    def compose(self) -> ComposeResult:
        yield Header(icon="▤")
        yield Static("", id="nav")
        yield from self.body()
        yield Static("", id="message")
        yield Footer()

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

    async def void_with_reason(self, order: OrderRow, line_no: int, dish: str, where: str = "") -> Any:
        """Void one line: ask why (the store's reasons or free text), confirm, then void through the store.
        Call from a worker."""
        store = self.console.store
        reason = await self.app.push_screen_wait(
            ReasonScreen(f"Void {dish}: why? 退菜原因", store.cancel_reasons if store else ())
        )
        if reason is None:
            self.say("nothing voided")
            return None
        reason = clean_text(reason, 100)
        if not await self.confirm(f"Void {dish} from ticket #{order.ticket_no}{where}: “{reason}”?"):
            self.say("nothing voided")
            return None
        currency = store.money if store else None
        return await self.act(
            "orders",
            "order.line_voided",
            f"order {order.id} line {line_no}",
            void_line,
            order.id,
            line_no,
            reason,
            details={"reason": reason, "dish": dish},
            done=lambda v: (
                f"voided {dish} from #{order.ticket_no}"
                + (f": now {format_money(v.total_minor, currency)}" if currency else "")
            ),
        )

    def today(self) -> str:
        """The store's business day now (after midnight, until day_starts_at, it is still yesterday's)."""
        store = self.console.store
        return store.business_day(self.console.now()) if store else self.console.now().date().isoformat()

    def nav_text(self) -> Text:
        """The screens and their keys; this one in brackets (not only highlighted)."""
        from tui.app import SCREENS

        text = Text()
        for mode, (_, _, key) in SCREENS.items():
            if mode == self.app.current_mode:
                text.append(f"[{key} {mode.capitalize()}]", style="bold reverse")
            else:
                text.append(f" {key} {mode.capitalize()} ")
        text.append(" ^L lock")
        return text

    def body(self) -> ComposeResult:
        yield from ()

    async def reload(self) -> None:
        """Read what the screen shows again (another process committed, or this screen acted)."""

    def on_screen_resume(self) -> None:
        self.console.sub_title = self.console.header_text(self.screen_name)
        self.query_one("#nav", Static).update(self.nav_text())
        self.run_worker(self.reload_if_shown(), group="reload")

    async def reload_if_shown(self) -> None:
        """reload() for a worker or the live poll: the database call may return after the screen's widgets were
        taken down (the console closing, the screen switched away), and then there is nothing to draw on."""
        try:
            await self.reload()
        except NoMatches:
            if self.is_running_here():
                raise

    def is_running_here(self) -> bool:
        """Whether this screen is still the one on top of a running console."""
        return self.is_attached and self.app.is_running and self.app.screen is self

    def say(self, text: str, *, error: bool = False) -> None:
        message = self.query_one("#message", Static)
        message.set_class(error, "error")
        message.update(Text(text))
        self.console.last_message = text

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
        return result if result is not None else True
