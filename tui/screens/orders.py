"""The live board of open orders: newest first, with ticket, table, age, status and dishes; the highlighted
order's lines and notes below. Keys act on the highlighted order; filters narrow the board."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import apsw
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from appliance.db.menu import station_keys
from appliance.db.order_events import OrderEvent, events_for_session
from appliance.db.orders import (
    OrderLineRow,
    OrderRow,
    accept_order,
    advance_order,
    change_status,
    open_orders,
    ticket_status,
)
from appliance.db.store_settings import StoreSettings
from appliance.db.tables import tables_by_id
from appliance.domain.errors import DomainError
from appliance.domain.menu import translate
from appliance.domain.money import format_money
from appliance.domain.orders import Actor, OrderStatus
from appliance.domain.text import clean_text
from tui.base import ConsoleScreen
from tui.columns import fit, room_left, widest
from tui.dialogs import PromptScreen, ReasonScreen
from tui.keys import bindings_for
from tui.times import local_time
from tui.void_line import void_flow

OPEN_STATUSES = ("submitted", "accepted", "preparing", "ready")
STATUS_WORDS = {
    "submitted": "● NEW 新单",
    "accepted": "✓ accepted 已接",
    "preparing": "… cooking 制作",
    "ready": "★ ready 可上",
    "served": "served 已上",
    "cancelled": "✗ cancelled 取消",
}
STATUS_STYLES = {"submitted": "bold reverse", "ready": "bold green"}
NEXT_WORDS = {
    "submitted": "accept 接单",
    "accepted": "start cooking 制作",
    "preparing": "ready 可上",
    "ready": "served 已上",
}


def status_label(status: str) -> str:
    """A status in the words its rows show, without the row's mark: "NEW 新单" for submitted."""
    return STATUS_WORDS[status].split(" ", 1)[1]


@dataclass(frozen=True)
class BoardFilter:
    status: str | None = None
    table: str | None = None
    station: str | None = None
    dish: str | None = None  # `/` found a dish: orders with it (any language, any case)

    def words(self) -> list[str]:
        """The filters set, in the words the rows use."""
        return [
            *([f"status {status_label(self.status)}"] if self.status else []),
            *([f"table {self.table}"] if self.table else []),
            *([f"station {self.station}"] if self.station else []),
            *([f"dish “{self.dish}”"] if self.dish else []),
        ]

    def describe(self, count: int | None = None) -> str:
        """The filters line: what the board shows (with `count`, how many orders that is) and the keys."""
        found = f" — {count} order{'' if count == 1 else 's'} 单" if count is not None and self.words() else ""
        return f"{' · '.join(self.words()) or 'all open orders 全部'}{found}   (/ find, s t f filter, Esc clear)"

    def nothing_matches(self) -> str:
        """What the board says when no open order passes the filters."""
        if not self.words():
            return "no open orders 暂无订单"
        return f"no orders match: {', '.join(self.words())} — Esc clears 无符合订单"


