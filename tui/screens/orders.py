"""The live board of open orders: newest first, with ticket, table, age, status and dishes; the highlighted
order's lines and notes below. Keys act on the highlighted order; filters narrow the board."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from appliance.db.menu import station_keys
from appliance.db.orders import OrderLineRow, OrderRow, advance_order, change_status, open_orders, ticket_status
from appliance.db.tables import tables_by_id
from appliance.domain.menu import translate
from appliance.domain.orders import Actor, OrderStatus
from appliance.domain.text import clean_text
from tui.base import ConsoleScreen
from tui.dialogs import ChooseScreen, PromptScreen, ReasonScreen

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


@dataclass(frozen=True)
class BoardFilter:
    status: str | None = None
    table: str | None = None
    station: str | None = None

    def describe(self) -> str:
        return (
            f"status {self.status or 'all'} · table {self.table or 'all'} · station {self.station or 'all'}"
            "   (s t f filter, / ticket, c clear)"
        )


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


def detail_text(order: OrderRow, lang: str) -> Text:
    text = Text()
    text.append(f"#{order.ticket_no}  table {order.table}  {STATUS_WORDS[order.status]}", style="bold")
    if order.channel != "lan":
        text.append(f"  via {order.channel}")
    for line in order.lines:
        text.append(f"\n {line.line_no:>2}. {line.quantity}x {translate(line.names, lang)}")
        if line_extras := extras(line, lang):
            text.append(f" ({', '.join(line_extras)})")
        if line.note:
            text.append(f"  ✎ {line.note}", style="bold")
    if order.note:
        text.append(f"\n ✎ {order.note}", style="bold")
    return text


class OrdersScreen(ConsoleScreen):
    NAME = "Orders 订单"
    BINDINGS = [
        Binding("a", "advance", "Next 下一步"),
        Binding("enter", "advance", "Next", show=False),
        Binding("x", "cancel", "Cancel 取消"),
        Binding("v", "void", "Void line 退菜"),
        Binding("s", "cycle_status", "Status"),
        Binding("t", "filter_table", "Table"),
        Binding("f", "cycle_station", "Station"),
        Binding("slash", "search", "Ticket #"),
        Binding("c", "clear_filters", "Clear", show=False),
    ]
    DEFAULT_CSS = """
    OrdersScreen #orders { height: 1fr; }
    OrdersScreen #detail { height: auto; max-height: 8; padding: 0 1; border-top: solid $accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.board = BoardFilter()
        self.orders: dict[int, OrderRow] = {}

    def body(self) -> ComposeResult:
        yield Static(self.board.describe(), classes="filters", id="filters")
        yield DataTable(id="orders", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("#", "Table 桌", "Age", "Status 状态", "Dishes 菜品")

    @property
    def language(self) -> str:
        """The store's first language: dishes are named in it."""
        store = self.console.store
        assert store is not None  # read before the first screen opens
        return store.languages[0]

    async def reload(self) -> None:
        orders = await self.console.db.call(
            open_orders, status=self.board.status, table=self.board.table, station=self.board.station
        )
        self.show(orders)

    def show(self, orders: list[OrderRow]) -> None:
        table = self.query_one(DataTable)
        keep = self.selected_order()
        table.clear()
        self.orders = {o.id: o for o in orders}
        now = self.console.now()
        store = self.console.store
        late, very_late = (store.late_after_minutes, store.very_late_after_minutes) if store else (10, 20)
        for order in orders:
            status = Text(STATUS_WORDS[order.status], style=STATUS_STYLES.get(order.status, ""))
            table.add_row(
                str(order.ticket_no),
                order.table,
                age_text(order.created_at, now, late, very_late),
                status,
                dishes_text(order, self.language),
                key=str(order.id),
            )
        if keep in self.orders:
            table.move_cursor(row=table.get_row_index(str(keep)))
        self.query_one("#filters", Static).update(self.board.describe())
        self.show_detail()

    def show_detail(self) -> None:
        order = self.orders.get(self.selected_order() or -1)
        self.query_one("#detail", Static).update(
            detail_text(order, self.language) if order else "no open orders 暂无订单"
        )

    def selected_order(self) -> int | None:
        key = self.selected_key()
        return None if key is None else int(key)

    # -- actions ----------------------------------------------------------------------------------------
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
        order = self.orders.get(self.selected_order() or -1)
        if order is None:
            self.say("no order selected", error=True)
            return
        lang = self.language
        choices = [
            (str(line.line_no), f"{line.line_no}. {line.quantity}x {translate(line.names, lang)}")
            for line in order.lines
        ]
        picked = await self.app.push_screen_wait(
            ChooseScreen(f"Void which line of #{order.ticket_no}? 退哪道菜", choices)
        )
        if picked is None:
            self.say("nothing voided")
            return
        line = next(line for line in order.lines if str(line.line_no) == picked)
        await self.void_with_reason(order, line.line_no, f"{line.quantity}x {translate(line.names, lang)}")

    async def action_cycle_status(self) -> None:
        cycle = (None, *OPEN_STATUSES)
        self.board = replace(self.board, status=cycle[(cycle.index(self.board.status) + 1) % len(cycle)])
        await self.reload()

    async def action_cycle_station(self) -> None:
        stations = await self.console.db.call(station_keys)
        cycle = (None, *stations)
        current = self.board.station if self.board.station in cycle else None
        self.board = replace(self.board, station=cycle[(cycle.index(current) + 1) % len(cycle)])
        await self.reload()

    @work(exclusive=True, group="dialog")
    async def action_filter_table(self) -> None:
        names = {t.name for t in (await self.console.db.call(tables_by_id)).values()}
        answer = await self.app.push_screen_wait(
            PromptScreen(
                "Show orders of table 桌号 (empty = all tables):",
                self.board.table or "",
                check=lambda text: None if not text or text in names else f"no table called {text!r}",
            )
        )
        if answer is None:
            return
        self.board = replace(self.board, table=answer or None)
        await self.reload()

    @work(exclusive=True, group="dialog")
    async def action_search(self) -> None:
        answer = await self.app.push_screen_wait(
            PromptScreen("Ticket number 单号:", check=lambda t: None if t.isdigit() else "a ticket number is digits")
        )
        if answer is None:
            return
        ticket = int(answer)
        found = next((o for o in self.orders.values() if o.ticket_no == ticket), None)
        if found is None and self.board != BoardFilter():
            self.board = BoardFilter()
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

    async def action_clear_filters(self) -> None:
        self.board = BoardFilter()
        await self.reload()
