"""The settings screen against a real store file: edits go through the store's validation and the audit trail."""

from __future__ import annotations

import json

import pytest
from textual.widgets import DataTable, Input, OptionList, Static

from appliance.db.store_settings import load_store_settings
from tests.tui.conftest import WAITER_PIN, message, wait_until

pytestmark = pytest.mark.anyio


async def open_settings(pilot, app):
    await pilot.press("7")
    await wait_until(
        pilot, lambda: bool(app.screen.query("#settings")) and app.screen.query_one(DataTable).row_count > 0
    )


async def edit(pilot, app, name):
    """Highlight one setting and press enter, as staff would after moving the cursor to it."""
    table = app.screen.query_one(DataTable)
    table.move_cursor(row=table.get_row_index(name))
    await pilot.press("enter")


async def type_answer(pilot, app, text):
    await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
    field = app.screen.query_one("#answer", Input)
    await pilot.press(*["backspace"] * len(field.value), *text, "enter")


def shown(app, name):
    return str(app.screen.query_one(DataTable).get_row(name)[1])


def trail(db):
    return [
        (n, a, s, json.loads(d))
        for n, a, s, d in db.execute("SELECT staff_name, action, subject, details FROM audit_log ORDER BY id")
    ]


async def test_service_charge_a_boolean_and_a_choice_are_stored_and_audited(settings, make_console, db):
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_settings(pilot, app)
        assert shown(app, "service_charge_bp") == "0.00%  (0 bp)" and shown(app, "auto_accept") == "✗ off 关"
        await edit(pilot, app, "service_charge_bp")
        await type_answer(pilot, app, "1000")
        await wait_until(pilot, lambda: message(app) == "✓ Service charge 服务费: 0.00%  (0 bp) → 10.00%  (1000 bp)")
        assert shown(app, "service_charge_bp") == "10.00%  (1000 bp)"
        await edit(pilot, app, "auto_accept")  # a boolean toggles
        await wait_until(pilot, lambda: shown(app, "auto_accept") == "✓ on 开")
        await edit(pilot, app, "print_on")  # a choice is picked from the list
        await wait_until(pilot, lambda: bool(app.screen.query(OptionList)))
        await pilot.press("down", "enter")
        await wait_until(pilot, lambda: shown(app, "print_on") == "accept")
        assert app.store is not None and app.store.service_charge_bp == 1000  # the console's own copy too
    stored = load_store_settings(db)
    assert (stored.service_charge_bp, stored.auto_accept, stored.print_on) == (1000, True, "accept")
    assert trail(db) == [
        ("店长 Manager", "settings.change", "service_charge_bp", {"from": 0, "to": 1000}),
        ("店长 Manager", "settings.change", "auto_accept", {"from": False, "to": True}),
        ("店长 Manager", "settings.change", "print_on", {"from": "submit", "to": "accept"}),
    ]


async def test_a_bad_value_shows_the_domains_message_and_changes_nothing(settings, make_console, db):
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_settings(pilot, app)
        await edit(pilot, app, "service_charge_bp")
        await type_answer(pilot, app, "99999")
        error = lambda: str(app.screen.query_one("#error", Static).render())  # noqa: E731
        await wait_until(pilot, lambda: "service_charge_bp must be at most 5000, got 99999" in error())
        await type_answer(pilot, app, "ten")
        await wait_until(pilot, lambda: "service_charge_bp must be int" in error())
        await pilot.press("escape")
        await wait_until(pilot, lambda: message(app) == "not changed")
        await edit(pilot, app, "opening_hours")
        await type_answer(pilot, app, "11:00-25:00")
        await wait_until(pilot, lambda: "not a time of day" in error())
        await type_answer(pilot, app, "11:00-14:00, 17:00-22:00")
        await wait_until(pilot, lambda: shown(app, "opening_hours") == "11:00-14:00, 17:00-22:00")
    stored = load_store_settings(db)
    assert stored.service_charge_bp == 0 and stored.opening_hours == ("11:00-14:00", "17:00-22:00")
    assert [row[2] for row in trail(db)] == ["opening_hours"]


async def test_a_waiter_cannot_open_settings(settings, make_console, db):
    app = make_console(pin=WAITER_PIN)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("7")
        await wait_until(pilot, lambda: "cannot open settings" in message(app))
        assert not app.screen.query("#settings")
    assert load_store_settings(db).service_charge_bp == 0
