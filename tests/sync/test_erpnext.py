"""The ERPNext adapter against a fake ERPNext on 127.0.0.1: what a restaurant would see go wrong is a menu
with wrong prices or stock, an order missing from the ERP or there twice, or a refusal nobody can act on."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import structlog

from sync.adapters import erpnext, make_adapter
from sync.adapters.base import OrderDoc, OrderLine, PaymentDoc, Rejected, Retryable
from sync.adapters.erpnext import ERPNextAdapter
from tests.fakes.erpnext import FakeERPNext


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
    assert (doc["docstatus"], doc["customer"], doc["company"]) == (0, "Walk-in Customer", "Tablebox Restaurant")
    # The ticket's business day, not the UTC date of created_at (2026-11-20 18:30Z is the 21st in Shanghai).
    assert (doc["transaction_date"], doc["delivery_date"]) == ("2026-11-21", "2026-11-21")
    assert [(i["item_code"], i["qty"], i["rate"], i["warehouse"]) for i in doc["items"]] == [
        ("HG", 2, Decimal("38.5"), "Stores - TB"),
        ("DDM", 1, Decimal("31"), "Stores - TB"),
    ]
    assert doc["po_no"] == "Tablebox 2026-11-21#12; table A1; birthday; 虾饺: no chilli"
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
    """Why the adapter looks up first: without a unique field, the same POST twice is two documents."""
    with FakeERPNext(unique=False) as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        body = connect(server).order_document(order("dup", OrderLine("HG", "har_gow", "虾饺", 1, 3850, 3850)))
        auth = {"Authorization": f"token {server.api_key}:{server.api_secret}"}
        with httpx.Client(base_url=server.url, headers=auth, timeout=2) as client:
            names = [client.post("/api/resource/Sales%20Order", json=body).json()["data"]["name"] for _ in range(2)]
        assert names == ["SAL-ORD-2026-00001", "SAL-ORD-2026-00002"]
        assert server.order_counts() == {"dup": 2}


def test_without_the_unique_flag_sequential_retries_still_make_one_order(connect: Connect) -> None:
    with FakeERPNext(unique=False) as server:
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
    with FakeERPNext(unique=False) as server:
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


def test_a_pos_invoice_takes_the_posting_date_and_profile(connect: Connect) -> None:
    with FakeERPNext(doctype="POS Invoice") as server:
        server.add_item("HG", {"zh": "虾饺"}, 3850)
        server.add_item("DDM", {"zh": "担担面"}, 3100)
        adapter = connect(server)
        name = adapter.push_order(order())
        assert adapter.push_order(order()) == name == "ACC-PSINV-2026-00001"
        (doc,) = server.orders("ck-0001")
        assert (doc["posting_date"], doc["set_posting_time"], doc["pos_profile"]) == ("2026-11-21", 1, "Main POS")
        assert doc["remarks"].startswith("Tablebox 2026-11-21#12; table A1")
        with pytest.raises(Rejected, match="POS Profile"):
            connect(server, pos_profile="").push_order(order("ck-0002"))


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


# -- status and payments ----------------------------------------------------------------------------------------
def test_cancelling_a_submitted_order_cancels_it_once(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake, submit=True)
    name = adapter.push_order(order())
    fake.drop_after_commit_rate = 1.0
    with pytest.raises(Retryable):
        adapter.push_status("ck-0001", "cancelled", "guest left")
    fake.drop_after_commit_rate = 0.0
    adapter.push_status("ck-0001", "cancelled", "guest left")  # the retry: already cancelled, nothing to do
    (doc,) = fake.orders("ck-0001")
    assert (doc["name"], doc["docstatus"], doc["status"]) == (name, 2, "Cancelled")


def test_cancelling_a_draft_marks_its_remark_once(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake)
    adapter.push_order(order())
    adapter.push_status("ck-0001", "ready", None)  # not recorded
    assert fake.orders("ck-0001")[0]["po_no"].startswith("Tablebox")
    adapter.push_status("ck-0001", "cancelled", "kitchen out of prawns")
    (doc,) = fake.orders("ck-0001")
    assert doc["docstatus"] == 0
    assert doc["po_no"] == "CANCELLED: kitchen out of prawns | Tablebox 2026-11-21#12; table A1; 虾饺: no chilli"
    modified = doc["modified"]
    adapter.push_status("ck-0001", "cancelled", "kitchen out of prawns")
    assert fake.orders("ck-0001")[0]["modified"] == modified  # untouched the second time
    adapter.push_status("never-sent", "cancelled", None)  # nothing there to cancel: no error


def test_a_voided_line_becomes_one_comment(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake)
    name = adapter.push_order(order())
    for _ in range(2):
        adapter.push_status("ck-0001", "line_voided", "line 2 voided: sent back cold")
    (comment,) = fake.comments(name)
    assert comment["content"].startswith("Tablebox: line 2 voided: sent back cold [tablebox void ")


def test_a_payment_is_one_comment_per_order_even_when_retried(fake: FakeERPNext, connect: Connect) -> None:
    adapter = connect(fake)
    first, second = adapter.push_order(order("ck-a")), adapter.push_order(order("ck-b"))
    payment = PaymentDoc(
        payment_ref="payment.recorded:17",
        order_refs=["ck-a", "ck-b"],
        table="A1",
        method="cash",
        amount_minor=21600,
        currency="CNY",
        paid_at="2026-11-21T13:05:00Z",
    )
    fake.drop_after_commit_rate = 1.0
    with pytest.raises(Retryable):
        adapter.push_payment(payment)
    fake.drop_after_commit_rate = 0.0
    ref = adapter.push_payment(payment)
    assert adapter.push_payment(payment) == ref
    text = "Paid 216.00 CNY by cash at 2026-11-21T13:05:00Z, table A1 [tablebox payment payment.recorded:17]"
    assert [c["content"] for c in fake.comments(first)] == [text]
    assert [c["content"] for c in fake.comments(second)] == [text]
    with pytest.raises(Rejected, match="none of the orders paid by p2 is in ERPNext"):
        adapter.push_payment(PaymentDoc("p2", ["nope"], "A2", "card", 100, "CNY", "2026-11-21T13:06:00Z"))


# -- settings and secrets ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "change,complaint",
    [
        ({"base_url": "erp.example.com"}, "base_url must start with http"),
        ({"api_secret": ""}, "needs api_key and api_secret"),
        ({"doctype": "Sales Invoice"}, "doctype must be one of Sales Order, POS Invoice"),
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
