"""The Odoo documents behind each thing the box does (issue 15, item 12): an order as a sale.order or, for a restaurant
on Odoo POS, a pos.order through the POS's own sync; payments and refunds as Odoo's payment documents; cancels and
voided lines as changes Odoo allows on each. Against the fake Odoo (19 over JSON-2, 18 and 17 over JSON-RPC)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from typing import Any

import pytest

from sync.adapters import make_adapter
from sync.adapters.base import Capability, OrderChange, OrderDoc, OrderLine, PaymentDoc, Rejected, Retryable
from sync.adapters.odoo import OdooAdapter
from tests.fakes.odoo import POS_SESSION, FakeOdoo
from tests.sync.test_odoo import calls, fake_odoo, order_doc


@pytest.fixture(params=[19, 18, 17], ids=["odoo19-json2", "odoo18-jsonrpc", "odoo17-jsonrpc"])
def odoo(request: pytest.FixtureRequest) -> Iterator[FakeOdoo]:
    fake = fake_odoo(request.param)
    try:
        yield fake
    finally:
        fake.stop()


def pos_adapter(fake: FakeOdoo, **changes: Any) -> OdooAdapter:
    config = {**fake.pos_target_config(), **changes}
    return make_adapter("erp", {k: v for k, v in config.items() if v is not None})  # type: ignore[return-value]


def sale_adapter(fake: FakeOdoo, **changes: Any) -> OdooAdapter:
    config = {**fake.target_config(), **changes}
    return make_adapter("erp", {k: v for k, v in config.items() if v is not None})  # type: ignore[return-value]


@pytest.fixture
def pos(odoo: FakeOdoo) -> Iterator[OdooAdapter]:
    with closing(pos_adapter(odoo)) as opened:
        yield opened


def pay(ref: str, refs: list[str], method: str, amount_minor: int, **extra: Any) -> PaymentDoc:
    return PaymentDoc(ref, refs, "A1", method, amount_minor, "CNY", "2026-11-21T12:30:00Z", **extra)


def without_line(order: OrderDoc, line_no: int) -> OrderDoc:
    """The order as the store has it after voiding line `line_no` (1-based)."""
    lines = [line for n, line in enumerate(order.lines, 1) if n != line_no]
    subtotal = sum(line.line_total_minor for line in lines)
    return OrderDoc(**{**order.__dict__, "lines": lines, "subtotal_minor": subtotal, "total_minor": subtotal})


def test_the_adapter_declares_it_amends_documents():
    assert Capability.AMENDS in OdooAdapter.capabilities


# -- pos.order ----------------------------------------------------------------------------------------------
def test_an_order_becomes_one_draft_pos_order_in_the_open_session(odoo, pos):
    first = pos.push_order(order_doc("k-1"))
    odoo.drop_next_call("pos.order", "sync_from_ui" if odoo.version >= 18 else "create_from_ui")
    with pytest.raises(Retryable):
        pos.push_order(order_doc("k-2", [("SM02", "Siu mai", 2, 1230)]))
    assert pos.push_order(order_doc("k-1")) == first
    pos.push_order(order_doc("k-2", [("SM02", "Siu mai", 2, 1230)]))
    assert odoo.order_counts() == {"k-1": 1, "k-2": 1}
    (order,) = odoo.pos_orders("k-1")
    assert (order["state"], order["session_id"], order["amount_total"]) == ("draft", POS_SESSION, Decimal("136.70"))
    assert [(line["qty"], line["price_unit"], line["price_subtotal_incl"]) for line in order["lines"]] == [
        (2, Decimal("38.50"), Decimal("77.00")),
        (3, Decimal("19.90"), Decimal("59.70")),
    ]
    # the products' 13 % tax is included in the price: the untaxed amount is what Odoo books as revenue
    assert order["lines"][0]["price_subtotal"] == Decimal("68.14")
    # the ticket and table in the order's note where the version keeps one (17's create_from_ui drops notes)
    note = order["internal_note" if odoo.version >= 19 else "note"]
    assert ("Tablebox 2026-11-21#12, table A1" in note) if odoo.version >= 18 else note is False
    if odoo.version >= 18:
        assert order["uuid"] == "k-1"
        # the dropped one had committed: found by its uuid, not sent again
        assert [c.method for c in odoo.calls if c.model == "pos.order"].count("sync_from_ui") == 2


def test_the_catalog_of_a_pos_takes_the_pos_pricelist(odoo, pos):
    odoo.add_fixed_price("HG01", 3600)  # a rule of the public pricelist, the POS's
    assert {i.code: i.price_minor for i in pos.pull_catalog().items}["HG01"] == 3600


def test_two_orders_of_one_table_stay_two_orders(odoo, pos):
    """pos_restaurant's _get_open_order merges a draft order sent for a table into that table's open draft order: the
    adapter names no table, so the visit's second order does not overwrite its first."""
    pos.push_order(order_doc("k-1"))
    pos.push_order(order_doc("k-2", [("SM02", "Siu mai", 1, 1230)]))
    assert [len(o["lines"]) for o in odoo.pos_orders()] == [2, 1]
    if odoo.version >= 18:  # what naming the table would have done
        with odoo.lock:
            odoo.db.tables["pos.order"][odoo.pos_orders("k-1")[0]["id"]]["table_id"] = 1
        pos._execute(
            "pos.order",
            "sync_from_ui",
            orders=[
                {
                    "uuid": "k-3",
                    "access_token": False,
                    "session_id": POS_SESSION,
                    "table_id": 1,
                    "state": "draft",
                    "lines": [[0, 0, {"product_id": odoo.product("SM02")["id"], "qty": 1, "price_unit": 12.3}]],
                }
            ],
        )
        # k-3 did not become an order of its own: it went into k-1 (18 even gives k-1 k-3's uuid, 19 adds its line)
        assert len(odoo.pos_orders()) == 2
        kept, lost = ("k-1", "k-3") if odoo.version >= 19 else ("k-3", "k-1")
        assert odoo.pos_orders(lost) == [] and len(odoo.pos_orders(kept)[0]["lines"]) == 3


