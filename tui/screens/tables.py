"""The floor: every table by area with its state (a word and a symbol; colour only adds to them), what its visit
owes and how long the guests have been there; the highlighted table's orders, payments and calls beside it (wide
screens) or below. Keys seat guests, enter a staff order, void a line, move the guests, print the bill, take
payment, give money back from a payment (asking first), close the table, mark calls handled, and (managers) close
the day."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import datetime
from uuid import uuid4

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Container, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from appliance.db.floor import (
    FloorTable,
    close_day,
    close_visit,
    dish_keys,
    floor,
    handle_calls,
    staff_order,
    take_payment,
)
from appliance.db.orders import MenuCache, OrderRow, Snapshot
from appliance.db.payments import (
    REFUND_REASON_MAX_CHARS,
    Payment,
    PaymentResult,
    RefundResult,
    refund_payment,
    visits_owing,
)
from appliance.db.printing import printer_rows, queue_bill
from appliance.db.store_settings import StoreSettings
from appliance.db.tables import move_session, open_session
from appliance.domain.errors import DomainError
from appliance.domain.menu import translate
from appliance.domain.money import format_money
from appliance.domain.orders import OPEN_STATUSES, OrderStatus
from appliance.domain.pricing import CartLine, PricedCart, price_cart
from appliance.domain.text import NOTE_MAX_CHARS, clean_text
from tui.base import ConsoleScreen
from tui.columns import hang
from tui.dialogs import AmountScreen, ChooseScreen, PromptScreen, dialog_css
from tui.help import key_hint
from tui.keys import bindings_for
from tui.order_line import OrderLineScreen
from tui.screens.orders import STATUS_WORDS, age_minutes
from tui.times import local_time
from tui.void_line import dish_words, void_flow

STATE_WORDS = {
    "free": "○ free 空闲",
    "ordering": "✎ ordering 点菜",
    "eating": "● eating 用餐",
    "bill": "≡ bill 买单",
    "waiter": "! waiter 呼叫",
    "paid": "✓ paid 已付",
}
STATE_STYLES = {
    "free": "dim",
    "ordering": "yellow",
    "eating": "green",
    "bill": "bold reverse",
    "waiter": "bold white on red",
    "paid": "cyan",
}
DISH_INDENT = 5  # a dish's line in the pane wraps under the dish's name ("   1x ")
CALL_WORDS = {"waiter": "! waiter called 呼叫服务员", "bill": "≡ bill asked for 请求买单"}
# A call from an old sticker's page (the table was re-keyed, its old sticker is still there): bring the new code.
SOURCE_WORDS = {"old_sticker": " · OLD STICKER: bring the new code 旧桌码，请换新"}
METHOD_WORDS = {
    "cash": "现金 cash",
    "card": "刷卡 card",
    "wechat": "微信 WeChat Pay",
    "alipay": "支付宝 Alipay",
    "other": "其他 other",
}


def stay_text(opened_at: str | None, now: datetime) -> str:
    """How long the guests have been there ("" for a free table)."""
    if opened_at is None:
        return ""
    minutes = max(age_minutes(opened_at, now), 0)
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}"


def guests(count: int | None) -> str:
    """How many guests in words: "1 guest", "2 guests", "? guests" (not known)."""
    return f"{count} guest" if count == 1 else f"{count or '?'} guests"


def detail_text(table: FloorTable, now: datetime, store: StoreSettings, width: int = 0) -> Text:
    """The highlighted table: its visit, each order with its lines, what was paid and what is due, its calls. A line
    longer than `width` (the pane's, when known) wraps under its dish, not back at column 1."""
    lang = store.languages[0]

    def money(minor: int) -> str:
        return format_money(minor, store.money)

    text = Text()
    text.append(f"{table.name}  {table.area}  ", style="bold")
    text.append(STATE_WORDS[table.state], style=STATE_STYLES[table.state])
    for call in table.calls:
        text.append(
            f"\n{CALL_WORDS[call.kind]}{SOURCE_WORDS.get(call.source or '', '')}"
            f" · {max(age_minutes(call.created_at, now), 0)} min ago (h = handled)",
            style="bold",
        )
    if table.session_id is None:
        text.append(f"\n{table.seats or '?'} seats · g = seat guests 开台")
        return text
    since = local_time(table.opened_at, store, now)
    text.append(
        f"\n{guests(table.diners)} · since {since} ({stay_text(table.opened_at, now)}) · opened by {table.opened_by}"
    )
    for order in table.orders:
        via = " · staff" if order.channel == "staff" else ""
        text.append(
            f"\n#{order.ticket_no} {local_time(order.created_at, store, now)} "
            f"{STATUS_WORDS[order.status]}{via}  {money(order.total_minor)}",
            style="bold" if order.status != "cancelled" else "dim",
        )
        for line in order.lines:
            dish = dish_words(line, lang)
            if line.status == "voided":
                row = Text(f"   {dish}  ✗ voided 已退: {line.void_reason}", style="dim")
            else:
                row = Text(f"   {dish}  {money(line.line_total_minor)}")
            if line.note:
                row.append(f"  ✎ {line.note}", style="bold")
            text.append("\n")
            text.append_text(hang(row, width, DISH_INDENT))
        if order.note:
            text.append("\n")
            text.append_text(hang(Text(f"   ✎ {order.note}", style="bold"), width, DISH_INDENT))
    billed = sum(o.total_minor for o in table.orders if o.status != "cancelled")
    paid = sum(p.kept_minor - p.refunded_minor for p in table.payments)
    due = (
        f"due 应付 {money(table.due_minor)}"
        if table.due_minor >= 0
        else f"overpaid 多付 {money(-table.due_minor)} (R = refund)"  # a line voided after paying
    )
    text.append(f"\nbilled {money(billed)} · paid {money(paid)} · {due}", style="bold")
    if table.payments:
        text.append("\n  " + ", ".join(payment_words(p, money) for p in table.payments))
    text.append(
        "\n" + key_hint("tables", ("order", "void", "move", "bill", "pay", "refund", "close", "close_day")), style="dim"
    )
    return text


def payment_words(payment: Payment, money: Callable[[int], str]) -> str:
    """One payment as the bill counts it: method and what it kept, and what was given back from it."""
    words = f"{METHOD_WORDS[payment.method]} {money(payment.kept_minor)}"
    if payment.refunded_minor:
        words += f" (−{money(payment.refunded_minor)} refunded 已退款)"
    return words


class OrderEntryScreen(ModalScreen[bool]):
    """A staff order: search dishes by name or key, add each with its size, choices, add-ons, quantity and note
    (tui/order_line.py), a note for the whole order, see the total, send it. A refusal (sold out, ...) is shown
    here and the order kept so it can be fixed. Fits 80x24: the cart shows its last lines when they are many."""

    CART_ROWS = 6  # the cart's lines shown (the last ones) above its total
    DEFAULT_CSS = (
        dialog_css("OrderEntryScreen")
        + """
    OrderEntryScreen > Vertical { width: 76; }
    OrderEntryScreen #entry-fields { height: 3; }
    OrderEntryScreen #search { width: 1fr; }
    OrderEntryScreen #order-note { width: 1fr; }
    OrderEntryScreen #dishes { height: 8; max-height: 8; }
    OrderEntryScreen #cart { height: auto; max-height: 7; text-wrap: nowrap; text-overflow: ellipsis; }
    """
    )
    BINDINGS = [
        Binding("ctrl+s", "send", "Send 下单"),
        Binding("ctrl+r", "drop", "Remove last"),
        Binding("up", "step(-1)", show=False),
        Binding("down", "step(1)", show=False),
        Binding("escape", "cancel", "Cancel 取消"),
    ]

    def __init__(
        self,
        table: str,
        snapshot: Snapshot,
        keys: dict[int, str],
        minute_of_day: int,
        send: Callable[[list[CartLine], str], Awaitable[str | None]],
    ) -> None:
        super().__init__()
        self.table, self.menu, self.settings, self.keys = table, snapshot.menu, snapshot.settings, keys
        self.minute, self.send = minute_of_day, send
        self.lang = self.settings.languages[0]
        self.lines: list[CartLine] = []
        self.cart: PricedCart | None = None

    def money(self, minor: int) -> str:
        return format_money(minor, self.settings.money)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(f"Order for table {self.table} 点菜 (staff)", classes="title")
            with Horizontal(id="entry-fields"):
                yield Input(placeholder="dish name or key 菜名/编码", id="search")
                yield Input(placeholder="order note 整单备注", id="order-note", max_length=NOTE_MAX_CHARS)
            yield OptionList(id="dishes")
            yield Static("", id="cart")
            yield Static("", classes="error", id="error")
            yield Label("enter = add  tab = note  ctrl+s = send 下单  ctrl+r = undo  esc = cancel")

    def on_mount(self) -> None:
        self.show_dishes("")
        self.show_cart(None)

    def label(self, item_id: int) -> str:
        item = self.menu.items[item_id]
        price = (
            self.money(item.price_minor)
            if item.price_minor is not None
            else "from " + self.money(min(v.price_minor for v in item.variants))
        )
        sold = "  ✗ sold out 沽清" if item.sold_out else ""
        return f"{translate(item.names, self.lang)}  {price}  [{self.keys.get(item_id, '')}]{sold}"

    def show_dishes(self, query: str) -> None:
        q = query.strip().lower()
        found = [
            i.id
            for i in self.menu.items.values()
            if not i.hidden
            and (not q or q in self.keys.get(i.id, "") or any(q in name.lower() for name in i.names.values()))
        ]
        dishes = self.query_one("#dishes", OptionList)
        dishes.clear_options()
        dishes.add_options([Option(self.label(iid), id=str(iid)) for iid in found[:60]])
        dishes.highlighted = 0 if found else None

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "search":
            self.show_dishes(event.value)

    def action_step(self, delta: int) -> None:
        dishes = self.query_one("#dishes", OptionList)
        if dishes.option_count:
            dishes.highlighted = min(max((dishes.highlighted or 0) + delta, 0), dishes.option_count - 1)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id != "search":  # the order note: back to the dishes
            self.query_one("#search", Input).focus()
            return
        dishes = self.query_one("#dishes", OptionList)
        if dishes.highlighted is None:
            self.query_one("#error", Static).update(f"no dish matches “{event.value}”")
            return
        self.add(int(dishes.get_option_at_index(dishes.highlighted).id or 0))

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.add(int(event.option.id or 0))

    def price(self, lines: list[CartLine]) -> PricedCart:
        return price_cart(
            self.menu,
            lines,
            minute_of_day=self.minute,
            service_charge_bp=self.settings.service_charge_bp,
            tax_rate_bp=self.settings.tax_rate_bp,
        )

    @work(exclusive=True, group="entry")
    async def add(self, item_id: int) -> None:
        item = self.menu.items[item_id]
        name = translate(item.names, self.lang)
        if item.sold_out:
            self.query_one("#error", Static).update(f"✗ {name}: sold out 沽清")
            return
        line = await self.app.push_screen_wait(
            OrderLineScreen(item, self.menu, self.lang, self.money, self.minute, len(self.lines) + 1)
        )
        if line is None:
            return
        self.update_lines([*self.lines, line])
        search = self.query_one("#search", Input)
        search.value = ""
        search.focus()

    def update_lines(self, lines: list[CartLine]) -> None:
        try:
            cart = self.price(lines) if lines else None
        except DomainError as exc:
            self.query_one("#error", Static).update(f"✗ {exc.message}")
            return
        self.lines, self.cart = lines, cart
        self.query_one("#error", Static).update("")
        self.show_cart(cart)

    def show_cart(self, cart: PricedCart | None) -> None:
        """Each line with its size, choices, price and note (the last CART_ROWS lines when there are more), the
        total."""
        if cart is None:
            self.query_one("#cart", Static).update("nothing added yet 尚未点菜")
            return
        text = Text()
        shown = cart.lines[-self.CART_ROWS :] if len(cart.lines) > self.CART_ROWS else cart.lines
        if len(shown) < len(cart.lines):
            shown = shown[1:]
            text.append(f"… {len(cart.lines) - len(shown)} more above 上面还有\n", style="dim")
        for line in shown:
            extras = [translate(line.variant.names, self.lang)] if line.variant else []
            extras += [translate(o.names, self.lang) for o in line.options]
            text.append(
                f"{line.line_no}. {line.quantity}x {translate(line.item.names, self.lang)}"
                f"{' (' + ', '.join(extras) + ')' if extras else ''}  {self.money(line.line_total_minor)}"
            )
            text.append(f"  ✎ {line.note}\n" if line.note else "\n", style="bold")
        totals = cart.totals
        service = f" (service {self.money(totals.service_charge_minor)})" if totals.service_charge_minor else ""
        text.append(f"total 合计 {self.money(totals.total_minor)}{service}", style="bold")
        self.query_one("#cart", Static).update(text)

    def action_drop(self) -> None:
        if self.lines:
            self.update_lines(self.lines[:-1])

    async def action_send(self) -> None:
        if not self.lines:
            self.query_one("#error", Static).update("add a dish first (type its name, enter)")
            return
        try:
            note = clean_text(self.query_one("#order-note", Input).value)
        except DomainError as exc:
            self.query_one("#error", Static).update(f"✗ order note: {exc.message}")
            return
        problem = await self.send(self.lines, note)
        if problem:
            self.query_one("#error", Static).update(problem)
            return
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)


