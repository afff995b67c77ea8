"""The live board of open orders: newest first, with table, ticket, age, status and lines; keys act on the
highlighted order."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

import apsw
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from appliance.db.orders import change_status
from appliance.domain.errors import DomainError
from appliance.domain.menu import translate
from appliance.domain.orders import FORWARD, Actor, OrderStatus

STATUS_WORDS = {"submitted": "● NEW 新单", "accepted": "✓ accepted 已接", "preparing": "… preparing 制作",
                "ready": "★ ready 可上", "served": "served", "cancelled": "✗ cancelled"}


def open_orders(conn: apsw.Connection, limit: int = 200) -> list[dict[str, Any]]:
    out = []
    for oid, ticket, table, status, created, total in conn.execute(
        "SELECT o.id, o.ticket_no, t.name, o.status, o.created_at, o.total_minor FROM orders o"
        " JOIN tables t ON t.id = o.table_id WHERE o.status IN ('submitted', 'accepted', 'preparing', 'ready')"
        " ORDER BY o.id DESC LIMIT ?", (limit,)):
        lines = [f"{q}x {translate(json.loads(n), 'zh')}" for n, q in conn.execute(
            "SELECT item_names, quantity FROM order_lines WHERE order_id = ? AND status = 'active' ORDER BY line_no",
            (oid,))]
        out.append({"id": oid, "ticket_no": ticket, "table": table, "status": status, "created_at": created,
                    "total_minor": total, "lines": lines})
    return out


AMBER_MINUTES = 10
RED_MINUTES = 20


def age_text(created_at: str, now: datetime) -> Text:
    """Minutes since the order came in; amber then red past the limits, with a mark so colour is not
    the only signal ("!" late, "!!" very late)."""
    minutes = int((now - datetime.fromisoformat(created_at.replace("Z", "+00:00"))).total_seconds() // 60)
    if minutes >= RED_MINUTES:
        return Text(f"{minutes} min !!", style="bold white on red")
    if minutes >= AMBER_MINUTES:
        return Text(f"{minutes} min !", style="bold black on dark_orange")
    return Text(f"{minutes} min")


class OrdersScreen(Screen[None]):
    BINDINGS = [Binding("a", "advance", "Advance 下一步"), Binding("x", "cancel", "Cancel 取消"),
                Binding("r", "refresh", "Refresh")]

    def compose(self) -> ComposeResult:
        yield Header()
        yield DataTable(id="orders", cursor_type="row", zebra_stripes=True)
        yield Static("", id="message")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("#", "Table 桌", "Age", "Status 状态", "Dishes 菜品")
        self.refresh_board()

    @property
    def conn(self) -> apsw.Connection:
        return self.app.conn  # type: ignore[attr-defined]

    def refresh_board(self) -> None:
        table = self.query_one(DataTable)
        keep = table.cursor_row
        table.clear()
        now = datetime.now(timezone.utc)
        for order in open_orders(self.conn):
            table.add_row(str(order["ticket_no"]), order["table"], age_text(order["created_at"], now),
                          STATUS_WORDS[order["status"]], ", ".join(order["lines"]), key=str(order["id"]))
        if table.row_count:
            table.move_cursor(row=min(keep, table.row_count - 1))

    def selected_order(self) -> int | None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key
        return int(key.value)

    def say(self, text: str) -> None:
        self.query_one("#message", Static).update(text)

    def act(self, target: OrderStatus | None, reason: str | None = None) -> None:
        order_id = self.selected_order()
        if order_id is None:
            self.say("no order selected")
            return
        status = OrderStatus(self.conn.execute("SELECT status FROM orders WHERE id = ?", (order_id,)).fetchone()[0])
        target = target or FORWARD.get(status)
        try:
            if target is None:
                raise DomainError("illegal_transition", f"an order that is {status.value} has no next step")
            with self.conn:
                view = change_status(self.conn, order_id, target, Actor.STAFF, reason)
        except DomainError as exc:
            self.say(f"refused: {exc.message}")
            return
        self.say(f"ticket {view['ticket_no']}: {status.value} → {view['status']}")
        self.refresh_board()

    def action_advance(self) -> None:
        self.act(None)

    def action_cancel(self) -> None:
        self.act(OrderStatus.CANCELLED, "cancelled at the console")

    def action_refresh(self) -> None:
        self.refresh_board()
