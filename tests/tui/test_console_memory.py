"""What the console lets go of: a console left open through a service must not grow (bench/console_keys.py prints
the objects it holds and its garbage collections at rush hour)."""

from __future__ import annotations

import gc

import pytest
from textual.widgets._footer import FooterKey

from tui.widgets.footer import ConsoleFooter

pytestmark = pytest.mark.anyio


async def test_the_footers_old_keys_are_let_go(make_console):
    """Every screen switch, dialog and focus change recomposes the footer; the keys it took down must be freed.
    With Textual's `FooterKey(...).data_bind(compact=Footer.compact)` each old key stayed on the footer's watcher
    list for good (Textualize/textual#6666): at rush hour the console grew by about 1,300 objects a second and each
    full garbage collection took longer (bench/console_keys.py)."""
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        for _ in range(10):
            await pilot.press("2")
            await pilot.pause()
            await pilot.press("1")
            await pilot.pause()
        gc.collect()
        kept = [k for k in gc.get_objects() if isinstance(k, FooterKey) and not k.is_attached]
        # 20 switches put up 20 footers of several keys each (391 taken-down keys were held before the fix)
        assert len(kept) < 30, f"{len(kept)} footer keys taken down are still held"
        shown = app.screen.query_one(ConsoleFooter).query(FooterKey)
        assert shown and all(k.has_class("-compact") for k in shown)  # still compact without the binding
