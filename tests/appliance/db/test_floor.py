"""The floor as staff see it, and what they do there: staff orders, payments with who took them, closing a
visit or the whole day, diners' calls handled."""

from __future__ import annotations

import pytest

from appliance.db.floor import (
    close_day,
    close_visit,
    dish_keys,
    floor,
    handle_calls,
    kitchen_busy,
    staff_order,
    table_state,
    take_payment,
)
from appliance.db.orders import MenuCache
from appliance.db.tables import (
    ServiceRequest,
    Visit,
    list_tables,
    live_session,
    open_requests,
    open_session,
    request_service,
)
from appliance.domain.errors import DomainError
from appliance.domain.orders import SessionStatus
from appliance.domain.pricing import CartLine
from tests.tui.conftest import place_order


def item(db, key):
    return db.execute("SELECT id FROM items WHERE key = ?", (key,)).fetchone()[0]


@pytest.mark.parametrize(
    "session,orders,calls,state",
    [
        (None, [], [], "free"),
        (None, [], ["waiter"], "waiter"),
        ("open", [], [], "ordering"),
        ("open", ["served", "accepted"], [], "ordering"),
        ("open", ["served", "cancelled"], [], "eating"),
        ("open", ["cancelled"], [], "ordering"),
        ("open", ["served"], ["bill"], "bill"),
        ("bill_requested", ["served"], [], "bill"),
        ("bill_requested", ["served"], ["bill", "waiter"], "waiter"),
        ("paid", ["served"], [], "paid"),
    ],
)
def test_table_state(session, orders, calls, state):
    assert table_state(session, orders, calls) == state


def test_floor_shows_each_table_with_its_visit_calls_and_due(db):
    tables = {t.name: t for t in list_tables(db)}
    first = place_order(db, table="A1", items=(("har_gow", 2), ("mineral_water", 1)))
    second = place_order(db, table="A1", key="2", items=(("mineral_water", 2),))
    with db:
        request_service(db, tables["A2"], "waiter")  # before anyone is seated
        take_payment(db, first["session_id"], "wechat", 2000, "小王")
    view = {t.name: t for t in floor(db)}
    assert [t.name for t in floor(db)] == [t.name for t in list_tables(db)]
    a1 = view["A1"]
    assert (a1.state, a1.session_id, [o.id for o in a1.orders]) == (
        "ordering",
        first["session_id"],
        [first["id"], second["id"]],
    )
    assert a1.due_minor == first["total_minor"] + second["total_minor"] - 2000
    assert [(p.method, p.amount_minor, p.taken_by) for p in a1.payments] == [("wechat", 2000, "小王")]
    assert (view["A2"].state, view["A2"].session_id, [c.kind for c in view["A2"].calls]) == ("waiter", None, ["waiter"])
    assert (view["A3"].state, view["A3"].due_minor, view["A3"].orders) == ("free", 0, ())
    with db:
        assert handle_calls(db, tables["A2"].id, "小王") == ["waiter"]
    assert db.execute("SELECT handled_by FROM service_requests").fetchall() == [("小王",)]
    with pytest.raises(DomainError) as err:
        handle_calls(db, tables["A2"].id, "小王")
    assert err.value.code == "no_calls"


def test_staff_orders_need_a_seated_table(db):
    tables = {t.name: t for t in list_tables(db)}
    lines = [CartLine(item(db, "har_gow"), 3)]
    with pytest.raises(DomainError) as err:
        staff_order(db, tables["A4"].id, lines, "staff-1", MenuCache())
    assert err.value.code == "table_not_open"
    with db:
        session = open_session(db, tables["A4"].id, "小王", 3)
        result = staff_order(db, tables["A4"].id, lines, "staff-1", MenuCache())
    assert (result.channel, result.status, result.session_id) == ("staff", "accepted", session.id)
    assert result.total_minor == 3 * 3200
    assert dish_keys(db)[item(db, "har_gow")] == "har_gow"


def test_a_staff_orders_notes_are_cleaned_and_bounded_as_a_diners(db):
    """A note typed (or pasted) at the console reaches the kitchen printer as a diner's would: no escape bytes
    (ESC/POS commands), no bidi overrides, white space folded; longer than a diner may write is refused, naming
    its line, and nothing is stored."""
    tables = {t.name: t for t in list_tables(db)}
    with db:
        open_session(db, tables["A4"].id, "小王", 2)
    too_long = [CartLine(item(db, "har_gow"), 1), CartLine(item(db, "har_gow"), 1, note="辣" * 141)]
    with pytest.raises(DomainError) as err:
        staff_order(db, tables["A4"].id, too_long, "staff-long", MenuCache())
    assert (err.value.code, err.value.details["line"], err.value.details["max_chars"]) == ("text_too_long", 2, 140)
    with pytest.raises(DomainError) as err:
        staff_order(db, tables["A4"].id, too_long[:1], "staff-long", MenuCache(), note="x" * 141)
    assert err.value.code == "text_too_long" and "line" not in err.value.details
    assert db.execute("SELECT count(*) FROM orders").fetchone() == (0,)
    lines = [CartLine(item(db, "har_gow"), 1, note="  不要葱\x1b@\n less\u202e  salt ")]
    with db:
        result = staff_order(db, tables["A4"].id, lines, "staff-1", MenuCache(), note="生日\tbirthday\x07")
    assert (result.note, [line.note for line in result.lines]) == ("生日 birthday", ["不要葱@ less salt"])