def test_no_open_session_makes_orders_wait(odoo, pos):
    with odoo.lock:
        odoo.db.tables["pos.session"][POS_SESSION]["state"] = "closed"
    with pytest.raises(Retryable) as waiting:
        pos.push_order(order_doc("k-1"))
    assert "no open session" in waiting.value.message
    assert odoo.order_counts() == {}


def test_a_payment_pays_the_visits_pos_orders_once(odoo, pos):
    pos.push_order(order_doc("k-1"))  # 136.70
    pos.push_order(order_doc("k-2", [("SM02", "Siu mai", 1, 1230)]))  # 12.30
    cash = pay("payment.recorded:1", ["k-1", "k-2"], "cash", 10000)
    odoo.drop_next_call("pos.order", "sync_from_ui" if odoo.version >= 18 else "create_from_ui")
    with pytest.raises(Retryable):
        pos.push_payment(cash)
    pos.push_payment(cash)
    pos.push_payment(cash)  # a retried delivery adds nothing
    assert [o["state"] for o in odoo.pos_orders()] == ["draft", "draft"]
    card = pay("payment.recorded:2", ["k-1", "k-2"], "card", 4900)
    pos.push_payment(card)
    pos.push_payment(card)
    orders = odoo.pos_orders()
    assert [o["state"] for o in orders] == ["paid", "paid"]
    assert [[(p["amount"], p["payment_method_id"]) for p in o["payments"]] for o in orders] == [
        [(Decimal("100.00"), 1), (Decimal("36.70"), 2)],
        [(Decimal("12.30"), 2)],
    ]
    assert odoo.payments() == {
        "payment.recorded:1": [("payment", "cash", 10000)],
        "payment.recorded:2": [("payment", "card", 4900)],
    }


