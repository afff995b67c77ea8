"""What the console's badge and bell are told: diners' orders and calls after the ids it saw, never a staff order."""

from __future__ import annotations

from appliance.db.console import NewCall, NewOrder, alerts, newest_request_id
from appliance.db.floor import handle_calls, staff_order
from appliance.db.orders import MenuCache, newest_order_id
from appliance.db.tables import list_tables, open_session, request_service
from appliance.domain.pricing import CartLine
from tests.tui.conftest import place_order


def test_alerts_name_diners_orders_and_calls_after_what_was_seen_and_count_what_still_waits(db):
    tables = {t.name: t for t in list_tables(db)}
    seen = place_order(db, table="A1", key="1")
    before_orders, before_calls = newest_order_id(db), newest_request_id(db)
    new = place_order(db, table="A2", key="2")
    with db:
        open_session(db, tables["A6"].id, "小王", 2)
        har_gow = db.execute("SELECT id FROM items WHERE key = 'har_gow'").fetchone()[0]
        staff = staff_order(db, tables["A6"].id, [CartLine(har_gow, 1)], "staff-1", MenuCache())
        request_service(db, tables["A3"], "waiter")
        request_service(db, tables["A4"], "waiter")
        request_service(db, tables["A2"], "bill")
        handle_calls(db, tables["A4"].id, "小王")

    news = alerts(db, before_orders, before_calls, seen_order_id=0)
    assert news.new_orders == (NewOrder(new["id"], new["ticket_no"], "A2"),)  # the staff order is no news
    assert [(c.table, c.kind) for c in news.new_calls] == [("A3", "waiter"), ("A2", "bill")]  # A4's was answered
    assert all(isinstance(c, NewCall) for c in news.new_calls)
    assert (news.unseen_orders, news.waiter_calls, news.bill_calls) == (2, 1, 1)  # A1 and A2; not the staff order
    assert news.newest_order_id == staff.id

    after = alerts(db, news.newest_order_id, news.newest_request_id, seen_order_id=news.newest_order_id)
    assert (after.new_orders, after.new_calls, after.unseen_orders) == ((), (), 0)
    assert (after.waiter_calls, after.bill_calls) == (1, 1)  # still waiting: still on the badge
    assert seen["id"] < new["id"]
