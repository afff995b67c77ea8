"""One key map everywhere (tui/keys.py): every screen binds exactly the map's keys, the README's table is the map's,
upper-case keys are what terminals send for shift, every key that asks does ask first, `?` lists the screen's keys
the role allows, the command palette finds and runs every allowed action by name, the tabs show only the screens
the role may open and the footer fits 80 columns on every screen."""

from __future__ import annotations

import importlib
import re
import tokenize
from pathlib import Path

import pytest
from textual._xterm_parser import XTermParser
from textual.command import CommandPalette
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static
from textual.widgets._footer import FooterKey

from appliance.db.floor import take_payment
from appliance.db.staff import PERMISSIONS
from tests.tui.conftest import MANAGER_PIN, WAITER_PIN, message, place_order, wait_until
from tui.app import ConsoleApp
from tui.base import ConsoleScreen
from tui.commands import commands
from tui.help import HelpScreen, readme_key_table
from tui.keys import ANY, APP_KEYS, KEYS, SCREENS, allowed, bindings_for, keys_for

pytestmark = pytest.mark.anyio

README = Path(__file__).parents[2] / "README.md"
WAITER = PERMISSIONS["waiter"].__contains__
MANAGER = PERMISSIONS["manager"].__contains__


def screen_class(mode: str) -> type[ConsoleScreen]:
    module, name, _ = SCREENS[mode]
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


@pytest.mark.parametrize("mode", list(SCREENS))
def test_every_screen_binds_exactly_the_maps_keys_to_actions_it_has(mode):
    cls = screen_class(mode)
    bound = [(b.key, b.action, b.description, b.show, b.priority) for b in cls.BINDINGS]  # type: ignore[union-attr]
    assert bound == [(b.key, b.action, b.description, b.show, b.priority) for b in bindings_for(mode)]
    for key in keys_for(mode):
        if ANY not in key.screens:
            assert callable(getattr(cls, f"action_{key.action.split('(')[0]}", None)), key


def test_the_app_binds_each_screens_digit_and_f_key_the_help_key_and_lock_and_quit():
    bound = {b.key: b.action for b in ConsoleApp.BINDINGS}  # type: ignore[union-attr]
    for mode, (_, _, digit) in SCREENS.items():
        assert bound[digit] == bound[f"f{digit}"] == f"go('{mode}')"
    assert bound["question_mark"] == "help" and bound["ctrl+q"] == "quit" and bound["f12"] == bound["ctrl+l"] == "lock"
    assert set(ConsoleApp.MODES) == {"login", *SCREENS}


def test_the_readme_key_table_is_the_maps():
    text = README.read_text(encoding="utf-8")
    start = text.index("<!-- keys:")
    table = text[text.index("\n", start) + 1 : text.index("<!-- /keys -->")]
    assert table == readme_key_table(), "README's key table differs from tui/keys.py: paste tui.help.readme_key_table()"
    for key in KEYS:
        assert f"`{key.shown}`" in table
    for shown, _ in APP_KEYS:
        assert shown.split(" / ")[0] in table


def test_a_terminal_sends_shift_x_as_the_key_the_map_binds():
    """Shift+x arrives as "X" (the character), the kitty protocol's escape code as "shift+x", `?` as question_mark:
    the map binds "X" and question_mark, and the console turns "shift+x" into "X" (see the pilot test below)."""
    parser = XTermParser()
    keys = [e.key for e in parser.feed("X?\x1b[120;2u")]  # type: ignore[attr-defined]
    assert keys == ["X", "question_mark", "shift+x"]
    assert {k.key for k in KEYS} >= {"X", "A", "question_mark"}


async def open_screen(pilot, app, mode: str) -> None:
    await pilot.press(SCREENS[mode][2])
    await wait_until(pilot, lambda: app.current_mode == mode and isinstance(app.screen, ConsoleScreen))