def test_a_pos_order_still_running_at_the_timeout_is_not_created_twice(odoo):
    """Item 11 for pos.order: 17 and 18 would take the same uuid twice, so the next attempt waits; 19's unique uuid
    refuses the second create once the first commits, so it goes at once and finds the order."""
    with closing(pos_adapter(odoo, timeout_seconds=0.3, create_settle_seconds=30)) as pos:
        odoo.slow_next_call("pos.order", "sync_from_ui" if odoo.version >= 18 else "create_from_ui", 1.0)
        with pytest.raises(Retryable):
            pos.push_order(order_doc("k-1"))
        if odoo.version >= 19:
            pos.push_order(order_doc("k-1"))  # created at once; the first, committing later, is refused by uuid
            assert odoo.committed.wait(5)
        else:
            with pytest.raises(Retryable) as waiting:
                pos.push_order(order_doc("k-1"))
            assert waiting.value.status == 409
            assert odoo.committed.wait(5)
            pos.push_order(order_doc("k-1"))
    assert odoo.order_counts() == {"k-1": 1}
    assert len(odoo.pos_orders("k-1")[0]["lines"]) == 2


def test_a_payment_still_running_at_the_timeout_is_not_added_twice(odoo):
    """Item 11 for payments: the part sent without an answer may still be running (its pos.order row locked); sent
    again it would be a second payment line once the first commits. The next attempt waits, then finds it."""
    with closing(pos_adapter(odoo, timeout_seconds=0.3, create_settle_seconds=30)) as pos:
        pos.push_order(order_doc("k-1"))
        odoo.slow_next_call("pos.order", "sync_from_ui" if odoo.version >= 18 else "create_from_ui", 1.0)
        cash = pay("payment.recorded:1", ["k-1"], "cash", 13670)
        with pytest.raises(Retryable):
            pos.push_payment(cash)
        with pytest.raises(Retryable) as waiting:
            pos.push_payment(cash)
        assert "may still be running" in waiting.value.message
        assert odoo.committed.wait(5)
        pos.push_payment(cash)
    assert odoo.payments() == {"payment.recorded:1": [("payment", "cash", 13670)]}
    assert odoo.pos_orders("k-1")[0]["state"] == "paid"


def test_a_payment_odoo_cannot_take_is_refused_with_the_reason(odoo, pos):
    pos.push_order(order_doc("k-1"))
    with pytest.raises(Rejected) as unmapped:
        pos.push_payment(pay("p-1", ["k-1"], "voucher", 100))
    assert "payment_methods" in unmapped.value.message
    with closing(pos_adapter(odoo, payment_methods={"card": "Bank"})) as other, pytest.raises(Rejected) as unknown:
        other.push_payment(pay("p-2", ["k-1"], "card", 100))
    assert "no POS payment method named 'Bank'" in unknown.value.message
    with odoo.lock:
        odoo.db.tables["pos.config"][1]["payment_method_ids"] = [1]  # the POS takes cash only
    with pytest.raises(Rejected) as not_allowed:
        pos.push_payment(pay("p-3", ["k-1"], "card", 100))
    assert "not allowed in the config of the POS session" in not_allowed.value.message
    assert odoo.payments() == {}


