"""The console's shared dialogs (tui/dialogs.py) as a person sees them: a bordered box in the middle of the
terminal over the screen it asks about, not text at the top left as wide as the terminal."""

from __future__ import annotations

import pytest
from textual.app import App
from textual.containers import Vertical
from textual.screen import ModalScreen

from appliance.domain.money import Currency
from tui.dialogs import AmountScreen, ChooseScreen, ConfirmScreen, PromptScreen, ReasonScreen

pytestmark = pytest.mark.anyio

DIALOGS = {
    "confirm": lambda: ConfirmScreen("Close table A3? 清台"),
    "prompt": lambda: PromptScreen("How many guests? 几位"),
    "choose": lambda: ChooseScreen("Which printer?", [("1", "kitchen 厨房"), ("2", "bar 吧台")]),
    "reason": lambda: ReasonScreen("Why? 原因", ["wrong dish 上错菜"]),
    "amount": lambda: AmountScreen("How much? 金额", Currency.of("CNY"), 6400),
}


@pytest.mark.parametrize("kind", DIALOGS)
async def test_a_dialog_is_a_bordered_box_in_the_middle(kind):
    app: App[None] = App()
    async with app.run_test(size=(80, 24)) as pilot:
        dialog: ModalScreen[object] = DIALOGS[kind]()
        app.push_screen(dialog)
        await pilot.pause()
        box = dialog.query_one(Vertical).region
        assert (box.width, box.x, dialog.query_one(Vertical).styles.border_top[0]) == (70, 5, "thick")
        assert box.y == (24 - box.height) // 2 and box.height < 24
