"""The reports screen against a day whose figures are worked out by hand below: sales, orders, average,
covers, top dish, the hour strip; the money (takings by method, the drawer's cash, visits paid and unpaid, tax);
the previous day; the CSV export (one table, money in yuan); a waiter kept out; and snapshots."""

from __future__ import annotations

import csv
import io
import json

import pytest
from rich.cells import cell_len
from rich.console import Console
from textual.widgets import Static

from appliance.db.orders import change_status, void_line
from appliance.db.payments import record_payment, refund_payment
from appliance.domain.orders import Actor, OrderStatus
from tests.tui.conftest import WAITER_PIN, message, place_order, steady, wait_until
from tui.days import check_day
from tui.screens.orders import OrdersScreen
from tui.screens.reports import ReportsScreen, heat_cell, heat_strip

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


# The money of that day, by hand (payments and a refund on the day's visits):
#   A2's first visit (#a, 8.00) was closed owing: unpaid
#   A1 (#b 40.00 + #e 32.00 = 72.00): cash 100.00, change 28.00; 5.00 of it refunded; then card 5.00: paid
#   A2's second visit (#c, 100.00): WeChat 60.00: 40.00 still owed
#   T1 (#f, 36.00): Alipay 36.00: paid
CASH_NET = 10000 - 2800 - 500  # 67.00: what the drawer should hold
TAKINGS = CASH_NET + 500 + 6000 + 3600  # 168.00 = sales 216.00 less 48.00 owed
OWED = 800 + 4000
# Tax at the store's 6 % (tax_rate_bp's default), included in prices, per order: round(total * 600 / 10600): 45 + 226 + 566 + 181 + 204.
TAX = 45 + 226 + 566 + 181 + 204  # 12.22


def pay_the_day(db, placed: dict[str, dict]) -> None:
    a1, a2, t1 = (placed[k]["session_id"] for k in ("b", "c", "f"))
    with db:
        cash = record_payment(db, a1, "cash", 10000, "店长 Manager")
        refund_payment(db, cash.payment_id, 500, "汤洒了 spilt soup", "店长 Manager")
        record_payment(db, a1, "card", 500)
        record_payment(db, a2, "wechat", 6000)
        record_payment(db, t1, "alipay", 3600)


def shown(app, part: str, width: int = 120) -> str:
    """A part of the report as plain text, as rich lays it out `width` columns wide."""
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
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
        assert shown(app, "turnover") == "Table turnover 翻台 4 visits at 3 tables: A1×1  A2×2  T1×1"
        losses = shown(app, "losses").splitlines()
        assert losses == [
            "Cancelled orders 取消 (1)",
            f" #{placed['d']['ticket_no']} table A3: 客人取消 guest cancelled",
            "Voided lines 退菜 (1)",
            f" #{placed['e']['ticket_no']} 3x 矿泉水: 沽清 sold out",
        ]


async def test_the_days_money_equals_the_hand_computation(settings, make_console, db):
    pay_the_day(db, known_day(db))
    assert (CASH_NET, TAKINGS, OWED, TAX) == (6700, 16800, 4800, 1222) and TAKINGS + OWED == SALES
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_reports(app, pilot)
        assert [line.split() for line in shown(app, "money").splitlines()] == [
            ["Takings", "收款", "¥168.00", "in", "4", "payments"],
            ["kept", "实收", "taken", "收", "change", "找零", "refunded", "退款"],
            ["现金", "cash", "¥67.00", "¥100.00", "¥28.00", "¥5.00"],
            ["刷卡", "card", "¥5.00", "¥5.00"],
            ["微信", "WeChat", "¥60.00", "¥60.00"],
            ["支付宝", "Alipay", "¥36.00", "¥36.00"],
            ["Cash", "in", "drawer", "应有现金", "¥67.00", "(cash", "taken", "−", "change", "−", "cash", "refunds)"],
            ["Visits", "桌次", "2", "paid", "已付,", "2", "unpaid", "未付", "(¥48.00", "owed)"],
            ["Tax", "included", "含税", "¥12.22"],
        ]
        await pilot.press("E")
        path = settings.data_dir / "exports" / "report-2026-11-21.csv"
        await wait_until(pilot, lambda: message(app).startswith("✓ report for 2026-11-21 saved"))
    rows = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))
    summary = {row[1]: row[2:] for row in rows if row[0] == "summary"}
    assert summary["takings"] == ["4", "168.00", "payments, net"]
    assert summary["cash expected in drawer"] == ["", "67.00", "cash less change less cash refunds"]
    assert summary["visits paid"] == ["2", "", ""] and summary["visits unpaid"] == ["2", "48.00", "still owed"]
    assert summary["tax included"] == ["", "12.22", ""]
    assert [row[1:4] for row in rows if row[0] == "payments"] == [
        ["cash", "1", "67.00"],
        ["card", "1", "5.00"],
        ["wechat", "1", "60.00"],
        ["alipay", "1", "36.00"],
    ]
    assert [row[4] for row in rows if row[1] == "cash"] == ["received 100.00, change 28.00, refunded 5.00"]