def test_money_no_order_owes_is_its_own_paid_order(odoo, pos):
    """The till's evening: card and cash pay the visit, part of the card goes back (a refund) and WeChat pays that
    part again; nothing in Odoo owes the WeChat money any more, so it is booked as its own paid POS order."""
    pos.push_order(order_doc("k-1"))  # 136.70
    pos.push_payment(pay("payment.recorded:1", ["k-1"], "card", 10000))
    pos.push_payment(pay("payment.recorded:2", ["k-1"], "cash", 3670))
    pos.push_payment(pay("payment.refunded:1", ["k-1"], "card", 2000, kind="refund", refund_of="payment.recorded:1"))
    again = pay("payment.recorded:3", ["k-1"], "wechat", 2000)
    odoo.drop_next_call("pos.order", "sync_from_ui" if odoo.version >= 18 else "create_from_ui")
    with pytest.raises(Retryable):
        pos.push_payment(again)
    pos.push_payment(again)
    pos.push_payment(again)
    assert odoo.payments() == {
        "payment.recorded:1": [("payment", "card", 10000)],
        "payment.recorded:2": [("payment", "cash", 3670)],
        "payment.refunded:1": [("refund", "card", 2000)],
        "payment.recorded:3": [("payment", "wechat", 2000)],
    }
    assert odoo.order_counts() == {"k-1": 1}
    assert [(o["state"], o["amount_total"]) for o in odoo.pos_orders()] == [
        ("paid", Decimal("136.70")),
        ("paid", Decimal("-20.00")),
        ("paid", Decimal("20.00")),
    ]


def test_a_refund_is_a_paid_refund_order(odoo, pos):
    pos.push_order(order_doc("k-1"))
    pos.push_payment(pay("payment.recorded:1", ["k-1"], "card", 13670))
    refund = pay(
        "payment.refunded:9", ["k-1"], "card", 1990, kind="refund", refund_of="payment.recorded:1", reason="tea spilt"
    )
    first = pos.push_payment(refund)
    assert pos.push_payment(refund) == first
    refund_order = odoo.pos_orders("payment.refunded:9")[0]
    assert (refund_order["state"], refund_order["amount_total"]) == ("paid", Decimal("-19.90"))
    assert odoo.payments()["payment.refunded:9"] == [("refund", "card", 1990)]
    assert odoo.order_counts() == {"k-1": 1}


def test_cancelling_a_pos_order_before_and_after_payment(odoo, pos):
    pos.push_order(order_doc("k-1"))
    pos.push_order(order_doc("k-2"))
    change = OrderChange("k-1", "status", "cancelled", "guest left", None, "order.status:5")
    pos.push_change(change)
    pos.push_change(change)
    assert odoo.cancelled("k-1") and not odoo.cancelled("k-2")
    pos.push_payment(pay("p-1", ["k-2"], "cash", 13670))
    with pytest.raises(Rejected) as paid:
        pos.push_change(OrderChange("k-2", "status", "cancelled", "mistake", None, "order.status:6"))
    assert "refund" in paid.value.message
    assert not odoo.cancelled("k-2")


def test_a_voided_line_leaves_the_draft_pos_order(odoo, pos):
    order = order_doc("k-1")
    pos.push_order(order)
    pos.push_payment(pay("p-1", ["k-1"], "cash", 5000))  # a part paid: still draft
    after = without_line(order, 1)
    change = OrderChange("k-1", "line_voided", "accepted", "burnt", after, "order.line_voided:3", line_no=1)
    pos.push_change(change)
    pos.push_change(change)
    (pos_order,) = odoo.pos_orders("k-1")
    assert [line["qty"] for line in pos_order["lines"]] == [3]
    assert pos_order["amount_total"] == Decimal("59.70") and pos_order["amount_paid"] == Decimal("50.00")
    pos.push_payment(pay("p-2", ["k-1"], "cash", 970))
    assert odoo.pos_orders("k-1")[0]["state"] == "paid"
    assert [line["qty"] for line in odoo.pos_orders("k-1")[0]["lines"]] == [3]  # a paid order is not rewritten


def test_voiding_every_line_cancels(odoo, pos):
    pos.push_order(order_doc("k-1"))
    pos.push_change(OrderChange("k-1", "line_voided", "accepted", "all wrong", None, "v:1", line_no=2))
    assert odoo.cancelled("k-1")


def sync_method(odoo: FakeOdoo) -> str:
    return "sync_from_ui" if odoo.version >= 18 else "create_from_ui"