async def test_upper_case_cancels_lower_case_does_not_and_shift_x_is_x(settings, make_console, db):
    place_order(db, table="A2")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 1)
        await pilot.press("x")  # not a key of Orders any more (it was cancel)
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConsoleScreen)
        await pilot.press("shift+x")  # as a terminal reporting every key as an escape code sends it
        await wait_until(pilot, lambda: isinstance(app.screen, ModalScreen))
        assert "why" in str(app.screen.query(".title").first().render()).lower()  # cancel's reason, asked first
        await pilot.press("escape")
        await wait_until(pilot, lambda: message(app) == "not cancelled")
    assert db.execute("SELECT status FROM orders").fetchall() == [("submitted",)]


def fingerprint(db) -> tuple:
    """What a destructive key would change: orders, lines, visits, payments, dishes, table keys, the audit trail."""
    return db.execute(
        "SELECT (SELECT group_concat(status) FROM orders), (SELECT group_concat(status) FROM order_lines),"
        " (SELECT group_concat(status) FROM table_sessions), (SELECT count(*) FROM refunds),"
        " (SELECT group_concat(hidden) FROM items), (SELECT group_concat(token_version) FROM tables),"
        " (SELECT count(*) FROM audit_log)"
    ).fetchone()


async def highlight_table(pilot, app, name: str) -> None:
    await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count > 0)
    screen = app.screen
    screen.select(next(t.id for t in screen.tables.values() if t.name == name))
    await wait_until(pilot, lambda: str(screen.query_one("#detail", Static).render()).startswith(name + " "))


ASKING = [(k.screens[0], k.key) for k in KEYS if k.asks] + [("tables", "v")]


def test_the_keys_that_ask_are_the_destructive_ones():
    assert sorted(ASKING) == sorted(
        [
            ("orders", "A"),
            ("orders", "X"),
            ("orders", "v"),
            ("tables", "v"),
            ("tables", "R"),
            ("tables", "C"),
            ("tables", "D"),
            ("menu", "H"),
            ("printers", "K"),
        ]
    )


@pytest.mark.parametrize(("mode", "key"), ASKING)
async def test_every_key_that_destroys_or_moves_money_asks_first(settings, make_console, db, mode, key):
    """The key opens a question and nothing is written until it is answered; Esc leaves everything as it was (for
    C even a table that owes nothing: closing it is asked too)."""
    placed = place_order(db, table="A1")
    if key in ("R", "C"):
        with db:
            take_payment(db, placed["session_id"], "card", placed["total_minor"], "小王")
    before = fingerprint(db)
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await open_screen(pilot, app, mode)
        if mode == "tables":
            await highlight_table(pilot, app, "A1")
        else:
            await wait_until(
                pilot, lambda: not app.screen.query(DataTable) or app.screen.query_one(DataTable).row_count
            )
        await pilot.press(key)
        await wait_until(pilot, lambda: isinstance(app.screen, ModalScreen))
        assert fingerprint(db) == before  # asked, nothing done yet
        for _ in range(3):  # Esc out of every step of it
            if isinstance(app.screen, ConsoleScreen):
                break
            await pilot.press("escape")
            await pilot.pause(0.1)
        await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        await pilot.pause(0.2)
    assert fingerprint(db) == before


def help_rows(app) -> dict[str, str]:
    screen = app.screen
    assert isinstance(screen, HelpScreen)
    return {shown: str(what) for shown, what in screen.rows()}


