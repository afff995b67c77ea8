"""One line of a staff order in one dialog: the dish's size, its choices and optional add-ons group by group (each
group's least and most, as the diner's page offers them), how many, and a note for the kitchen; the line's price as
it is chosen. The line is checked by the diner API's own code (`price_line`) before it joins the order."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from appliance.domain.errors import DomainError
from appliance.domain.menu import Item, Menu, translate
from appliance.domain.pricing import MAX_QUANTITY, CartLine, price_line
from appliance.domain.text import NOTE_MAX_CHARS, clean_text
from tui.dialogs import dialog_css

SIZE_GROUP = "size"


@dataclass(frozen=True)
class Choice:
    id: str  # "v<variant id>" or "o<option id>": the option list's id
    name: str
    price: str  # "¥38.00" for a size, "+¥3.00" for an add-on, "" when it costs nothing
    sold_out: bool


@dataclass(frozen=True)
class Group:
    id: str  # SIZE_GROUP or the option group's id
    name: str
    min: int
    max: int
    choices: tuple[Choice, ...]

    @property
    def rule(self) -> str:
        """What may be chosen, in words: "choose 1 必选", "up to 3 可选 最多3"."""
        if self.min == self.max:
            return f"choose {self.min} 必选{self.min}"
        if self.min == 0:
            return "optional 可选" if self.max == 1 else f"up to {self.max} 可选 最多{self.max}"
        return f"choose {self.min}-{self.max} 选{self.min}-{self.max}"


def dish_groups(item: Item, lang: str, money: Callable[[int], str]) -> list[Group]:
    """The dish's choices as the dialog lists them: its size first (one of, when it has sizes), then each option
    group in menu order."""
    groups = []
    if item.variants:
        groups.append(
            Group(
                SIZE_GROUP,
                "规格 size",
                1,
                1,
                tuple(Choice(f"v{v.id}", translate(v.names, lang), money(v.price_minor), False) for v in item.variants),
            )
        )
    for group in item.option_groups:
        groups.append(
            Group(
                str(group.id),
                translate(group.names, lang),
                group.min_choices,
                group.max_choices,
                tuple(
                    Choice(
                        f"o{o.id}",
                        translate(o.names, lang),
                        f"+{money(o.price_delta_minor)}" if o.price_delta_minor else "",
                        o.sold_out,
                    )
                    for o in group.options
                ),
            )
        )
    return groups


class OrderLineScreen(ModalScreen[CartLine | None]):
    """A dish's line: enter (or space) picks a choice (in a one-of group it replaces the one picked before and moves
    on to the next group), ctrl+s or enter in the number or note adds the line; returns it (None on escape)."""

    DEFAULT_CSS = (
        dialog_css("OrderLineScreen")
        + """
    OrderLineScreen > Vertical { width: 76; }
    OrderLineScreen #line-fields { height: 3; }
    OrderLineScreen #quantity { width: 10; }
    OrderLineScreen #line-note { width: 1fr; }
    """
    )
    BINDINGS = [
        Binding("ctrl+s", "add", "Add 加入"),
        Binding("space", "pick", "Pick", show=False),
        Binding("escape", "cancel", "Cancel 取消"),
    ]

    def __init__(
        self, item: Item, menu: Menu, lang: str, money: Callable[[int], str], minute_of_day: int, line_no: int
    ) -> None:
        super().__init__()
        self.item, self.menu, self.lang, self.money = item, menu, lang, money
        self.minute, self.line_no = minute_of_day, line_no
        self.groups = dish_groups(item, lang, money)
        self.group_of = {c.id: g for g in self.groups for c in g.choices}
        self.picked: dict[str, list[str]] = {g.id: [] for g in self.groups}

    def compose(self) -> ComposeResult:
        name = translate(self.item.names, self.lang)
        price = f"  {self.money(self.item.price_minor)}" if self.item.price_minor is not None else ""
        with Vertical():
            yield Static(f"{name}{price}", classes="title", id="dish")
            if self.groups:
                yield OptionList(*self.options(), id="choices")
            with Horizontal(id="line-fields"):
                yield Input("1", placeholder="how many", id="quantity", restrict=r"[0-9]*", max_length=2)
                yield Input(placeholder="note 备注 (不要葱 no scallions)", id="line-note", max_length=NOTE_MAX_CHARS)
            yield Static("", id="line-price")
            yield Static("", classes="error", id="error")
            yield Label("enter = pick  tab = how many, note  ctrl+s = add 加入  escape = cancel")

    def on_mount(self) -> None:
        if self.groups:
            choices = self.query_one("#choices", OptionList)
            choices.action_first()
            choices.focus()
        else:
            self.query_one("#quantity", Input).focus()
        self.show_price()

    # -- the choices -------------------------------------------------------------------------------------------------
    def prompt(self, group: Group, choice: Choice) -> Text:
        on = choice.id in self.picked[group.id]
        mark = ("(•)" if on else "( )") if group.max == 1 else ("[x]" if on else "[ ]")
        text = Text(f"  {mark} {choice.name}")
        if choice.price:
            text.append(f"  {choice.price}")
        if choice.sold_out:
            text.append("  ✗ sold out 沽清")
        return text

    def options(self) -> list[Option]:
        options = []
        for group in self.groups:
            options.append(Option(Text(f"{group.name} · {group.rule}", style="bold"), id=f"g{group.id}", disabled=True))
            options += [Option(self.prompt(group, c), id=c.id, disabled=c.sold_out) for c in group.choices]
        return options

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option.id:
            self.pick(event.option.id)

    def action_pick(self) -> None:
        choices = self.query("#choices").first(OptionList) if self.groups else None
        if choices is not None and choices.has_focus and choices.highlighted_option is not None:
            choices.action_select()

    def pick(self, choice_id: str) -> None:
        group = self.group_of[choice_id]
        picked = self.picked[group.id]
        error = ""
        if choice_id in picked:
            picked.remove(choice_id)
        elif group.max == 1:
            picked[:] = [choice_id]
        elif len(picked) >= group.max:
            error = f"at most {group.max} of {group.name} 最多{group.max}: take one off first"
        else:
            picked.append(choice_id)
        choices = self.query_one("#choices", OptionList)
        for choice in group.choices:
            choices.replace_option_prompt(choice.id, self.prompt(group, choice))
        self.query_one("#error", Static).update(error)
        self.show_price()
        if group.max == 1 and picked:  # one of: picked, so on to the next group (or how many, after the last)
            later = self.groups[self.groups.index(group) + 1 :]
            after = next((c for g in later for c in g.choices if not c.sold_out), None)
            if after is None:
                self.query_one("#quantity", Input).focus()
            else:
                choices.highlighted = choices.get_option_index(after.id)

    # -- the line ----------------------------------------------------------------------------------------------------
    def quantity(self) -> int | None:
        text = self.query_one("#quantity", Input).value.strip()
        return int(text) if text.isdigit() and 1 <= int(text) <= MAX_QUANTITY else None

    def line(self) -> CartLine:
        variant = next((int(c[1:]) for c in self.picked.get(SIZE_GROUP, [])), None)
        options = tuple(int(c[1:]) for g in self.groups if g.id != SIZE_GROUP for c in self.picked[g.id])
        return CartLine(self.item.id, self.quantity() or 1, variant, options)

    def show_price(self) -> None:
        """The line's price as chosen so far, and what must still be chosen."""
        missing = [g.name for g in self.groups if len(self.picked[g.id]) < g.min]
        words = f"still to choose 请选: {', '.join(missing)}" if missing else ""
        if not missing and self.quantity() is not None:
            try:
                priced = price_line(self.menu, self.line(), self.line_no, self.minute)
                unit, total = self.money(priced.unit_price_minor), self.money(priced.line_total_minor)
                words = f"{priced.quantity}x {unit} = {total}"
            except DomainError as exc:  # the menu changed meanwhile (sold out, hours): say so now
                words = f"✗ {exc.message}"
        self.query_one("#line-price", Static).update(Text(words, style="bold"))

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "quantity":
            self.show_price()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_add()

    def action_add(self) -> None:
        error = self.query_one("#error", Static)
        if self.quantity() is None:
            error.update(f"how many: a number 1 to {MAX_QUANTITY} 数量")
            self.query_one("#quantity", Input).focus()
            return
        try:
            note = clean_text(self.query_one("#line-note", Input).value)
            line = replace(self.line(), note=note)
            price_line(self.menu, line, self.line_no, self.minute)  # the diner API's own check
        except DomainError as exc:
            error.update(f"✗ {exc.message}")
            return
        self.dismiss(line)

    def action_cancel(self) -> None:
        self.dismiss(None)