def test_a_dish_sent_back_after_paying_is_a_refund_order_the_refund_pays(odoo, pos):
    """The table paid, then a dish goes back: Odoo POS's own refund order of that line (negative quantity,
    refunded_orderline_id on the line sold) plus the service charge's change, created once through lost answers;
    the box's refund (payment.refunded) then pays that order instead of making another."""
    order = order_doc("k-1", service_minor=1000)  # har gow 2 x 38.50, tea 3 x 19.90, service 10.00: 146.70
    pos.push_order(order)
    pos.push_payment(pay("payment.recorded:1", ["k-1"], "card", 14670))
    after = OrderDoc(**{**without_line(order, 1).__dict__, "service_charge_minor": 500, "total_minor": 6470})
    void = OrderChange("k-1", "line_voided", "paid", "cold", after, "order.line_voided:7", line_no=1)
    odoo.drop_next_call("pos.order", sync_method(odoo))
    with pytest.raises(Retryable):
        pos.push_change(void)
    pos.push_change(void)
    pos.push_change(void)  # delivered again: found by its key
    original, refund = odoo.pos_orders()
    assert original["state"] == "paid" and [line["qty"] for line in original["lines"]] == [2, 3, 1]
    assert (refund["state"], refund["amount_total"], refund["amount_paid"]) == ("draft", Decimal("-82.00"), 0)
    har_gow = original["lines"][0]
    assert [
        (line["product_id"], line["qty"], line["price_subtotal_incl"], line["refunded_orderline_id"])
        for line in refund["lines"]
    ] == [
        (har_gow["product_id"], -2, Decimal("-77.00"), har_gow["id"]),
        (odoo.service_product_id, -1, Decimal("-5.00"), False),
    ]
    assert odoo.order_total_minor("k-1") == after.total_minor
    # the money goes back: the refund order is paid, no second refund order
    back = pay("payment.refunded:2", ["k-1"], "card", 8200, kind="refund", refund_of="payment.recorded:1")
    odoo.drop_next_call("pos.order", sync_method(odoo))
    with pytest.raises(Retryable):
        pos.push_payment(back)
    pos.push_payment(back)
    pos.push_payment(back)
    orders = odoo.pos_orders()
    assert len(orders) == 2 and orders[1]["state"] == "paid"
    assert [(p["amount"], p["payment_method_id"]) for p in orders[1]["payments"]] == [(Decimal("-82.00"), 2)]
    assert odoo.payments() == {
        "payment.recorded:1": [("payment", "card", 14670)],
        "payment.refunded:2": [("refund", "card", 8200)],
    }
    assert odoo.order_counts() == {"k-1": 1}
    # the same dish voided again under another key (a row re-queued): nothing is left of it to refund
    pos.push_change(OrderChange("k-1", "line_voided", "paid", "cold", after, "order.line_voided:8", line_no=1))
    assert len(odoo.pos_orders()) == 2


def test_one_of_two_sent_back_after_paying_refunds_one(odoo, pos):
    """One of the two har gow goes back after paying (a part of the line voided): the refund order takes back one,
    not the line; the other one later is a second refund order of one."""
    order = order_doc("k-1", service_minor=1000)  # har gow 2 x 38.50, tea 3 x 19.90, service 10.00: 146.70
    pos.push_order(order)
    pos.push_payment(pay("payment.recorded:1", ["k-1"], "card", 14670))
    one_left = [OrderLine("HG01", "hg01", "Har gow", 1, 3850, 3850), order.lines[1]]
    after = OrderDoc(**{**order.__dict__, "lines": one_left, "subtotal_minor": 9820, "total_minor": 10820})
    pos.push_change(OrderChange("k-1", "line_voided", "paid", "cold", after, "v:1", line_no=1, quantity=1, left=1))
    pos.push_change(OrderChange("k-1", "line_voided", "paid", "cold", after, "v:1", line_no=1, quantity=1, left=1))
    original, refund = odoo.pos_orders()
    har_gow = original["lines"][0]
    assert [(line["qty"], line["price_subtotal_incl"], line["refunded_orderline_id"]) for line in refund["lines"]] == [
        (-1, Decimal("-38.50"), har_gow["id"])
    ]
    assert odoo.order_total_minor("k-1") == after.total_minor
    none_left = OrderDoc(**{**after.__dict__, "lines": [order.lines[1]], "subtotal_minor": 5970, "total_minor": 6970})
    pos.push_change(OrderChange("k-1", "line_voided", "paid", "cold", none_left, "v:2", line_no=1, quantity=1))
    assert [[line["qty"] for line in o["lines"]] for o in odoo.pos_orders()[1:]] == [[-1], [-1]]
    assert odoo.order_total_minor("k-1") == none_left.total_minor