def age_minutes(created_at: str, now: datetime) -> int:
    return int((now - datetime.fromisoformat(created_at.replace("Z", "+00:00"))).total_seconds() // 60)


def age_text(created_at: str, now: datetime, late: int = 10, very_late: int = 20) -> Text:
    """Minutes since the order came in; amber then red past the limits, with a mark so colour is not
    the only signal ("!" late, "!!" very late)."""
    minutes = age_minutes(created_at, now)
    if minutes >= very_late:
        return Text(f"{minutes} min !!", style="bold white on red")
    if minutes >= late:
        return Text(f"{minutes} min !", style="bold black on dark_orange")
    return Text(f"{minutes} min")


def extras(line: OrderLineRow, lang: str) -> list[str]:
    """The line's size and chosen options, in the store's language."""
    return ([translate(line.variant_names, lang)] if line.variant_names else []) + [
        translate(o.names, lang) for o in line.options
    ]


def dishes_text(order: OrderRow, lang: str) -> str:
    """The dishes in one cell; ✎ marks a dish (or the order) with a note, shown in full below the board."""
    text = ", ".join(
        f"{line.quantity}x {translate(line.names, lang)}{' ✎' if line.note else ''}" for line in order.lines
    )
    return f"✎ {text}" if order.note else text


def detail_text(
    order: OrderRow,
    lang: str,
    now: datetime,
    store: StoreSettings | None = None,
    in_state_since: str | None = None,
) -> RenderableType:
    """The highlighted order: ticket, table, status and how long it has had it (`in_state_since`, when known),
    when it was placed; then its lines, each with its size, options and note wrapped under the dish (never
    back at column 1), and the order's note."""
    head = Text()
    head.append(f"#{order.ticket_no}  table {order.table}  {STATUS_WORDS[order.status]}", style="bold")
    if in_state_since and order.status != OrderStatus.SUBMITTED:  # a new order: as long as since it was placed
        head.append(f" for {age_minutes(in_state_since, now)} min")
    head.append(f" · placed {local_time(order.created_at, store, now)} ({age_minutes(order.created_at, now)} min ago)")
    if order.channel != "lan":
        head.append(f"  via {order.channel}")
    lines = Table.grid(padding=(0, 1), expand=True)
    lines.add_column(justify="right", no_wrap=True)
    lines.add_column(ratio=1)
    for line in order.lines:
        dish = Text(f"{line.quantity}x {translate(line.names, lang)}")
        if line_extras := extras(line, lang):
            dish.append(f" ({', '.join(line_extras)})")
        if store is not None:
            dish.append(f"  {format_money(line.line_total_minor, store.money)}", style="dim")
        if line.note:
            dish.append(f"\n✎ {line.note}", style="bold")
        lines.add_row(f"{line.line_no}.", dish)
    if order.note:
        lines.add_row("✎", Text(order.note, style="bold"))
    return Group(head, lines)


def state_since(order: OrderRow, events: list[OrderEvent]) -> str | None:
    """When the order came into the status it has now: its last whole-order move to that status (a new order:
    when it was placed)."""
    if order.status == OrderStatus.SUBMITTED:
        return order.created_at
    moves = [e.at for e in events if e.order_id == order.id and e.line_id is None and e.to_status == order.status]
    return moves[-1] if moves else None


class OrdersScreen(ConsoleScreen):
    NAME = "Orders 订单"
    # tui/keys.py (priority for Enter and Home: the board's own table would take them first, select and scroll left)
    BINDINGS = [*bindings_for("orders")]
    DEFAULT_CSS = """
    OrdersScreen #orders { height: 1fr; }
    OrdersScreen #detail { height: auto; max-height: 8; padding: 0 1; border-top: solid $accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.board = BoardFilter()
        self.orders: dict[int, OrderRow] = {}
        # The board's view: the row keys shown in order, the key of the top visible row, the orders that came
        # in above the view since the person last looked at the top, and whether the next show() starts afresh
        # at the top (a new filter) rather than keeping the highlight and the view where they are.
        self.shown: list[str] = []
        self.top_key: str | None = None
        self.arrived: set[str] = set()
        self.fresh = True
        self.restoring = False
        self.redraws = 0
        self.since: dict[tuple[int, str], str | None] = {}  # (order, status) -> when it came into the status
        self.fitted_to = 0  # the terminal width the Dishes column was fitted to

    def body(self) -> ComposeResult:
        yield Static(self.board.describe(), classes="filters", id="filters")
        yield DataTable(id="orders", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("#", "Table 桌", "Age", "Status 状态", "Dishes 菜品")
        self.watch(table, "scroll_y", self.scrolled, init=False)

    @property
    def language(self) -> str:
        """The store's first language: dishes are named in it."""
        store = self.console.store
        assert store is not None  # read before the first screen opens
        return store.languages[0]

    async def reload(self) -> None:
        orders = await self.console.db.call(
            open_orders,
            status=self.board.status,
            table=self.board.table,
            station=self.board.station,
            dish=self.board.dish,
        )
        self.show(orders)

    def show(self, orders: list[OrderRow]) -> None:
        """Redraw the board. The highlight stays on its order; when that order left, on the row that was below
        it (the next older order), never on the newest. The view stays on the rows it showed: orders arriving
        above it are counted ("N new above"), not pushed into view (Home goes to them)."""
        table = self.query_one(DataTable)
        before, keep_at, top_key = self.shown, table.cursor_row, self.top_key
        fresh = self.fresh or not before
        self.fresh = False
        self.restoring = True
        self.redraws += 1
        table.clear()
        self.orders = {o.id: o for o in orders}
        now = self.console.now()
        store = self.console.store
        late, very_late = (store.late_after_minutes, store.very_late_after_minutes) if store else (10, 20)
        dishes_room = self.dishes_room(orders, now, late, very_late)
        self.fitted_to = self.app.size.width
        for order in orders:
            status = Text(STATUS_WORDS[order.status], style=STATUS_STYLES.get(order.status, ""))
            table.add_row(
                str(order.ticket_no),
                order.table,
                age_text(order.created_at, now, late, very_late),
                status,
                fit(dishes_text(order, self.language), dishes_room),
                key=str(order.id),
            )
        self.shown = [str(o.id) for o in orders]
        self.since = {k: v for k, v in self.since.items() if k[0] in self.orders}
        at = {key: i for i, key in enumerate(self.shown)}
        if fresh:
            self.arrived.clear()
            cursor = top = 0
        else:
            self.arrived = (self.arrived | (set(self.shown) - set(before))) & set(self.shown)
            cursor = self.still_here(before, min(keep_at, len(before) - 1), at)
            top = self.still_here(before, before.index(top_key) if top_key in before else 0, at)
        if self.shown:
            table.move_cursor(row=cursor, scroll=False)
        self.call_after_refresh(self.restore_view, top, self.redraws)
        self.show_filters()
        self.show_detail()

    def dishes_room(self, orders: list[OrderRow], now: datetime, late: int, very_late: int) -> int:
        """The Dishes column's width: what the ticket, table, age and status (always whole) leave of the
        terminal; the dishes are cut with `…` (the detail pane below has them all)."""
        labels = [str(column.label) for column in self.query_one(DataTable).columns.values()]
        whole = [
            widest(labels[0], (str(o.ticket_no) for o in orders)),
            widest(labels[1], (o.table for o in orders)),
            widest(labels[2], (age_text(o.created_at, now, late, very_late) for o in orders)),
            widest(labels[3], (STATUS_WORDS[o.status] for o in orders)),
        ]
        return room_left(self.app.size.width, whole, len(labels))

    def on_resize(self) -> None:
        if self.orders and self.app.size.width != self.fitted_to:  # the Dishes column's room changed
            self.show(list(self.orders.values()))

    @staticmethod
    def still_here(before: list[str], index: int, at: dict[str, int]) -> int:
        """Where the row that was at `index` is now; if it left, the first row below it that is still here,
        else the nearest above it; 0 when none is."""
        for key in [*before[index:], *reversed(before[:index])]:
            if key in at:
                return at[key]
        return 0

    def restore_view(self, top: int, redraw: int, tries: int = 10) -> None:
        """Scroll so that row `top` is the first visible one (the cursor kept in view), once the table has
        measured its new rows (unless the board was redrawn again meanwhile: that redraw's call does it)."""
        if redraw != self.redraws:
            return
        table = self.query_one(DataTable)
        if table.virtual_size.height < table.row_count + 1 and tries:
            self.call_after_refresh(self.restore_view, top, redraw, tries - 1)
            return
        self.restoring = False
        self.view_from(top)

    def view_from(self, top: int) -> None:
        """Show the board from row `top` down, moved only as far as the highlight needs to stay in view."""
        table = self.query_one(DataTable)
        visible = max(1, table.scrollable_content_region.height - 1)  # less the header
        cursor = table.cursor_row if table.row_count else 0
        if cursor < top:
            top = cursor
        elif cursor >= top + visible:
            top = cursor - visible + 1
        table.scroll_to(y=top, animate=False, immediate=True)
        self.scrolled()

    def scrolled(self) -> None:
        """The view moved (by the cursor, Home, or a redraw): note its top row; orders that arrived above it and
        are now in view (or below it) are seen."""
        if self.restoring:
            return
        table = self.query_one(DataTable)
        top = round(table.scroll_y)
        self.top_key = self.shown[top] if top < len(self.shown) else None
        at = {key: i for i, key in enumerate(self.shown)}
        self.arrived = {key for key in self.arrived if at.get(key, top) < top}
        self.show_filters()

    def show_filters(self) -> None:
        """The filters line: what the board shows; while orders came in above the view, that first (in place of
        the keys' hint, so the board keeps its rows and nothing moves)."""
        line = self.query_one("#filters", Static)
        if not self.arrived or self.restoring:  # counted once the view is back in place
            line.update(self.board.describe(len(self.shown)))
            return
        count = len(self.arrived)
        text = Text(f"▲ {count} new order{'s' if count > 1 else ''} above 上方有新单 — Home", style="bold reverse")
        text.append(f"  {' · '.join(self.board.words()) or 'all open orders 全部'}")
        line.update(text)

    def show_detail(self) -> None:
        order = self.orders.get(self.selected_order() or -1)
        detail = self.query_one("#detail", Static)
        if order is None:
            detail.update(self.board.nothing_matches())
            return
        since_key = (order.id, str(order.status))
        if since_key not in self.since:
            # A new order has been new since it was placed; otherwise ask the event trail, once.
            self.since[since_key] = order.created_at if order.status == OrderStatus.SUBMITTED else None
            if order.status != OrderStatus.SUBMITTED:
                self.run_worker(self.read_since(order), group="since")
        store = self.console.store
        detail.update(detail_text(order, self.language, self.console.now(), store, self.since.get(since_key)))

    async def read_since(self, order: OrderRow) -> None:
        """When the highlighted order came into its status (from its visit's event trail), then show it."""
        events = await self.console.db.call(events_for_session, order.session_id, 0)
        self.since[(order.id, str(order.status))] = state_since(order, events)
        if self.is_running_here() and self.selected_order() == order.id:
            self.show_detail()

    def selected_order(self) -> int | None:
        key = self.selected_key()
        return None if key is None else int(key)

    # -- actions ----------------------------------------------------------------------------------------
    def action_top(self) -> None:
        """Home: the newest order, highlighted, with the view at the top."""
        table = self.query_one(DataTable)
        if table.row_count:
            table.move_cursor(row=0, scroll=False)
        table.scroll_to(y=0, animate=False, immediate=True)
        self.arrived.clear()
        self.scrolled()

    async def action_advance(self) -> None:
        order = self.orders.get(self.selected_order() or -1)
        if order is None:
            self.say("no order selected", error=True)
            return
        await self.act(
            "orders",
            "order.advance",
            f"order {order.id}",
            advance_order,
            order.id,
            done=lambda moved: f"ticket {moved[1].ticket_no}: {moved[0]} → {moved[1].status}",
        )

    @work(exclusive=True, group="dialog")
    async def action_cancel(self) -> None:
        order = self.orders.get(self.selected_order() or -1)
        if order is None:
            self.say("no order selected", error=True)
            return
        store = self.console.store
        reason = await self.app.push_screen_wait(
            ReasonScreen(
                f"Cancel ticket #{order.ticket_no} (table {order.table})? Why 取消原因:",
                store.cancel_reasons if store else (),
            )
        )
        if reason is None:
            self.say("not cancelled")
            return
        reason = clean_text(reason, 100)
        if not await self.confirm(
            f"Cancel ticket #{order.ticket_no}, table {order.table}: “{reason}”?\n"
            "The kitchen gets a void ticket; the diner sees the reason."
        ):
            self.say("not cancelled")
            return
        await self.act(
            "orders",
            "order.cancelled",
            f"order {order.id}",
            change_status,
            order.id,
            OrderStatus.CANCELLED,
            Actor.STAFF,
            reason,
            details={"reason": reason},
            done=lambda v: f"ticket {v.ticket_no} cancelled: {reason}",
        )

    @work(exclusive=True, group="dialog")
    async def action_void(self) -> None:
        """v: void a line of the highlighted order, or part of it (tui/void_line.py: the same as on Tables)."""
        order = self.orders.get(self.selected_order() or -1)
        if order is None:
            self.say("no order selected", error=True)
            return
        await void_flow(self, [order], f"of #{order.ticket_no}", f" (table {order.table})")

    async def action_cycle_status(self) -> None:
        cycle = (None, *OPEN_STATUSES)
        self.board = replace(self.board, status=cycle[(cycle.index(self.board.status) + 1) % len(cycle)])
        self.fresh = True
        await self.reload()

    async def action_cycle_group(self) -> None:
        """f: the next station (then all)."""
        stations = await self.console.db.call(station_keys)
        cycle = (None, *stations)
        current = self.board.station if self.board.station in cycle else None
        self.board = replace(self.board, station=cycle[(cycle.index(current) + 1) % len(cycle)])
        self.fresh = True
        await self.reload()

    @work(exclusive=True, group="dialog")
    async def action_filter_table(self) -> None:
        # Typed any case: `a2` finds A2 (the board filters by the table's own name).
        names = {t.name.casefold(): t.name for t in (await self.console.db.call(tables_by_id)).values()}
        answer = await self.app.push_screen_wait(
            PromptScreen(
                "Show orders of table 桌号 (empty = all tables):",
                self.board.table or "",
                check=lambda text: (
                    None if not text.strip() or text.strip().casefold() in names else f"no table called {text!r}"
                ),
            )
        )
        if answer is None:
            return
        self.board = replace(self.board, table=names.get(answer.strip().casefold()))
        self.fresh = True
        await self.reload()

    @work(exclusive=True, group="dialog")
    async def action_search(self) -> None:
        """/: a ticket number (highlighted), a table (its orders) or a dish (the orders with it), typed any case,
        in any of the store's languages; the filters line says what is shown and how many."""
        answer = await self.app.push_screen_wait(
            PromptScreen(
                "Find 查找: a ticket number, a table or a dish 单号/桌号/菜名",
                placeholder="12 · a2 · 虾饺 · har gow",
                check=lambda text: None if text.strip() else "type a ticket number, a table or a dish",
            )
        )
        if answer is None:
            return
        text = clean_text(answer, 60)
        if text.isdigit():
            await self.find_ticket(int(text))
            return
        names = {t.name.casefold(): t.name for t in (await self.console.db.call(tables_by_id)).values()}
        if text.casefold() in names:
            self.board = BoardFilter(table=names[text.casefold()])
        else:
            self.board = BoardFilter(dish=text)
        self.fresh = True
        await self.reload()
        what = f"table {self.board.table}" if self.board.table else f"a dish “{text}”"
        count = len(self.orders)
        if count:
            self.say(f"{count} open order{'' if count == 1 else 's'} with {what} — Esc shows all")
        else:
            self.say(f"no open order with {what} 无符合订单 — Esc shows all", error=True)

    async def find_ticket(self, ticket: int) -> None:
        """Highlight ticket `ticket` (the board cleared of filters if they hide it), or say where it stands."""
        found = next((o for o in self.orders.values() if o.ticket_no == ticket), None)
        if found is None and self.board != BoardFilter():
            self.board = BoardFilter()
            self.fresh = True
            await self.reload()
            found = next((o for o in self.orders.values() if o.ticket_no == ticket), None)
        if found is None:
            status = await self.console.db.call(ticket_status, self.today(), ticket)
            self.say(
                f"ticket #{ticket} is not open: " + ("no such ticket today" if status is None else f"it is {status}"),
                error=True,
            )
            return
        table = self.query_one(DataTable)
        table.move_cursor(row=table.get_row_index(str(found.id)))
        self.say(f"ticket #{ticket}: table {found.table}, {found.status}")

    @work(exclusive=True, group="dialog")
    async def action_accept_all(self) -> None:
        """A: accept every new order at once, oldest first, each as `a` accepts it (kitchen tickets, event, outbox,
        an audit line), after a question that says how many and for which tables; an order that another console
        accepted or cancelled meanwhile is skipped and named."""
        new = list(reversed(await self.console.db.call(open_orders, status=OrderStatus.SUBMITTED.value, limit=500)))
        if not new:
            self.say("no new orders to accept 没有新单")
            return
        count = len(new)
        tables = list(dict.fromkeys(o.table for o in new))
        named = ", ".join(tables[:12]) + (f" and {len(tables) - 12} more" if len(tables) > 12 else "")
        tickets = " ".join(f"#{o.ticket_no}" for o in new[:12]) + (" …" if count > 12 else "")
        if not await self.confirm(
            f"Accept all {count} new order{'' if count == 1 else 's'} 全部接单?\n"
            f"Tables {named}\nTickets {tickets}\nEach prints its kitchen tickets, as a does."
        ):
            self.say("nothing accepted")
            return
        accepted: list[OrderRow] = []
        skipped: list[str] = []
        for order in new:
            try:
                await self.console.db.act(
                    self.staff, "orders", "order.advance", f"order {order.id}", accept_order, order.id
                )
            except DomainError as exc:
                skipped.append(f"#{order.ticket_no} ({exc.message})")
            except apsw.BusyError:
                skipped.append(f"#{order.ticket_no} (the database stayed busy)")
            else:
                accepted.append(order)
        done = f"accepted {len(accepted)} of {count} new orders 已接单"
        if skipped:
            self.say(f"✓ {done}; skipped {', '.join(skipped)}", error=not accepted)
        else:
            self.say(f"✓ {done}")
        await self.reload()
        await self.console.refresh_alerts()

    async def action_clear_filters(self) -> None:
        self.board = BoardFilter()
        self.fresh = True
        await self.reload()