class TablesScreen(ConsoleScreen):
    NAME = "Tables 桌台"
    PERMISSION = "tables"
    BINDINGS = [*bindings_for("tables")]  # tui/keys.py
    DEFAULT_CSS = """
    TablesScreen #floor-body { height: 1fr; }
    TablesScreen #floor { height: 1fr; }
    TablesScreen #detail-box { height: auto; max-height: 9; padding: 0 1; border-top: solid $accent; }
    TablesScreen.wide #floor-body { layout: horizontal; }
    TablesScreen.wide #floor { width: 72; }
    TablesScreen.wide #detail-box { width: 1fr; height: 1fr; max-height: 100%; border-top: none;
        border-left: solid $accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, FloorTable] = {}
        self.menu_cache = MenuCache()

    def body(self) -> ComposeResult:
        with Container(id="floor-body"):
            yield DataTable(id="floor", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="detail-box"):
                yield Static("", id="detail")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Area 区域", "Table 桌", "State 状态", "Guests", "Time 时长", "Due 应付")
        self.set_class(self.app.size.width >= 110, "wide")

    def on_resize(self) -> None:  # as ConsoleScreen.on_resize (mypy: the override takes no event)
        self.set_class(self.app.size.width >= 110, "wide")
        if self.tables:
            self.call_after_refresh(self.show_detail)  # its lines wrapped to the pane's new width

    @property
    def store(self) -> StoreSettings:
        assert self.console.store is not None
        return self.console.store

    def money(self, minor: int) -> str:
        return format_money(minor, self.store.money)

    async def reload(self) -> None:
        self.show(await self.console.db.call(floor))

    def show(self, tables: list[FloorTable]) -> None:
        grid = self.query_one(DataTable)
        keep = self.selected()
        grid.clear()
        areas = list(dict.fromkeys(t.area for t in tables))
        tables = sorted(tables, key=lambda t: areas.index(t.area))  # grouped by area, floor order within
        self.tables = {str(t.id): t for t in tables}
        now, area = self.console.now(), None
        for t in tables:
            live = t.session_id is not None
            grid.add_row(
                t.area if t.area != area else "",
                t.name,
                Text(STATE_WORDS[t.state], style=STATE_STYLES[t.state]),
                str(t.diners or "?") if live else "",
                stay_text(t.opened_at, now) if live else "",
                Text(self.money(t.due_minor), justify="right") if live else "",
                key=str(t.id),
            )
            area = t.area
        if keep and str(keep.id) in self.tables:
            grid.move_cursor(row=grid.get_row_index(str(keep.id)))
        self.show_detail()

    def show_detail(self) -> None:
        table = self.selected()
        detail = self.query_one("#detail", Static)
        detail.update(
            detail_text(table, self.console.now(), self.store, detail.size.width) if table else "no tables 没有桌台"
        )

    def selected(self) -> FloorTable | None:
        key = self.selected_key()
        return None if key is None else self.tables.get(key)

    def select(self, table_id: int) -> None:
        grid = self.query_one(DataTable)
        grid.move_cursor(row=grid.get_row_index(str(table_id)))

    def visit(self) -> FloorTable | None:
        """The highlighted table if it has guests; else say so."""
        table = self.selected()
        if table is not None and table.session_id is None:
            self.say(f"✗ table {table.name} is free: no visit (g = seat guests)", error=True)
            return None
        return table

    async def ask_amount(
        self, question: str, suggested_minor: int, *, most_minor: int | None = None, over: str = ""
    ) -> int | None:
        """An amount of money typed as the store writes it (the dialog says what is wrong until it is right); None
        when cancelled. Above `most_minor` it says "at most <that> <over>". Call from a worker."""

        def check(amount: int) -> str | None:
            if most_minor is not None and amount > most_minor:
                return f"at most {self.money(most_minor)} {over}".rstrip()
            return None

        # typed any common way (12,5 · ¥12.50 · 12.50元), the reading shown while typing (AmountScreen)
        answer: int | None = await self.app.push_screen_wait(
            AmountScreen(question, self.store.money, suggested_minor, check=check)
        )
        return answer

    # -- actions ----------------------------------------------------------------------------------------
    @work(exclusive=True, group="dialog")
    async def action_seat(self) -> None:
        table = self.selected()
        if table is None:
            return
        if table.session_id is not None:
            self.say(f"✗ refused: table {table.name} already has an open visit", error=True)
            return
        answer = await self.app.push_screen_wait(
            PromptScreen(
                f"Seat guests at {table.name} ({table.seats or '?'} seats): how many diners? 几位",
                "",
                check=lambda t: None if t.isdigit() and 1 <= int(t) <= 99 else "a number of diners, 1 to 99",
            )
        )
        if answer is None:
            self.say("nobody seated")
            return
        await self.act(
            "tables",
            "table.opened",
            f"table {table.name}",
            open_session,
            table.id,
            self.staff.name,
            int(answer),
            details={"diners": int(answer)},
            done=f"table {table.name} open: {guests(int(answer))} 开台",
        )

    @work(exclusive=True, group="dialog")
    async def action_order(self) -> None:
        table = self.visit()
        if table is None:
            return
        snapshot = await self.console.db.call(self.menu_cache.get)
        keys = await self.console.db.call(dish_keys)

        async def send(lines: list[CartLine], note: str) -> str | None:
            dishes = [f"{line.quantity}x {keys.get(line.item_id, line.item_id)}" for line in lines]
            result = await self.act(
                "orders",
                "order.staff",
                f"table {table.name}",
                staff_order,
                table.id,
                lines,
                f"staff-{uuid4().hex}",
                self.menu_cache,
                note,
                details={"dishes": dishes, "note": note} if note else {"dishes": dishes},
                done=lambda r: f"ticket #{r.ticket_no} for {table.name}: {self.money(r.total_minor)} → kitchen 已下单",
            )
            return None if result is not None else self.console.last_message

        sent = await self.app.push_screen_wait(
            OrderEntryScreen(table.name, snapshot, keys, self.store.minute_of_day(self.console.now()), send)
        )
        if not sent:
            self.say("no order sent")

    @work(exclusive=True, group="dialog")
    async def action_void(self) -> None:
        table = self.visit()
        if table is None:
            return
        await void_flow(self, table.orders, f"at {table.name}", f" (table {table.name})")  # as Orders' v

    @work(exclusive=True, group="dialog")
    async def action_move(self) -> None:
        table = self.visit()
        if table is None:
            return
        free = [t for t in self.tables.values() if t.session_id is None]
        if not free:
            self.say("✗ no free table to move to", error=True)
            return
        target = await self.app.push_screen_wait(
            ChooseScreen(
                f"Move the guests of {table.name} to which table? 换台",
                [(str(t.id), f"{t.name}  {t.area}  {t.seats or '?'} seats") for t in free],
            )
        )
        if target is None:
            self.say("not moved")
            return
        name = self.tables[target].name
        if await self.act(
            "tables",
            "table.moved",
            f"table {table.name}",
            move_session,
            table.session_id,
            int(target),
            details={"to": name},
            done=f"{table.name} → {name}: guests, orders and bill moved 换台",
        ):
            self.select(int(target))

    @work(exclusive=True, group="dialog")
    async def action_bill(self) -> None:
        table = self.visit()
        if table is None:
            return
        printers = await self.console.db.call(printer_rows, self.console.now())
        if not printers:
            self.say("✗ no printer set up (see Printers, 4)", error=True)
            return
        printer = await self.app.push_screen_wait(
            ChooseScreen(
                f"Print the bill of {table.name} ({self.money(table.due_minor)} due) on which printer? 打印账单",
                [
                    (
                        p.name,
                        f"{p.name} · {', '.join(p.stations) or 'no station'} · {p.reason}"
                        + ("" if p.enabled else " · switched off in settings"),
                    )
                    for p in printers
                ],
            )
        )
        if printer is None:
            self.say("no bill printed")
            return
        await self.act(
            "print",
            "bill.queued",
            f"table {table.name}",
            queue_bill,
            table.name,
            printer,
            details={"printer": printer},
            done=f"bill for {table.name} queued → printer {printer} 打印账单",
        )

    @work(exclusive=True, group="dialog")
    async def action_pay(self) -> None:
        table = self.visit()
        if table is None:
            return
        due = table.due_minor
        if due <= 0:
            self.say(f"✗ refused: nothing is owed at {table.name} (C = close the table)", error=True)
            return
        method = await self.app.push_screen_wait(
            ChooseScreen(f"Table {table.name} owes {self.money(due)}. Paid how? 付款方式", list(METHOD_WORDS.items()))
        )
        if method is None:
            self.say("no payment taken")
            return
        amount = await self.ask_amount(f"{METHOD_WORDS[method]}: amount received (due {self.money(due)}) 收款金额", due)
        if amount is None:
            self.say("no payment taken")
            return

        def done(r: PaymentResult) -> str:
            change = f" · change 找零 {self.money(r.change_minor)}" if r.change_minor else ""
            left = (
                f" · still due 还欠 {self.money(r.due_after_minor)}"
                if r.due_after_minor
                else " · paid in full 已结清 (C = close)"
            )
            return f"{table.name}: {self.money(r.paid_minor)} {METHOD_WORDS[method]}{change}{left}"

        await self.act(
            "payments",
            "payment.taken",
            f"table {table.name}",
            take_payment,
            table.session_id,
            method,
            amount,
            self.staff.name,
            details={"method": method, "amount_minor": amount},
            done=done,
        )

    @work(exclusive=True, group="dialog")
    async def action_refund(self) -> None:
        """Give money back from one of the visit's payments: which one, how much (at most what it kept less earlier
        refunds), why; then asked once more before anything is written."""
        table = self.visit()
        if table is None:
            return
        payments = {str(p.id): p for p in table.payments if p.refundable_minor > 0}
        if not payments:
            self.say(f"✗ nothing to refund at {table.name}: no payment with money left to give back", error=True)
            return
        picked = await self.app.push_screen_wait(
            ChooseScreen(
                f"Refund which payment of {table.name}? 退哪笔款",
                [
                    (key, f"{local_time(p.created_at, self.store, self.console.now())}  {payment_words(p, self.money)}")
                    for key, p in payments.items()
                ],
            )
        )
        if picked is None:
            self.say("nothing refunded")
            return
        payment = payments[picked]
        limit = payment.refundable_minor
        amount = await self.ask_amount(
            f"{METHOD_WORDS[payment.method]}: how much goes back? (at most {self.money(limit)}) 退款金额",
            min(limit, -table.due_minor) if table.due_minor < 0 else limit,  # overpaid: what gives the bill back
            most_minor=limit,
            over="can go back from this payment",
        )
        if amount is None:
            self.say("nothing refunded")
            return

        def check_reason(text: str) -> str | None:
            try:
                return None if clean_text(text, REFUND_REASON_MAX_CHARS, field="reason") else "a refund needs a reason"
            except DomainError as exc:
                return exc.message

        typed = await self.app.push_screen_wait(PromptScreen("Why? 退款原因", check=check_reason))
        if typed is None:
            self.say("nothing refunded")
            return
        reason = clean_text(typed, REFUND_REASON_MAX_CHARS, field="reason")
        if not await self.confirm(
            f"Give back {self.money(amount)} {METHOD_WORDS[payment.method]} to table {table.name}? 确认退款\n"
            f"The bill will owe {self.money(amount)} more; the ERP books the refund."
        ):
            self.say("nothing refunded")
            return

        def done(r: RefundResult) -> str:
            left = f" · due 应付 {self.money(r.due_after_minor)}" if r.due_after_minor > 0 else ""
            return f"{table.name}: {self.money(r.refunded_minor)} {METHOD_WORDS[payment.method]} refunded 已退款{left}"

        await self.act(
            "payments",
            "payment.refunded",
            f"table {table.name}",
            refund_payment,
            payment.id,
            amount,
            reason,
            self.staff.name,
            details={"payment": payment.ref, "method": payment.method, "amount_minor": amount, "reason": reason},
            done=done,
        )

    @work(exclusive=True, group="dialog")
    async def action_close(self) -> None:
        """Close the visit (the table is free). One that still owes: a waiter is refused (a manager's call); a
        manager is asked first, with the amount."""
        table = self.visit()
        if table is None:
            return
        due = table.due_minor
        try:
            if due > 0:
                self.staff.require("close_unpaid")
        except DomainError as exc:
            self.say(f"✗ refused: {exc.message} ({table.name} owes {self.money(due)} 未付; p = pay)", error=True)
            return
        question = (
            f"Table {table.name} still owes {self.money(due)} 未付.\n"
            f"Close it anyway? The unpaid {self.money(due)} stays on record."
            if due > 0
            else f"Close table {table.name}? 清台 The table becomes free for the next guests."
        )
        if not await self.confirm(question):  # C asks first even when paid (tui/keys.py: asks)
            self.say(
                f"not closed: {table.name} still owes {self.money(due)}" if due > 0 else f"{table.name} not closed"
            )
            return
        await self.act(
            "close_unpaid" if due > 0 else "tables",
            "table.closed",
            f"table {table.name}",
            close_visit,
            table.session_id,
            self.staff.name,
            due > 0,
            details={"unpaid_minor": due} if due > 0 else None,
            done=lambda owed: (
                f"table {table.name} closed 清台" + (f" · {self.money(owed)} left unpaid" if owed else "")
            ),
        )

    async def action_handled(self) -> None:
        table = self.selected()
        if table is None:
            return
        await self.act(
            "tables",
            "calls.handled",
            f"table {table.name}",
            handle_calls,
            table.id,
            self.staff.name,
            done=lambda kinds: f"{table.name}: {' and '.join(kinds)} call handled 已处理",
        )

    @work(exclusive=True, group="dialog")
    async def action_close_day(self) -> None:
        """Close every open visit (managers). Orders still in the kitchen are named with their tables, and those
        tables are kept open unless the manager picks closing them too; what is unpaid is named and asked."""
        try:
            self.staff.require("close_day")
        except DomainError as exc:
            self.say(f"✗ refused: {exc.message}", error=True)
            return
        visits = [t for t in await self.console.db.call(floor) if t.session_id is not None]
        if not visits:
            self.say("nothing to close: every table is free")
            return
        owing = await self.console.db.call(visits_owing)
        busy = {t.name: [o for o in t.orders if o.status in OPEN_STATUSES] for t in visits}
        busy = {name: orders for name, orders in busy.items() if orders}
        question = f"Close the day 日结? {len(visits)} open table(s) will be closed."
        if owing:
            question += "\nStill unpaid 未付: " + ", ".join(f"{v.table_name} {self.money(v.due_minor)}" for v in owing)
            question += f"\n(total {self.money(sum(v.due_minor for v in owing))}; it stays on record as unpaid)"
        keep = False
        if not busy:
            if not await self.confirm(question):
                self.say("day not closed")
                return
        else:
            keep_text = (
                f"close the other {len(visits) - len(busy)}, keep {', '.join(busy)} open 保留有菜的桌"
                if len(busy) < len(visits)
                else None
            )
            picked = await self.app.push_screen_wait(
                ChooseScreen(
                    question + "\n" + kitchen_words(busy),
                    ([("keep", keep_text)] if keep_text else [])
                    + [("all", f"close all {len(visits)} anyway: their orders stay on Orders 全部清台")],
                )
            )
            if picked is None:
                self.say(f"day not closed: {len(busy)} table(s) still have orders in the kitchen")
                return
            keep = picked == "keep"
        day = self.store.business_day(self.console.now())
        await self.act(
            "close_day",
            "day.closed",
            f"day {day}",
            close_day,
            self.staff.name,
            bool(owing),
            keep_busy=keep,
            busy_known=list(busy),
            done=lambda r: (
                f"day closed 日结: {r.closed} table(s) closed"
                + (f", {self.money(r.unpaid_minor)} unpaid ({', '.join(r.unpaid)})" if r.unpaid else "")
                + (f"; kept open (kitchen): {', '.join(r.kept)}" if r.kept else "")
            ),
        )


def kitchen_words(busy: dict[str, list[OrderRow]]) -> str:
    """What the kitchen still has: "Still in the kitchen 厨房未完成: 3 orders (2 NEW, 1 accepted) at A1, A2"."""
    orders = [o for table in busy.values() for o in table]
    counts = Counter(o.status for o in orders)
    statuses = ", ".join(f"{counts[s]} {STATUS_WORDS[s].split(' ')[1]}" for s in OrderStatus if counts[s])
    return (
        f"Still in the kitchen 厨房未完成: {len(orders)} order(s) ({statuses}) at {len(busy)} table(s): "
        + ", ".join(busy)
    )
