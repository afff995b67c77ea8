"""The menu as staff run it during service: every dish with its price, stock count and state (on, sold out,
hidden, served only in a window). Sold out and stock are anyone's; prices, hiding and hours are the manager's.
Each change bumps the menu version, so diners' phones see it at once."""

from __future__ import annotations

from collections.abc import Callable, Mapping

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from appliance.db.menu import Dish, set_hidden, set_price, set_sold_out, set_stock, set_window, staff_dishes
from appliance.domain.errors import DomainError
from appliance.domain.menu import Window, translate
from appliance.domain.money import Currency, format_money, parse_amount
from tui.base import ConsoleScreen
from tui.dialogs import ChooseScreen, PromptScreen

MAX_STOCK = 100_000


def state_text(dish: Dish, minute_of_day: int) -> Text:
    """On, SOLD OUT, hidden, and the serving window: in words and symbols, colour only as an extra."""
    text = Text()
    if dish.hidden:
        text.append("◌ hidden 隐藏 ", style="dim")
    if dish.sold_out:
        text.append("✗ SOLD OUT 沽清 ", style="bold white on red")
    elif not dish.hidden:
        if dish.window is None or dish.window.contains(minute_of_day):
            text.append("✓ on 在售 ", style="green")
        else:
            text.append("⏸ not now 未到 ", style="yellow")
    if dish.window is not None:
        text.append(f"⏱ {dish.window}")
    text.rstrip()
    return text


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
    BINDINGS = [
        Binding("s", "sold_out", "Sold out 沽清"),
        Binding("n", "stock", "Stock 库存"),
        Binding("p", "price", "Price 价格"),
        Binding("h", "hide", "Hide 隐藏"),
        Binding("w", "window", "Hours 时段"),
        Binding("slash", "search", "Find 搜索"),
        Binding("f", "category", "Category 分类"),
        Binding("c", "clear_filters", "Clear", show=False),
    ]
    DEFAULT_CSS = """
    MenuScreen #dishes { height: 1fr; }
    MenuScreen #detail { height: auto; max-height: 4; padding: 0 1; border-top: solid $accent; }
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

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Category 分类", "Dish 菜品", "Price 价格", "Stock", "State 状态", "Name")

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

    def show(self, dishes: list[Dish]) -> None:
        table = self.query_one(DataTable)
        keep = self.selected()
        table.clear()
        self.dishes = {d.id: d for d in dishes}
        store = self.console.store
        minute = store.minute_of_day(self.console.now()) if store else 0
        shown = [d for d in dishes if self.matches(d)]
        for d in shown:
            price = (
                format_money(d.price_minor, self.currency)
                if d.price_minor is not None and not d.variants
                else "variants"
            )
            table.add_row(
                self.first(d.category),
                self.first(d.names),
                Text(price, justify="right"),
                Text("—" if d.stock is None else str(d.stock), justify="right"),
                state_text(d, minute),
                self.second(d.names),
                key=str(d.id),
            )
        if keep in self.dishes and any(d.id == keep for d in shown):
            table.move_cursor(row=table.get_row_index(str(keep)))
        category = next((self.first(d.category) for d in dishes if d.category_id == self.category_id), "all")
        self.query_one("#filters", Static).update(
            Text(
                f"{len(shown)}/{len(dishes)} dishes · find: {self.find_text or 'all'} · category: {category}"
                "   (/ find, f category, c clear)"
            )
        )
        self.show_detail()

    def show_detail(self) -> None:
        dish = self.dishes.get(self.selected() or -1)
        if dish is None:
            self.query_one("#detail", Static).update("no dishes match 没有菜品")
            return
        text = Text(f"{self.first(dish.names)}  {self.second(dish.names)}  [{dish.key}]", style="bold")
        if dish.variants:
            text.append(
                "\n "
                + " · ".join(
                    f"{self.first(v.names)} {format_money(v.price_minor, self.currency)}" for v in dish.variants
                )
            )
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
        answer = await self.app.push_screen_wait(
            PromptScreen(
                f"New price of {label} 价格, in {currency.code} (e.g. {amount_text(3250, currency)}):",
                amount_text(old, currency),
                check=problem(lambda text: parse_amount(text, currency)),
            )
        )
        if answer is None:
            return
        new = parse_amount(answer, currency)
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

    async def action_hide(self) -> None:
        dish = self.selected_dish()
        if dish is None:
            return
        hide = not dish.hidden
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
    async def action_category(self) -> None:
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
