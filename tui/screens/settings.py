"""The restaurant's own settings (appliance.settings.STORE_SETTINGS), each with its value and help; enter edits one.
The store validates every value (the dialog shows its message); each change is audited and every process sees it
at its next read."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from appliance.db.store_settings import load_store_settings, set_store_setting, validate_store_setting
from appliance.domain.errors import DomainError
from appliance.domain.money import CURRENCY_EXPONENTS, Currency
from appliance.settings import STORE_SETTINGS
from tui.base import ConsoleScreen
from tui.columns import fit, room_left, widest
from tui.dialogs import ChooseScreen, PromptScreen
from tui.keys import bindings_for

LABELS = {
    "store_name": "Store name 店名",
    "currency": "Currency 货币",
    "languages": "Languages 语言",
    "timezone": "Time zone 时区",
    "service_charge_bp": "Service charge 服务费",
    "tax_rate_bp": "Tax rate 税率",
    "auto_accept": "Auto-accept orders 自动接单",
    "print_on": "Print tickets on 打印时机",
    "tables_need_staff_open": "Staff open tables 开台点餐",
    "opening_hours": "Opening hours 营业时间",
    "day_starts_at": "Business day starts 营业日开始",
    "late_after_minutes": "Late after (min) 超时",
    "very_late_after_minutes": "Very late after (min) 严重超时",
    "lock_after_minutes": "Lock after idle (min) 自动锁屏",
    "cancel_reasons": "Cancel reasons 取消原因",
}


def value_text(name: str, value: Any) -> str:
    """A setting's value as people read it (never colour alone: words and symbols)."""
    if isinstance(value, bool):
        return "✓ on 开" if value else "✗ off 关"
    if isinstance(value, (list, tuple)):
        return ", ".join(value) if value else "— none"
    if name.endswith("_bp"):
        return f"{value // 100}.{value % 100:02d}%  ({value} bp)"
    return str(value)


def edit_text(value: Any) -> str:
    """The value as the edit dialog starts with it: lists comma-separated."""
    return ", ".join(value) if isinstance(value, (list, tuple)) else str(value)


def refusal(name: str, text: str) -> str | None:
    try:
        validate_store_setting(name, text)
    except DomainError as exc:
        return exc.message
    return None


class SettingsScreen(ConsoleScreen):
    TITLE = "Settings 设置"
    PERMISSION = "settings"
    BINDINGS = [*bindings_for("settings")]  # tui/keys.py (enter edits too: the table's row selected)
    DEFAULT_CSS = """
    SettingsScreen #settings { height: 1fr; }
    SettingsScreen #detail { height: auto; max-height: 5; padding: 0 1; border-top: solid $accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, Any] = {}
        self.fitted_to = 0  # the terminal width the values were fitted to

    def body(self) -> ComposeResult:
        yield DataTable(id="settings", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Setting 设置", "Value 值")

    async def reload(self) -> None:
        store = await self.console.db.call(load_store_settings)
        self.console.store = store  # this console's own change: no other process commit tells the app
        self.console.title = self.console.header_title()  # the store's name changed, perhaps; the badge stays
        self.values = {name: list(v) if isinstance(v := getattr(store, name), tuple) else v for name in STORE_SETTINGS}
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        labels = [LABELS.get(name, name) for name in self.values]
        room = room_left(self.app.size.width, [widest("Setting 设置", labels)], 2)  # a long value is cut with …
        self.fitted_to = self.app.size.width
        for name, value in self.values.items():
            table.add_row(LABELS.get(name, name), fit(value_text(name, value), room), key=name)
        table.move_cursor(row=row)
        self.show_detail()

    def on_resize(self) -> None:
        if self.values and self.app.size.width != self.fitted_to:  # the value column's room changed
            self.run_worker(self.reload_if_shown, group="reload")

    def selected(self) -> str | None:
        return self.selected_key()

    def show_detail(self) -> None:
        name = self.selected()
        if name is None:
            return
        setting = STORE_SETTINGS[name]
        text = Text(f"{name}", style="bold")
        text.append(f": {value_text(name, self.values[name])}")  # whole (the list may have cut it)
        text.append(f"  (default: {edit_text(setting.default) or '—'})\n{setting.help}")
        self.query_one("#detail", Static).update(text)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_edit()

    @work(exclusive=True, group="dialog")
    async def action_edit(self) -> None:
        name = self.selected()
        if name is None:
            return
        setting, old = STORE_SETTINGS[name], self.values[name]
        label = LABELS.get(name, name)
        choices = setting.choices or (tuple(CURRENCY_EXPONENTS) if name == "currency" else None)
        answer: Any
        if setting.kind is bool:
            answer = not old
        elif choices:
            answer = await self.app.push_screen_wait(
                ChooseScreen(f"{label}: {setting.help}", [(str(c), f"{'●' if c == old else ' '} {c}") for c in choices])
            )
        else:
            hint = " (separate with commas)" if setting.kind is list else ""
            answer = await self.app.push_screen_wait(
                PromptScreen(f"{label}{hint}:\n{setting.help}", edit_text(old), check=lambda text: refusal(name, text))
            )
        if answer is None:
            self.say("not changed")
            return
        try:
            new = validate_store_setting(name, answer)
        except DomainError as exc:
            self.say(f"✗ refused: {exc.message}", error=True)
            return
        if new == old:
            self.say(f"{label}: unchanged")
            return
        if (
            name == "currency"
            and Currency.of(new).exponent != Currency.of(old).exponent
            and not await self.confirm(
                f"Change currency {old} → {new}? Prices are kept as stored numbers ({Currency.of(old).exponent} → "
                f"{Currency.of(new).exponent} decimals), so every price must be checked after."
            )
        ):
            self.say("not changed")
            return
        await self.act(
            "settings",
            "settings.change",
            name,
            set_store_setting,
            name,
            new,
            details={"from": old, "to": new},
            done=f"{label}: {value_text(name, old)} → {value_text(name, new)}",
        )