def test_a_refund_order_still_running_at_the_timeout_is_not_created_twice(odoo):
    """Item 11 for the refund order of a dish sent back: 17 and 18 wait for the first create; on 19 the next attempt
    goes at once and the first, committing later, is refused by its uuid."""
    with closing(pos_adapter(odoo, timeout_seconds=0.3, create_settle_seconds=30)) as pos:
        order = order_doc("k-1")
        pos.push_order(order)
        pos.push_payment(pay("p-1", ["k-1"], "cash", 13670))
        void = OrderChange("k-1", "line_voided", "paid", "", without_line(order, 1), "v:1", line_no=1)
        odoo.slow_next_call("pos.order", sync_method(odoo), 1.0)
        with pytest.raises(Retryable):
            pos.push_change(void)
        if odoo.version < 19:
            with pytest.raises(Retryable) as waiting:
                pos.push_change(void)
            assert waiting.value.status == 409
        else:
            pos.push_change(void)
        assert odoo.committed.wait(5)
        pos.push_change(void)
    assert [o["amount_total"] for o in odoo.pos_orders()] == [Decimal("136.70"), Decimal("-77.00")]


def test_a_refund_order_paid_back_in_two_methods_and_the_rest_its_own(odoo, pos):
    """The money of a dish sent back goes back from two payments (card, then cash): both pay the one refund order;
    a refund beyond what refund orders wait for is its own refund order, as before."""
    order = order_doc("k-1")  # 136.70
    pos.push_order(order)
    pos.push_payment(pay("payment.recorded:1", ["k-1"], "card", 10000))
    pos.push_payment(pay("payment.recorded:2", ["k-1"], "cash", 3670))
    pos.push_change(OrderChange("k-1", "line_voided", "paid", "", without_line(order, 2), "v:1", line_no=2))
    card = pay("payment.refunded:3", ["k-1"], "card", 4000, kind="refund", refund_of="payment.recorded:1")
    cash = pay("payment.refunded:4", ["k-1"], "cash", 3000, kind="refund", refund_of="payment.recorded:2")
    for refund in (card, cash, card, cash):
        pos.push_payment(refund)
    _original, refund_order, rest = odoo.pos_orders()
    assert (refund_order["state"], refund_order["amount_total"]) == ("paid", Decimal("-59.70"))
    assert [p["amount"] for p in refund_order["payments"]] == [Decimal("-40.00"), Decimal("-19.70")]
    assert (rest["state"], rest["amount_total"]) == ("paid", Decimal("-10.30"))  # the cash refund's rest
    assert odoo.payments()["payment.refunded:4"] == [("refund", "cash", 3000)]
    assert odoo.order_counts() == {"k-1": 1} and odoo.order_total_minor("k-1") == 7700


def test_every_line_voided_after_paying_refunds_the_whole_order(odoo, pos):
    pos.push_order(order_doc("k-1"))
    pos.push_payment(pay("p-1", ["k-1"], "cash", 13670))
    pos.push_change(OrderChange("k-1", "line_voided", "paid", "all wrong", None, "v:9", line_no=2))
    _original, refund = odoo.pos_orders()
    assert [line["qty"] for line in refund["lines"]] == [-2, -3]
    assert odoo.order_total_minor("k-1") == 0 and not odoo.cancelled("k-1")


