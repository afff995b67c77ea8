"""The console's garbage collector after the first login (appliance/quietgc.py; bench/console_keys.py measures it)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from typing import Any

import pytest

from appliance.quietgc import THRESHOLDS
from tests.tui.conftest import MANAGER_PIN, wait_until
from tui.keys import SCREENS

pytestmark = pytest.mark.anyio


@pytest.fixture
def gc_restored() -> Iterator[None]:
    """quiet_gc is process-wide: put the test process's collector back as it was. Nothing is frozen at the start
    either: an earlier test's in-process server froze what it had (appliance/web/app.py), and those objects
    leaving the frozen generation as they die would move the count this test reads."""
    before = gc.get_threshold()
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


@pytest.mark.parametrize("quiet", [True, False])
async def test_the_console_quietens_the_collector_after_its_first_login_only_when_asked(
    make_console: Any, gc_restored: None, quiet: bool
) -> None:
    app = make_console(pin=None)
    app._quiet_gc = quiet  # as `tablebox console` makes it (ConsoleApp(quiet_gc=True)); tests keep the default
    frozen_before = gc.get_freeze_count()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert gc.get_freeze_count() == frozen_before == 0  # not before anyone logged in
        assert gc.get_threshold() != THRESHOLDS
        for key in MANAGER_PIN:
            await pilot.press(key)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.current_mode == "orders" and app.screen.is_mounted)
        # After the screens' code is read (tui/app.py _warm_up, in a thread): that is frozen too.
        await wait_until(pilot, lambda: len(app.warmed) == len(SCREENS) and not app.workers)
        if quiet:
            assert gc.get_threshold() == THRESHOLDS
            assert gc.get_freeze_count() > frozen_before  # what start-up and the first screen made
        else:
            assert gc.get_threshold() != THRESHOLDS and gc.get_freeze_count() == frozen_before


async def test_after_the_first_login_every_screens_code_is_read_in_the_background_once(
    make_console: Any, gc_restored: None
) -> None:
    """A screen's first visit then builds it and reads its rows only (bench/console_keys.py measures the visits)."""
    app = make_console(pin=None)
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.pause()
        assert app.warmed == []  # nothing before a login: the PIN screen comes up first
        for key in MANAGER_PIN:
            await pilot.press(key)
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(app.warmed) == len(SCREENS) and not app.workers)
        assert app.warmed == [module for module, _, _ in SCREENS.values()]
        await pilot.press("ctrl+l")  # locked and logged in again: not read twice
        await wait_until(pilot, lambda: app.current_mode == "login")
        for key in MANAGER_PIN:
            await pilot.press(key)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.current_mode == "orders" and app.screen.is_mounted)
        await pilot.pause(0.2)
        assert len(app.warmed) == len(SCREENS) and not app.workers
