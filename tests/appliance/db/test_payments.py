"""Taking payment for a visit: split across methods, cash change, never silently closing a visit that owes."""

from __future__ import annotations

import json

import pytest

from appliance.db.connection import open_connection
from appliance.db.migrate import available, migrate
from appliance.db.orders import MenuCache, OrderRequest, change_status, submit_order
from appliance.db.payments import amount_due, payments_of, record_payment, refund_payment, visits_owing
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


# -- payments and refunds reach the ERP (issue 15) -----------------------------------------------------------------


def targets(db):
    """Two ERPs, a switched-off one and the relay: only the enabled ERPs book the store's money."""
    with db:
        db.execute(
            "INSERT INTO sync_targets (name, kind, enabled, inbox_source) VALUES ('books', 'odoo', 1, NULL),"
            " ('erp', 'erpnext', 1, NULL), ('old', 'rest', 0, NULL), ('relay', 'relay', 1, 'relay:relay@')"
        )


def outbox(db, kind):
    return [
        (target, key, json.loads(payload))
        for target, key, payload in db.execute(
            "SELECT target, idempotency_key, payload FROM outbox WHERE kind = ? ORDER BY id", (kind,)
        )
    ]


def test_a_payment_queues_one_row_per_erp_with_what_was_kept(db):
    """The ERP books the payment: cash 100.00 for a bill of 80.00 keeps 80.00 (20.00 change), for the orders not
    cancelled, once per ERP; the relay and a switched-off target get nothing."""
    targets(db)
    first = order(db)  # 64.00
    second = order(db, key="k2", items=(("mineral_water", 2),))  # 16.00
    cancelled = order(db, key="k3")
    with db:
        change_status(db, cancelled["id"], OrderStatus.CANCELLED, Actor.STAFF)
        paid = record_payment(db, first["session_id"], "cash", 10000, "小王")
    rows = outbox(db, "payment.recorded")
    assert [target for target, _, _ in rows] == ["books", "erp"]
    key = f"payment.recorded:{paid.payment_key}"
    assert {k for _, k, _ in rows} == {key} and len(paid.payment_key) == 32
    assert rows[0][2] == rows[1][2]
    assert rows[0][2] == {
        "order_refs": [first["client_key"], second["client_key"]],
        "table": "A1",
        "method": "cash",
        "amount_minor": 8000,
        "currency": "CNY",
        "paid_at": rows[0][2]["paid_at"],
        "received_minor": 10000,
        "change_minor": 2000,
    }
    stored = payments_of(db, first["session_id"])
    assert [(p.id, p.ref, p.taken_by) for p in stored] == [(paid.payment_id, key, "小王")]
    assert rows[0][2]["paid_at"] == stored[0].created_at


def test_each_payment_has_its_own_key(db):
    """Two payments of the same amount by the same method are two payments to the ERP, not one retried."""
    targets(db)
    session = order(db)["session_id"]
    with db:
        one_ = record_payment(db, session, "card", 1000)
        two = record_payment(db, session, "card", 1000)
    keys = [k for _, k, _ in outbox(db, "payment.recorded")]
    assert one_.payment_key != two.payment_key
    assert sorted(set(keys)) == sorted({f"payment.recorded:{one_.payment_key}", f"payment.recorded:{two.payment_key}"})
    assert len(keys) == 4


def test_a_payment_and_its_outbox_rows_commit_together(db):
    """A payment that does not commit (the till crashed, the write failed) leaves no row for the ERP either, and the
    other way round: the ERP never books money the box does not have."""
    targets(db)
    session = order(db)["session_id"]
    with pytest.raises(RuntimeError):
        with db:
            record_payment(db, session, "wechat", 1000)
            raise RuntimeError("power cut before commit")
    assert payments_of(db, session) == [] and outbox(db, "payment.recorded") == []
    with db:
        # the ERP's row cannot be written (a full disk, say): the payment is refused with it
        db.execute("CREATE TRIGGER outbox_full BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'outbox full'); END")
    with pytest.raises(Exception, match="outbox full"):
        with db:
            record_payment(db, session, "wechat", 1000)
    assert payments_of(db, session) == []


def test_no_erp_no_rows(db):
    session = order(db)["session_id"]
    with db:
        record_payment(db, session, "alipay", 6400)
    assert db.execute("SELECT count(*) FROM outbox WHERE kind LIKE 'payment.%'").fetchone()[0] == 0


def test_a_refund_gives_money_back_and_the_bill_owes_it_again(db):
    """Card 64.00 pays the bill; 20.00 goes back (a dish was cold): the visit owes 20.00 again and is open again,
    so closing asks; the ERP gets a refund naming the payment."""
    targets(db)
    placed = order(db)  # 64.00
    session = placed["session_id"]
    with db:
        paid = record_payment(db, session, "card", 6400)
    assert (paid.due_after_minor, paid.session_status) == (0, "paid")
    with db:
        back = refund_payment(db, paid.payment_id, 2000, "  cold\x1b[2J dumplings\n", "经理")
    assert (back.refunded_minor, back.refundable_after_minor, back.due_after_minor, back.session_status) == (
        2000,
        4400,
        2000,
        "open",
    )
    assert amount_due(db, session) == 2000
    assert [(p.refunded_minor, p.refundable_minor) for p in payments_of(db, session)] == [(2000, 4400)]
    assert db.execute("SELECT reason, refunded_by, amount_minor FROM refunds").fetchall() == [
        ("cold[2J dumplings", "经理", 2000)
    ]
    rows = outbox(db, "payment.refunded")
    assert [(t, k) for t, k, _ in rows] == [
        ("books", f"payment.refunded:{back.refund_key}"),
        ("erp", f"payment.refunded:{back.refund_key}"),
    ]
    assert rows[0][2] == {
        "refund_of": f"payment.recorded:{paid.payment_key}",
        "order_refs": [placed["client_key"]],
        "table": "A1",
        "method": "card",
        "amount_minor": 2000,
        "currency": "CNY",
        "paid_at": rows[0][2]["paid_at"],
        "reason": "cold[2J dumplings",
    }
    with pytest.raises(DomainError) as err:
        with db:
            set_session_status(db, session, SessionStatus.CLOSED)
    assert err.value.code == "unpaid_session" and err.value.details["unpaid_minor"] == 2000
    with db:
        again = record_payment(db, session, "cash", 2000)
    assert (again.due_after_minor, again.session_status) == (0, "paid")
    assert visits_owing(db) == []