async def test_a_day_without_payments_says_so(settings, make_console, db):
    known_day(db)
    app = make_console()
    async with app.run_test(size=(120, 40)) as pilot:
        await open_reports(app, pilot)
        assert shown(app, "money").splitlines() == [
            "Takings 收款 ¥0.00: no payments 无收款",
            "Cash in drawer 应有现金 ¥0.00 (cash taken − change − cash refunds)",
            "Visits 桌次 0 paid 已付, 4 unpaid 未付 (¥216.00 owed)",
            "Tax included 含税 ¥12.22",
        ]


LONG_REASON = "客人等了四十分钟还没上菜 the guests waited forty minutes for their first dish and left"


async def test_the_report_wraps_at_80_by_24(settings, make_console, db):
    placed = known_day(db)
    pay_the_day(db, placed)
    g = place_order(db, table="A5", key="g", items=(("har_gow", 1),), minutes_ago=10, diners=2)
    place_order(db, table="A2", key="h", items=(("erguotou", 1),), minutes_ago=5)  # the demo's longest name, 20.00
    with db:
        change_status(db, g["id"], OrderStatus.CANCELLED, Actor.STAFF, LONG_REASON)
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_reports(app, pilot)
        width = app.screen.query_one("#losses", Static).content_region.width
        assert width < 80
        parts = {
            part: shown(app, part, width).splitlines()
            for part in ("summary", "money", "hours", "dishes", "turnover", "losses")
        }
        for part, lines in parts.items():
            for line in lines:
                assert cell_len(line) <= width, (part, line)
        # Each figure of the summary stays with its label when the line is too short for all four.
        assert [line.split() for line in shown(app, "summary", 40).splitlines()] == [
            ["Sales", "营业额", "¥236.00", "Orders", "单数", "6"],
            ["Average", "客单价", "¥39.33", "Covers", "人数", "9"],
        ]
        # The money: one method a line, the drawer's cash and the visits whole on lines of their own.
        assert [line.split()[:3] for line in parts["money"][2:6]] == [
            ["现金", "cash", "¥67.00"],
            ["刷卡", "card", "¥5.00"],
            ["微信", "WeChat", "¥60.00"],
            ["支付宝", "Alipay", "¥36.00"],
        ]
        assert parts["money"][-3:] == [
            "Cash in drawer 应有现金 ¥67.00 (cash taken − change − cash refunds)",
            "Visits 桌次 2 paid 已付, 2 unpaid 未付 (¥68.00 owed)",  # A2 owes 20.00 more
            "Tax included 含税 ¥13.35",  # and 1.13 of tax more
        ]
        assert any("牛栏山二锅头（小瓶）" in line for line in parts["dishes"])
        # A long reason goes on under its own first character, never back at column 1.
        losses = parts["losses"]
        first = next(i for i, line in enumerate(losses) if line.startswith(f" #{g['ticket_no']} table A5:"))
        indent = losses[first].index("客人")
        assert cell_len(losses[first][:indent]) == len(f" #{g['ticket_no']} table A5: ")
        follow = losses[first + 1]
        assert follow[:indent].strip() == "" and follow[indent] != " ", follow


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
    placed = known_day(db)
    app = make_console()
    async with app.run_test(size=(80, 24)) as pilot:
        await open_reports(app, pilot)
        await pilot.press("E")
        path = settings.data_dir / "exports" / "report-2026-11-21.csv"
        await wait_until(pilot, lambda: message(app) == f"✓ report for 2026-11-21 saved to {path}")
    rows = list(csv.reader(io.StringIO(path.read_text("utf-8-sig"))))
    # One table a spreadsheet opens as one sheet: a section column, money in yuan (never in fen).
    assert rows[0] == ["section", "item", "count", "amount (CNY)", "detail"]
    assert {len(row) for row in rows} == {5}
    assert rows[1:5] == [
        ["summary", "day", "", "", "2026-11-21"],
        ["summary", "sales", "5", "216.00", "orders, not cancelled"],
        ["summary", "average ticket", "", "43.20", ""],
        ["summary", "covers", "9", "", ""],
    ]
    assert ["top dishes", "水晶虾饺", "3", "96.00", ""] in rows
    assert ["sales by hour", "19:00", "", "100.00", ""] in rows and ["sales by hour", "17:00", "", "8.00", ""] in rows
    assert ["turnover", "A2", "2", "", ""] in rows
    assert ["cancelled orders", f"#{placed['d']['ticket_no']} table A3", "", "", "客人取消 guest cancelled"] in rows
    assert rows[-1] == ["voided lines", f"#{placed['e']['ticket_no']} 矿泉水", "3", "", "沽清 sold out"]
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
        await steady(pilot, app)

    assert snap_compare(app, terminal_size=size, run_before=settle)