def test_odoo_refuses_a_refund_of_more_than_was_sold(odoo, pos):
    """What the POS front end never sends (and the adapter must not): a line refunded beyond what it still holds;
    from 18 also a refund order refunding lines of two orders (sync_from_ui)."""
    pos.push_order(order_doc("k-1"))
    pos.push_order(order_doc("k-2"))
    pos.push_payment(pay("p-1", ["k-1", "k-2"], "cash", 27340))
    sold = [o["lines"][0]["id"] for o in odoo.pos_orders()]
    session = odoo.pos_orders()[0]["session_id"]

    def refund(ref: str, lines: list[tuple[int, int]]) -> Any:
        data = pos._pos_order_data(ref, session, None)
        data.update(
            lines=[
                [0, 0, {"product_id": odoo.product("HG01")["id"], "qty": qty, "price_unit": Decimal("38.50"),
                        "price_subtotal": 0, "price_subtotal_incl": 0, "refunded_orderline_id": line}]
                for line, qty in lines
            ],
            amount_total=0, amount_tax=0, amount_paid=0, amount_return=0,
        )  # fmt: skip
        return pos._sync_pos(ref, data, draft=True)

    refund("r-1", [(sold[0], -1)])
    with pytest.raises(Rejected, match="left to refund"):
        refund("r-2", [(sold[0], -2)])  # one of the two is left
    if odoo.version >= 18:
        with pytest.raises(Rejected, match="You can only refund products from the same order"):
            refund("r-3", [(sold[0], -1), (sold[1], -1)])


# -- sale.order ---------------------------------------------------------------------------------------------
def test_a_voided_line_of_a_sale_order_goes_to_quantity_zero(odoo):
    order = order_doc("k-1", service_minor=1000)
    with closing(sale_adapter(odoo)) as adapter:
        adapter.push_order(order)
        after = without_line(order, 2)
        after = OrderDoc(**{**after.__dict__, "service_charge_minor": 500, "total_minor": after.subtotal_minor + 500})
        change = OrderChange("k-1", "line_voided", "accepted", "no tea", after, "order.line_voided:3", line_no=2)
        adapter.push_change(change)
        adapter.push_change(change)
        assert len(calls(odoo, "sale.order.line", "write")) == 2  # the quantity once, the service charge once
        (sale,) = odoo.sale_orders("k-1")
        assert [line["product_uom_qty"] for line in sale["lines"]] == [2, 0, 1]
        assert odoo.order_total_minor("k-1") == after.total_minor
        with odoo.lock:
            odoo.db.tables["sale.order"][sale["id"]]["locked"] = True
        with pytest.raises(Rejected) as locked:
            adapter.push_change(OrderChange("k-1", "line_voided", "accepted", "", after, "v:4", line_no=1))
        assert "forbidden to modify the following fields in a locked order" in locked.value.message
        adapter.push_change(OrderChange("k-2", "status", "ready", None, None, "s:1"))  # nothing to record
        with pytest.raises(Rejected):
            adapter.push_change(OrderChange("k-2", "status", "cancelled", "x", None, "s:2"))  # not in Odoo yet


def test_part_of_a_sale_order_line_voided_leaves_what_is_left(odoo):
    """One of three teas sent back: Odoo's line goes to 2, not to 0 (the diner keeps and pays for two)."""
    order = order_doc("k-1")  # har gow 2, tea 3
    lines = [order.lines[0], OrderLine("TEA4", "tea4", "Pu-erh tea", 2, 1990, 3980)]
    view = {
        "lines": [
            {"line_no": 1, "quantity": 2, "status": "active"},
            {"line_no": 2, "quantity": 2, "status": "active"},
            {"line_no": 3, "quantity": 1, "status": "voided"},  # the tea sent back, split off line 2
        ]
    }
    subtotal = sum(line.line_total_minor for line in lines)
    after = OrderDoc(**{**order.__dict__, "lines": lines, "subtotal_minor": subtotal, "total_minor": subtotal})
    after = OrderDoc(**{**after.__dict__, "view": view})
    with closing(sale_adapter(odoo)) as adapter:
        adapter.push_order(order)
        change = OrderChange("k-1", "line_voided", "accepted", "cold", after, "v:1", line_no=2, quantity=1, left=2)
        adapter.push_change(change)
        adapter.push_change(change)  # delivered again: nothing more
        assert len(calls(odoo, "sale.order.line", "write")) == 1
        (sale,) = odoo.sale_orders("k-1")
        assert [line["product_uom_qty"] for line in sale["lines"]] == [2, 2]
        assert odoo.order_total_minor("k-1") == after.total_minor


