"""The orders board as it looks, at 80x24 and 120x40, with Chinese dish names, late orders and a note.
Deterministic: the console's clock is fixed (NOW) and the orders are back-dated from it."""

from __future__ import annotations

import pytest

from tests.tui.conftest import place_order, steady, wait_until


def busy_evening(db):
    place_order(db, table="A1", key="1", items=(("har_gow", 2), ("mineral_water", 1)), minutes_ago=25)
    accepted = place_order(db, table="T3", key="2", items=(("har_gow", 1),), minutes_ago=12, note="不要香菜")
    place_order(db, table="A5", key="3", items=(("mineral_water", 3),), minutes_ago=2)
    with db:
        db.execute("UPDATE orders SET status = 'accepted' WHERE id = ?", (accepted["id"],))


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_orders_board_snapshot(settings, make_console, db, snap_compare, size):
    busy_evening(db)
    app = make_console()

    async def settle(pilot):
        from textual.widgets import DataTable

        await wait_until(pilot, lambda: app.screen.query_one(DataTable).row_count == 3 and not app.screen.restoring)
        await steady(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=settle)
