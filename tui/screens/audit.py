"""The audit log for the manager: one business day's staff actions, newest first, each with its time in the store's
zone, who did it, the action in words, what it was done to (an order's ticket and table, a table, a dish), from
which state or value to which, and the reason; `[` `]` `d` change the day, `/` finds a word, `f` shows one kind of
action, Esc clears. New lines appear as other consoles act (the app's live poll)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import date, datetime
from typing import Any, ClassVar

import apsw
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import BindingType
from textual.widgets import DataTable, Static

from appliance.db.audit_log import DAY_LIMIT, AuditDay, AuditLine, audit_day, newest_audit_id
from appliance.db.store_settings import StoreSettings
from appliance.domain.money import Currency, format_money
from tui.days import DayScreen
from tui.dialogs import PromptScreen
from tui.keys import bindings_for

# action -> its words in the log (an action not listed shows as it is stored)
ACTION_WORDS = {
    "order.advance": "next step 推进",
    "order.cancelled": "cancel 取消",
    "order.line_voided": "void 退菜",
    "order.reprinted": "reprint 补打",
    "order.staff": "staff order 点菜",
    "table.opened": "seat 开台",
    "table.moved": "move 换台",
    "table.closed": "close 清台",
    "table.rekeyed": "re-key 换码",
    "calls.handled": "call handled 已处理",
    "bill.queued": "bill 打单",
    "payment.taken": "payment 收款",
    "payment.refunded": "refund 退款",
    "menu.sold_out": "sold out 沽清",
    "menu.back_on": "back on 恢复",
    "menu.stock": "stock 库存",
    "menu.price": "price 改价",
    "menu.hidden": "hide 隐藏",
    "menu.shown": "show 显示",
    "menu.window": "hours 时段",
    "printer.test": "test page 测试",
    "printer.stickers": "QR stickers 二维码",
    "sync.retry": "sync retry 重试",
    "sync.check": "sync check 检查",
    "settings.change": "setting 设置",
    "day.closed": "day end 日结",
    "report.exported": "export 导出",
}

# Kinds of action for `f`: the first word of the action -> the kind it belongs to; the kinds in this order.
KINDS = {
    "orders": "orders 订单",
    "tables": "tables 餐桌",
    "payments": "payments 收款",
    "menu": "menu 菜单",
    "printers": "printers 打印",
    "sync": "sync 同步",
    "settings": "settings 设置",
    "day": "day 日结",
}
KIND_OF = {
    "order": "orders",
    "table": "tables",
    "calls": "tables",
    "bill": "tables",
    "payment": "payments",
    "menu": "menu",
    "printer": "printers",
    "sync": "sync",
    "settings": "settings",
    "day": "day",
    "report": "day",
}

STATE_WORDS = {
    "submitted": "new",
    "accepted": "accepted",
    "preparing": "cooking",
    "ready": "ready",
    "served": "served",
    "cancelled": "cancelled",
}
METHODS = {"cash": "cash 现金", "card": "card 刷卡", "wechat": "WeChat 微信", "alipay": "Alipay 支付宝"}


def kind_of(action: str) -> str:
    first = action.split(".", 1)[0]
    return KIND_OF.get(first, first)


def action_words(action: str) -> str:
    return ACTION_WORDS.get(action, action)


def value_words(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "—"
    return str(value)


def what_text(line: AuditLine) -> str:
    """What the action was done to, as people name it: "#12 A5" (ticket and table), "A5", a dish's name."""
    e = line.entry
    words = e.subject.split()
    if line.ticket_no is not None:
        rest = f" line {words[3]}" if len(words) >= 4 and words[2] == "line" else ""
        return f"#{line.ticket_no} {line.table}{rest}"
    if e.action.startswith("menu."):
        return line.dish or e.subject
    if len(words) == 2 and words[0] in ("table", "printer", "target", "day"):
        return words[1] if words[0] == "table" else e.subject
    if e.action == "order.reprinted" and len(words) >= 2 and words[0] == "ticket":
        return f"#{words[1]}"
    return e.subject