# -- through a flapping Odoo ----------------------------------------------------------------------------------
def until_done(call: Any) -> Any:
    for _attempt in range(80):
        try:
            return call()
        except Retryable:
            continue
    pytest.fail("never got through")


@pytest.mark.parametrize("document", ["sale_order", "pos_order"])
def test_orders_voids_payments_and_refunds_land_once_through_a_flapping_odoo(odoo, document):
    """Each call retried as the worker does while a third of Odoo's answers are lost after the commit and a tenth
    are 503s: every order once with the box's total after its void, every payment and refund once."""
    adapter = pos_adapter(odoo) if document == "pos_order" else sale_adapter(odoo)
    orders = [
        order_doc(
            f"k-{n}", [("HG01", "Har gow", 1 + n % 2, 3850), ("SM02", "Siu mai", 1, 1230), ("TEA4", "Tea", 1, 1990)]
        )
        for n in range(8)
    ]
    odoo.error_rate, odoo.drop_after_commit_rate = 0.1, 0.3
    expected: dict[str, list[tuple[str, str, int]]] = {}
    totals = {}
    with closing(adapter):
        for n, order in enumerate(orders):
            until_done(lambda order=order: adapter.push_order(order))
            after = without_line(order, 2)  # the siu mai voided
            change = OrderChange(order.order_ref, "line_voided", "accepted", "cold", after, f"v:{n}", line_no=2)
            until_done(lambda change=change: adapter.push_change(change))
            totals[order.order_ref] = after.total_minor
            cash = pay(f"payment.recorded:{n}a", [order.order_ref], "cash", 2000)
            card = pay(f"payment.recorded:{n}b", [order.order_ref], "card", after.total_minor - 2000)
            refund = pay(
                f"payment.refunded:{n}", [order.order_ref], "card", 500, kind="refund", refund_of=card.payment_ref,
                reason="late",
            )  # fmt: skip
            for payment in (cash, card, refund):
                until_done(lambda payment=payment: adapter.push_payment(payment))
                expected[payment.payment_ref] = [(payment.kind, payment.method, payment.amount_minor)]
            if n % 2:  # the har gow sent back after paying, its money given back by card
                last = without_line(after, 1)
                change = OrderChange(order.order_ref, "line_voided", "paid", "", last, f"w:{n}", line_no=1)
                until_done(lambda change=change: adapter.push_change(change))
                totals[order.order_ref] = last.total_minor
                back = pay(
                    f"payment.refunded:{n}b", [order.order_ref], "card", after.total_minor - last.total_minor,
                    kind="refund", refund_of=card.payment_ref,
                )  # fmt: skip
                until_done(lambda back=back: adapter.push_payment(back))
                expected[back.payment_ref] = [("refund", "card", back.amount_minor)]
    odoo.error_rate = odoo.drop_after_commit_rate = 0.0
    assert odoo.order_counts() == {o.order_ref: 1 for o in orders}
    assert {ref: odoo.order_total_minor(ref) for ref in totals} == totals
    assert odoo.payments() == expected
    if document == "pos_order":
        assert {o["state"] for o in odoo.pos_orders() if o["amount_total"] >= 0} == {"paid"}
