"""Small modal dialogs the screens share: confirm, choose a reason, ask for one value or an amount of money,
pick from a list."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

from appliance.domain.errors import DomainError
from appliance.domain.money import Currency, format_money, parse_amount

DIALOG_CSS = """
ModalScreen { align: center middle; }
ModalScreen > Vertical { width: 70; max-width: 100%; height: auto; max-height: 100%; border: thick $accent;
    background: $surface; padding: 0 1; }
ModalScreen .title { text-style: bold; }
ModalScreen .error { color: $error; }
ModalScreen OptionList { height: auto; max-height: 12; }
"""


def dialog_css(screen: str) -> str:
    """DIALOG_CSS for one dialog class. Textual scopes a screen's DEFAULT_CSS to its class: a rule written
    "ModalScreen > Vertical" there reads "ConfirmScreen ModalScreen > Vertical" and matches nothing (the dialogs
    showed at the top left, unbordered, as wide as the terminal)."""
    return DIALOG_CSS.replace("ModalScreen", screen)


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no for a destructive action. y / enter confirm, n / escape refuse."""

    DEFAULT_CSS = dialog_css("ConfirmScreen")
    BINDINGS = [
        Binding("y", "answer(True)", "Yes 是"),
        Binding("enter", "answer(True)", "Yes", show=False),
        Binding("n", "answer(False)", "No 否"),
        Binding("escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, classes="title", id="question")
            yield Label("y = yes 是    n = no 否")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)


class PromptScreen(ModalScreen[str | None]):
    """Ask for one value. `check` turns the text into an error message (or None when it is fine)."""

    DEFAULT_CSS = dialog_css("PromptScreen")
    BINDINGS = [Binding("escape", "cancel", "Cancel 取消")]

    def __init__(
        self,
        question: str,
        value: str = "",
        *,
        placeholder: str = "",
        check: Callable[[str], str | None] | None = None,
        password: bool = False,
    ) -> None:
        super().__init__()
        self.question, self.value, self.placeholder, self.check, self.password = (
            question,
            value,
            placeholder,
            check,
            password,
        )

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, classes="title")
            yield Input(self.value, placeholder=self.placeholder, password=self.password, id="answer")
            yield Static("", classes="error", id="error")
            yield Label("enter = OK    escape = cancel 取消")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        problem = self.check(text) if self.check else None
        if problem:
            self.query_one("#error", Static).update(problem)
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ChooseScreen(ModalScreen[str | None]):
    """Pick one of a list (arrow keys + enter); returns the chosen id."""

    DEFAULT_CSS = dialog_css("ChooseScreen")
    BINDINGS = [Binding("escape", "cancel", "Cancel 取消")]

    def __init__(self, question: str, choices: Sequence[tuple[str, str]]) -> None:
        super().__init__()
        self.question, self.choices = question, list(choices)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, classes="title")
            yield OptionList(*[Option(label, id=key) for key, label in self.choices], id="choices")
            yield Label("enter = choose    escape = cancel 取消")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)


OTHER = "__other__"


class ReasonScreen(ModalScreen[str | None]):
    """Why: one of the store's reasons, or free text ("other")."""

    DEFAULT_CSS = dialog_css("ReasonScreen")
    BINDINGS = [Binding("escape", "cancel", "Cancel 取消")]

    def __init__(self, question: str, reasons: Sequence[str]) -> None:
        super().__init__()
        self.question, self.reasons = question, list(reasons)

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, classes="title")
            options = [Option(r, id=str(i)) for i, r in enumerate(self.reasons)]
            yield OptionList(*options, Option("其他 other (type it below)", id=OTHER), id="reasons")
            yield Input(placeholder="reason 原因 (free text)", id="free", max_length=100)
            yield Static("", classes="error", id="error")
            yield Label("enter = choose    escape = cancel 取消")

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id == OTHER:
            self.query_one("#free", Input).focus()
            return
        self.dismiss(self.reasons[int(event.option.id or 0)])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        text = " ".join(event.value.split())
        if not text:
            self.query_one("#error", Static).update("type a reason, or pick one above")
            return
        self.dismiss(text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AmountScreen(ModalScreen[int | None]):
    """Ask for an amount of money, typed any common way (12,5 · ¥12.50 · 12.50元 · 12元5角): the dialog shows how
    the text reads while it is typed and what is wrong until it is right, and returns minor units (None when
    cancelled). `check` refuses a readable amount (more than is due); `confirm` returns a question when an amount
    deserves a second look: then y takes it, n or escape goes back to the typing, and enter answers nothing, so a
    doubled enter cannot pass the question."""

    DEFAULT_CSS = dialog_css("AmountScreen") + "AmountScreen #reading { color: $text-muted; }"
    BINDINGS = [
        Binding("escape", "cancel", "Cancel 取消"),
        Binding("y", "take", "Yes 是", show=False),
        Binding("n", "back", "No 否", show=False),
    ]
    KEYS = "enter = OK    escape = cancel 取消"
    CONFIRM_KEYS = "y = yes, take it 是    n = no, change it 否"

    def __init__(
        self,
        question: str,
        currency: Currency,
        suggested_minor: int | None = None,
        *,
        check: Callable[[int], str | None] | None = None,
        confirm: Callable[[int], str | None] | None = None,
    ) -> None:
        super().__init__()
        self.question, self.currency, self.check, self.confirm = question, currency, check, confirm
        self.suggested = "" if suggested_minor is None else format_money(suggested_minor, currency, symbol=False)
        self.pending: int | None = None  # an amount waiting for y

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Static(self.question, classes="title")
            yield Input(self.suggested, id="answer")
            yield Static("", id="reading")
            yield Static("", classes="error", id="error")
            yield Label(self.KEYS, id="keys")

    def on_mount(self) -> None:
        self.show_reading(self.suggested)

    def read(self, text: str) -> tuple[int | None, str | None]:
        try:
            amount = parse_amount(text, self.currency)
        except DomainError as exc:
            return None, exc.message
        return amount, self.check(amount) if self.check else None

    def show_reading(self, text: str) -> None:
        amount, _ = self.read(text)
        shown = "" if amount is None else f"= {format_money(amount, self.currency)}"
        self.query_one("#reading", Static).update(shown)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.show_reading(event.value)
        self.query_one("#error", Static).update("")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        amount, problem = self.read(event.value)
        if amount is None or problem:
            self.query_one("#error", Static).update(problem or "")
            return
        question = self.confirm(amount) if self.confirm else None
        if not question:
            self.dismiss(amount)
            return
        self.pending = amount
        self.query_one("#answer", Input).disabled = True
        self.query_one("#error", Static).update(question)
        self.query_one("#keys", Label).update(self.CONFIRM_KEYS)

    def action_take(self) -> None:
        if self.pending is not None:
            self.dismiss(self.pending)

    def action_back(self) -> None:
        if self.pending is None:
            return
        self.pending = None
        field = self.query_one("#answer", Input)
        field.disabled = False
        field.focus()
        self.query_one("#error", Static).update("")
        self.query_one("#keys", Label).update(self.KEYS)

    def action_cancel(self) -> None:
        if self.pending is not None:
            self.action_back()
        else:
            self.dismiss(None)
