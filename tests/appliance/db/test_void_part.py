"""Voiding part of a line (one of a 2x): if these failed, the diner would pay for a dish sent back, the kitchen would
be told to stop both, or the ERP would take the dish off twice (or not at all)."""

from __future__ import annotations

import json

import pytest

from appliance.db.connection import write_transaction
from appliance.db.orders import MenuCache, OrderRequest, order_view, submit_order, void_line
from appliance.db.printing import PrinterConfig, PrintJob
from appliance.db.store_settings import set_store_setting
from appliance.db.tables import list_tables
from appliance.domain.errors import DomainError
from appliance.domain.orders import Channel
from appliance.domain.pricing import CartLine
from printers.worker import job_document
from tests.sync.test_outbox import AmendingAdapter, Clock, ScriptedAdapter, drain, engine

KITCHEN = PrinterConfig("kitchen", "file:///dev/null", 80, "gb18030", ("kitchen",), 1, True, False)


def staff_order(db, items=(("har_gow", 2), ("seasonal_greens", 1)), key="part-void-order-1") -> dict:
    """An order staff took (accepted at once: its kitchen tickets are queued)."""
    table = next(t for t in list_tables(db) if t.name == "A1")
    lines = tuple(CartLine(db.execute("SELECT id FROM items WHERE key = ?", (k,)).fetchone()[0], q) for k, q in items)
    with write_transaction(db):
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'rest')")
        set_store_setting(db, "service_charge_bp", 1000)
        return submit_order(db, table, OrderRequest(key, lines, channel=Channel.STAFF), MenuCache()).order


def void_rows(db) -> list[dict]:
    return [json.loads(p) for (p,) in db.execute("SELECT payload FROM outbox WHERE kind = 'order.line_voided'")]


def test_one_of_two_voided_keeps_the_other_on_the_bill_and_voids_one_in_the_kitchen(db):
    order = staff_order(db)  # har gow 2 x 32.00 + greens 28.00 = 92.00, + 10% service = 101.20
    assert order["total_minor"] == 10120
    with write_transaction(db):
        after = void_line(db, order["id"], 1, "dropped one", quantity=1)
    assert [(line.line_no, line.quantity, line.line_total_minor, line.status) for line in after.lines] == [
        (1, 1, 3200, "active"),
        (2, 1, 2800, "active"),
        (3, 1, 3200, "voided"),  # the part voided: a line of its own, as any voided line
    ]
    assert after.lines[2].names == after.lines[0].names and after.lines[2].void_reason == "dropped one"
    assert (after.subtotal_minor, after.service_charge_minor, after.total_minor) == (6000, 600, 6600)
    # the event names the voided part; the kitchen's void ticket says 1, not 2
    event_line = db.execute(
        "SELECT l.line_no, l.quantity FROM order_events e JOIN order_lines l ON l.id = e.line_id"
        " WHERE e.order_id = ? AND e.line_id IS NOT NULL",
        (order["id"],),
    ).fetchall()
    assert event_line == [(3, 1)]
    (job,) = [
        PrintJob(*row)
        for row in db.execute(
            "SELECT id, order_id, session_id, station, kind, ref, state, payload FROM print_jobs WHERE kind = 'void'"
        )
    ]
    printed = [line.text for line in job_document(db, job, KITCHEN, reprint=False).lines]
    dishes = [text for text in printed if " x " in text]
    assert len(dishes) == 1 and dishes[0].startswith("1 x ") and "水晶虾饺" in dishes[0]
    # the ERP's row names the line as the ERP has it (line 1), how many went and how many are left
    (row,) = void_rows(db)
    assert (row["line_no"], row["quantity"], row["left"], row["total_minor"]) == (1, 1, 1, 6600)
    # the other one, later: the line is gone; a second void ticket and a second row, each of its own
    with write_transaction(db):
        after = void_line(db, order["id"], 1, "dropped the other", quantity=None)
    assert [(line.line_no, line.quantity, line.status) for line in after.lines] == [
        (1, 1, "voided"),
        (2, 1, "active"),
        (3, 1, "voided"),
    ]
    assert after.total_minor == 3080
    assert db.execute("SELECT count(*) FROM print_jobs WHERE kind = 'void'").fetchone()[0] == 2
    assert [(r["line_no"], r["quantity"], r["left"]) for r in void_rows(db)] == [(1, 1, 1), (1, 1, 0)]
    assert order_view(db, order["id"])["lines"][0]["status"] == "voided"


def test_a_void_of_more_than_the_line_has_is_refused_and_changes_nothing(db):
    order = staff_order(db)
    for asked in (3, 0, -1):
        with pytest.raises(DomainError) as err, write_transaction(db):
            void_line(db, order["id"], 1, "too many", quantity=asked)
        assert err.value.code == "bad_quantity"
    view = order_view(db, order["id"])
    assert [(line["quantity"], line["status"]) for line in view["lines"]] == [(2, "active"), (1, "active")]
    assert view["total_minor"] == 10120 and void_rows(db) == []
    with write_transaction(db):
        whole = void_line(db, order["id"], 1, "all of it", quantity=2)  # all of them: the line itself, not a split
    assert [(line.line_no, line.quantity, line.status) for line in whole.lines] == [(1, 2, "voided"), (2, 1, "active")]


def test_a_part_void_reaches_the_erp_once_with_what_is_left(db):
    order = staff_order(db, items=(("har_gow", 3), ("seasonal_greens", 1)))
    with write_transaction(db):
        void_line(db, order["id"], 1, "one sent back", quantity=1)
    amending = AmendingAdapter()
    eng = engine(db, amending, Clock())
    drain(eng)
    drain(eng)  # nothing left to send: each row once
    changes = [c for kind, c in amending.calls if kind == "change"]
    assert [kind for kind, _ in amending.calls] == ["order", "change"]
    (change,) = changes
    assert (change.event, change.line_no, change.quantity, change.left, change.reason) == (
        "line_voided",
        1,
        1,
        2,
        "one sent back",
    )
    assert change.order is not None
    assert [(line.key, line.quantity, line.line_total_minor) for line in change.order.lines] == [
        ("har_gow", 2, 6400),
        ("seasonal_greens", 1, 2800),
    ]
    assert change.order.total_minor == order_view(db, order["id"])["total_minor"] == 10120
    assert change.void_words() == "1 of line 1 voided (2 left): one sent back"
    assert db.execute("SELECT count(*) FROM outbox WHERE delivered_at IS NULL").fetchone()[0] == 0


def test_an_erp_without_amends_reads_the_part_in_the_status_reason(db):
    order = staff_order(db)
    with write_transaction(db):
        void_line(db, order["id"], 1, "cold", quantity=1)
        void_line(db, order["id"], 1, "cold")  # the other one: the same words but its own row
    plain = ScriptedAdapter()
    drain(engine(db, plain, Clock()))
    assert [call for kind, call in plain.calls if kind == "status"] == [
        (order["client_key"], "line_voided", "1 of line 1 voided (1 left): cold"),
        (order["client_key"], "line_voided", "line 1 voided: cold"),
    ]