async def test_question_mark_lists_the_screens_keys_the_role_allows(settings, make_console, db):
    waiter = make_console(pin=WAITER_PIN)
    async with waiter.run_test(size=(80, 24)) as pilot:
        await open_screen(pilot, waiter, "tables")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(waiter.screen, HelpScreen))
        rows = help_rows(waiter)
        assert "Keys: Tables 桌台" in str(waiter.screen.query_one("#help-title", Static).render())
        assert {"g", "n", "p", "b", "h", "m", "v", "R", "C", "?", "ctrl+p", "ctrl+q"} <= set(rows)
        assert "D" not in rows  # closing the day is a manager's
        assert "asks first" in rows["R"] and "asks first" not in rows["g"]
        assert rows["n"].startswith("Order 点菜")
        region = waiter.screen.query_one("#keys").region
        assert region.bottom <= 24 and region.right <= 80  # the list fits 80x24 (it scrolls when longer)
        await pilot.press("question_mark")  # ? again closes it
        await wait_until(pilot, lambda: isinstance(waiter.screen, ConsoleScreen))
    manager = make_console(pin=MANAGER_PIN)
    async with manager.run_test(size=(80, 24)) as pilot:
        await open_screen(pilot, manager, "tables")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(manager.screen, HelpScreen))
        assert "D" in help_rows(manager)
        await pilot.press("escape")
        await open_screen(pilot, manager, "orders")
        await pilot.press("question_mark")
        await wait_until(pilot, lambda: isinstance(manager.screen, HelpScreen))
        assert {"a / Enter", "A", "X", "s", "t", "Home", "v", "/", "f", "Esc"} <= set(help_rows(manager))


def command_names(app) -> list[str]:
    return [c.name for c in commands(app)]


async def test_the_palette_lists_every_action_the_role_allows_on_every_screen(settings, make_console, db):
    for pin, may in ((MANAGER_PIN, MANAGER), (WAITER_PIN, WAITER)):
        app = make_console(pin=pin)
        async with app.run_test(size=(80, 24)) as pilot:
            await wait_until(pilot, lambda app=app: isinstance(app.screen, ConsoleScreen))
            names = command_names(app)
            for mode in SCREENS:
                opens = screen_class(mode).PERMISSION is None or may(screen_class(mode).PERMISSION)
                expected = {
                    f"{mode.capitalize()}: {k.label} ({k.shown})"
                    for k in allowed(keys_for(mode), may)
                    if ANY not in k.screens and k.key != "enter"  # Enter is `a`'s action: listed once
                }
                listed = {n for n in names if n.startswith(f"{mode.capitalize()}: ") and "go to the screen" not in n}
                assert listed == (expected if opens else set()), mode
            if may is WAITER:
                assert not any(n.startswith(("Reports", "Settings", "Audit")) for n in names)
                assert "Tables: Day end 日结 (D)" not in names and "Menu: Price 改价 (P)" not in names
            else:
                assert "Tables: Day end 日结 (D)" in names and "Audit: go to the screen (8 / F8)" in names


async def test_the_palette_runs_an_action_on_its_own_screen_going_there_first(settings, make_console, db):
    place_order(db, table="A1")
    app = make_console()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen) and app.current_mode == "orders")
        await pilot.press("ctrl+p")
        await wait_until(pilot, lambda: isinstance(app.screen, CommandPalette))
        await pilot.press(*"day end")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.current_mode == "tables" and isinstance(app.screen, ModalScreen))
        assert "Close the day" in str(app.screen.query(".title").first().render())  # asked first, as D asks
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
    assert db.execute("SELECT status FROM table_sessions").fetchall() == [("open",)]


async def test_the_palette_is_closed_while_the_console_is_locked(settings, make_console, db):
    app = make_console(pin=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(0.2)
        await pilot.press("ctrl+p")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, CommandPalette) and command_names(app) == []


def nav(app) -> str:
    return str(app.screen.query_one("#nav", Static).render())


async def test_the_tabs_show_only_the_screens_the_role_may_open(settings, make_console, db):
    waiter = make_console(pin=WAITER_PIN)
    async with waiter.run_test(size=(120, 40)) as pilot:
        await wait_until(pilot, lambda: "Orders" in nav(waiter))
        assert [w for w in ("Orders", "Tables", "Menu", "Printers", "Sync") if w in nav(waiter)] == [
            "Orders",
            "Tables",
            "Menu",
            "Printers",
            "Sync",
        ]
        assert not any(w in nav(waiter) for w in ("Reports", "Settings", "Audit"))
    manager = make_console()
    async with manager.run_test(size=(80, 24)) as pilot:
        await wait_until(pilot, lambda: "Orders" in nav(manager))
        assert all(f"{digit} {mode.capitalize()}" in nav(manager) for mode, (_, _, digit) in SCREENS.items())


