"""The reports screen against a day whose figures are worked out by hand below: sales, orders, average,
covers, top dish, the hour strip; the previous day; the CSV export; a waiter kept out; and snapshots."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rich.console import Console
from textual.widgets import Static

from appliance.db.orders import change_status, void_line
from appliance.domain.orders import Actor, OrderStatus
from tests.tui.conftest import WAITER_PIN, message, place_order, wait_until
from tui.screens.orders import OrdersScreen
from tui.screens.reports import ReportsScreen, check_day, heat_cell, heat_strip

pytestmark = pytest.mark.anyio

# NOW is 20:30 in Shanghai on 2026-11-21. The day, by hand (prices: 水晶虾饺 har_gow 32.00, 矿泉水 water 8.00,
# 本帮红烧肉 red_braised_pork 68.00, 糖醋里脊 sweet_sour_pork 52.00, 青岛纯生 tsingtao_draft 18.00):
#   #a 17:30 A2, 1 diner : 1 water                          =   8.00   (then the visit closes)
#   #b 18:00 A1, 2 diners: 1 har_gow + 1 water              =  40.00
#   #c 19:00 A2, 4 diners: 1 red_braised_pork + 1 har_gow   = 100.00   (A2's second visit)
#   #d 19:10 A3, 3 diners: 1 sweet_sour_pork                =  52.00   cancelled: 客人取消 guest cancelled
#   #e 20:00 A1          : 3 water + 1 har_gow, water voided (沽清 sold out) = 32.00
#   #f 20:10 T1, 2 diners: 2 tsingtao_draft                 =  36.00
SALES = 800 + 4000 + 10000 + 3200 + 3600  # 216.00, the cancelled order left out
ORDERS = 5
AVERAGE = SALES // ORDERS  # 43.20
COVERS = 1 + 2 + 4 + 2  # the visits with a kept order: A2 twice, A1, T1 (A3's was cancelled)
BY_HOUR = {17: 800, 18: 4000, 19: 10000, 20: 3200 + 3600}
# Against the busiest hour (19:00, 100.00): 17 is 8 % -> ░, 18 is 40 % -> ▒, 20 is 68 % -> ▓, 19 -> █.
STRIP = {17: "░░", 18: "▒▒", 19: "██", 20: "▓▓"}
# 水晶虾饺 3 (b, c, e), 青岛纯生 2, 矿泉水 2 (a, b; e's three were voided), 本帮红烧肉 1.


def known_day(db) -> dict[str, dict]:
    placed = {"a": place_order(db, table="A2", key="a", items=(("mineral_water", 1),), minutes_ago=180, diners=1)}
    with db:
        db.execute("UPDATE table_sessions SET status = 'closed' WHERE id = ?", (placed["a"]["session_id"],))
    placed["b"] = place_order(
        db, table="A1", key="b", items=(("har_gow", 1), ("mineral_water", 1)), minutes_ago=150, diners=2
    )
    placed["c"] = place_order(
        db, table="A2", key="c", items=(("red_braised_pork", 1), ("har_gow", 1)), minutes_ago=90, diners=4
    )
    placed["d"] = place_order(db, table="A3", key="d", items=(("sweet_sour_pork", 1),), minutes_ago=80, diners=3)
    placed["e"] = place_order(db, table="A1", key="e", items=(("mineral_water", 3), ("har_gow", 1)), minutes_ago=30)
    placed["f"] = place_order(db, table="T1", key="f", items=(("tsingtao_draft", 2),), minutes_ago=20, diners=2)
    with db:
        change_status(db, placed["d"]["id"], OrderStatus.CANCELLED, Actor.STAFF, "客人取消 guest cancelled")
        void_line(db, placed["e"]["id"], 1, "沽清 sold out")
    # The day before: one order at T2, 2 diners, 2 har_gow = 64.00 at 19:30.
    placed["y"] = place_order(db, table="T2", key="y", items=(("har_gow", 2),), minutes_ago=25 * 60, diners=2)
    with db:
        db.execute("UPDATE orders SET ticket_day = '2026-11-20' WHERE id = ?", (placed["y"]["id"],))
    return placed


def shown(app, part: str) -> str:
    """A part of the report as plain text, as rich lays it out 120 columns wide."""
    console = Console(width=120, file=io.StringIO(), record=True, color_system=None)
    console.print(app.screen.query_one(f"#{part}", Static).content)
    return "\n".join(line.rstrip() for line in console.export_text().rstrip("\n").splitlines())


async def open_reports(app, pilot) -> None:
    await pilot.press("6")
    await wait_until(pilot, lambda: isinstance(app.screen, ReportsScreen) and "Sales" in shown(app, "summary"))


def test_the_heat_strip_scales_to_the_busiest_hour():
    assert [heat_cell(v, 100) for v in (0, 1, 25, 26, 50, 51, 75, 76, 100)] == [
        "· ",
        "░░",
        "░░",
        "▒▒",
        "▒▒",
        "▓▓",
        "▓▓",
        "██",
        "██",
    ]
    hours = [0] * 24
    hours[4], hours[5] = 10, 40
    labels, strip = heat_strip(hours, first_hour=5)
    assert labels.split() == [f"{h:02d}" for h in [*range(5, 24), *range(5)]]
    assert strip[:2] == "██" and strip[-2:] == "░░" and len(strip) == len(labels) == 24 * 3 - 1


def test_a_typed_day_is_a_real_past_date():
    today = "2026-11-21"
    assert [check_day(t, today) for t in ("2026-11-20", "2026-11-21")] == [None, None]
    assert check_day("2026-11-22", today) == "2026-11-22 has not happened yet (today is 2026-11-21)"
    assert {check_day(t, today) for t in ("20261120", "2026-02-30", "yesterday")} == {"a date looks like 2026-11-21"}


async def test_the_days_figures_equal_the_hand_computation(settings, make_console, db):
    placed = known_day(db)
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_reports(app, pilot)
        assert shown(app, "day") == "2026-11-21 Saturday (today 今天)"
        assert SALES == 21600 and AVERAGE == 4320 and COVERS == 9
        assert shown(app, "summary").split() == [
            "Sales",
            "营业额",
            "¥216.00",
            "Orders",
            "单数",
            str(ORDERS),
            "Average",
            "客单价",
            "¥43.20",
            "Covers",
            "人数",
            "9",
        ]
        hours = shown(app, "hours").splitlines()
        assert hours[0] == "Sales by hour 分时  busiest 19:00 (¥100.00)"
        labels, strip = hours[1], hours[2]
        for hour in range(24):
            at = labels.index(f"{hour:02d}")
            assert strip[at : at + 2].rstrip() == STRIP.get(hour, "·"), hour
        dishes = [line.split() for line in shown(app, "dishes").splitlines()]
        assert dishes[0] == ["#", "Top", "dishes", "by", "count", "销量", "#", "by", "revenue", "销售额"]
        assert [row[:3] for row in dishes[1:]] == [
            ["1.", "水晶虾饺", "3x"],
            ["2.", "青岛纯生", "2x"],
            ["3.", "矿泉水", "2x"],
            ["4.", "本帮红烧肉", "1x"],
        ]
        assert [row[3:] for row in dishes[1:]] == [
            ["1.", "水晶虾饺", "¥96.00"],
            ["2.", "本帮红烧肉", "¥68.00"],
            ["3.", "青岛纯生", "¥36.00"],
            ["4.", "矿泉水", "¥16.00"],
        ]
        assert shown(app, "turnover") == "Table turnover 翻台 4 visits at 3 tables: A1 1  A2 2  T1 1"
        losses = shown(app, "losses").splitlines()
        assert losses == [
            "Cancelled orders 取消 (1)",
            f" #{placed['d']['ticket_no']} table A3: 客人取消 guest cancelled",
            "Voided lines 退菜 (1)",
            f" #{placed['e']['ticket_no']} 3x 矿泉水: 沽清 sold out",
        ]


async def test_previous_days_and_a_typed_date(settings, make_console, db):
    known_day(db)
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_reports(app, pilot)
        await pilot.press("left_square_bracket")
        await wait_until(pilot, lambda: shown(app, "day") == "2026-11-20 Friday")
        assert "¥64.00" in shown(app, "summary") and "Covers 人数 2" in shown(app, "summary")
        assert message(app) == "report for 2026-11-20"
        await pilot.press("left_square_bracket")
        await wait_until(pilot, lambda: shown(app, "day") == "2026-11-19 Thursday")
        assert shown(app, "summary").split()[2] == "¥0.00" and "no dishes sold" in shown(app, "dishes")
        await pilot.press("right_square_bracket", "right_square_bracket")
        await wait_until(pilot, lambda: shown(app, "day").startswith("2026-11-21"))
        await pilot.press("right_square_bracket")
        await wait_until(pilot, lambda: message(app) == "✗ 2026-11-21 is today: there is no later day yet")
        await pilot.press("d")
        await wait_until(pilot, lambda: bool(app.screen.query("#answer")))
        await pilot.press(*["backspace"] * 10, *"2026-11-22", "enter")
        await wait_until(pilot, lambda: "has not happened yet" in str(app.screen.query_one("#error", Static).render()))
        await pilot.press(*["backspace"] * 10, *"2026-11-20", "enter")
        await wait_until(pilot, lambda: shown(app, "day") == "2026-11-20 Friday")


async def test_export_writes_the_csv_under_the_data_folder(settings, make_console, db):
    known_day(db)
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_reports(app, pilot)
        await pilot.press("e")
        path = settings.data_dir / "exports" / "report-2026-11-21.csv"
        await wait_until(pilot, lambda: message(app) == f"✓ report for 2026-11-21 saved to {path}")
    rows = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))
    assert rows[:2] == [
        ["day", "currency", "sales_minor", "orders", "average_ticket_minor", "covers"],
        ["2026-11-21", "CNY", "21600", "5", "4320", "9"],
    ]
    assert rows[4] == ["水晶虾饺", "3", "9600"]
    assert ["19:00", "10000"] in rows and ["17:00", "800"] in rows
    assert rows[-1][1:] == ["矿泉水", "3", "沽清 sold out"]
    ((action, subject, details),) = db.execute("SELECT action, subject, details FROM audit_log").fetchall()
    assert (action, subject, json.loads(details)) == ("report.exported", "day 2026-11-21", {"file": str(path)})


async def test_a_waiter_cannot_open_the_reports(settings, make_console, db):
    app = make_console(pin=WAITER_PIN)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("6")
        await wait_until(pilot, lambda: "refused" in message(app))
        assert message(app) == "✗ refused: a waiter cannot open reports: ask a manager"
        assert isinstance(app.screen, OrdersScreen)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_todays_report_snapshot(settings, make_console, db, snap_compare, size):
    known_day(db)
    app = make_console()

    async def settle(pilot):
        await open_reports(app, pilot)
        await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=settle)
