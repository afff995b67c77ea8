"""Small modal dialogs the screens share: confirm, choose a reason, ask for one value, pick from a list."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Label, OptionList, Static
from textual.widgets.option_list import Option

DIALOG_CSS = """
ModalScreen { align: center middle; }
ModalScreen > Vertical { width: 70; max-width: 100%; height: auto; max-height: 100%; border: thick $accent;
    background: $surface; padding: 0 1; }
ModalScreen .title { text-style: bold; }
ModalScreen .error { color: $error; }
ModalScreen OptionList { height: auto; max-height: 12; }
"""


class ConfirmScreen(ModalScreen[bool]):
    """Yes or no for a destructive action. y / enter confirm, n / escape refuse."""

    DEFAULT_CSS = DIALOG_CSS
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

    DEFAULT_CSS = DIALOG_CSS
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

    DEFAULT_CSS = DIALOG_CSS
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

    DEFAULT_CSS = DIALOG_CSS
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
