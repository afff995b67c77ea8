"""The Odoo adapter against a fake Odoo on loopback: JSON-2 on 19, JSON-RPC on 17, each order once whatever the
network does, Odoo's refusals parked with Odoo's own words, and the API key never in a log line."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import closing
from decimal import Decimal
from typing import Any

import pytest
import structlog

from sync.adapters import make_adapter
from sync.adapters.base import OrderDoc, OrderLine, PaymentDoc, Rejected, Retryable
from sync.adapters.odoo import OdooAdapter
from tests.fakes.odoo import CENTRAL_LOCATION, CENTRAL_WAREHOUSE, SHOP_LOCATION, WALK_IN, FakeOdoo

MENU = [  # code, names, price_minor, stock, category
    ("HG01", {"zh": "虾饺", "en": "Har gow"}, 3850, 12, "Dim Sum"),
    ("SM02", {"zh": "烧卖", "en": "Siu mai"}, 1230, None, "Dim Sum"),
    ("CN03", {"zh": "炒面", "en": "Chow mein"}, 4200, 0, "Noodles"),
    ("TEA4", {"zh": "普洱茶", "en": "Pu-erh tea"}, 1990, None, "Drinks"),
    ("XO05", {"zh": "XO酱萝卜糕", "en": "Turnip cake in XO sauce"}, 3300, None, None),
]
PROTOCOL = {19: "json2", 17: "jsonrpc"}


def fake_odoo(version: int = 19, **kwargs: Any) -> FakeOdoo:
    fake = FakeOdoo(version=version, **kwargs).start()
    for code, names, price, stock, category in MENU:
        fake.add_item(code, names, price, stock=stock, category=category)
    return fake


@pytest.fixture(params=[19, 17], ids=["odoo19-json2", "odoo17-jsonrpc"])
def odoo(request: pytest.FixtureRequest) -> Iterator[FakeOdoo]:
    fake = fake_odoo(request.param)
    try:
        yield fake
    finally:
        fake.stop()


def adapter_for(fake: FakeOdoo, **changes: Any) -> OdooAdapter:
    config = {**fake.target_config(), **changes}
    return make_adapter("erp", {k: v for k, v in config.items() if v is not None})  # type: ignore[return-value]


@pytest.fixture
def adapter(odoo: FakeOdoo) -> Iterator[OdooAdapter]:
    with closing(adapter_for(odoo)) as opened:
        yield opened


def order_doc(
    ref: str,
    lines: list[tuple[str | None, str, int, int]] | None = None,
    *,
    service_minor: int = 0,
    note: str = "",
    currency: str = "CNY",
) -> OrderDoc:
    """lines: (code, name, quantity, unit_price_minor)."""
    lines = lines if lines is not None else [("HG01", "Har gow", 2, 3850), ("TEA4", "Pu-erh tea", 3, 1990)]
    order_lines = [
        OrderLine(code, code and code.lower(), name, qty, unit, qty * unit) for code, name, qty, unit in lines
    ]
    subtotal = sum(line.line_total_minor for line in order_lines)
    return OrderDoc(
        order_ref=ref,
        order_id=1,
        ticket="2026-11-21#12",
        table="A1",
        created_at="2026-11-21T11:00:00.000000Z",
        currency=currency,
        lines=order_lines,
        subtotal_minor=subtotal,
        service_charge_minor=service_minor,
        total_minor=subtotal + service_minor,
        tax_minor=0,
        note=note,
    )


def calls(fake: FakeOdoo, model: str, method: str) -> list[Any]:
    with fake.lock:
        return [c for c in fake.calls if (c.model, c.method) == (model, method)]


# -- protocols ----------------------------------------------------------------------------------------------
def test_each_odoo_is_spoken_to_in_its_own_protocol(odoo, adapter):
    adapter.pull_catalog()
    adapter.push_order(order_doc("k-1"))
    assert {c.protocol for c in odoo.calls} == {PROTOCOL[odoo.version]}
    assert odoo.order_counts() == {"k-1": 1}


@pytest.mark.parametrize(
    "version,web_version,expected",
    [(19, True, "json2"), (17, True, "jsonrpc"), (15, False, "jsonrpc")],
    ids=["19-json2", "17-jsonrpc", "15-no-web-version"],
)
def test_auto_picks_the_protocol_the_server_speaks(version, web_version, expected):
    fake = fake_odoo(version)
    fake.has_web_version = web_version
    try:
        with closing(adapter_for(fake, protocol="auto")) as adapter:
            fake.go_down()
            with pytest.raises(Retryable):  # cannot ask yet: tries again on the next call
                adapter.pull_catalog()
            fake.come_back()
            catalog = adapter.pull_catalog()
        assert {c.protocol for c in fake.calls} == {expected}
        assert sorted(item.code for item in catalog.items) == ["CN03", "HG01", "SM02", "TEA4", "XO05"]
    finally:
        fake.stop()


def test_json2_against_an_odoo_17_is_refused_with_the_setting_to_change():
    fake = fake_odoo(17)
    try:
        with closing(adapter_for(fake, protocol="json2")) as adapter, pytest.raises(Rejected) as refused:
            adapter.pull_catalog()
        assert refused.value.status == 404
        assert 'protocol = "jsonrpc"' in refused.value.message
    finally:
        fake.stop()


# -- catalog ------------------------------------------------------------------------------------------------
def test_the_catalog_brings_names_prices_categories_and_removed_dishes(odoo, adapter):
    odoo.remove_item("XO05")
    with odoo.lock:
        odoo.product("TEA4")["sale_ok"] = False
    catalog = adapter.pull_catalog()
    assert catalog.currency == "CNY"
    assert {i.code: (dict(i.names), i.price_minor, i.category, i.active) for i in catalog.items} == {
        "HG01": ({"zh": "虾饺", "en": "Har gow"}, 3850, "Dim Sum", True),
        "SM02": ({"zh": "烧卖", "en": "Siu mai"}, 1230, "Dim Sum", True),
        "CN03": ({"zh": "炒面", "en": "Chow mein"}, 4200, "Noodles", True),
        "TEA4": ({"zh": "普洱茶", "en": "Pu-erh tea"}, None, "Drinks", True),
        "XO05": ({"zh": "XO酱萝卜糕", "en": "Turnip cake in XO sauce"}, 3300, "All", False),
    }


def test_a_price_change_in_odoo_reaches_the_next_pull(odoo, adapter):
    odoo.set_price("HG01", 3990)
    odoo.add_item("NEW6", {"en": "Egg tart"}, 1500, category="Dim Sum")
    items = {i.code: i for i in adapter.pull_catalog().items}
    assert (items["HG01"].price_minor, items["NEW6"].price_minor) == (3990, 1500)
    # Odoo has no Chinese name for it and answers the English one for zh_CN: left out, so a zh name typed on
    # the box survives the pull.
    assert dict(items["NEW6"].names) == {"en": "Egg tart"}


def test_names_typed_in_chinese_in_odoo_map_to_chinese(odoo):
    odoo.add_item("CS08", {"zh": "叉烧包"}, 1600)  # typed in Chinese: Odoo's source (en_US) value
    with closing(adapter_for(odoo, languages={"zh": "en_US"})) as adapter:
        items = {i.code: i for i in adapter.pull_catalog().items}
    assert (dict(items["CS08"].names), dict(items["HG01"].names)) == ({"zh": "叉烧包"}, {"zh": "Har gow"})


@pytest.mark.parametrize(
    "currency,odoo_price,expected_minor",
    [
        ("CNY", "38.5", 3850),
        ("CNY", "0.3", 30),
        ("CNY", "12.345", 1235),
        ("CNY", "99999.99", 9999999),
        ("JPY", "1200", 1200),
        ("JPY", "880.5", 881),
    ],
)
def test_prices_become_exact_minor_units(currency, odoo_price, expected_minor):
    fake = fake_odoo(19, currency=currency)
    try:
        with fake.lock:
            fake.product("HG01")["list_price"] = Decimal(odoo_price)
        with closing(adapter_for(fake)) as adapter:
            catalog = adapter.pull_catalog()
        assert catalog.currency == currency
        assert next(i.price_minor for i in catalog.items if i.code == "HG01") == expected_minor
    finally:
        fake.stop()


def test_the_catalog_is_read_page_by_page(odoo):
    with closing(adapter_for(odoo, page_size=2)) as adapter:
        catalog = adapter.pull_catalog()
    assert sorted(i.code for i in catalog.items) == ["CN03", "HG01", "SM02", "TEA4", "XO05"]
    pages = [
        c for c in calls(odoo, "product.product", "search_read") if "default_code" in (c.params.get("fields") or [])
    ]
    assert [c.params["limit"] for c in pages] == [2, 2, 2]
    assert [c.params["domain"][-1] for c in pages] == [["id", ">", 0], ["id", ">", 4], ["id", ">", 6]]
    assert [c.context["lang"] for c in calls(odoo, "product.product", "search_read")] == ["en_US", "zh_CN"] * 3


def test_pricelist_fixed_prices_replace_list_prices(odoo):
    odoo.add_fixed_price("HG01", 3600)
    odoo.add_fixed_price("SM02", 1100, per_template=True)
    odoo.add_fixed_price("CN03", 100, date_end="2000-01-01 00:00:00")  # expired
    with closing(adapter_for(odoo, pricelist_id=1)) as adapter:
        prices = {i.code: i.price_minor for i in adapter.pull_catalog().items}
        adapter.push_order(order_doc("k-pl"))
    assert (prices["HG01"], prices["SM02"], prices["CN03"], prices["TEA4"]) == (3600, 1100, 4200, 1990)
    assert odoo.sale_orders("k-pl")[0]["pricelist_id"] == 1


# -- stock --------------------------------------------------------------------------------------------------
def test_stock_is_what_the_shop_location_holds(odoo, adapter):
    odoo.set_stock("HG01", 5, location=CENTRAL_LOCATION)  # the central kitchen's, not ours
    odoo.set_stock("XO05", "2.5")
    odoo.add_item("NEG7", {"en": "Congee"}, 1800, stock=-3)
    assert adapter.pull_stock() == {"HG01": 12, "CN03": 0, "XO05": 2, "NEG7": 0}  # SM02, TEA4 are not stocked
    assert {c.context.get("location") for c in calls(odoo, "product.product", "search_read")} == {SHOP_LOCATION}


def test_stock_by_warehouse_or_for_the_whole_company(odoo):
    """The fake reads the warehouse from the context key its version's _get_domain_locations reads (17: warehouse,
    18/19: warehouse_id; issue 15 item 8): the adapter's stock is one warehouse's on both."""
    odoo.set_stock("HG01", 5, location=CENTRAL_LOCATION)
    with closing(adapter_for(odoo, location_id=None, warehouse_id=CENTRAL_WAREHOUSE)) as adapter:
        assert adapter.pull_stock()["HG01"] == 5
    sent = [c.context for c in calls(odoo, "product.product", "search_read")]
    assert sent and all((c.get("warehouse"), c.get("warehouse_id")) == (CENTRAL_WAREHOUSE,) * 2 for c in sent)
    with closing(adapter_for(odoo, location_id=None)) as adapter:
        assert adapter.pull_stock()["HG01"] == 17


# -- orders -------------------------------------------------------------------------------------------------
def test_an_order_reaches_odoo_once_with_its_lines_and_total(odoo, adapter):
    order = order_doc(
        "k-1",
        [("HG01", "Har gow", 2, 3850), ("TEA4", "Pu-erh tea", 3, 1990), (None, "Chef's soup", 1, 680)],
        service_minor=1043,
        note="birthday",
    )
    first = adapter.push_order(order)
    again = adapter.push_order(order)
    assert first == again
    assert odoo.order_counts() == {"k-1": 1}
    (sale,) = odoo.sale_orders("k-1")
    assert str(sale["id"]) == first
    assert (sale["state"], sale["partner_id"], sale["origin"], sale["date_order"]) == (
        "sale",
        WALK_IN,
        "Tablebox 2026-11-21#12, table A1",
        "2026-11-21 11:00:00",
    )
    codes = {p["id"]: p["default_code"] for p in odoo.db.tables["product.product"].values()}
    assert [
        (codes.get(line["product_id"]) or line["product_id"], line["product_uom_qty"], line["price_unit"], line["name"])
        for line in sale["lines"]
    ] == [
        ("HG01", 2, Decimal("38.50"), "Har gow"),
        ("TEA4", 3, Decimal("19.90"), "Pu-erh tea"),
        (odoo.open_item_product_id, 1, Decimal("6.80"), "Chef's soup"),
        (odoo.service_product_id, 1, Decimal("10.43"), "Service charge"),
        (False, 0, 0, "birthday"),
    ]
    assert odoo.order_total_minor("k-1") == order.total_minor == 2 * 3850 + 3 * 1990 + 680 + 1043


def test_a_create_committed_then_dropped_is_found_not_repeated(odoo, adapter):
    odoo.drop_next_call("sale.order", "create")
    with pytest.raises(Retryable):
        adapter.push_order(order_doc("k-drop"))
    assert odoo.order_counts() == {"k-drop": 1}
    assert odoo.sale_orders("k-drop")[0]["state"] == "draft"  # created, never confirmed
    odoo.drop_next_call("sale.order", "action_confirm")
    with pytest.raises(Retryable):
        adapter.push_order(order_doc("k-drop"))
    assert odoo.sale_orders("k-drop")[0]["state"] == "sale"
    reference = adapter.push_order(order_doc("k-drop"))
    assert odoo.order_counts() == {"k-drop": 1}
    assert reference == str(odoo.sale_orders("k-drop")[0]["id"])
    assert len(calls(odoo, "sale.order", "create")) == 1 and len(calls(odoo, "sale.order", "action_confirm")) == 1


def test_a_flapping_odoo_still_gets_every_order_exactly_once(odoo, adapter):
    odoo.error_rate, odoo.drop_after_commit_rate = 0.2, 0.3
    orders = [
        order_doc(f"k-{n}", [("HG01", "Har gow", 1 + n % 3, 3850), ("SM02", "Siu mai", 1, 1230)]) for n in range(25)
    ]
    failures = 0
    for order in orders:
        for _attempt in range(60):
            try:
                adapter.push_order(order)
                break
            except Retryable:
                failures += 1
        else:
            pytest.fail(f"{order.order_ref} never got through")
    odoo.error_rate = odoo.drop_after_commit_rate = 0.0
    assert failures > 10  # the faults did happen
    assert odoo.order_counts() == {o.order_ref: 1 for o in orders}
    assert [odoo.order_total_minor(o.order_ref) for o in orders] == [o.total_minor for o in orders]
    assert {o["state"] for o in odoo.sale_orders()} == {"sale"}


def test_a_dish_odoo_does_not_have_is_refused_naming_it(odoo, adapter):
    with pytest.raises(Rejected) as refused:
        adapter.push_order(order_doc("k-x", [("HG01", "Har gow", 1, 3850), ("LOB9", "Lobster noodles", 1, 16800)]))
    assert 'dish "Lobster noodles" (ERP code LOB9) has no Odoo product' in refused.value.message
    odoo.remove_item("XO05")
    with pytest.raises(Rejected) as archived:
        adapter.push_order(order_doc("k-y", [("XO05", "Turnip cake", 1, 3300)]))
    assert 'dish "Turnip cake" (ERP code XO05) is archived in Odoo' in archived.value.message
    assert odoo.order_counts() == {}


def test_local_dishes_and_service_charges_need_their_odoo_products(odoo):
    with closing(adapter_for(odoo, open_item_product_id=None, service_product_id=None)) as adapter:
        with pytest.raises(Rejected) as local:
            adapter.push_order(order_doc("k-l", [(None, "Chef's soup", 1, 680)]))
        with pytest.raises(Rejected) as service:
            adapter.push_order(order_doc("k-s", service_minor=500))
        adapter.push_order(order_doc("k-ok"))
    assert (
        'dish "Chef\'s soup" has no ERP code' in local.value.message and "open_item_product_id" in local.value.message
    )
    assert "service_product_id" in service.value.message
    assert odoo.order_counts() == {"k-ok": 1}


# -- Odoo's refusals and faults -----------------------------------------------------------------------------
def test_a_wrong_api_key_is_refused_asking_to_check_it(odoo):
    with closing(adapter_for(odoo, api_key="not-the-key")) as adapter, pytest.raises(Rejected) as refused:
        adapter.push_order(order_doc("k-1"))
    assert "check the API key" in refused.value.message and refused.value.status == 401
    if odoo.version >= 19:
        assert "Invalid apikey" in refused.value.message
    assert odoo.order_counts() == {}


def test_a_key_revoked_while_running_is_refused_over_jsonrpc_too():
    fake = fake_odoo(17)
    try:
        with closing(adapter_for(fake)) as adapter:
            adapter.push_order(order_doc("k-1"))
            fake.api_keys = {"a-new-key"}
            with pytest.raises(Rejected) as refused:
                adapter.push_order(order_doc("k-2"))
            assert "check the API key" in refused.value.message and "Access Denied" in refused.value.message
            fake.api_keys = {fake.api_key}  # the key is fixed: authenticates again
            adapter.push_order(order_doc("k-2"))
        assert fake.order_counts() == {"k-1": 1, "k-2": 1}
    finally:
        fake.stop()


def test_odoo_refusing_the_data_is_parked_with_odoos_message(odoo):
    with closing(adapter_for(odoo, partner_id=99)) as adapter, pytest.raises(Rejected) as refused:
        adapter.push_order(order_doc("k-1"))
    assert "the record 99 of res.partner does not exist" in refused.value.message
    assert refused.value.status == (422 if odoo.version >= 19 else None)
    assert odoo.order_counts() == {}  # Odoo rolled the call back


def test_a_bad_parameter_is_refused_with_odoos_message(odoo, adapter):
    # The adapter sends only parameters Odoo takes; this is the mapping of Odoo's answer when one is not.
    with pytest.raises(Rejected) as refused:
        adapter._execute("product.product", "read", ids=[1], badparameter=True)
    assert "got an unexpected keyword argument 'badparameter'" in refused.value.message
    assert refused.value.status == (422 if odoo.version >= 19 else None)


@pytest.mark.parametrize("fault", ["down", "503", "429", "slow"])
def test_outages_errors_and_slow_answers_are_retried_later(odoo, fault):
    with closing(adapter_for(odoo, timeout_seconds=0.3)) as adapter:
        if fault == "down":
            odoo.go_down()
        elif fault == "503":
            odoo.error_rate = 1.0
        elif fault == "429":
            odoo.rate_limit_next = 10
        else:
            odoo.slow_seconds = 1.0
        with pytest.raises(Retryable) as retry:
            adapter.push_order(order_doc("k-1"))
        assert retry.value.status == {"503": 503, "429": 429}.get(fault)
        odoo.come_back()
        odoo.error_rate, odoo.rate_limit_next, odoo.slow_seconds = 0.0, 0, 0.0
        adapter.push_order(order_doc("k-1"))
    assert odoo.order_counts() == {"k-1": 1}


def test_the_database_header_picks_one_of_several_databases():
    fake = fake_odoo(19, databases=("tablebox", "accounting"))
    try:
        with closing(adapter_for(fake)) as adapter:
            assert len(adapter.pull_catalog().items) == 5
        with closing(adapter_for(fake, database=None)) as adapter, pytest.raises(Rejected) as refused:
            adapter.pull_catalog()
        assert refused.value.status == 404 and "no database selected" in refused.value.message
    finally:
        fake.stop()


def test_an_unknown_database_over_jsonrpc_is_refused_naming_it():
    fake = fake_odoo(17)
    try:
        with closing(adapter_for(fake, database="tablebx")) as adapter, pytest.raises(Rejected) as refused:
            adapter.pull_catalog()
        assert "no database 'tablebx'" in refused.value.message
    finally:
        fake.stop()


# -- status and payments ------------------------------------------------------------------------------------
def test_cancelling_an_order_cancels_its_sale_order_once(odoo, adapter):
    adapter.push_order(order_doc("k-1"))
    adapter.push_status("k-1", "cancelled", "out of lemons")
    assert odoo.sale_orders("k-1")[0]["state"] == "cancel"
    adapter.push_status("k-1", "cancelled", "out of lemons")  # a retried delivery
    adapter.push_status("k-1", "ready", None)  # not recorded in Odoo
    assert len(calls(odoo, "sale.order", "action_cancel")) == 1
    with pytest.raises(Rejected) as missing:
        adapter.push_status("k-never", "cancelled", "typo")
    assert "k-never is not in Odoo" in missing.value.message


def test_a_locked_order_cannot_be_cancelled_and_says_why(odoo, adapter):
    adapter.push_order(order_doc("k-1"))
    with odoo.lock:
        odoo.db.tables["sale.order"][odoo.sale_orders("k-1")[0]["id"]]["locked"] = True
    with pytest.raises(Rejected) as refused:
        adapter.push_status("k-1", "cancelled", "mistake")
    assert "You cannot cancel a locked order" in refused.value.message
    assert odoo.sale_orders("k-1")[0]["state"] == "sale"


def test_a_payment_and_a_refund_are_booked_once_as_customer_payments(odoo, adapter):
    """Issue 15: a payment reaches Odoo as its own document (an account.payment, posted), not as a chatter note; a
    refund as an outbound customer payment. Each once, whatever the network does."""
    adapter.push_order(order_doc("k-1"))
    adapter.push_order(order_doc("k-2", [("SM02", "Siu mai", 1, 1230)]))
    payment = PaymentDoc(
        payment_ref="payment.recorded:41",
        order_refs=["k-1", "k-2"],
        table="A1",
        method="cash",
        amount_minor=14900,
        currency="CNY",
        paid_at="2026-11-21T12:30:00Z",
    )
    odoo.drop_next_call("account.payment", "create")
    with pytest.raises(Retryable):
        adapter.push_payment(payment)
    first = adapter.push_payment(payment)  # found by its memo, posted
    assert adapter.push_payment(payment) == first
    refund = PaymentDoc(
        "payment.refunded:7",
        ["k-1", "k-2"],
        "A1",
        "card",
        1230,
        "CNY",
        "2026-11-21T12:40:00Z",
        kind="refund",
        refund_of="payment.recorded:41",
        reason="siu mai was cold",
    )
    adapter.push_payment(refund)
    adapter.push_payment(refund)
    assert odoo.payments() == {
        "payment.recorded:41": [("payment", "cash", 14900)],
        "payment.refunded:7": [("refund", "card", 1230)],
    }
    with odoo.lock:
        booked = sorted(odoo.db.tables["account.payment"].values(), key=lambda p: p["id"])
    assert [(p["state"], odoo.db.tables["account.journal"][p["journal_id"]]["name"]) for p in booked] == [
        ("in_process" if odoo.version >= 18 else "posted", "Cash"),
        ("in_process" if odoo.version >= 18 else "posted", "Bank"),
    ]
    assert "siu mai was cold" in booked[1]["payment_reference"]
    assert odoo.messages("k-1") == []  # no chatter notes any more
    with pytest.raises(Rejected):
        adapter.push_payment(PaymentDoc("p-2", ["k-unknown"], "B2", "card", 100, "CNY", "2026-11-21T12:31:00Z"))


# -- settings and secrets -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "changes,words",
    [
        ({"protocol": "soap"}, "protocol must be one of"),
        ({"api_key": None}, "TABLEBOX_SYNC_ERP_API_KEY"),
        ({"protocol": "jsonrpc", "login": None}, "needs database and login"),
        ({"partner_id": "walk-in"}, "partner_id must be an Odoo record id"),
        ({"document": "invoice"}, "document must be one of sale_order, pos_order"),
        ({"document": "pos_order"}, 'document = "pos_order" needs pos_config_id'),
        ({"create_settle_seconds": -1}, "create_settle_seconds must be a number from 0 to 3600"),
    ],
)
def test_bad_settings_are_refused_when_the_worker_starts(odoo, changes, words):
    with pytest.raises(ValueError, match=words):
        adapter_for(odoo, **changes)


def test_the_api_key_never_reaches_the_logs(odoo, caplog):
    caplog.set_level(logging.DEBUG)
    wrong_key = "wrong-" + odoo.api_key[::-1]
    messages: list[str] = []
    with structlog.testing.capture_logs() as logs:
        with closing(adapter_for(odoo)) as adapter:
            adapter.pull_catalog()
            adapter.pull_stock()
            adapter.push_order(order_doc("k-1"))
            for broken in (lambda: setattr(odoo, "error_rate", 1.0), odoo.go_down):
                broken()
                with pytest.raises(Retryable) as retry:
                    adapter.push_order(order_doc("k-2"))
                messages.append(retry.value.message)
                odoo.come_back()
                odoo.error_rate = 0.0
        for config in ({"partner_id": 99}, {"api_key": wrong_key}):
            with closing(adapter_for(odoo, **config)) as adapter, pytest.raises(Rejected) as refused:
                adapter.push_order(order_doc("k-3"))
            messages.append(refused.value.message)
    logged = repr(logs) + caplog.text
    assert "sync.odoo.order_created" in repr(logs) and odoo.url in repr(logs)
    assert len(messages) == 4
    for secret in (odoo.api_key, wrong_key):
        assert secret not in logged
        assert not any(secret in message for message in messages)


# -- issue 15: Odoo as it really behaves --------------------------------------------------------------------
def test_the_pricelist_rule_odoo_applies_sets_the_price(odoo):
    """Item 9: Odoo orders rules `applied_on, min_quantity desc, categ_id desc, id desc` and applies the first: the
    newest of two fixed prices wins, a rule for one portion beats a rule for any quantity, and a newer percentage
    rule beats an older fixed price."""
    odoo.add_fixed_price("HG01", 3600)
    odoo.add_fixed_price("HG01", 3500)  # newer: Odoo's price
    odoo.add_fixed_price("SM02", 1100, min_quantity=1)
    odoo.add_fixed_price("SM02", 1000)  # newer, but min_quantity 0 sorts after 1
    odoo.add_fixed_price("CN03", 100)
    odoo.add_fixed_price("CN03", 0, compute_price="percentage", percent=10)  # newer: 10 % off 42.00
    with closing(adapter_for(odoo, pricelist_id=1)) as adapter:
        prices = {i.code: i.price_minor for i in adapter.pull_catalog().items}
    assert (prices["HG01"], prices["SM02"], prices["CN03"], prices["TEA4"]) == (3500, 1100, 3780, 1990)


def test_an_invalid_field_is_refused_not_retried_on_either_protocol(odoo, adapter):
    """Item 10: over JSON-2 a ValueError is a 500 (Json2Dispatcher.handle_error); it is the same refusal JSON-RPC
    reports, so it is Rejected (parked with Odoo's words) instead of retried forever ahead of every other order."""
    with pytest.raises(Rejected) as refused:
        adapter._execute("product.product", "search_read", domain=[], fields=["x_tablebox_ref"])
    assert "Invalid field 'x_tablebox_ref'" in refused.value.message
    assert refused.value.status == (500 if odoo.version >= 19 else None)


def test_a_503_or_a_database_failure_is_still_retried(odoo, adapter):
    odoo.error_rate = 1.0
    with pytest.raises(Retryable):
        adapter.pull_catalog()


def test_a_create_still_running_at_the_timeout_is_not_created_twice(odoo):
    """Item 11: the create got no answer within the timeout and is still running in Odoo, so a look-up cannot see
    it; the next attempt waits (Retry-After) instead of creating a second order, then finds it."""
    with closing(adapter_for(odoo, timeout_seconds=0.3, create_settle_seconds=30)) as adapter:
        odoo.slow_next_call("sale.order", "create", 1.0)
        with pytest.raises(Retryable):
            adapter.push_order(order_doc("k-slow"))
        with pytest.raises(Retryable) as waiting:
            adapter.push_order(order_doc("k-slow"))  # the old adapter created it again here
        assert "may still be running" in waiting.value.message and waiting.value.status == 409
        assert waiting.value.retry_after is None  # one order waits, the engine does not pause the whole target
        assert odoo.committed.wait(5)
        assert adapter.push_order(order_doc("k-slow")) == str(odoo.sale_orders("k-slow")[0]["id"])
    assert odoo.order_counts() == {"k-slow": 1}
    assert odoo.sale_orders("k-slow")[0]["state"] == "sale"


def test_a_create_that_never_committed_is_created_once_it_has_settled(odoo):
    """Odoo kills a request after limit_time_real and rolls it back: once that long has passed, a look-up that
    finds nothing is the truth and the order is created."""
    import time

    with closing(adapter_for(odoo, timeout_seconds=0.3, create_settle_seconds=30)) as adapter:
        skipped = [0.0]
        adapter._clock = lambda: time.monotonic() + skipped[0]
        odoo.slow_next_call("sale.order", "create", 0.6, commit=False)
        with pytest.raises(Retryable):
            adapter.push_order(order_doc("k-lost"))
        assert odoo.committed.wait(5) and odoo.order_counts() == {}
        with pytest.raises(Retryable) as waiting:
            adapter.push_order(order_doc("k-lost"))
        assert "may still be running" in waiting.value.message
        skipped[0] = 31.0
        adapter.push_order(order_doc("k-lost"))
    assert odoo.order_counts() == {"k-lost": 1}


def test_retry_after_of_a_429_is_carried_to_the_engine(odoo, adapter):
    odoo.rate_limit_next = 1
    with pytest.raises(Retryable) as retry:
        adapter.pull_catalog()
    assert (retry.value.status, retry.value.retry_after) == (429, 1.0)


def test_a_private_ca_is_trusted_through_ca_file(tmp_path):
    """Item 5: verify_tls and ca_file reach the Odoo client: an Odoo behind a certificate of the shop's own CA is
    refused without ca_file and spoken to with it."""
    import ssl
    import subprocess

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "2", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    fake = fake_odoo(19)
    try:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        assert fake._httpd is not None
        fake._httpd.socket = context.wrap_socket(fake._httpd.socket, server_side=True)
        https = fake.url.replace("http://", "https://")
        with closing(adapter_for(fake, base_url=https)) as adapter, pytest.raises(Retryable) as refused:
            adapter.pull_catalog()
        assert "CERTIFICATE_VERIFY_FAILED" in refused.value.message or "certificate" in refused.value.message.lower()
        with closing(adapter_for(fake, base_url=https, ca_file=str(cert))) as adapter:
            assert len(adapter.pull_catalog().items) == 5
        with closing(adapter_for(fake, base_url=https, verify_tls=False)) as adapter:
            assert len(adapter.pull_catalog().items) == 5
    finally:
        fake.stop()
