"""The menu as staff run it during service: every dish with its price, stock count and state (on, sold out,
hidden, served only in a window). Sold out and stock are anyone's; prices, hiding and hours are the manager's.
Each change bumps the menu version, so diners' phones see it at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rich.cells import cell_len
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from appliance.db.menu import Dish, set_hidden, set_price, set_sold_out, set_stock, set_window, staff_dishes
from appliance.domain.errors import DomainError
from appliance.domain.menu import Window, translate
from appliance.domain.money import Currency, changes_by_more_than_half, format_money
from tui.base import ConsoleScreen
from tui.dialogs import AmountScreen, ChooseScreen, PromptScreen
from tui.keys import bindings_for

MAX_STOCK = 100_000


STATE_WORDS = {  # symbol, English, Chinese
    "hidden": ("◌", "hidden", "隐藏"),
    "sold_out": ("✗", "SOLD OUT", "沽清"),
    "on": ("✓", "on", "在售"),
    "not_now": ("⏸", "not now", "未到"),
}


def state_text(dish: Dish, minute_of_day: int, only: str | None = None) -> Text:
    """On, SOLD OUT, hidden, and the serving window: in words and symbols, colour only as an extra. `only` = a
    language: the words in that one alone (Chinese for "zh", else English), for a narrow screen."""

    def words(state: str) -> str:
        symbol, english, chinese = STATE_WORDS[state]
        if only is None:
            return f"{symbol} {english} {chinese} "
        return f"{symbol} {chinese if only == 'zh' else english} "

    text = Text()
    if dish.hidden:
        text.append(words("hidden"), style="dim")
    if dish.sold_out:
        text.append(words("sold_out"), style="bold white on red")
    elif not dish.hidden:
        if dish.window is None or dish.window.contains(minute_of_day):
            text.append(words("on"), style="green")
        else:
            text.append(words("not_now"), style="yellow")
    if dish.window is not None:
        text.append(f"⏱ {dish.window}")
    text.rstrip()
    return text


def fit(text: str | Text, width: int) -> Text:
    """Text cut to `width` terminal cells, an ellipsis marking the cut (wide Chinese characters counted as two)."""
    fitted = text.copy() if isinstance(text, Text) else Text(text)
    if fitted.cell_len > width:
        fitted.truncate(width, overflow="ellipsis")
    return fitted


COLUMNS = ("category", "dish", "price", "stock", "state", "name")
LABELS = {
    "category": "Category 分类",
    "dish": "Dish 菜品",
    "price": "Price 价格",
    "stock": "Stock",
    "state": "State 状态",
    "name": "Name",
}
MIN_NAME, MIN_CATEGORY, MIN_DISH, PADDING, SCROLLBAR = 12, 4, 16, 2, 2


def column_widths(room: int, needs: Mapping[str, int]) -> dict[str, int]:
    """How wide each column is in `room` cells, from the width each needs to be shown whole. Price, stock and
    state are always whole; the dish name shrinks last, the category before it; the second-language name shows
    only when at least MIN_NAME cells are left for it (the detail pane has it anyway). The caller words the state
    in one language when the dish name would be left fewer than MIN_DISH cells."""
    widths = {key: needs[key] for key in ("price", "stock", "state")}
    left = room - sum(widths.values()) - PADDING * 5  # five columns at least, each with its padding
    widths["dish"] = max(1, min(needs["dish"], left - MIN_CATEGORY))
    widths["category"] = max(1, min(needs["category"], left - widths["dish"]))
    name_room = left - widths["dish"] - widths["category"] - PADDING
    if name_room >= MIN_NAME:
        widths["name"] = min(needs["name"], name_room)
    return widths


def amount_text(amount_minor: int, currency: Currency) -> str:
    """An amount in major units without symbol or separators: what the price dialog starts with."""
    whole, frac = divmod(amount_minor, currency.factor)
    return f"{whole}.{frac:0{currency.exponent}d}" if currency.exponent else str(whole)


def parse_window(text: str) -> Window | None:
    """'11:00-14:00' (or '' for all day) -> Window; ValueError says what is wrong."""
    if not text:
        return None
    start, dash, until = text.partition("-")
    if not dash:
        raise ValueError("type the hours as HH:MM-HH:MM, e.g. 11:00-14:00 (empty = all day)")
    window = Window.parse(start.strip(), until.strip())
    if window.start == window.until:
        raise ValueError("start and end are the same: leave it empty for all day")
    return window


def problem(parse: Callable[[str], object]) -> Callable[[str], str | None]:
    """A dialog check from a parser: its error message, or None when the text parses."""

    def check(text: str) -> str | None:
        try:
            parse(text)
        except (ValueError, DomainError) as exc:
            return str(exc)
        return None

    return check


def parse_stock(text: str) -> int | None:
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_STOCK:
        raise ValueError(f"a stock count is a whole number from 0 to {MAX_STOCK} (empty = not counted)")
    return int(text)


class MenuScreen(ConsoleScreen):
    TITLE = "Menu 菜单"
    PERMISSION = None
    BINDINGS = [*bindings_for("menu")]  # tui/keys.py
    DEFAULT_CSS = """
    MenuScreen #dishes { height: 1fr; }
    MenuScreen #detail { height: auto; max-height: 5; padding: 0 1; border-top: solid $accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.dishes: dict[int, Dish] = {}
        self.find_text = ""
        self.category_id: int | None = None

    def body(self) -> ComposeResult:
        yield Static("", classes="filters", id="filters")
        yield DataTable(id="dishes", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail")

    def on_resize(self) -> None:
        if self.dishes:
            self.show(list(self.dishes.values()))

    @property
    def languages(self) -> tuple[str, str | None]:
        langs = self.console.store.languages if self.console.store else ("zh", "en")
        return langs[0], (langs[1] if len(langs) > 1 else None)

    @property
    def currency(self) -> Currency:
        return self.console.store.money if self.console.store else Currency.of("CNY")

    def first(self, names: Mapping[str, str]) -> str:
        return translate(names, self.languages[0])

    def second(self, names: Mapping[str, str]) -> str:
        second = self.languages[1]
        return names.get(second, "") if second else ""

    async def reload(self) -> None:
        self.show(await self.console.db.call(staff_dishes))

    def matches(self, dish: Dish) -> bool:
        needle = self.find_text.casefold()
        return (self.category_id is None or dish.category_id == self.category_id) and (
            not needle or any(needle in s.casefold() for s in (dish.key, *dish.names.values()))
        )

    @staticmethod
    def needs(rows: list[dict[str, Text]]) -> dict[str, int]:
        """How wide each column must be to show its label and every cell whole."""
        return {key: max([cell_len(LABELS[key]), *(row[key].cell_len for row in rows)]) for key in COLUMNS}

    def price_text(self, dish: Dish) -> str:
        if dish.price_minor is not None and not dish.variants:
            return format_money(dish.price_minor, self.currency)
        return "variants"

    def show(self, dishes: list[Dish]) -> None:
        table = self.query_one(DataTable)
        keep = self.selected()
        self.dishes = {d.id: d for d in dishes}
        store = self.console.store
        minute = store.minute_of_day(self.console.now()) if store else 0
        shown = [d for d in dishes if self.matches(d)]
        rows = [
            {
                "category": Text(self.first(d.category)),
                "dish": Text(self.first(d.names)),
                "price": Text(self.price_text(d), justify="right"),
                "stock": Text("—" if d.stock is None else str(d.stock), justify="right"),
                "state": state_text(d, minute),
                "name": Text(self.second(d.names)),
            }
            for d in shown
        ]
        widths = column_widths(self.app.size.width - SCROLLBAR, self.needs(rows))
        if widths["dish"] < min(self.needs(rows)["dish"], MIN_DISH):  # narrow: the state in one language
            for d, row in zip(shown, rows, strict=True):
                row["state"] = state_text(d, minute, only=self.languages[0])
            widths = column_widths(self.app.size.width - SCROLLBAR, self.needs(rows))
        table.clear(columns=True)
        for key in COLUMNS:
            if key in widths:
                table.add_column(fit(LABELS[key], widths[key]), width=widths[key], key=key)
        for d, row in zip(shown, rows, strict=True):
            table.add_row(*(fit(row[key], widths[key]) for key in COLUMNS if key in widths), key=str(d.id))
        if keep in self.dishes and any(d.id == keep for d in shown):
            table.move_cursor(row=table.get_row_index(str(keep)))
        category = next((self.first(d.category) for d in dishes if d.category_id == self.category_id), "all")
        self.query_one("#filters", Static).update(
            Text(
                f"{len(shown)}/{len(dishes)} dishes · find: {self.find_text or 'all'} · category: {category}"
                "   (/ find, f category, Esc clear)"
            )
        )
        self.show_detail()

    def show_detail(self) -> None:
        dish = self.dishes.get(self.selected() or -1)
        if dish is None:
            self.query_one("#detail", Static).update("no dishes match 没有菜品")
            return
        store = self.console.store
        minute = store.minute_of_day(self.console.now()) if store else 0
        text = Text(f"{self.first(dish.names)}  {self.second(dish.names)}  [{dish.key}]", style="bold")
        text.append("\n ")
        if dish.variants:
            text.append(
                " · ".join(f"{self.first(v.names)} {format_money(v.price_minor, self.currency)}" for v in dish.variants)
            )
        else:
            text.append(self.price_text(dish), style="bold")
        text.append("  ")
        text.append_text(state_text(dish, minute))
        text.append(
            f"\n stock: {'not counted' if dish.stock is None else dish.stock} · hours: {dish.window or 'all day'}"
        )
        self.query_one("#detail", Static).update(text)

    def selected(self) -> int | None:
        key = self.selected_key()
        return None if key is None else int(key)

    def selected_dish(self) -> Dish | None:
        dish = self.dishes.get(self.selected() or -1)
        if dish is None:
            self.say("no dish selected", error=True)
        return dish

    def allowed(self, permission: str) -> bool:
        """Refuse before a dialog whose answer would be refused anyway (act() checks again)."""
        try:
            self.staff.require(permission)
        except DomainError as exc:
            self.say(f"✗ refused: {exc.message}", error=True)
            return False
        return True

    # -- actions ----------------------------------------------------------------------------------------
    async def action_sold_out(self) -> None:
        dish = self.selected_dish()
        if dish is None:
            return
        name, now = self.first(dish.names), not dish.sold_out
        await self.act(
            "sold_out",
            "menu.sold_out" if now else "menu.back_on",
            dish.key,
            set_sold_out,
            dish.id,
            now,
            done=f"{name}: SOLD OUT 沽清" if now else f"{name}: back on 恢复供应",
        )

    @work(exclusive=True, group="dialog")
    async def action_stock(self) -> None:
        dish = self.selected_dish()
        if dish is None:
            return
        answer = await self.app.push_screen_wait(
            PromptScreen(
                f"Stock count of {self.first(dish.names)} 库存 (empty = not counted):",
                "" if dish.stock is None else str(dish.stock),
                check=problem(parse_stock),
            )
        )
        if answer is None:
            return
        stock = parse_stock(answer)
        await self.act(
            "stock",
            "menu.stock",
            dish.key,
            set_stock,
            dish.id,
            stock,
            details={"stock": stock},
            done=f"{self.first(dish.names)}: stock {'not counted' if stock is None else stock}",
        )

    @work(exclusive=True, group="dialog")
    async def action_price(self) -> None:
        dish = self.selected_dish()
        if dish is None:
            return
        if not self.allowed("price"):
            return
        variant = None
        if dish.variants:
            picked = await self.app.push_screen_wait(
                ChooseScreen(
                    f"Price of which {self.first(dish.names)}? 哪个规格",
                    [
                        (
                            str(v.id),
                            f"{self.first(v.names)} {self.second(v.names)}  {format_money(v.price_minor, self.currency)}",
                        )
                        for v in dish.variants
                    ],
                )
            )
            if picked is None:
                return
            variant = next(v for v in dish.variants if str(v.id) == picked)
        label = self.first(dish.names) + (f" ({self.first(variant.names)})" if variant else "")
        old = variant.price_minor if variant else dish.price_minor or 0
        currency = self.currency

        def second_look(new: int) -> str | None:
            if not changes_by_more_than_half(old, new):
                return None
            return (
                f"{label}: {format_money(old, currency)} → {format_money(new, currency)} 改价确认\n"
                "That is more than half the old price away. Diners see it at once: is it right?"
            )

        new = await self.app.push_screen_wait(
            AmountScreen(
                f"New price of {label} 价格, in {currency.code} (e.g. {amount_text(3250, currency)}):",
                currency,
                old,
                confirm=second_look,
            )
        )
        if new is None:
            return
        await self.act(
            "price",
            "menu.price",
            dish.key,
            set_price,
            dish.id,
            new,
            variant.id if variant else None,
            details={"variant": variant.id if variant else None, "from": old, "to": new},
            done=f"{label}: {format_money(old, currency)} → {format_money(new, currency)}",
        )

    @work(exclusive=True, group="dialog")
    async def action_hide(self) -> None:
        """H: hide the dish from phones, or show it again; asks first (phones stop offering it at once)."""
        dish = self.selected_dish()
        if dish is None or not self.allowed("hide"):
            return
        hide = not dish.hidden
        name = self.first(dish.names)
        question = (
            f"Hide {name} from phones? 隐藏 Diners stop seeing it at once."
            if hide
            else f"Show {name} on phones again? 显示"
        )
        if not await self.confirm(question):
            self.say(f"{name}: nothing changed")
            return
        await self.act(
            "hide",
            "menu.hidden" if hide else "menu.shown",
            dish.key,
            set_hidden,
            dish.id,
            hide,
            done=f"{self.first(dish.names)}: " + ("hidden from diners 已隐藏" if hide else "shown again 已显示"),
        )

    @work(exclusive=True, group="dialog")
    async def action_window(self) -> None:
        dish = self.selected_dish()
        if dish is None:
            return
        if not self.allowed("windows"):
            return
        answer = await self.app.push_screen_wait(
            PromptScreen(
                f"Hours of {self.first(dish.names)} 供应时段, HH:MM-HH:MM (empty = all day):",
                str(dish.window or ""),
                placeholder="11:00-14:00",
                check=problem(parse_window),
            )
        )
        if answer is None:
            return
        window = parse_window(answer)
        await self.act(
            "windows",
            "menu.window",
            dish.key,
            set_window,
            dish.id,
            window,
            details={"from": str(dish.window or ""), "to": str(window or "")},
            done=f"{self.first(dish.names)}: served {window or 'all day 全天'}",
        )

    @work(exclusive=True, group="dialog")
    async def action_search(self) -> None:
        answer = await self.app.push_screen_wait(
            PromptScreen("Find a dish by name or key 搜索 (empty = all):", self.find_text)
        )
        if answer is not None:
            self.find_text = answer
            await self.reload()

    @work(exclusive=True, group="dialog")
    async def action_cycle_group(self) -> None:
        """f: show one category only."""
        categories = {d.category_id: self.first(d.category) for d in self.dishes.values()}
        picked = await self.app.push_screen_wait(
            ChooseScreen(
                "Show which category? 分类", [("all", "all 全部"), *[(str(c), n) for c, n in categories.items()]]
            )
        )
        if picked is not None:
            self.category_id = None if picked == "all" else int(picked)
            await self.reload()

    async def action_clear_filters(self) -> None:
        self.find_text, self.category_id = "", None
        await self.reload()
