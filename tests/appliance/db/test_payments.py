"""Taking payment for a visit: split across methods, cash change, never silently closing a visit that owes."""

from __future__ import annotations

import pytest

from appliance.db.orders import MenuCache, OrderRequest, change_status, submit_order
from appliance.db.payments import amount_due, payments_of, record_payment, visits_owing
from appliance.db.tables import list_tables, live_session, move_session, set_session_status
from appliance.domain.errors import DomainError
from appliance.domain.orders import Actor, OrderStatus, SessionStatus
from appliance.domain.pricing import CartLine


def order(db, table="A1", key="k", items=(("har_gow", 2),)):
    tables = {t.name: t for t in list_tables(db)}
    lines = tuple(CartLine(db.execute("SELECT id FROM items WHERE key = ?", (k,)).fetchone()[0], q) for k, q in items)
    with db:
        return submit_order(
            db, tables[table], OrderRequest(client_key=f"{key}-{table}-xxxxxxxx", lines=lines), MenuCache()
        ).order


def test_a_bill_split_across_methods_then_paid(db):
    first = order(db)  # 2 x 32.00
    second = order(db, key="k2", items=(("mineral_water", 1),))  # 8.00
    cancelled = order(db, key="k3")
    with db:
        change_status(db, cancelled["id"], OrderStatus.CANCELLED, Actor.STAFF)
    session = first["session_id"]
    assert amount_due(db, session) == first["total_minor"] + second["total_minor"] == 7200
    with db:
        wechat = record_payment(db, session, "wechat", 5000)
        cash = record_payment(db, session, "cash", 3000)
    assert (wechat.due_after_minor, wechat.session_status) == (2200, "open")
    assert (cash.change_minor, cash.due_after_minor, cash.session_status) == (800, 0, "paid")
    assert [(p.method, p.amount_minor, p.change_minor) for p in payments_of(db, session)] == [
        ("wechat", 5000, 0),
        ("cash", 3000, 800),
    ]
    with db:
        set_session_status(db, session, SessionStatus.CLOSED)  # paid: closes without asking
    assert visits_owing(db) == []


@pytest.mark.parametrize(
    "method,amount,code",
    [
        ("card", 99999, "overpayment"),
        ("bitcoin", 100, "invalid_payment"),
        ("cash", 0, "invalid_payment"),
        ("cash", -5, "invalid_payment"),
    ],
)
def test_refused_payments(db, method, amount, code):
    session = order(db)["session_id"]
    with pytest.raises(DomainError) as err:
        with db:
            record_payment(db, session, method, amount)
    assert err.value.code == code
    assert payments_of(db, session) == []


def test_closing_the_day_lists_the_visits_that_owe(db):
    order(db, table="A1")
    paid = order(db, table="A2", key="p")
    with db:
        record_payment(db, paid["session_id"], "alipay", paid["total_minor"])
    owing = visits_owing(db)
    assert [(v.table_name, v.due_minor) for v in owing] == [("A1", 6400)]
    with pytest.raises(DomainError) as err:
        with db:
            set_session_status(db, owing[0].session_id, SessionStatus.CLOSED)
    assert err.value.code == "unpaid_session" and err.value.details["unpaid_minor"] == 6400


def test_guests_move_to_another_table_with_their_bill(db):
    placed = order(db, table="A1")
    tables = {t.name: t for t in list_tables(db)}
    with db:
        move_session(db, placed["session_id"], tables["T3"].id)
    assert live_session(db, tables["A1"].id) is None
    moved = live_session(db, tables["T3"].id)
    assert moved is not None and (moved.id, moved.table_id) == (placed["session_id"], tables["T3"].id)
    assert db.execute("SELECT table_id FROM orders").fetchone()[0] == tables["T3"].id
    order(db, table="A2", key="x")
    with pytest.raises(DomainError) as err:
        with db:
            move_session(db, placed["session_id"], tables["A2"].id)
    assert err.value.code == "session_open"
