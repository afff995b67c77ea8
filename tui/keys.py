"""The console's one key map: a key means one thing on every screen.

Every screen's BINDINGS come from here (`bindings_for`), and so do `?` (the current screen's keys), the command
palette (every action the person's role allows) and the README's key table (tests/tui/test_keys.py checks the
README against this map and the map against the screens). The rules the map follows:

- A letter means one thing everywhere: `f` filters by group on every screen that has groups, `/` finds, `r` does
  again what failed (retry, reprint), `v` voids, never two unrelated things on two screens.
- Frequent actions are lower-case and next to each other; what destroys something or moves money out is upper-case
  (shift), sits away from the frequent keys and asks first (`X` cancel an order, `R` refund, `C` close a table,
  `D` close the day, `K` re-key a table, `H` hide a dish).
- Enter is the highlighted row's obvious action (advance an order, change a setting).
- Digits and F1-F8 switch screens, `?` shows the keys, ctrl+p the command palette, F12 / ctrl+l lock, ctrl+q quits
  (asks first).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from textual.binding import Binding

ANY = "*"  # every console screen


@dataclass(frozen=True)
class Key:
    key: str  # Textual's key name ("a", "A" = shift+a, "slash", "enter", "left_square_bracket")
    shown: str  # how a person types it ("a", "A", "/", "Enter", "[")
    action: str  # the action (the screen's or app's `action_<name>`, with arguments as Textual writes them)
    label: str  # the footer's word(s)
    screens: tuple[str, ...]  # the modes where it works (ANY: every console screen)
    permission: str | None = None  # what the person must be allowed (appliance.db.staff.PERMISSIONS)
    asks: bool = False  # destroys something or moves money out: asks first
    footer: bool = True  # shown in the footer (the footer fits 80 columns; `?` lists every key)
    help: str = ""  # one sentence for `?` and the command palette
    priority: bool = False  # taken before a focused widget (enter and home on a table)


# Screens: mode -> (module, class, digit). Also the order of the tabs.
SCREENS: dict[str, tuple[str, str, str]] = {
    "orders": ("tui.screens.orders", "OrdersScreen", "1"),
    "tables": ("tui.screens.tables", "TablesScreen", "2"),
    "menu": ("tui.screens.menu", "MenuScreen", "3"),
    "printers": ("tui.screens.printers", "PrintersScreen", "4"),
    "sync": ("tui.screens.sync", "SyncScreen", "5"),
    "reports": ("tui.screens.reports", "ReportsScreen", "6"),
    "settings": ("tui.screens.settings", "SettingsScreen", "7"),
    "audit": ("tui.screens.audit", "AuditScreen", "8"),
}

KEYS: tuple[Key, ...] = (
    # -- Orders ------------------------------------------------------------------------------------------------------
    Key("a", "a", "advance", "Next 下一步", ("orders",), "orders", help="the highlighted order's next step"),
    Key(
        "enter",
        "Enter",
        "advance",
        "Next",
        ("orders",),
        "orders",
        footer=False,
        priority=True,
        help="the highlighted order's next step (as a)",
    ),
    Key(
        "A",
        "A",
        "accept_all",
        "Accept all 全部接单",
        ("orders",),
        "orders",
        help="accept every new order at once (says how many, asks first)",
        asks=True,
    ),
    Key(
        "X",
        "X",
        "cancel",
        "Cancel 取消",
        ("orders",),
        "orders",
        asks=True,
        help="cancel the highlighted order, with a reason",
    ),
    Key(
        "s",
        "s",
        "cycle_status",
        "Status",
        ("orders",),
        "orders",
        footer=False,
        help="show only orders in one status (again: the next status, then all)",
    ),
    Key("t", "t", "filter_table", "Table", ("orders",), "orders", footer=False, help="show only one table's orders"),
    Key("home", "Home", "top", "Newest", ("orders",), footer=False, priority=True, help="back to the newest order"),
    # -- Orders and Tables -------------------------------------------------------------------------------------------
    Key(
        "v",
        "v",
        "void",
        "Void 退菜",
        ("orders", "tables"),
        "orders",
        asks=True,
        help="void a line, or part of it (1 of 2x), with a reason",
    ),
    # -- Tables ------------------------------------------------------------------------------------------------------
    Key("g", "g", "seat", "Seat 开台", ("tables",), "tables", help="seat guests at the highlighted table"),
    Key(
        "n",
        "n",
        "order",
        "Order 点菜",
        ("tables",),
        "tables",
        help="enter an order for the highlighted table (staff), with notes and add-ons",
    ),
    Key(
        "p",
        "p",
        "pay",
        "Pay 收款",
        ("tables",),
        "payments",
        help="take a payment (split across methods; change for cash)",
    ),
    Key("b", "b", "bill", "Bill 打单", ("tables",), "tables", help="print the highlighted table's bill"),
    Key("h", "h", "handled", "Handled 已处理", ("tables",), "tables", help="mark the table's calls handled"),
    Key("m", "m", "move", "Move 换台", ("tables",), "tables", help="move the guests to another table"),
    Key(
        "R",
        "R",
        "refund",
        "Refund 退款",
        ("tables",),
        "payments",
        asks=True,
        help="give money back from a payment (which one, how much, why)",
    ),
    Key(
        "C",
        "C",
        "close",
        "Close 清台",
        ("tables",),
        "tables",
        asks=True,
        help="close the table (one that still owes: managers only)",
    ),
    Key(
        "D",
        "D",
        "close_day",
        "Day end 日结",
        ("tables",),
        "close_day",
        asks=True,
        help="close the day (names the orders still in the kitchen)",
    ),
    # -- Menu --------------------------------------------------------------------------------------------------------
    Key("o", "o", "sold_out", "Sold out 沽清", ("menu",), "sold_out", help="mark the dish sold out, or back on"),
    Key("k", "k", "stock", "Stock 库存", ("menu",), "stock", help="set how many are left (empty: no count)"),
    Key(
        "P",
        "P",
        "price",
        "Price 改价",
        ("menu",),
        "price",
        help="change the price (more than half up or down asks first)",
    ),
    Key("w", "w", "window", "Hours 时段", ("menu",), "windows", help="set the hours the dish is served"),
    Key("H", "H", "hide", "Hide 隐藏", ("menu",), "hide", asks=True, help="hide the dish from phones, or show it"),
    # -- Lists: find and filter (the same keys wherever there is a list to narrow) -----------------------------------
    Key(
        "slash",
        "/",
        "search",
        "Find 搜索",
        ("orders", "menu", "audit"),
        help="find: a ticket number, a table or a dish (Orders); a dish (Menu); a word (Audit)",
    ),
    Key(
        "f",
        "f",
        "cycle_group",
        "Filter 筛选",
        ("orders", "menu", "audit"),
        footer=False,
        help="show one group only: station (Orders), category (Menu), kind of action (Audit)",
    ),
    Key(
        "escape",
        "Esc",
        "clear_filters",
        "Clear",
        ("orders", "menu", "audit"),
        footer=False,
        help="clear the find and every filter",
    ),
    # -- Printers ----------------------------------------------------------------------------------------------------
    Key("T", "T", "test_page", "Test page 测试", ("printers",), "print", help="print a test page"),
    Key(
        "r",
        "r",
        "again",
        "Again 重试/补打",
        ("printers", "sync"),
        help="do again: reprint a ticket (Printers), retry now and un-park rows (Sync)",
    ),
    Key(
        "q",
        "q",
        "stickers",
        "QR stickers 二维码",
        ("printers",),
        "print",
        help="print QR stickers for one table or all",
    ),
    Key(
        "K",
        "K",
        "rekey",
        "Re-key 换码",
        ("printers",),
        "rekey",
        asks=True,
        help="re-key a table (its old sticker stops working)",
    ),
    # -- Sync --------------------------------------------------------------------------------------------------------
    Key("c", "c", "check", "Check 检查", ("sync",), "sync", help="check the highlighted target's connection now"),
    # -- Reports -----------------------------------------------------------------------------------------------------
    Key(
        "left_square_bracket",
        "[",
        "shift_day(-1)",
        "Previous day 前一天",
        ("reports", "audit"),
        "reports",
        help="the day before",
    ),
    Key(
        "right_square_bracket",
        "]",
        "shift_day(1)",
        "Next day 后一天",
        ("reports", "audit"),
        "reports",
        help="the day after",
    ),
    Key("d", "d", "pick_day", "Date 日期", ("reports", "audit"), "reports", help="go to a date"),
    Key(
        "E",
        "E",
        "export",
        "Export CSV 导出",
        ("reports",),
        "reports",
        help="export the day as CSV to <data folder>/exports/",
    ),
    # -- Settings ----------------------------------------------------------------------------------------------------
    Key("e", "e", "edit", "Edit 修改", ("settings",), "settings", help="change the highlighted setting"),
    # -- Every screen (the app's) ------------------------------------------------------------------------------------
    Key("question_mark", "?", "help", "Keys ?", (ANY,), footer=True, help="the keys of this screen"),
)

# The app's own keys: screens, lock, quit, the palette (listed for `?` and the README; bound in tui/app.py).
APP_KEYS: tuple[tuple[str, str], ...] = (
    ("1-8 / F1-F8", "switch screen (Orders, Tables, Menu, Printers, Sync, Reports, Settings, Audit)"),
    ("ctrl+p", "command palette: every action your role allows, by name"),
    ("F12 / ctrl+l", "lock the console (it also locks by itself after `lock_after_minutes` idle)"),
    ("ctrl+q", "quit (asks first)"),
)


def keys_for(mode: str) -> list[Key]:
    """The keys that work on a screen, in the map's order."""
    return [k for k in KEYS if mode in k.screens or ANY in k.screens]


def bindings_for(mode: str) -> list[Binding]:
    """A screen's BINDINGS (the app's `?` binding excepted: the app binds that once)."""
    return [
        Binding(k.key, k.action, k.label, show=k.footer, priority=k.priority)
        for k in keys_for(mode)
        if ANY not in k.screens
    ]


def allowed(keys: Iterable[Key], may: Callable[[str], bool]) -> list[Key]:
    """The keys whose permission `may` grants (None needs nothing): pass `staff.may`."""
    return [k for k in keys if k.permission is None or may(k.permission)]