def test_a_waiting_call_is_answered_again_not_repeated_and_a_bill_call_marks_the_visit(db):
    tables = {t.name: t for t in list_tables(db)}
    placed = place_order(db, table="A3")
    with db:
        waiter, created = request_service(db, tables["A2"], "waiter")  # nobody seated at A2
        again, created_again = request_service(db, tables["A2"], "waiter")
        bill, _ = request_service(db, tables["A3"], "bill")
    assert isinstance(waiter, ServiceRequest) and (created, created_again) == (True, False) and again == waiter
    assert (waiter.table_id, waiter.session_id, waiter.kind, waiter.handled_at) == (
        tables["A2"].id,
        None,
        "waiter",
        None,
    )
    assert (bill.session_id, bill.kind) == (placed["session_id"], "bill")
    assert open_requests(db) == [waiter, bill]
    visit = live_session(db, tables["A3"].id)
    assert isinstance(visit, Visit) and (visit.id, visit.status) == (placed["session_id"], SessionStatus.BILL_REQUESTED)
    assert visit.bill_requested_at is not None and visit.paid_at is None


def test_closing_a_visit_that_owes_needs_confirmation_and_handles_its_calls(db):
    tables = {t.name: t for t in list_tables(db)}
    placed = place_order(db, table="A5")
    with db:
        request_service(db, tables["A5"], "bill")
    with pytest.raises(DomainError) as err:
        with db:
            close_visit(db, placed["session_id"], "店长")
    assert err.value.code == "unpaid_session"
    with db:
        assert close_visit(db, placed["session_id"], "店长", confirm_unpaid=True) == placed["total_minor"]
    assert db.execute("SELECT status FROM table_sessions").fetchall() == [("closed",)]
    assert db.execute("SELECT handled_by FROM service_requests").fetchall() == [("店长",)]
    assert {t.name: t.state for t in floor(db)}["A5"] == "free"


def test_closing_the_day_closes_every_visit_and_names_what_is_unpaid(db):
    owing = place_order(db, table="A1")
    paid = place_order(db, table="T2", key="p", items=(("mineral_water", 1),))
    with db:
        take_payment(db, paid["session_id"], "cash", 1000, "小王")
    with pytest.raises(DomainError) as err:
        with db:
            close_day(db, "店长")
    assert err.value.code == "unpaid_session" and err.value.details["tables"] == ["A1"]
    assert db.execute("SELECT count(*) FROM table_sessions WHERE status != 'closed'").fetchone()[0] == 2
    with db:
        result = close_day(db, "店长", confirm_unpaid=True)
    assert (result.closed, result.unpaid, result.unpaid_minor) == (
        2,
        {"A1": owing["total_minor"]},
        owing["total_minor"],
    )
    assert db.execute("SELECT count(*) FROM table_sessions WHERE status != 'closed'").fetchone()[0] == 0
    assert db.execute("SELECT change_minor FROM payments").fetchall() == [(200,)]  # 10.00 cash for 8.00


def test_closing_the_day_keeps_tables_with_kitchen_work_or_closes_only_those_shown(db):
    new = place_order(db, table="A1")  # submitted: still in the kitchen
    ready = place_order(db, table="A2", key="r", items=(("mineral_water", 1),))
    done = place_order(db, table="A3", key="d", items=(("mineral_water", 1),))
    with db:
        db.execute("UPDATE orders SET status = 'ready' WHERE id = ?", (ready["id"],))
        db.execute("UPDATE orders SET status = 'served' WHERE id = ?", (done["id"],))
    with db:
        assert kitchen_busy(db) == {new["session_id"]: "A1", ready["session_id"]: "A2"}
    with pytest.raises(DomainError) as err:  # A2's order was not shown to whoever agreed
        with db:
            close_day(db, "店长", confirm_unpaid=True, busy_known=["A1"])
    assert err.value.code == "kitchen_busy" and err.value.details["tables"] == ["A2"]
    with db:
        kept = close_day(db, "店长", confirm_unpaid=True, keep_busy=True)
    assert (kept.closed, kept.unpaid, kept.kept) == (1, {"A3": done["total_minor"]}, ("A1", "A2"))
    with db:
        rest = close_day(db, "店长", confirm_unpaid=True, busy_known=["A1", "A2"])
    assert (rest.closed, sorted(rest.unpaid), rest.kept) == (2, ["A1", "A2"], ())
    assert kept.audit_details == {"unpaid": {"A3": done["total_minor"]}, "kept_open": ["A1", "A2"]}
    assert rest.audit_details == {
        "unpaid": {"A1": new["total_minor"], "A2": ready["total_minor"]},
        "kitchen_closed": ["A1", "A2"],
    }
    statuses = db.execute("SELECT status FROM orders ORDER BY id").fetchall()
    assert statuses == [("submitted",), ("ready",), ("served",)]  # closing the day never touches the kitchen's work
