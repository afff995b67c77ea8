"""The day's numbers computed from what was ordered, cancelled and voided."""

from __future__ import annotations

import csv
import io

from appliance.db.orders import change_status, void_line
from appliance.db.reports import csv_amount, day_report, report_csv
from appliance.domain.money import Currency
from appliance.domain.orders import Actor, OrderStatus
from tests.appliance.db.test_payments import order


def test_a_day_of_orders_adds_up(db):
    a = order(db, table="A1", key="a", items=(("har_gow", 2), ("mineral_water", 1)))  # 64 + 8
    b = order(db, table="A2", key="b", items=(("har_gow", 1),))  # 32
    c = order(db, table="A3", key="c", items=(("mineral_water", 3),))  # 24, cancelled
    with db:
        db.execute("UPDATE table_sessions SET diners = 3 WHERE id = ?", (a["session_id"],))
        db.execute("UPDATE table_sessions SET diners = 2 WHERE id = ?", (b["session_id"],))
        change_status(db, c["id"], OrderStatus.CANCELLED, Actor.STAFF, "guest left")
        void_line(db, a["id"], 2, "spilled")
    report = day_report(db, a["ticket_day"])
    assert (report.sales_minor, report.orders, report.average_ticket_minor) == (9600, 2, 4800)
    assert report.covers == 5
    assert [(d.name, d.count, d.revenue_minor) for d in report.top_by_count] == [("水晶虾饺", 3, 9600)]
    assert sum(report.sales_by_hour_minor) == 9600 and len(report.sales_by_hour_minor) == 24
    assert report.turnover == {"A1": 1, "A2": 1}
    assert [(x.order_id, x.ticket_no, x.table, x.reason) for x in report.cancelled_orders] == [
        (c["id"], c["ticket_no"], "A3", "guest left")
    ]
    assert [(v.ticket_no, v.name, v.reason) for v in report.voided_lines] == [(a["ticket_no"], "矿泉水", "spilled")]
    table = list(csv.reader(io.StringIO(report_csv(report))))
    assert table[0] == ["section", "item", "count", "amount (CNY)", "detail"]
    assert ["summary", "sales", "2", "96.00", "orders, not cancelled"] in table
    assert ["top dishes", "水晶虾饺", "3", "96.00", ""] in table
    assert (report.visits_paid, report.visits_unpaid, report.unpaid_minor, report.takings) == (0, 2, 9600, ())
    assert day_report(db, "1999-01-01").orders == 0


def test_csv_money_is_in_the_currencys_units():
    cny, jpy = Currency.of("CNY"), Currency.of("JPY")
    assert [csv_amount(m, cny) for m in (0, 5, 1250, 123456, -500)] == ["0.00", "0.05", "12.50", "1234.56", "-5.00"]
    assert [csv_amount(m, jpy) for m in (0, 1200, 123456)] == ["0", "1200", "123456"]