def change_text(line: AuditLine, money: Callable[[int], str]) -> str:
    """From what to what (states, prices, values), or the action's amount or count; "" when it has none."""
    e, d = line.entry, line.details
    if e.action == "order.advance" and "from" in d:
        old, new = str(d["from"]), str(d.get("to"))
        return f"{STATE_WORDS.get(old, old)} → {STATE_WORDS.get(new, new)}"
    if e.action == "order.cancelled":
        return "→ cancelled"
    if e.action == "menu.price" and "from" in d:
        return f"{money(d['from'])} → {money(d['to'])}"
    if "from" in d and "to" in d:
        return f"{value_words(d['from'])} → {value_words(d['to'])}"
    if e.action in ("payment.taken", "payment.refunded") and "amount_minor" in d:
        return f"{money(d['amount_minor'])} {METHODS.get(d.get('method', ''), d.get('method', ''))}".strip()
    if e.action == "table.moved" and "to" in d:
        return f"→ {d['to']}"
    if e.action == "table.opened" and "diners" in d:
        return f"{d['diners']} guest{'s' if d['diners'] != 1 else ''}"
    if e.action == "table.closed" and d.get("unpaid_minor"):
        return f"{money(d['unpaid_minor'])} unpaid"
    if e.action == "menu.stock" and "stock" in d:
        return "no count" if d["stock"] is None else f"{d['stock']} left"
    if e.action == "order.line_voided" and "dish" in d:
        return str(d["dish"])
    if e.action == "order.staff" and "dishes" in d:
        return value_words(d["dishes"])
    if e.action == "day.closed" and isinstance(d.get("unpaid"), dict):
        unpaid = d["unpaid"]
        return f"{len(unpaid)} unpaid" if unpaid else "all paid"
    return ""


def reason_text(line: AuditLine) -> str:
    return str(line.details.get("reason") or "")


def fit(text: str, width: int) -> Text:
    """Text cut to `width` terminal cells, an ellipsis marking the cut (wide characters counted as two)."""
    fitted = Text(text)
    if fitted.cell_len > width:
        fitted.truncate(max(width, 1), overflow="ellipsis")
    return fitted


@dataclass(frozen=True)
class Row:
    """A line as the log shows it (every column's full text; the table cuts them to fit)."""

    key: str
    time: str
    seconds: str
    who: str
    action: str
    kind: str
    what: str
    change: str
    reason: str
    line: AuditLine

    haystack: str = ""  # every column, the stored action, subject and details, casefolded: what `/` searches

    def matches(self, word: str) -> bool:
        """Whether `word` (any case) is in the row, its stored action and subject, or any of its details."""
        return word.casefold() in self.haystack


def read_rows(conn: apsw.Connection, day: str, store: StoreSettings | None) -> tuple[AuditDay, list[Row]]:
    """The day's lines as the log shows them, worked out on the database's thread (a day of 2,000 lines takes
    about 0.1 s to put in words: the screen keeps taking keys meanwhile)."""
    loaded = audit_day(conn, day)
    tz = store.tz if store else None
    currency = store.money if store else Currency.of("CNY")

    def money(minor: Any) -> str:
        return format_money(minor, currency) if isinstance(minor, int) else value_words(minor)

    rows = []
    for line in loaded.lines:
        e = line.entry
        at = datetime.fromisoformat(e.at.replace("Z", "+00:00")).astimezone(tz)
        row = Row(
            key=str(e.id),
            time=at.strftime("%H:%M"),
            seconds=at.strftime("%H:%M:%S"),
            who=e.staff_name,
            action=action_words(e.action),
            kind=kind_of(e.action),
            what=what_text(line),
            change=change_text(line, money),
            reason=reason_text(line),
            line=line,
        )
        searched = (row.time, row.who, row.action, e.action, e.subject, row.what, row.change, row.reason, e.details)
        rows.append(replace(row, haystack=" ".join(searched).casefold()))
    return loaded, rows


# The table shows at most this many of the lines that match (a DataTable takes about 0.2 ms a row to fill, and the
# log is redrawn whenever a line is written); find and filter still search the whole day.
SHOWN_AT_MOST = 200

