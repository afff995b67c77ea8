"""The ERPNext adapter against a fake ERPNext on 127.0.0.1: what a restaurant would see go wrong is a menu
with wrong prices or stock, an order missing from the ERP or there twice, or a refusal nobody can act on."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import structlog

from sync.adapters import erpnext, make_adapter
from sync.adapters.base import (
    Capability,
    Check,
    CheckState,
    OrderChange,
    OrderDoc,
    OrderLine,
    PaymentDoc,
    Rejected,
    Retryable,
)
from sync.adapters.erpnext import ERPNextAdapter
from tests.fakes.erpnext import FakeERPNext, _Refused


@pytest.fixture
def fake() -> Iterator[FakeERPNext]:
    server = FakeERPNext().start()
    server.add_item("HG", {"zh": "虾饺", "en": "Har gow"}, 3850, stock=12, category="点心")
    server.add_item("DDM", {"zh": "担担面"}, 3100, stock=5, category="面")
    try:
        yield server
    finally:
        server.stop()


Connect = Callable[..., ERPNextAdapter]


@pytest.fixture
def connect() -> Iterator[Connect]:
    """Adapters for a fake, with settings overridden; all closed at the end."""
    made: list[ERPNextAdapter] = []

    def make(server: FakeERPNext, **overrides: Any) -> ERPNextAdapter:
        adapter = make_adapter("erp", {**server.target_config(), **overrides})
        assert isinstance(adapter, ERPNextAdapter)
        made.append(adapter)
        return adapter

    yield make
    for adapter in made:
        adapter.close()


def raw(server: FakeERPNext, method: str, path: str, body: dict[str, Any]) -> httpx.Response:
    """A request as any API client sends it (what the old adapter sent, or what ERPNext refuses)."""
    auth = {"Authorization": f"token {server.api_key}:{server.api_secret}"}
    with httpx.Client(base_url=server.url, headers=auth, timeout=2) as client:
        return client.request(method, path, json=body)


def order(
    ref: str = "ck-0001",
    *lines: OrderLine,
    service_charge_minor: int = 0,
    note: str = "",
    ticket: str = "2026-11-21#12",
    currency: str = "CNY",
) -> OrderDoc:
    lines = lines or (
        OrderLine("HG", "har_gow", "虾饺", 2, 3850, 7700, "no chilli"),
        OrderLine("DDM", "dan_dan", "担担面", 1, 3100, 3100),
    )
    subtotal = sum(line.line_total_minor for line in lines)
    return OrderDoc(
        order_ref=ref,
        order_id=1,
        ticket=ticket,
        table="A1",
        created_at="2026-11-20T18:30:00.000000Z",
        currency=currency,
        lines=lines,
        subtotal_minor=subtotal,
        service_charge_minor=service_charge_minor,
        total_minor=subtotal + service_charge_minor,
        tax_minor=0,
        note=note,
    )


# -- catalog and stock ----------------------------------------------------------------------------------------
def test_catalog_and_prices_arrive_whole_across_several_pages(connect: Connect) -> None:
    with FakeERPNext() as server:
        prices = {f"D{i:02d}": 1000 + 37 * i for i in range(45)}
        prices["D07"], prices["D08"] = 1, 123456789  # 0.01 and 1,234,567.89: read exactly
        for code, price in prices.items():
            server.add_item(code, {"zh": f"菜{code}"}, price, category="热菜" if code < "D20" else "冷菜")
        server.add_item("NOPRICE", {"zh": "时价鱼"}, None)
        server.add_item("FLOUR", {"zh": "面粉"}, 900)
        server.tables["Item"]["FLOUR"]["is_sales_item"] = 0  # an ingredient, not a dish
        server.remove_item("D03")
        server.set_price("D04", 9999, valid_upto="2020-12-31")  # an old price row
        server.set_price("D05", 8888, valid_from="2999-01-01")  # not valid yet
        server.set_price("D06", 7777, customer="Banquet Ltd")  # another customer's price
        server.set_price("D09", 6666, price_list="Standard Buying")  # not our price list
        adapter = connect(server, page_size=10)
        before = server.requests
        catalog = adapter.pull_catalog()
        # 46 items and 49 price rows, 10 a page: 5 pages each; a short last page ends the reading.
        assert server.requests - before == 10
    by_code = {item.code: item for item in catalog.items}
    assert catalog.currency == "CNY"
    assert sorted(by_code) == sorted([*prices, "NOPRICE"])
    assert {code: by_code[code].price_minor for code in prices} == prices
    assert by_code["NOPRICE"].price_minor is None
    assert (by_code["D03"].active, by_code["D02"].active) == (False, True)
    assert by_code["D12"].names == {"zh": "菜D12"} and by_code["D12"].category == "热菜"
    assert by_code["D30"].category == "冷菜"


def test_a_price_with_more_decimals_than_the_currency_is_rounded_half_up(fake: FakeERPNext, connect: Connect) -> None:
    row = next(r for r in fake.tables["Item Price"].values() if r["item_code"] == "HG")
    row["price_list_rate"] = Decimal("38.505")
    catalog = connect(fake, item_group_as_category=False).pull_catalog()
    assert [(i.code, i.price_minor, i.category) for i in catalog.items] == [("DDM", 3100, None), ("HG", 3851, None)]


def test_a_yen_price_list_has_no_decimals(connect: Connect) -> None:
    with FakeERPNext(currency="JPY") as server:
        server.add_item("RAMEN", {"zh": "拉面"}, 1200)
        adapter = connect(server)
        catalog = adapter.pull_catalog()
        assert (catalog.currency, catalog.items[0].price_minor) == ("JPY", 1200)
        name = adapter.push_order(order("jp-1", OrderLine("RAMEN", "ramen", "拉面", 3, 1200, 3600), currency="JPY"))
        assert server.orders("jp-1")[0]["items"][0]["rate"] == Decimal(1200)
        assert (name, server.order_total_minor("jp-1")) == ("SAL-ORD-2026-00001", 3600)


def test_a_price_list_mixing_currencies_is_refused(fake: FakeERPNext, connect: Connect) -> None:
    fake.set_price("DDM", 450, currency="USD")
    with pytest.raises(Rejected, match=r"mixes currencies \(CNY, USD\)"):
        connect(fake).pull_catalog()


def test_stock_is_what_is_on_hand_and_not_promised_in_whole_portions(fake: FakeERPNext, connect: Connect) -> None:
    fake.add_item("XLB", {"zh": "小笼包"}, 2800)
    fake.set_stock("HG", Decimal("7.9"), reserved=2)  # 5.9 free: 5 portions
    fake.set_stock("XLB", -2)  # ERPNext allows negative stock; we do not
    fake.set_stock("DDM", 40, warehouse="Freezer - TB")  # another warehouse: not ours
    assert connect(fake).pull_stock() == {"HG": 5, "DDM": 5, "XLB": 0}
    assert connect(fake, warehouse="").pull_stock() == {"HG": 5, "DDM": 45, "XLB": 0}


def test_an_unreachable_erp_during_a_pull_is_retryable(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake)
    fake.go_down()
    with pytest.raises(Retryable, match="cannot reach ERPNext"):
        adapter.pull_catalog()
    fake.come_back()
    assert adapter.pull_stock() == {"HG": 12, "DDM": 5}


# -- orders: exactly once --------------------------------------------------------------------------------------
def test_an_order_becomes_one_sales_order_with_its_lines_date_and_remark(fake: FakeERPNext, connect: Connect) -> None:
    name = connect(fake).push_order(order(note="birthday"))
    assert name == "SAL-ORD-2026-00001"
    (doc,) = fake.orders("ck-0001")
    # Submitted (issue 15 item 6): a draft never reaches ERPNext's order book and reserves no stock.
    assert (doc["docstatus"], doc["customer"], doc["company"]) == (1, "Walk-in Customer", "Tablebox Restaurant")
    # The ticket's business day, not the UTC date of created_at (2026-11-20 18:30Z is the 21st in Shanghai).
    assert (doc["transaction_date"], doc["delivery_date"]) == ("2026-11-21", "2026-11-21")
    assert [(i["item_code"], i["qty"], i["rate"], i["warehouse"]) for i in doc["items"]] == [
        ("HG", 2, Decimal("38.5"), "Stores - TB"),
        ("DDM", 1, Decimal("31"), "Stores - TB"),
    ]
    assert doc["po_no"] == "Tablebox 2026-11-21#12 [ck-0001]; table A1; birthday; 虾饺: no chilli"
    assert (doc["selling_price_list"], doc["ignore_pricing_rule"]) == ("Standard Selling", 1)
    assert fake.order_total_minor("ck-0001") == 10800


def test_the_answer_lost_after_the_commit_still_makes_one_order(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake)
    fake.drop_after_commit_rate = 1.0
    with pytest.raises(Retryable):
        adapter.push_order(order())
    assert fake.order_counts() == {"ck-0001": 1}  # ERPNext has it; we could not know
    fake.drop_after_commit_rate = 0.0
    name = adapter.push_order(order())  # the worker's retry finds it by our field
    assert name == fake.orders("ck-0001")[0]["name"]
    assert (fake.order_counts(), fake.posts["Sales Order"]) == ({"ck-0001": 1}, 1)
    assert fake.order_total_minor("ck-0001") == 10800


def test_erpnext_itself_duplicates_a_repeated_post(connect: Connect) -> None:
    """Why the adapter looks up first: without a unique field, the same POST twice is two documents (only
    validate_po stops it on a Sales Order, and not where Selling Settings allow repeated po_no)."""
    with FakeERPNext(unique=False, allow_multiple_po=True) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        body = connect(server).order_document(order("dup", OrderLine("HG", "har_gow", "虾饺", 1, 3850, 3850)))
        auth = {"Authorization": f"token {server.api_key}:{server.api_secret}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=2) as client:
            names = [client.post("/api/resource/Sales%20Order", json=body).json()["data"]["name"] for _ in range(2)]
        assert names == ["SAL-ORD-2026-00001", "SAL-ORD-2026-00002"]
        assert server.order_counts() == {"dup": 2}


def test_without_the_unique_flag_sequential_retries_still_make_one_order(connect: Connect) -> None:
    with FakeERPNext(unique=False, allow_multiple_po=True) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        adapter = connect(server)
        server.drop_after_commit_rate = 1.0
        with pytest.raises(Retryable):
            adapter.push_order(order())
        names = {adapter.push_order(order()) for _ in range(2)}  # two retries; lookups are never dropped
        assert names == {"SAL-ORD-2026-00001"}
        assert (server.order_counts(), server.posts["Sales Order"]) == ({"ck-0001": 1}, 1)


@pytest.mark.parametrize("duplicate_error,status", [("UniqueValidationError", 417), ("DuplicateEntryError", 409)])
def test_a_duplicate_entry_on_the_unique_field_means_already_there(
    duplicate_error: str, status: int, connect: Connect
) -> None:
    with FakeERPNext(duplicate_error=duplicate_error) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        adapter = connect(server)
        first = adapter.push_order(order())
        # The retry's lookup misses the first insert (not committed yet when it looked); its POST then hits
        # the unique index, and the second lookup finds the order.
        server.lookup_misses = 1
        assert adapter.push_order(order()) == first
        assert (server.order_counts(), server.posts["Sales Order"]) == ({"ck-0001": 1}, 2)


def test_without_the_unique_flag_an_insert_still_in_flight_can_duplicate(connect: Connect) -> None:
    """The documented residual window: what `unique` closes."""
    with FakeERPNext(unique=False, allow_multiple_po=True) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        adapter = connect(server)
        adapter.push_order(order())
        server.lookup_misses = 1
        adapter.push_order(order())
        assert server.order_counts() == {"ck-0001": 2}


def test_a_site_without_the_custom_field_is_refused_with_the_setup_step(connect: Connect) -> None:
    with FakeERPNext(custom_field=False) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        with pytest.raises(Rejected) as refused:
            connect(server).push_order(order("x", OrderLine("HG", "har_gow", "虾饺", 1, 3850, 3850)))
        assert "add the custom field tablebox_order_ref to Sales Order: type Data, Unique" in refused.value.message
        assert server.posts == {}  # nothing created that could never be found again


def test_a_pos_invoice_takes_the_posting_date_profile_and_payment_rows(connect: Connect) -> None:
    with FakeERPNext(document="pos_invoice") as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        adapter = connect(server)
        name = adapter.push_order(order())
        assert adapter.push_order(order()) == name == "ACC-PSINV-2026-00001"
        (doc,) = server.orders("ck-0001")
        assert (doc["posting_date"], doc["set_posting_time"], doc["pos_profile"]) == ("2026-11-21", 1, "Main POS")
        assert (doc["docstatus"], doc["is_pos"], doc["update_stock"]) == (0, 1, 1)  # submitted once paid
        assert [(p["mode_of_payment"], p["amount"]) for p in doc["payments"]] == [("Cash", 0)]
        assert doc["remarks"].startswith("Tablebox 2026-11-21#12 [ck-0001]; table A1")
    with pytest.raises(ValueError, match=r"pos_invoice.*needs pos_profile"):
        make_adapter("erp", {**server.target_config(), "pos_profile": ""})


def test_the_service_charge_goes_as_a_line_when_an_item_is_named(fake: FakeERPNext, connect: Connect) -> None:
    fake.add_item("SVC", {"zh": "服务费"}, None)
    placed = order(service_charge_minor=1080)
    connect(fake, service_charge_item="SVC", submit=True).push_order(placed)
    (doc,) = fake.orders("ck-0001")
    assert doc["docstatus"] == 1
    assert doc["items"][-1]["item_code"] == "SVC" and doc["items"][-1]["rate"] == Decimal("10.8")
    assert fake.order_total_minor("ck-0001") == placed.total_minor == 11880


# -- refusals a person must fix ---------------------------------------------------------------------------------
def test_a_dish_without_an_erp_code_is_refused_naming_it(fake: FakeERPNext, connect: Connect) -> None:
    before = fake.requests
    with pytest.raises(Rejected) as refused:
        connect(fake).push_order(
            order(
                "ck-2",
                OrderLine("HG", "har_gow", "虾饺", 1, 3850, 3850),
                OrderLine(None, "house_tea", "菊花茶", 2, 800, 1600),
            )
        )
    assert "'菊花茶' has no ERP code" in refused.value.message
    assert fake.requests == before  # refused before anything was sent


@pytest.mark.parametrize("unknown_item_error,status", [("DoesNotExistError", 404), ("LinkValidationError", 417)])
def test_an_item_erpnext_does_not_know_is_refused_naming_it(
    unknown_item_error: str, status: int, connect: Connect
) -> None:
    with FakeERPNext(unknown_item_error=unknown_item_error) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        with pytest.raises(Rejected) as refused:
            connect(server).push_order(
                order(
                    "ck-3",
                    OrderLine("HG", "har_gow", "虾饺", 1, 3850, 3850),
                    OrderLine("XO-SAUCE", "xo", "XO酱", 1, 1200, 1200),
                )
            )
        assert refused.value.status == status
        expected = "Item XO-SAUCE not found" if status == 404 else "Could not find Row #2: Item Code: XO-SAUCE"
        assert expected in refused.value.message
        assert "XO-SAUCE is our 'XO酱'" in refused.value.message
        assert server.order_counts() == {}


def test_a_dish_disabled_in_erpnext_since_the_last_pull_is_refused(fake: FakeERPNext, connect: Connect) -> None:
    fake.remove_item("DDM")
    with pytest.raises(Rejected, match=r"\(HTTP 417\): Item DDM is disabled \(DDM is our '担担面'"):
        connect(fake).push_order(order())


def test_a_wrong_key_is_refused_asking_to_check_it(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake, api_secret="not-the-secret")
    for call in (adapter.pull_catalog, lambda: adapter.push_order(order())):
        with pytest.raises(Rejected) as refused:
            call()
        assert refused.value.status == 401
        assert "check the API key and secret of [sync.erp]" in refused.value.message
    assert fake.order_counts() == {}


def test_a_user_without_the_role_is_refused_with_erpnexts_words(fake: FakeERPNext, connect: Connect) -> None:
    fake.forbid("Sales Order")
    with pytest.raises(Rejected) as refused:
        connect(fake).push_order(order())
    assert refused.value.status == 403
    assert "No permission for Sales Order" in refused.value.message and "roles of its user" in refused.value.message


# -- faults that pass -------------------------------------------------------------------------------------------
def test_outage_5xx_rate_limit_and_slow_answers_are_retryable(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake)
    fake.go_down()
    with pytest.raises(Retryable, match="cannot reach ERPNext"):
        adapter.push_order(order())
    fake.come_back()
    fake.error_rate = 1.0
    with pytest.raises(Retryable) as failed:
        adapter.push_order(order())
    assert failed.value.status == 503
    fake.error_rate = 0.0
    fake.rate_limited = 1
    with pytest.raises(Retryable) as failed:
        adapter.push_order(order())
    assert failed.value.status == 429 and "Too Many Requests" in failed.value.message
    assert fake.order_counts() == {}
    assert adapter.push_order(order()) == "SAL-ORD-2026-00001"


def test_a_slow_erp_times_out_as_retryable(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake, timeout_seconds=0.2)
    fake.slow_seconds = 1.0
    with pytest.raises(Retryable, match=r"did not answer within 0.2 s"):
        adapter.pull_stock()


# -- cancels and voids (Capability.AMENDS) ------------------------------------------------------------------------
def change(ref: str, status: str, placed: OrderDoc | None, *, event: str = "status", reason: str = "") -> OrderChange:
    return OrderChange(order_ref=ref, event=event, status=status, reason=reason or None, order=placed, change_ref="c1")


def test_the_adapter_declares_that_it_amends() -> None:
    assert Capability.AMENDS in ERPNextAdapter.capabilities


def test_cancelling_a_submitted_order_cancels_it_once(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake)
    name = adapter.push_order(order())
    fake.drop_after_commit_rate = 1.0
    with pytest.raises(Retryable):
        adapter.push_change(change("ck-0001", "cancelled", None, reason="guest left"))
    fake.drop_after_commit_rate = 0.0
    adapter.push_change(change("ck-0001", "cancelled", None, reason="guest left"))  # the retry: nothing to do
    (doc,) = fake.orders("ck-0001")
    assert (doc["name"], doc["docstatus"], doc["status"]) == (name, 2, "Cancelled")
    assert fake.cancelled("ck-0001")
    adapter.push_status("ck-0001", "cancelled", "again")  # the old entry point does the same, harmlessly
    adapter.push_change(change("never-sent", "cancelled", None))  # nothing there to cancel: no error


def test_a_draft_cannot_be_cancelled_so_it_is_deleted(fake: FakeERPNext, connect: Connect) -> None:
    """frappe refuses docstatus 0 -> 2 (what the old adapter did not try; it wrote a remark instead)."""
    adapter = connect(fake, submit=False)
    name = adapter.push_order(order())
    refused = raw(fake, "POST", "/api/method/frappe.client.cancel", {"doctype": "Sales Order", "name": name})
    assert refused.status_code == 417 and "Cannot change docstatus from 0 to 2" in refused.text
    adapter.push_change(change("ck-0001", "cancelled", None))
    adapter.push_change(change("ck-0001", "cancelled", None))
    assert fake.orders("ck-0001") == [] and fake.cancelled("ck-0001")
    assert fake.order_counts() == {"ck-0001": 1}  # still once: in ERPNext's Deleted Documents


def test_a_voided_line_cancels_and_amends_the_submitted_order_once(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake)
    name = adapter.push_order(order())
    now = order("ck-0001", OrderLine("HG", "har_gow", "虾饺", 2, 3850, 7700, "no chilli"))  # 担担面 voided
    voided = change("ck-0001", "submitted", now, event="line_voided", reason="sent back cold")
    fake.drop_after_commit_rate = 1.0  # the cancel lands, its answer is lost
    with pytest.raises(Retryable):
        adapter.push_change(voided)
    fake.drop_after_commit_rate = 0.0
    adapter.push_change(voided)  # the retry amends the cancelled original
    adapter.push_change(voided)  # and again: already as it should be
    original, amended = fake.tables["Sales Order"][name], fake.current("ck-0001")
    assert amended is not None and amended["name"] == f"{name}-1"
    assert (original["docstatus"], amended["docstatus"], amended["amended_from"]) == (2, 1, name)
    assert [(i["item_code"], i["qty"]) for i in amended["items"]] == [("HG", 2)]
    assert fake.order_total_minor("ck-0001") == 7700 and fake.order_counts() == {"ck-0001": 1}
    assert fake.comments() == [] and not fake.cancelled("ck-0001")
    # A second void amends the amendment (<name>-2), then a cancel cancels what stands.
    adapter.push_change(
        change(
            "ck-0001",
            "submitted",
            order("ck-0001", OrderLine("HG", "har_gow", "虾饺", 1, 3850, 3850)),
            event="line_voided",
        )
    )
    assert fake.current("ck-0001")["name"] == f"{name}-2"  # type: ignore[index]
    adapter.push_change(change("ck-0001", "cancelled", None))
    assert fake.cancelled("ck-0001")


def test_cancelling_a_paid_order_asks_for_the_unlink_setting_when_erpnext_refuses(connect: Connect) -> None:
    """accounts_controller unlinks payments on cancel only when Accounts Settings say so; otherwise frappe refuses
    the cancel (LinkExistsError) and the row parks with what to tick."""
    with FakeERPNext(unlink_payments=False) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        adapter = connect(server)
        adapter.push_order(order())
        adapter.push_payment(paid("p1", ["ck-0001"], "cash", 10800))
        with pytest.raises(Rejected, match="Unlink Advance Payment on Cancellation of Order"):
            adapter.push_change(change("ck-0001", "cancelled", None))
        assert not server.cancelled("ck-0001")
        server.unlink_payments = True
        adapter.push_change(change("ck-0001", "cancelled", None))
        assert server.cancelled("ck-0001") and server.payments() == {"p1": [("payment", "cash", 10800)]}


def test_a_void_on_a_draft_updates_its_lines(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake, submit=False)
    name = adapter.push_order(order())
    adapter.push_change(
        change(
            "ck-0001",
            "submitted",
            order("ck-0001", OrderLine("DDM", "dan_dan", "担担面", 1, 3100, 3100)),
            event="line_voided",
        )
    )
    doc = fake.current("ck-0001")
    assert doc is not None and (doc["name"], doc["docstatus"], fake.order_total_minor("ck-0001")) == (name, 0, 3100)


def test_a_user_without_system_manager_cannot_write_comments(fake: FakeERPNext, connect: Connect) -> None:
    """Issue 15 item 2: what the old adapter wrote payments and voids as (frappe's comment.json roles)."""
    adapter = connect(fake)
    name = adapter.push_order(order())
    body = {"comment_type": "Comment", "reference_doctype": "Sales Order", "reference_name": name, "content": "x"}
    refused = raw(fake, "POST", "/api/resource/Comment", body)
    assert refused.status_code == 403 and "No permission for Comment" in refused.text


# -- payments and refunds -----------------------------------------------------------------------------------------
def paid(ref: str, orders: list[str], method: str, amount_minor: int, **extra: Any) -> PaymentDoc:
    return PaymentDoc(ref, orders, "A1", method, amount_minor, "CNY", "2026-11-21T13:05:00Z", **extra)


def test_a_payment_is_one_payment_entry_against_the_visits_orders(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake)
    first, second = adapter.push_order(order("ck-a")), adapter.push_order(order("ck-b"))
    payment = paid("payment.recorded:17", ["ck-a", "ck-b"], "wechat", 21600 + 500)  # 5.00 more than the bill
    fake.drop_after_commit_rate = 1.0
    with pytest.raises(Retryable):
        adapter.push_payment(payment)
    fake.drop_after_commit_rate = 0.0
    ref = adapter.push_payment(payment)
    assert adapter.push_payment(payment) == ref
    (entry,) = fake.tables["Payment Entry"].values()
    assert (entry["name"], entry["payment_type"], entry["mode_of_payment"]) == (ref, "Receive", "WeChat Pay")
    assert [(r["reference_name"], r["allocated_amount"]) for r in entry["references"]] == [
        (first, Decimal("108")),
        (second, Decimal("108")),
    ]
    assert (entry["unallocated_amount"], entry["paid_to"]) == (Decimal("5"), "WeChat Pay - TB")
    assert fake.tables["Sales Order"][first]["advance_paid"] == Decimal("108")
    assert fake.payments() == {"payment.recorded:17": [("payment", "wechat", 22100)]}
    assert fake.comments() == []
    with pytest.raises(Rejected, match="none of the orders paid by p2 is in ERPNext"):
        adapter.push_payment(paid("p2", ["nope"], "card", 100))


def test_a_unique_payment_field_closes_the_window_reference_no_leaves_open(connect: Connect) -> None:
    """reference_no is not unique in ERPNext: a retry whose lookup runs before the first entry is saved books the
    payment twice; with `payment_ref_field` (a Unique custom field) the second insert is refused and found."""
    for field, entries in (("", 2), ("tablebox_payment_ref", 1)):
        with FakeERPNext(payment_ref_field=field) as server:
            server.add_item("HG", {"zh": "虾饺"}, 3850)
            server.add_item("DDM", {"zh": "担担面"}, 3100)
            adapter = connect(server, payment_ref_field=field)
            adapter.push_order(order("ck-a"))
            payment = paid("p1", ["ck-a"], "cash", 10800)
            first = adapter.push_payment(payment)
            server.lookup_misses = 1  # the retry's lookup runs before the first entry is committed
            again = adapter.push_payment(payment)
            assert len(server.tables["Payment Entry"]) == entries
            assert (again == first) is (entries == 1)
            if field:
                assert run_check(adapter, ())[f"custom field {field}"].state is CheckState.OK


def test_a_refund_is_a_payment_entry_to_the_customer(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake)
    adapter.push_order(order("ck-a"))
    adapter.push_payment(paid("p1", ["ck-a"], "cash", 10800))
    refund = paid("r1", ["ck-a"], "cash", 3100, kind="refund", refund_of="p1", reason="cold noodles")
    name = adapter.push_payment(refund)
    assert adapter.push_payment(refund) == name
    entry = fake.tables["Payment Entry"][name]
    assert (entry["payment_type"], entry["paid_amount"], entry["references"]) == ("Pay", Decimal("31"), [])
    assert entry["paid_from"] == "Cash - TB"  # the cash the money left from
    assert "refund of p1" in entry["remarks"] and "cold noodles" in entry["remarks"]
    assert fake.payments() == {"p1": [("payment", "cash", 10800)], "r1": [("refund", "cash", 3100)]}


def test_a_payment_entry_must_name_its_cash_account(fake: FakeERPNext, connect: Connect) -> None:
    """payment_entry.json makes paid_to (Receive) mandatory; ERPNext fills only the customer's side."""
    body = {"payment_type": "Receive", "party_type": "Customer", "party": fake.customer, "paid_amount": 1}
    refused = raw(fake, "POST", "/api/resource/Payment%20Entry", body)
    assert refused.status_code == 417 and "Value missing for Payment Entry: Account Paid To" in refused.text


def test_a_status_move_books_nothing_and_asks_nothing(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake)
    adapter.push_order(order())
    before = fake.requests
    adapter.push_change(change("ck-0001", "served", order()))
    assert fake.requests == before and fake.orders("ck-0001")[0]["docstatus"] == 1


def test_a_method_without_a_mode_of_payment_is_refused_naming_the_setting(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake, payment_modes={"voucher": "Gift Voucher"})
    adapter.push_order(order("ck-a"))
    with pytest.raises(Rejected, match="'crypto', which payment_modes does not map"):
        adapter.push_payment(paid("p1", ["ck-a"], "crypto", 100))
    with pytest.raises(Rejected, match="ERPNext has no Mode of Payment 'Gift Voucher': create it"):
        adapter.push_payment(paid("p2", ["ck-a"], "voucher", 100))


def test_a_pos_invoice_without_payments_is_refused_and_the_payment_submits_it(connect: Connect) -> None:
    """Issue 15 item 1: the old adapter's POS Invoice (is_pos and pos_profile, no payments) is refused by
    validate_mode_of_payment; ours carries the box's modes at 0, and the payment fills and submits it."""
    with FakeERPNext(document="pos_invoice") as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        adapter = connect(server)
        old = adapter.order_document(order("old"))
        del old["payments"]
        auth = {"Authorization": f"token {server.api_key}:{server.api_secret}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=2) as client:
            answer = client.post("/api/resource/POS%20Invoice", json=old)
        assert answer.status_code == 417 and "At least one mode of payment is required" in answer.text
        first, second = adapter.push_order(order("ck-a")), adapter.push_order(order("ck-b"))
        # Two payments for the visit (216.00): 150.00 by card, then 66.00 in cash; the first answer is lost.
        server.drop_after_commit_rate = 1.0
        with pytest.raises(Retryable):
            adapter.push_payment(paid("p1", ["ck-a", "ck-b"], "card", 15000))
        server.drop_after_commit_rate = 0.0
        adapter.push_payment(paid("p1", ["ck-a", "ck-b"], "card", 15000))
        adapter.push_payment(paid("p1", ["ck-a", "ck-b"], "card", 15000))
        a, b = server.tables["POS Invoice"][first], server.tables["POS Invoice"][second]
        assert (a["docstatus"], a["paid_amount"], b["docstatus"]) == (1, Decimal("108"), 0)
        adapter.push_payment(paid("p2", ["ck-a", "ck-b"], "cash", 6600))
        assert (b["docstatus"], b["status"]) == (1, "Paid")
        assert [(p["mode_of_payment"], p["amount"]) for p in b["payments"]] == [
            ("Cash", Decimal("66")),
            ("Credit Card", Decimal("42")),
        ]
        assert server.payments() == {"p1": [("payment", "card", 15000)], "p2": [("payment", "cash", 6600)]}
        assert server.tables["Payment Entry"] == {}


def test_a_payment_racing_its_own_slow_first_attempt_is_not_booked_twice(
    connect: Connect, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retry read the invoice before the first attempt's save landed: it sends what it read as `modified`,
    ERPNext refuses the stale save (TimestampMismatchError, frappe's check_if_latest), the worker tries again."""
    with FakeERPNext(document="sales_invoice") as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        adapter = connect(server)
        name = adapter.push_order(order("ck-a"))
        stale = adapter.get_doc("Sales Invoice", name)  # what the retry read, before the first attempt landed
        payment = paid("p1", ["ck-a"], "card", 5000)
        adapter.push_payment(payment)  # the first attempt, whose answer the worker never saw
        monkeypatch.setattr(adapter, "get_doc", lambda doctype, docname: dict(stale))
        with pytest.raises(Retryable, match="Document has been modified after you have opened it"):
            adapter.push_payment(payment)
        monkeypatch.undo()
        adapter.push_payment(payment)
        assert server.payments() == {"p1": [("payment", "card", 5000)]}


def test_a_sales_invoice_is_a_pos_sale_paid_from_the_box(connect: Connect) -> None:
    with FakeERPNext(document="sales_invoice") as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        adapter = connect(server)
        name = adapter.push_order(order("ck-a"))
        doc = server.tables["Sales Invoice"][name]
        assert (doc["docstatus"], doc["is_pos"], doc["update_stock"]) == (0, 1, 1)
        adapter.push_payment(paid("p1", ["ck-a"], "alipay", 11000))  # 2.00 over: a Payment Entry for the rest
        assert (doc["docstatus"], doc["outstanding_amount"]) == (1, Decimal(0))
        assert [(p["mode_of_payment"], p["amount"]) for p in doc["payments"]] == [("Alipay", Decimal("108"))]
        (extra,) = server.tables["Payment Entry"].values()
        assert (extra["paid_amount"], extra["references"], extra["reference_no"]) == (Decimal("2"), [], "p1")
        assert server.payments() == {"p1": [("payment", "alipay", 11000)]}  # the invoice's part and the rest
        # After payment, a voided line is a credit note against the invoice (once), not a change to it.
        now = order("ck-a", OrderLine("HG", "har_gow", "虾饺", 2, 3850, 7700))
        for _ in range(2):
            adapter.push_change(change("ck-a", "submitted", now, event="line_voided", reason="no noodles"))
        (credit,) = [d for d in server.tables["Sales Invoice"].values() if d.get("is_return")]
        assert (credit["return_against"], credit["docstatus"], credit["grand_total"]) == (name, 1, Decimal(-31))


@pytest.mark.parametrize("document", ["sales_invoice", "pos_invoice"])
def test_a_dish_sent_back_after_paying_is_one_credit_note_through_lost_answers_and_races(
    document: str, connect: Connect
) -> None:
    """A paid invoice is submitted: a line voided after paying is a credit note (a return against it), booked once
    whatever the worker retries, and the order is then worth in ERPNext what it is worth on the box: the invoice
    less its returns. The retry that races its own slow first attempt (its look-up saw no note yet) is refused by
    the unique field on the note and looks again; the old adapter's note carried nothing unique and was booked
    twice."""
    with FakeERPNext(document=document) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        server.add_item("CF", {"zh": "凤爪"}, 2800)
        adapter = connect(server)
        doctype = adapter.doctype
        hg, ddm, cf = (
            OrderLine("HG", "har_gow", "虾饺", 2, 3850, 7700),
            OrderLine("DDM", "dan_dan", "担担面", 1, 3100, 3100),
            OrderLine("CF", "feet", "凤爪", 1, 2800, 2800),
        )
        name = adapter.push_order(order("ck-a", hg, ddm, cf))
        adapter.push_payment(paid("p1", ["ck-a"], "card", 13600))
        invoice = server.tables[doctype][name]
        assert (invoice["docstatus"], invoice["status"]) == (1, "Paid")
        invoice["posting_time"] = "23:59:59"  # rung up just before midnight; the dish goes back after it

        # the noodles sent back: ERPNext commits the note, the answer is lost; the worker tries again
        now = order("ck-a", hg, cf)
        server.drop_after_commit_rate = 1.0
        with pytest.raises(Retryable):
            adapter.push_change(change("ck-a", "accepted", now, event="line_voided", reason="cold"))
        server.drop_after_commit_rate = 0.0
        adapter.push_change(change("ck-a", "accepted", now, event="line_voided", reason="cold"))
        # a retry whose look-up ran before the first attempt's note was saved: it sees no note and posts again
        server.return_lookup_misses = 1
        adapter.push_change(change("ck-a", "accepted", now, event="line_voided", reason="cold"))
        assert server.return_lookup_misses == 0
        (note,) = server.returns_of(doctype, name)
        assert (note["docstatus"], note["grand_total"], note[server.order_ref_field]) == (
            1,
            Decimal(-31),
            "ck-a return 1",
        )
        assert [(i["item_code"], i["qty"]) for i in note["items"]] == [("DDM", Decimal(-1))]
        # posted when sent back (today in the ERP's time zone), after the invoice
        assert note["posting_date"] == datetime.now(server.time_zone).date().isoformat()
        # the credit is against the invoice, as a return made from it in ERPNext (update_outstanding_for_self 0)
        assert (invoice["outstanding_amount"], invoice["status"]) == (Decimal(-31), "Credit Note Issued")
        assert server.order_total_minor("ck-a") == now.total_minor == 10500
        assert server.order_counts() == {"ck-a": 1}  # a credit note is not an order

        # later the chicken feet too: a second note for that line only, numbered on
        later = order("ck-a", hg)
        for _ in range(2):
            adapter.push_change(change("ck-a", "accepted", later, event="line_voided"))
        notes = server.returns_of(doctype, name)
        assert [(n[server.order_ref_field], n["grand_total"]) for n in notes] == [
            ("ck-a return 1", Decimal(-31)),
            ("ck-a return 2", Decimal(-28)),
        ]
        assert server.order_total_minor("ck-a") == later.total_minor == 7700
        assert server.payments() == {"p1": [("payment", "card", 13600)]}  # the money goes back as the refund


def test_a_dish_sent_back_after_paying_gives_back_its_share_of_the_service_charge(connect: Connect) -> None:
    """The service charge line's rate follows the order: the note returns the charge's fall (10.80 -> 7.70) as one
    at 3.10, once, so the invoice less its returns is the box's new total."""
    with FakeERPNext(document="sales_invoice") as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        server.add_item("SVC", {"zh": "服务费"}, None)
        adapter = connect(server, service_charge_item="SVC")
        name = adapter.push_order(order("ck-a", service_charge_minor=1080))
        adapter.push_payment(paid("p1", ["ck-a"], "card", 11880))
        now = order("ck-a", OrderLine("HG", "har_gow", "虾饺", 2, 3850, 7700), service_charge_minor=770)
        for _ in range(2):
            adapter.push_change(change("ck-a", "accepted", now, event="line_voided"))
        (note,) = server.returns_of("Sales Invoice", name)
        assert [(i["item_code"], i["qty"], i["rate"]) for i in note["items"]] == [
            ("DDM", Decimal(-1), Decimal(31)),
            ("SVC", Decimal(-1), Decimal("3.1")),
        ]
        assert server.order_total_minor("ck-a") == now.total_minor == 8470
        adapter.push_change(change("ck-a", "cancelled", None))  # then the rest, charge and all
        assert server.cancelled("ck-a") and server.order_total_minor("ck-a") == 0


@pytest.mark.parametrize("document", ["sales_invoice", "pos_invoice"])
def test_a_paid_invoice_whose_order_is_cancelled_is_returned_whole_not_cancelled(
    document: str, connect: Connect
) -> None:
    """Cancelling a paid invoice would take the payment booked in it out of the ledger while the box still holds
    it (the refund the box records then pays out money ERPNext never saw come in), and ERPNext refuses to cancel an
    invoice a return links to (what the old adapter tried after a void): what is left is returned instead."""
    with FakeERPNext(document=document) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        adapter = connect(server)
        doctype = adapter.doctype
        name = adapter.push_order(order("ck-a"))
        adapter.push_payment(paid("p1", ["ck-a"], "cash", 10800))
        now = order("ck-a", OrderLine("HG", "har_gow", "虾饺", 2, 3850, 7700))
        adapter.push_change(change("ck-a", "accepted", now, event="line_voided"))
        refused = raw(server, "POST", "/api/method/frappe.client.cancel", {"doctype": doctype, "name": name})
        assert refused.status_code == 417 and "LinkExistsError" in refused.text
        server.drop_after_commit_rate = 1.0
        with pytest.raises(Retryable):
            adapter.push_change(change("ck-a", "cancelled", None, reason="guest left"))
        server.drop_after_commit_rate = 0.0
        adapter.push_change(change("ck-a", "cancelled", None, reason="guest left"))
        notes = server.returns_of(doctype, name)
        assert [(n[server.order_ref_field], n["grand_total"]) for n in notes] == [
            ("ck-a return 1", Decimal(-31)),
            ("ck-a return 2", Decimal(-77)),
        ]
        assert "Tablebox cancel: guest left" in notes[1]["remarks"]
        invoice = server.tables[doctype][name]
        assert (invoice["docstatus"], invoice["outstanding_amount"]) == (1, Decimal(-108))
        assert server.cancelled("ck-a") and server.order_total_minor("ck-a") == 0
        assert server.payments() == {"p1": [("payment", "cash", 10800)]}  # still in the ledger, for the refund


@pytest.mark.parametrize("document", ["sales_invoice", "pos_invoice"])
def test_a_cancelled_draft_holding_part_of_a_payment_keeps_that_money_in_erpnext(
    document: str, connect: Connect
) -> None:
    """The visit paid part (the first invoice in full, the second in part, still a draft): the second order is
    then cancelled. A draft cannot be cancelled, only deleted, and its payment rows would go with it: the part
    booked there becomes a Payment Entry (Receive, unallocated) first, once through a lost answer."""
    with FakeERPNext(document=document) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        adapter = connect(server)
        adapter.push_order(order("ck-a"))
        second = adapter.push_order(order("ck-b"))
        adapter.push_payment(paid("p1", ["ck-a", "ck-b"], "card", 15000))
        assert server.tables[adapter.doctype][second]["docstatus"] == 0  # 42.00 of its 108.00 paid
        server.drop_after_commit_rate = 1.0
        with pytest.raises(Retryable):
            adapter.push_change(change("ck-b", "cancelled", None, reason="guest left"))
        server.drop_after_commit_rate = 0.0
        for _ in range(2):
            adapter.push_change(change("ck-b", "cancelled", None, reason="guest left"))
        assert server.cancelled("ck-b") and second not in server.tables[adapter.doctype]
        (moved,) = server.tables["Payment Entry"].values()
        assert (moved["payment_type"], moved["paid_amount"], moved["references"]) == ("Receive", Decimal(42), [])
        assert server.payments() == {"p1": [("payment", "card", 15000)]}


def test_an_invoice_is_paid_in_full_by_what_the_guest_paid_not_a_rounded_total(connect: Connect) -> None:
    """ERPNext rounds an invoice's total to a whole unit unless told not to; 108.70 paid against a rounded 109.00
    would leave the invoice a draft for ever."""
    with FakeERPNext(document="sales_invoice") as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3170)
        adapter = connect(server)
        lines = (
            OrderLine("HG", "har_gow", "虾饺", 2, 3850, 7700),
            OrderLine("DDM", "dan_dan", "担担面", 1, 3170, 3170),
        )
        name = adapter.push_order(order("ck-a", *lines))
        adapter.push_payment(paid("p1", ["ck-a"], "cash", 10870))
        doc = server.tables["Sales Invoice"][name]
        assert (doc["docstatus"], doc["paid_amount"], doc["outstanding_amount"]) == (1, Decimal("108.7"), 0)
        assert server.tables["Payment Entry"] == {}


def test_a_paid_pos_invoice_short_of_stock_is_refused_with_erpnexts_words(connect: Connect) -> None:
    """validate_stock_availablility on submit: the payment waits (parked) until the stock or the setting is fixed;
    nothing of it is booked meanwhile, so the retry books it whole."""
    with FakeERPNext(document="pos_invoice") as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850, stock=1)
        adapter = connect(server)
        adapter.push_order(order("ck-a", OrderLine("HG", "har_gow", "虾饺", 2, 3850, 7700)))
        check = run_check(adapter, ("HG",))["dishes' ERP codes"]
        assert check.state is CheckState.WARN and "stock items: HG" in check.detail
        with pytest.raises(Rejected, match="Stock quantity not enough for Item Code: HG under warehouse Stores - TB"):
            adapter.push_payment(paid("p1", ["ck-a"], "cash", 7700))
        assert server.payments() == {}
        server.set_stock("HG", 10)
        adapter.push_payment(paid("p1", ["ck-a"], "cash", 7700))
        assert server.payments() == {"p1": [("payment", "cash", 7700)]}


def test_a_mode_without_an_account_is_refused_with_erpnexts_words(connect: Connect) -> None:
    """Only the modes a shop takes money by need an account: orders go through, an Alipay payment is refused."""
    with FakeERPNext(document="pos_invoice") as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_mode_of_payment("Alipay", account=False)
        adapter = connect(server)
        adapter.push_order(order("x", OrderLine("HG", "har_gow", "虾饺", 1, 3850, 3850)))
        with pytest.raises(Rejected, match="Please set default Cash or Bank account in Mode of Payment Alipay"):
            adapter.push_payment(paid("p1", ["x"], "alipay", 3850))
        adapter.push_payment(paid("p2", ["x"], "cash", 3850))
        assert server.payments() == {"p2": [("payment", "cash", 3850)]}


@pytest.mark.parametrize("document", ["sales_order", "sales_invoice", "pos_invoice"])
def test_orders_payments_refunds_and_voids_are_booked_once_through_lost_answers(
    document: str, connect: Connect
) -> None:
    """Every call retried until it goes through while a third of the answers are lost after ERPNext committed
    and a tenth are 503s (what the worker does): each order, payment and refund ends up in ERPNext once."""
    with FakeERPNext(document=document) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        adapter = connect(server)
        server.drop_after_commit_rate, server.error_rate = 0.3, 0.1

        failures: list[str] = []

        def deliver(call: Callable[[], Any]) -> Any:
            for _ in range(60):
                try:
                    return call()
                except Retryable as failed:
                    failures.append(failed.message)
            raise AssertionError("never went through")

        wanted: dict[str, list[tuple[str, str, int]]] = {}
        refs: list[str] = []
        cancelled: set[str] = set()
        for visit in range(8):
            visit_refs = [f"v{visit}-a", f"v{visit}-b"]
            refs += visit_refs
            for ref in visit_refs:
                deliver(lambda ref=ref: adapter.push_order(order(ref)))
            if visit % 2:  # 担担面 sent back before the bill
                now = order(visit_refs[0], OrderLine("HG", "har_gow", "虾饺", 2, 3850, 7700))
                deliver(
                    lambda now=now: adapter.push_change(change(now.order_ref, "submitted", now, event="line_voided"))
                )
            if visit % 4 == 2:  # the second order cancelled before the bill
                deliver(lambda ref=visit_refs[1]: adapter.push_change(change(ref, "cancelled", None)))
                cancelled.add(visit_refs[1])
            due = sum(server.order_total_minor(ref) for ref in visit_refs if ref not in cancelled)
            for n, (method, amount) in enumerate((("card", 10000), ("cash", due - 10000))):
                payment = paid(f"p{visit}-{n}", visit_refs, method, amount)
                deliver(lambda payment=payment: adapter.push_payment(payment))
                wanted[payment.payment_ref] = [("payment", method, amount)]
            if visit % 3 == 0:
                refund = paid(f"r{visit}", visit_refs, "cash", 500, kind="refund", refund_of=f"p{visit}-1", reason="x")
                deliver(lambda refund=refund: adapter.push_payment(refund))
                wanted[refund.payment_ref] = [("refund", "cash", 500)]
        server.drop_after_commit_rate = server.error_rate = 0.0
        assert sum("may have been processed" in f for f in failures) >= 5  # answers lost after the commit
        assert server.order_counts() == dict.fromkeys(refs, 1)
        assert server.payments() == wanted
        assert {ref for ref in refs if server.cancelled(ref)} == cancelled == {"v2-b", "v6-b"}
        if document != "sales_order":  # every invoice paid in full, so submitted
            live = [server.current(ref) for ref in refs if ref not in cancelled]
            assert {doc["docstatus"] for doc in live if doc is not None} == {1} and None not in live


# -- item 3, 4, 5 -------------------------------------------------------------------------------------------------
def test_two_boxes_with_the_same_ticket_do_not_collide_on_po_no(fake: FakeERPNext, connect: Connect) -> None:
    """Issue 15 item 3: validate_po refuses a second open order of the customer with the same po_no; the old
    remark ("Tablebox <ticket>; table ...") repeats when two boxes (or a reset box) reuse a ticket number."""
    adapter = connect(fake)
    old = adapter.order_document(order("ck-1"))
    old["po_no"] = "Tablebox 2026-11-21#12; table A1"
    auth = {"Authorization": f"token {fake.api_key}:{fake.api_secret}"}
    with httpx.Client(base_url=fake.url, headers=auth, timeout=2) as client:
        assert client.post("/api/resource/Sales%20Order", json=old).status_code == 200
        again = client.post("/api/resource/Sales%20Order", json={**old, "tablebox_order_ref": "ck-2"})
    assert again.status_code == 417 and "already exists against Customer's Purchase Order" in again.text
    adapter.push_order(order("ck-3"))
    adapter.push_order(order("ck-4"))  # same ticket, another box's order: accepted
    assert set(fake.order_counts()) == {"ck-1", "ck-3", "ck-4"}


def test_a_hardened_site_missing_the_field_is_refused_with_the_setup_step(connect: Connect) -> None:
    """Issue 15 item 4: without allow_error_traceback the 500 says only OperationalError (which alone is retried
    forever); the adapter asks the list without our field, and it answers: the field is missing."""
    with FakeERPNext(custom_field=False, tracebacks=False) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        adapter = connect(server)
        with pytest.raises(Rejected) as refused:
            adapter.push_order(order("x", OrderLine("HG", "har_gow", "虾饺", 1, 3850, 3850)))
        assert "add the custom field tablebox_order_ref to Sales Order: type Data, Unique" in refused.value.message
        assert server.posts == {}
        answer = adapter.send("GET", "/api/resource/Sales%20Order", params={"fields": '["tablebox_order_ref"]'})
        assert (answer.status_code, answer.json()) == (500, {"exc_type": "OperationalError"})


def test_a_hardened_site_whose_database_fails_is_retried_not_blamed_on_the_field(connect: Connect) -> None:
    """The same bare OperationalError when every list fails (the database itself): no setup hint, try later."""
    with FakeERPNext(tracebacks=False) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        adapter = connect(server)

        def broken(doctype: str, query: Any) -> Any:
            raise _Refused(server.unknown_column(doctype, "name", "field list"))  # a 500 {"exc_type": ...} only

        server._list = broken  # type: ignore[method-assign]
        with pytest.raises(Retryable) as failed:
            adapter.push_order(order("x", OrderLine("HG", "har_gow", "虾饺", 1, 3850, 3850)))
        assert failed.value.status == 500 and "OperationalError" in failed.value.message
        assert server.posts == {}


def test_frappes_plain_text_429_is_retried_after_what_it_says(fake: FakeERPNext, connect: Connect) -> None:
    """Issue 15 item 5: frappe's rate limiter answers text/plain "Too Many Requests" with Retry-After."""
    adapter = connect(fake)
    fake.rate_limited, fake.retry_after = 1, 42
    with pytest.raises(Retryable) as failed:
        adapter.push_order(order())
    assert (failed.value.status, failed.value.retry_after) == (429, 42.0)
    assert "Too Many Requests" in failed.value.message
    assert adapter.push_order(order()) == "SAL-ORD-2026-00001"


def test_submit_false_still_leaves_a_draft_for_those_who_want_one(fake: FakeERPNext, connect: Connect) -> None:
    connect(fake, submit=False).push_order(order())
    assert fake.orders("ck-0001")[0]["docstatus"] == 0


# -- tablebox sync check ------------------------------------------------------------------------------------------
FACTS = {
    "currency": "CNY",
    "prices_include_tax": True,
    "tax_rate_bp": 600,
    "payment_methods": ["cash", "card", "wechat", "alipay", "other"],
}


def run_check(
    adapter: ERPNextAdapter, codes: tuple[str, ...] = ("HG", "DDM"), facts: dict[str, Any] = FACTS
) -> dict[str, Check]:
    adapter.expected_codes, adapter.box_facts = codes, facts
    return {c.name: c for c in adapter.check()}


def test_check_against_a_well_set_up_site_is_all_green(fake: FakeERPNext, connect: Connect) -> None:
    for code in ("HG", "DDM"):  # dishes as non-stock items, as the README advises
        fake.tables["Item"][code]["is_stock_item"] = 0
    checks = run_check(connect(fake))
    assert {name: c.state for name, c in checks.items() if c.state is not CheckState.OK} == {}
    assert "reachable" in checks and "custom field tablebox_order_ref" in checks
    assert checks["authenticated"].detail == "as tablebox-api@example.com, ERPNext 15.49.2"
    assert checks["dishes' ERP codes"].detail == "all 2 found"
    with FakeERPNext(document="pos_invoice") as server:
        assert all(
            c.state is CheckState.OK for c in run_check(connect(server), ()).values() if c.name != "dishes' ERP codes"
        )


def test_check_names_what_is_wrong_on_a_misconfigured_site(connect: Connect) -> None:
    with FakeERPNext(
        document="pos_invoice", unique=False, roles=frozenset({"Sales User"}), prices_include_tax=False
    ) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_mode_of_payment("Alipay", account=False)
        server.tables["POS Profile"]["Main POS"]["payments"].pop()  # "Other" not in the profile
        checks = run_check(connect(server), ("HG", "XO"))
    bad = {name: (c.state, c.detail) for name, c in checks.items() if c.state is not CheckState.OK}
    assert bad == {
        "API user's roles": (CheckState.FAIL, "tablebox-api@example.com lacks Accounts User, Stock User"),
        "custom field tablebox_order_ref": (
            CheckState.WARN,
            "not Unique: a retry racing a slow insert can make a second document",
        ),
        "mode of payment Alipay (alipay)": (CheckState.FAIL, "no default account for Tablebox Restaurant"),
        "mode of payment Other (other)": (CheckState.WARN, "not in POS profile Main POS"),
        "prices include tax": (CheckState.FAIL, "the box's prices include tax, template VAT 6% - TB does not agree"),
        "dishes' ERP codes": (CheckState.FAIL, "not in ERPNext: XO"),
    }
    assert all(checks[name].fix for name in bad)


def test_check_warns_of_an_api_user_with_more_rights_than_it_needs(connect: Connect) -> None:
    with FakeERPNext(roles=frozenset({"System Manager", "Sales User", "Accounts User", "Stock User"})) as server:
        roles = run_check(connect(server), ())["API user's roles"]
    assert (roles.state, roles.detail) == (CheckState.WARN, "tablebox-api@example.com is a System Manager")
    assert roles.fix == "give it only Sales User, Accounts User, Stock User"


def test_check_warns_that_sales_orders_reserve_stock_items(fake: FakeERPNext, connect: Connect) -> None:
    """The fixture's dishes are stock items: each submitted order reserves them until delivered."""
    codes = run_check(connect(fake))["dishes' ERP codes"]
    assert (codes.state, codes.detail) == (CheckState.WARN, "all 2 found; stock items: DDM, HG")
    assert "Delivery Note" in codes.fix


def test_check_warns_when_the_tax_rates_differ(fake: FakeERPNext, connect: Connect) -> None:
    taxes = run_check(connect(fake), (), {**FACTS, "tax_rate_bp": 900})["prices include tax"]
    assert (taxes.state, taxes.detail) == (CheckState.WARN, "template VAT 6% - TB charges 6 %, the box 9 %")


def test_check_stops_at_what_cannot_be_reached_or_opened(fake: FakeERPNext, connect: Connect) -> None:
    checks = list(connect(fake, api_secret="wrong").check())
    assert [(c.name, c.state) for c in checks] == [("reachable", CheckState.OK), ("authenticated", CheckState.FAIL)]
    assert "Generate Keys" in checks[1].fix
    with FakeERPNext(custom_field=False) as server:
        assert run_check(connect(server))["custom field tablebox_order_ref"].state is CheckState.FAIL
    url = fake.url
    fake.stop()
    (only,) = make_adapter("erp", {**fake.target_config(), "base_url": url}).check()
    assert (only.name, only.state) == ("reachable", CheckState.FAIL)


# -- settings and secrets ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change,complaint",
    [
        ({"base_url": "erp.example.com"}, "base_url must start with http"),
        ({"api_secret": ""}, "needs api_key and api_secret"),
        ({"document": "invoice"}, "document must be one of sales_order, sales_invoice, pos_invoice"),
        ({"doctype": "Quotation"}, "doctype must be one of Sales Order, Sales Invoice, POS Invoice"),
        ({"payment_modes": {"cash": ""}}, "payment_modes must map payment methods"),
        ({"order_ref_field": "Tablebox Ref"}, "order_ref_field must be a field name"),
        ({"page_size": "many"}, "page_size must be a number, got 'many'"),
    ],
)
def test_bad_settings_are_refused_when_the_adapter_is_made(change: dict[str, Any], complaint: str) -> None:
    config = {"kind": "erpnext", "base_url": "https://erp.example.com", "api_key": "k", "api_secret": "s", **change}
    with pytest.raises(ValueError, match=complaint):
        make_adapter("erp", config)


def test_the_key_and_secret_never_reach_logs_or_messages(
    fake: FakeERPNext,
    connect: Connect,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caplog.set_level(logging.DEBUG)
    messages: list[str] = []
    with structlog.testing.capture_logs() as events:
        monkeypatch.setattr(erpnext, "log", structlog.get_logger("sync.erpnext"))
        adapter = connect(fake)
        adapter.pull_catalog()
        adapter.push_order(order())
        adapter.push_order(order())
        for failing, fault in ((connect(fake, api_secret="wrong-secret-value"), None), (adapter, "down")):
            if fault:
                fake.go_down()
            for call in (failing.pull_stock, lambda a=failing: a.push_order(order("ck-9"))):
                with pytest.raises((Rejected, Retryable)) as failed:
                    call()
                messages.append(str(failed.value))
        fake.come_back()
    seen = " ".join([str(events), caplog.text, *messages, repr(adapter), *capsys.readouterr()])
    assert {e["event"] for e in events} >= {"sync.catalog.read", "sync.order.created", "sync.order.already_there"}
    assert any(fake.url in str(e.get("url")) for e in events)  # the URL is logged, the key is not
    assert fake.api_secret not in seen and fake.api_key not in seen
