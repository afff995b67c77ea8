"""The live board of open orders: newest first, with ticket, table, age, status and dishes; the highlighted
order's lines and notes below. Keys act on the highlighted order; filters narrow the board."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import apsw
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from appliance.db.orders import change_status
from appliance.domain.errors import DomainError
from appliance.domain.menu import translate
from appliance.domain.orders import FORWARD, Actor, OrderStatus
from appliance.domain.text import clean_text
from tui.base import ConsoleScreen
from tui.dialogs import ChooseScreen, PromptScreen, ReasonScreen

OPEN_STATUSES = ("submitted", "accepted", "preparing", "ready")
STATUS_WORDS = {"submitted": "● NEW 新单", "accepted": "✓ accepted 已接", "preparing": "… cooking 制作",
                "ready": "★ ready 可上", "served": "served 已上", "cancelled": "✗ cancelled 取消"}
STATUS_STYLES = {"submitted": "bold reverse", "ready": "bold green"}
NEXT_WORDS = {"submitted": "accept 接单", "accepted": "start cooking 制作", "preparing": "ready 可上",
              "ready": "served 已上"}


@dataclass(frozen=True)
class BoardFilter:
    status: str | None = None
    table: str | None = None
    station: str | None = None

    def describe(self) -> str:
        return (f"status {self.status or 'all'} · table {self.table or 'all'} · station {self.station or 'all'}"
                "   (s t f filter, / ticket, c clear)")


def _lang(conn: apsw.Connection) -> str:
    row = conn.execute("SELECT value FROM settings WHERE key = 'languages'").fetchone()
    return json.loads(row[0])[0] if row else "zh"


def open_orders(conn: apsw.Connection, board: BoardFilter = BoardFilter(), limit: int = 200) -> list[dict[str, Any]]:
    """Open orders, newest first, with their active lines; read in one transaction (a consistent board)."""
    where, params = ["o.status IN ('submitted', 'accepted', 'preparing', 'ready')"], []
    if board.status:
        where.append("o.status = ?")
        params.append(board.status)
    if board.table:
        where.append("t.name = ?")
        params.append(board.table)
    if board.station:
        where.append("EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id AND l.station = ?"
                     " AND l.status = 'active')")
        params.append(board.station)
    out = []
    with conn:
        lang = _lang(conn)
        for oid, ticket, table, status, created, total, note, channel in conn.execute(
            "SELECT o.id, o.ticket_no, t.name, o.status, o.created_at, o.total_minor, o.note, o.channel FROM orders o"
            f" JOIN tables t ON t.id = o.table_id WHERE {' AND '.join(where)} ORDER BY o.id DESC LIMIT ?",
            (*params, limit)):
            lines = []
            for line_no, names, variant, options, qty, line_note, station in conn.execute(
                "SELECT line_no, item_names, variant_names, options, quantity, note, station FROM order_lines"
                " WHERE order_id = ? AND status = 'active' ORDER BY line_no", (oid,)):
                extras = [translate(json.loads(variant), lang)] if variant else []
                extras += [translate(o["names"], lang) for o in json.loads(options)]
                lines.append({"line_no": line_no, "quantity": qty, "name": translate(json.loads(names), lang),
                              "extras": extras, "note": line_note, "station": station})
            out.append({"id": oid, "ticket_no": ticket, "table": table, "status": status, "created_at": created,
                        "total_minor": total, "note": note, "channel": channel, "lines": lines})
    return out


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


def dishes_text(order: dict[str, Any]) -> str:
    """The dishes in one cell; ✎ marks a dish (or the order) with a note, shown in full below the board."""
    text = ", ".join(f"{line['quantity']}x {line['name']}{' ✎' if line['note'] else ''}" for line in order["lines"])
    return f"✎ {text}" if order["note"] else text


def detail_text(order: dict[str, Any]) -> Text:
    text = Text()
    text.append(f"#{order['ticket_no']}  table {order['table']}  {STATUS_WORDS[order['status']]}", style="bold")
    if order["channel"] != "lan":
        text.append(f"  via {order['channel']}")
    for line in order["lines"]:
        text.append(f"\n {line['line_no']:>2}. {line['quantity']}x {line['name']}")
        if line["extras"]:
            text.append(f" ({', '.join(line['extras'])})")
        if line["note"]:
            text.append(f"  ✎ {line['note']}", style="bold")
    if order["note"]:
        text.append(f"\n ✎ {order['note']}", style="bold")
    return text


class OrdersScreen(ConsoleScreen):
    NAME = "Orders 订单"
    BINDINGS = [
        Binding("a", "advance", "Next 下一步"), Binding("enter", "advance", "Next", show=False),
        Binding("x", "cancel", "Cancel 取消"), Binding("v", "void", "Void line 退菜"),
        Binding("s", "cycle_status", "Status"), Binding("t", "filter_table", "Table"),
        Binding("f", "cycle_station", "Station"), Binding("slash", "search", "Ticket #"),
        Binding("c", "clear_filters", "Clear", show=False),
    ]
    DEFAULT_CSS = """
    OrdersScreen #orders { height: 1fr; }
    OrdersScreen #detail { height: auto; max-height: 8; padding: 0 1; border-top: solid $accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.board = BoardFilter()
        self.orders: dict[int, dict[str, Any]] = {}

    def body(self) -> ComposeResult:
        yield Static(self.board.describe(), classes="filters", id="filters")
        yield DataTable(id="orders", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("#", "Table 桌", "Age", "Status 状态", "Dishes 菜品")

    async def reload(self) -> None:
        orders = await self.console.db.call(open_orders, self.board)
        self.show(orders)

    def show(self, orders: list[dict[str, Any]]) -> None:
        table = self.query_one(DataTable)
        keep = self.selected_order()
        table.clear()
        self.orders = {o["id"]: o for o in orders}
        now = self.console.now()
        store = self.console.store
        late, very_late = (store.late_after_minutes, store.very_late_after_minutes) if store else (10, 20)
        for order in orders:
            status = Text(STATUS_WORDS[order["status"]], style=STATUS_STYLES.get(order["status"], ""))
            table.add_row(str(order["ticket_no"]), order["table"], age_text(order["created_at"], now, late, very_late),
                          status, dishes_text(order), key=str(order["id"]))
        if keep in self.orders:
            table.move_cursor(row=table.get_row_index(str(keep)))
        self.query_one("#filters", Static).update(self.board.describe())
        self.show_detail()

    def show_detail(self) -> None:
        order = self.orders.get(self.selected_order() or -1)
        self.query_one("#detail", Static).update(detail_text(order) if order else "no open orders 暂无订单")

    def selected_order(self) -> int | None:
        key = self.selected_key()
        return None if key is None else int(key)

    # -- actions ----------------------------------------------------------------------------------------
    async def action_advance(self) -> None:
        order = self.orders.get(self.selected_order() or -1)
        if order is None:
            self.say("no order selected", error=True)
            return
        await self.act("orders", "order.advance", f"order {order['id']}", advance_order, order["id"],
                       done=lambda moved: f"ticket {moved[1]['ticket_no']}: {moved[0]} → {moved[1]['status']}")

    @work(exclusive=True, group="dialog")
    async def action_cancel(self) -> None:
        order = self.orders.get(self.selected_order() or -1)
        if order is None:
            self.say("no order selected", error=True)
            return
        store = self.console.store
        reason = await self.app.push_screen_wait(ReasonScreen(
            f"Cancel ticket #{order['ticket_no']} (table {order['table']})? Why 取消原因:",
            store.cancel_reasons if store else ()))
        if reason is None:
            self.say("not cancelled")
            return
        reason = clean_text(reason, 100)
        if not await self.confirm(f"Cancel ticket #{order['ticket_no']}, table {order['table']}: “{reason}”?\n"
                                  "The kitchen gets a void ticket; the diner sees the reason."):
            self.say("not cancelled")
            return
        await self.act("orders", "order.cancelled", f"order {order['id']}", change_status, order["id"],
                       OrderStatus.CANCELLED, Actor.STAFF, reason, details={"reason": reason},
                       done=lambda v: f"ticket {v['ticket_no']} cancelled: {reason}")

    @work(exclusive=True, group="dialog")
    async def action_void(self) -> None:
        order = self.orders.get(self.selected_order() or -1)
        if order is None:
            self.say("no order selected", error=True)
            return
        choices = [(str(line["line_no"]), f"{line['line_no']}. {line['quantity']}x {line['name']}")
                   for line in order["lines"]]
        picked = await self.app.push_screen_wait(ChooseScreen(f"Void which line of #{order['ticket_no']}? 退哪道菜",
                                                              choices))
        if picked is None:
            self.say("nothing voided")
            return
        line = next(line for line in order["lines"] if str(line["line_no"]) == picked)
        await self.void_with_reason(order, line["line_no"], f"{line['quantity']}x {line['name']}")

    async def action_cycle_status(self) -> None:
        cycle = (None, *OPEN_STATUSES)
        self.board = replace(self.board, status=cycle[(cycle.index(self.board.status) + 1) % len(cycle)])
        await self.reload()

    async def action_cycle_station(self) -> None:
        stations = await self.console.db.call(lambda c: [k for (k,) in c.execute("SELECT key FROM stations ORDER BY sort, key")])
        cycle = (None, *stations)
        current = self.board.station if self.board.station in cycle else None
        self.board = replace(self.board, station=cycle[(cycle.index(current) + 1) % len(cycle)])
        await self.reload()

    @work(exclusive=True, group="dialog")
    async def action_filter_table(self) -> None:
        names = await self.console.db.call(lambda c: {n for (n,) in c.execute("SELECT name FROM tables")})
        answer = await self.app.push_screen_wait(PromptScreen(
            "Show orders of table 桌号 (empty = all tables):", self.board.table or "",
            check=lambda text: None if not text or text in names else f"no table called {text!r}"))
        if answer is None:
            return
        self.board = replace(self.board, table=answer or None)
        await self.reload()

    @work(exclusive=True, group="dialog")
    async def action_search(self) -> None:
        answer = await self.app.push_screen_wait(PromptScreen(
            "Ticket number 单号:", check=lambda t: None if t.isdigit() else "a ticket number is digits"))
        if answer is None:
            return
        ticket = int(answer)
        found = next((o for o in self.orders.values() if o["ticket_no"] == ticket), None)
        if found is None and self.board != BoardFilter():
            self.board = BoardFilter()
            await self.reload()
            found = next((o for o in self.orders.values() if o["ticket_no"] == ticket), None)
        if found is None:
            status = await self.console.db.call(_ticket_status, ticket, self.console.store.business_day(self.console.now())
                                                if self.console.store else "")
            self.say(f"ticket #{ticket} is not open: {status}", error=True)
            return
        table = self.query_one(DataTable)
        table.move_cursor(row=table.get_row_index(str(found["id"])))
        self.say(f"ticket #{ticket}: table {found['table']}, {found['status']}")

    async def action_clear_filters(self) -> None:
        self.board = BoardFilter()
        await self.reload()


def advance_order(conn: apsw.Connection, order_id: int) -> tuple[str, dict[str, Any]]:
    """The next step from the order's status as it is now (read in the same transaction, so two quick
    presses move it two steps, and a board a moment behind cannot move it the wrong way)."""
    row = conn.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()
    if row is None:
        raise DomainError("unknown_order", "no such order", order_id=order_id)
    target = FORWARD.get(OrderStatus(row[0]))
    if target is None:
        raise DomainError("illegal_transition", f"an order that is {row[0]} has no next step")
    return row[0], change_status(conn, order_id, target, Actor.STAFF)


def _ticket_status(conn: apsw.Connection, ticket: int, day: str) -> str:
    row = conn.execute("SELECT status FROM orders WHERE ticket_day = ? AND ticket_no = ?", (day, ticket)).fetchone()
    return "no such ticket today" if row is None else f"it is {row[0]}"