# Columns: key, header, width on a narrow and on a wide screen (None: from what is left: the change at most
# CHANGE_AT_MOST, the reason the rest; the two must stay the last columns).
COLUMNS: tuple[tuple[str, str, tuple[int, int] | None], ...] = (
    ("time", "Time", (5, 5)),
    ("who", "Who 谁", (12, 16)),
    ("action", "Action 操作", (14, 20)),
    ("what", "What 对象", (10, 16)),
    ("change", "From → to 变化", None),
    ("reason", "Why 原因", None),
)
WIDE_ENOUGH = 2 * 24  # the shared columns get at least this much together before the others widen
CHANGE_AT_LEAST, CHANGE_AT_MOST = 16, 24  # 16: "¥32.00 → ¥35.00", "new → accepted" whole at 80 columns


class AuditScreen(DayScreen):
    NAME = "Audit 日志"
    PERMISSION = "reports"
    BINDINGS: ClassVar[list[BindingType]] = [*bindings_for("audit")]
    DAY_WORDS, DAY_SAID = "audit log", "audit log of {day}"
    DEFAULT_CSS = """
    AuditScreen #audit { height: 1fr; }
    AuditScreen #detail { height: 4; padding: 0 1; border-top: solid $accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.word = ""  # `/`: rows with this word only
        self.kind: str | None = None  # `f`: one kind of action only
        self.loaded: AuditDay | None = None
        self.rows: list[Row] = []  # the day's lines, newest first
        self.matched = 0  # the day's lines that pass the find and the filter
        self.shown: list[Row] = []  # the newest SHOWN_AT_MOST of them: the table's rows
        self.widths: tuple[int, ...] = ()
        self.checks = self.reads = 0  # reloads asked for, and those that read the day (something new)

    def body(self) -> ComposeResult:
        yield Static("", classes="filters", id="filters")
        yield DataTable(id="audit", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail")

    async def reload(self) -> None:
        """Read the day again when something was written since (the live poll calls this on every commit
        elsewhere, a diner's order too: at rush hour that is several a second, and a day is up to 2,000 lines)."""
        self.checks += 1
        day, loaded = self.shown_day, self.loaded
        if loaded is not None and loaded.day == day and await self.console.db.call(newest_audit_id) == loaded.newest_id:
            return
        self.loaded, rows = await self.console.db.call(read_rows, day, self.console.store)
        self.reads += 1
        self.rows = rows
        self.show()

    def column_widths(self) -> tuple[int, ...]:
        """Each column's width for the screen's width: the fixed ones narrow or wide, the last two share what is
        left (a cell's padding and the scrollbar counted), so no column runs off the screen's edge."""
        room = self.size.width - 2 * len(COLUMNS) - 2
        wide = room - sum(w[1] for _, _, w in COLUMNS if w is not None) >= WIDE_ENOUGH
        fixed = [w[1] if wide else w[0] for _, _, w in COLUMNS if w is not None]
        free = room - sum(fixed)
        # From → to is short ("new → accepted", "¥32.00 → ¥35.00"); a reason is a sentence: it gets the rest.
        change = min(CHANGE_AT_MOST, max(CHANGE_AT_LEAST, free // 2), free - 8)
        fixed_at = iter([*fixed, change, max(8, free - change)])
        return tuple(next(fixed_at) for _ in COLUMNS)

    def show(self) -> None:
        """Redraw the log: the highlight stays on its line while new lines come in above it."""
        table = self.query_one(DataTable)
        keep = self.selected_key()
        widths = self.column_widths()
        if widths != self.widths or not table.columns:
            table.clear(columns=True)
            for (key, header, _), width in zip(COLUMNS, widths, strict=True):
                table.add_column(fit(header, width), width=width, key=key)
            self.widths = widths
        else:
            table.clear()
        matched = [r for r in self.rows if (self.kind is None or r.kind == self.kind) and r.matches(self.word)]
        self.matched, self.shown = len(matched), matched[:SHOWN_AT_MOST]
        for row in self.shown:
            cells = (row.time, row.who, row.action, row.what, row.change, row.reason)
            table.add_row(*(fit(c, w) for c, w in zip(cells, widths, strict=True)), key=row.key)
        keys = [r.key for r in self.shown]
        if keep in keys:
            table.move_cursor(row=keys.index(keep), scroll=False)
        self.show_filters()
        self.show_detail()

    def on_resize(self) -> None:
        if self.rows or self.loaded is not None:
            self.show()

    def describe(self) -> str:
        """The filters line: the day, how many lines are shown of how many, the find and the filter."""
        day = self.shown_day
        when = " today 今天" if day == self.today() else f" {date.fromisoformat(day):%a}"
        count = f"{self.matched} of {len(self.rows)}" if self.matched != len(self.rows) else f"{len(self.rows)}"
        parts = [f"{day}{when} · {count} entr{'y' if len(self.rows) == 1 else 'ies'}"]
        if self.loaded is not None and self.loaded.more:
            parts.append(f"the day's newest {DAY_LIMIT} read")
        if self.matched > len(self.shown):
            parts.append(f"newest {len(self.shown)} shown: / f narrow")
        if self.kind:
            parts.append(f"kind {KINDS.get(self.kind, self.kind)}")
        if self.word:
            parts.append(f"find “{self.word}”")
        return " · ".join(parts) + "   ([ ] d day, / find, f kind, Esc clear)"

    def show_filters(self) -> None:
        self.query_one("#filters", Static).update(fit(self.describe(), max(20, self.size.width - 2)))

    def show_detail(self) -> None:
        detail = self.query_one("#detail", Static)
        key = self.selected_key()
        row = next((r for r in self.shown if r.key == key), None)
        if row is None:
            detail.update(self.nothing_text())
            return
        e = row.line.entry
        text = Text()
        text.append(f"{row.seconds}  {row.who}  {row.action}", style="bold")
        text.append(f"  ({e.action})", style="dim")
        text.append(f"  {row.what}" if row.what else "")
        if row.change:
            text.append(f"\n{row.change}")
        if row.reason:
            text.append(f"\n“{row.reason}”", style="bold")
        rest = {k: v for k, v in row.line.details.items() if k not in ("from", "to", "reason")}
        if rest:
            text.append("\n" + "  ".join(f"{k}: {value_words(v)}" for k, v in rest.items()), style="dim")
        detail.update(text)

    def nothing_text(self) -> str:
        if not self.rows:
            return f"no staff actions on {self.shown_day} 当日无操作记录"
        wanted = [
            *([f"kind {KINDS.get(self.kind, self.kind)}"] if self.kind else []),
            *([f"“{self.word}”"] * bool(self.word)),
        ]
        return f"nothing matches {', '.join(wanted)} — Esc clears 无符合记录"

    # -- actions ----------------------------------------------------------------------------------------
    def shown_again(self) -> None:
        table = self.query_one(DataTable)
        if table.row_count:
            table.move_cursor(row=0)

    @work(exclusive=True, group="dialog")
    async def action_search(self) -> None:
        answer = await self.app.push_screen_wait(
            PromptScreen("Find a word 搜索 (a name, table, ticket, dish, reason…; empty = all):", self.word)
        )
        if answer is None:
            return
        self.word = answer.strip()
        self.show()
        if self.word:
            self.say(f"{self.matched} entr{'y' if self.matched == 1 else 'ies'} with “{self.word}”")

    def action_cycle_group(self) -> None:
        present = [k for k in KINDS if any(r.kind == k for r in self.rows)]
        present += sorted({r.kind for r in self.rows} - set(KINDS))
        cycle: list[str | None] = [None, *present]
        at = cycle.index(self.kind) if self.kind in cycle else 0
        self.kind = cycle[(at + 1) % len(cycle)]
        self.show()
        self.say(f"kind: {KINDS.get(self.kind, self.kind)} (f: the next kind)" if self.kind else "every kind 全部")

    def action_clear_filters(self) -> None:
        self.word, self.kind = "", None
        self.show()
        self.say("every entry of the day 全部")
