"""Console test helpers: the app on a real store file, a fixed clock, staff already known, orders placed
through the store's own functions (what the web process would do), and waiting for the screen to catch up."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from rich.console import Console
from textual.widgets import DataTable, Input

from appliance.db.connection import open_connection
from appliance.db.orders import MenuCache, OrderRequest, submit_order
from appliance.db.staff import Staff, login
from appliance.db.tables import list_tables
from appliance.demo import DEMO_STAFF
from appliance.domain.pricing import CartLine
from appliance.store import read_secret
from tui.app import ConsoleApp

# A fixed "now" for the console (ages, today's report) so screens are the same on every run.
NOW = datetime(2026, 11, 21, 12, 30, tzinfo=UTC)  # 20:30 in Shanghai
MANAGER_PIN = next(pin for _, role, pin in DEMO_STAFF if role == "manager")
WAITER_PIN = next(pin for _, role, pin in DEMO_STAFF if role == "waiter")


def place_order(
    db: Any,
    table: str = "A1",
    key: str = "k",
    items: Iterable[tuple[str, int]] = (("har_gow", 2),),
    minutes_ago: float | None = None,
    diners: int | None = None,
    note: str = "",
) -> dict[str, Any]:
    """An order as the web would take it, optionally back-dated relative to NOW."""
    tables = {t.name: t for t in list_tables(db)}
    lines = tuple(CartLine(db.execute("SELECT id FROM items WHERE key = ?", (k,)).fetchone()[0], q) for k, q in items)
    with db:
        placed = submit_order(
            db,
            tables[table],
            OrderRequest(client_key=f"{key}-{table}-xxxxxxxx", lines=lines, diners=diners, note=note),
            MenuCache(),
        ).order
        if minutes_ago is not None:
            at = (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            db.execute(
                "UPDATE orders SET created_at = ?, updated_at = ?, ticket_day = ? WHERE id = ?",
                (at, at, "2026-11-21", placed["id"]),
            )
            db.execute("UPDATE table_sessions SET opened_at = ? WHERE id = ?", (at, placed["session_id"]))
    return placed


def staff_for(settings: Any, pin: str) -> Staff:
    conn = open_connection(settings.db_path)
    try:
        return login(conn, read_secret(settings.secret_path), pin)
    finally:
        conn.close()


@pytest.fixture
def make_console(settings: Any) -> Callable[..., ConsoleApp]:
    """ConsoleApp(logged in as `pin`, or at the PIN screen with pin=None), clock fixed at NOW."""

    def make(pin: str | None = MANAGER_PIN, clock: Callable[[], datetime] = lambda: NOW) -> ConsoleApp:
        staff = staff_for(settings, pin) if pin else None
        return ConsoleApp(
            settings.db_path,
            read_secret(settings.secret_path),
            public_base_url=settings.public_base_url,
            clock=clock,
            staff=staff,
        )

    return make


async def wait_until(pilot: Any, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Let the console run until predicate() holds (live updates arrive within a poll or two)."""
    steps = int(timeout / 0.05)
    for _ in range(steps):
        if predicate():
            return
        await pilot.pause(0.05)
    assert predicate(), "the console did not get there in time"


def message(app: ConsoleApp) -> str:
    return app.last_message


# -- snapshots: a frame taken only once the screen has stopped changing ------------------------------------------


def screen_lines(app: Any) -> list[str]:
    """The screen as a person reads it, one string per terminal row (what the snapshot's SVG draws). Textual has
    no public call for the text of a frame: the compositor's full update is what export_screenshot() prints."""
    console = Console(
        width=app.size.width, height=app.size.height, file=io.StringIO(), record=True, legacy_windows=False
    )
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text().splitlines()


async def steady(pilot: Any, app: Any) -> None:
    """Wait until the frame stops changing: a DataTable measures its new rows' widths when it is next idle, which on a
    busy machine can come after the frame a snapshot would take (a header row at its old widths)."""
    still(app)
    frames = [screen_lines(app)]
    for _ in range(100):
        await pilot.pause(0.05)
        frames.append(screen_lines(app))
        if len(frames) >= 3 and frames[-1] == frames[-2] == frames[-3]:  # the same for a tenth of a second
            return
    raise AssertionError("the screen kept changing")


def still(app: Any) -> None:
    for field in app.screen.query(Input):
        field.cursor_blink = False
    for table in app.screen.query(DataTable):
        table.cursor_blink = False