def refusal(db, payment_id, amount, reason="wrong table") -> DomainError:
    """The refusal of a refund (nothing written)."""
    with pytest.raises(DomainError) as err:
        with db:
            refund_payment(db, payment_id, amount, reason, "经理")
    return err.value


def test_a_refund_never_gives_back_more_than_was_kept(db):
    """Cash 100.00 for 64.00 kept 64.00 (36.00 change): 64.00 can go back, in parts, and not a cent more."""
    targets(db)
    session = order(db)["session_id"]
    with db:
        paid = record_payment(db, session, "cash", 10000)
    refused = refusal(db, paid.payment_id, 6401)
    assert (refused.code, refused.details["refundable_minor"]) == ("over_refund", 6400)
    with db:
        refund_payment(db, paid.payment_id, 4000, "wrong table", "经理")
    refused = refusal(db, paid.payment_id, 2401)
    assert (refused.code, refused.details["refundable_minor"]) == ("over_refund", 2400)
    with db:
        last = refund_payment(db, paid.payment_id, 2400, "wrong table", "经理")
    assert (last.refundable_after_minor, last.due_after_minor) == (0, 6400)
    assert refusal(db, paid.payment_id, 1).code == "nothing_to_refund"
    assert db.execute("SELECT sum(amount_minor) FROM refunds").fetchone()[0] == 6400
    assert len(outbox(db, "payment.refunded")) == 4  # two refunds, two ERPs


@pytest.mark.parametrize(
    "amount,reason,code",
    [
        (0, "ok", "invalid_refund"),
        (-100, "ok", "invalid_refund"),
        (True, "ok", "invalid_refund"),
        (100, "", "reason_required"),
        (100, " \x00\x07\n ", "reason_required"),
        (100, "x" * 141, "text_too_long"),
    ],
)
def test_refused_refunds(db, amount, reason, code):
    targets(db)
    session = order(db)["session_id"]
    with db:
        paid = record_payment(db, session, "card", 1000)
    assert refusal(db, paid.payment_id, amount, reason).code == code
    assert db.execute("SELECT count(*) FROM refunds").fetchone()[0] == 0
    assert outbox(db, "payment.refunded") == []


def test_no_refund_of_an_unknown_payment_or_on_a_closed_visit(db):
    session = order(db)["session_id"]
    assert refusal(db, 999, 100).code == "unknown_payment"
    with db:
        paid = record_payment(db, session, "card", 6400)
        set_session_status(db, session, SessionStatus.CLOSED)
    assert refusal(db, paid.payment_id, 100, "too late").code == "illegal_transition"


def test_a_refund_names_the_orders_its_payment_paid_for(db):
    """An order paid for and then cancelled: the refund still names it, so the ERP can find the payment's
    documents and the refund reaches it after the payment."""
    targets(db)
    placed = order(db)
    with db:
        paid = record_payment(db, placed["session_id"], "wechat", 1000)
        change_status(db, placed["id"], OrderStatus.CANCELLED, Actor.STAFF)
        refund_payment(db, paid.payment_id, 1000, "order cancelled", "经理")
    assert outbox(db, "payment.refunded")[0][2]["order_refs"] == [placed["client_key"]]


def test_0011_gives_every_earlier_payment_its_own_key(tmp_path):
    """A box updated from before 0011 keeps its payments, each with a key of its own (unique: the ERP tells
    payments apart by it) and no refunds."""
    conn = open_connection(tmp_path / "store.db")
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for number, name, sql in available():
        if number < 11:
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01T00:00:00Z')", (number, name))
    conn.execute("INSERT INTO tables (name, token_version) VALUES ('A1', 1)")
    conn.execute(
        "INSERT INTO table_sessions (table_id, status, opened_at, opened_by) VALUES (1, 'open', '2026', 'staff')"
    )
    for _ in range(3):
        conn.execute(
            "INSERT INTO payments (session_id, method, amount_minor, created_at) VALUES (1, 'cash', 100, '2026')"
        )
    assert 11 in migrate(conn)
    keys = [k for (k,) in conn.execute("SELECT payment_key FROM payments")]
    assert len(set(keys)) == 3 and all(len(k) == 32 for k in keys)
    assert [p.refundable_minor for p in payments_of(conn, 1)] == [100, 100, 100]
    conn.close()


def test_a_refund_goes_where_its_payment_went(db):
    """An ERP set up after the payment never had it: it gets no refund of it (it would refuse one), while the ERPs
    that booked the payment get the refund, even one switched off since (its rows wait for it)."""
    targets(db)
    session = order(db)["session_id"]
    with db:
        paid = record_payment(db, session, "card", 6400)
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('new', 'rest')")
        db.execute("UPDATE sync_targets SET enabled = 0 WHERE name = 'books'")
        refund_payment(db, paid.payment_id, 100, "wrong dish", "经理")
    assert [t for t, _, _ in outbox(db, "payment.refunded")] == ["books", "erp"]