def footer_keys(app) -> list[FooterKey]:
    return list(app.screen.query_one("ConsoleFooter").query(FooterKey))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
async def test_the_footer_fits_on_every_screen_and_keeps_the_help_key(settings, make_console, db, size):
    app = make_console()
    async with app.run_test(size=size) as pilot:
        for mode in SCREENS:
            await open_screen(pilot, app, mode)
            await wait_until(pilot, lambda: bool(footer_keys(app)))
            footer = app.screen.query_one("ConsoleFooter")
            keys = footer_keys(app)
            assert footer.virtual_size.width <= size[0], mode  # nothing scrolled out of sight
            assert all(k.region.right <= size[0] for k in keys), mode
            assert keys[-1].key == "question_mark", mode
            shown = {k.key for k in keys}
            assert shown <= {k.key for k in keys_for(mode) if k.footer}, mode
        await open_screen(pilot, app, "orders")
        await wait_until(pilot, lambda: bool(footer_keys(app)))
        words = [k.description for k in footer_keys(app)]
        if size[0] >= 120:
            assert words[0] == "Next 下一步"  # both languages when there is room
        else:
            assert words[0] == "下一步"  # the store's first language only


async def test_a_waiters_footer_leaves_out_what_a_waiter_may_not_do(settings, make_console, db):
    app = make_console(pin=WAITER_PIN)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(pilot, app, "menu")
        await wait_until(pilot, lambda: bool(footer_keys(app)))
        assert [k.key for k in footer_keys(app)] == ["o", "k", "slash", "question_mark"]  # no price, hours, hide


@pytest.mark.parametrize("mode", list(SCREENS))
def test_the_keys_a_screen_names_in_its_words_are_its_keys(mode):
    """A hint such as "(C = close the table)" or "press r" names a key of that screen's map (Tables' hints said
    o, c and r after those keys had moved to g, C and R)."""
    path = importlib.import_module(SCREENS[mode][0]).__file__
    with open(path, encoding="utf-8") as source:  # type: ignore[arg-type]
        text = " ".join(t.string for t in tokenize.generate_tokens(source.readline) if t.type == tokenize.STRING)
    named = set(re.findall(r"(?<![\w+])([a-zA-Z]) = [a-z]", text)) | set(re.findall(r"press ([a-zA-Z])\b", text))
    named -= {"y", "n"}  # the yes / no of a question (tui/dialogs.py)
    assert named <= {k.shown for k in keys_for(mode)}, mode


async def test_after_a_manager_locks_a_waiter_gets_a_waiters_footer_and_tabs(settings, make_console, db):
    """The screens stay open across logins: what they show of the keys follows whoever logged in last."""
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_screen(pilot, app, "tables")
        await wait_until(pilot, lambda: "close_day" in {k.action for k in footer_keys(app)})
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: app.current_mode == "login")
        await pilot.press(*WAITER_PIN, "enter")
        await wait_until(pilot, lambda: app.current_mode == "orders")
        await open_screen(pilot, app, "tables")
        await wait_until(pilot, lambda: bool(footer_keys(app)) and "Reports" not in nav(app))
        assert "close_day" not in {k.action for k in footer_keys(app)}


def test_the_readmes_console_section_names_only_the_maps_keys():
    """A key named in the console's paragraphs (`X`, `p`, `[`) is one of the map's (or a question's y / n): the
    paragraphs still said `x` after cancel had moved to X."""
    text = README.read_text(encoding="utf-8")
    start = text.index("## The console")
    section = text[start : text.index("\n## ", start + 1)]
    named = set(re.findall(r"`([a-zA-Z?/\[\]])`", section))
    assert named - {"y", "n"} <= {k.shown for k in KEYS}
