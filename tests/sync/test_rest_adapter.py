"""The generic REST adapter against a fake in-house ERP on 127.0.0.1: catalog paging and field mapping,
stock, exactly-once order delivery whatever the connection does, and what a person sees when it fails."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import structlog

from sync.adapters import make_adapter
from sync.adapters.base import OrderDoc, OrderLine, PaymentDoc, Rejected, Retryable
from sync.adapters.rest import RestAdapter, major, to_minor
from tests.fakes.erp_rest import FakeRestERP


@contextmanager
def running(**kwargs: Any) -> Iterator[FakeRestERP]:
    fake = FakeRestERP(**kwargs).start()
    try:
        yield fake
    finally:
        fake.stop()


@contextmanager
def adapter_for(fake: FakeRestERP, **overrides: Any) -> Iterator[RestAdapter]:
    adapter = make_adapter("erp", {**fake.target_config(), **overrides})
    try:
        yield adapter  # type: ignore[misc]
    finally:
        adapter.close()


def stock_menu(fake: FakeRestERP) -> None:
    fake.add_item("ND-DDM", {"zh": "担担面", "en": "Dan dan noodles"}, 3100, stock=20, category="Noodles")
    fake.add_item("DR-LT", {"zh": "柠檬茶", "en": "Lemon tea"}, 1800, category="Drinks")


def order(
    ref: str = "a1b2c3d4e5f60718293a4b5c6d7e8f90",
    *,
    code: str | None = "ND-DDM",
    currency: str = "CNY",
    unit_minor: int = 3100,
) -> OrderDoc:
    """2 x dan dan noodles at 31.00 and a lemon tea at 18.00: 80.00, 6% tax included (4.53)."""
    lines = [
        OrderLine(code, "dan_dan_noodles", "担担面", 2, unit_minor, 2 * unit_minor, "少辣"),
        OrderLine("DR-LT", "lemon_tea", "柠檬茶", 1, 1800, 1800),
    ]
    subtotal = 2 * unit_minor + 1800
    return OrderDoc(
        order_ref=ref,
        order_id=7,
        ticket="2026-11-21#12",
        table="A1",
        created_at="2026-11-21T11:02:03.000000Z",
        currency=currency,
        lines=lines,
        subtotal_minor=subtotal,
        service_charge_minor=0,
        total_minor=subtotal,
        tax_minor=453,
    )


# -- catalog and stock ---------------------------------------------------------------------------------------


def test_the_catalog_is_read_page_by_page_through_the_field_mapping():
    """A wrapped, paged API with its own field names (sku, name_zh/name_en, sale_price as a JSON number,
    group, disabled): 120 dishes in three pages, prices exact to the fen, the disabled one inactive."""
    with running(style="wrapped") as fake:
        for n in range(117):
            fake.add_item(f"WK-{n:03d}", {"zh": f"小炒{n}", "en": f"Wok dish {n}"}, 1000 + n * 37, category="Wok")
        fake.add_item("DS-019", {"zh": "虾饺", "en": "Har gow"}, 1999, category="Dim sum")  # 19.99 as a float
        fake.add_item("DR-029", {"en": "Tea"}, 29, category="Drinks")  # 0.29
        fake.add_item("DR-OLD", {"zh": "旧饮料"}, 110, category="Drinks")
        fake.deactivate("DR-OLD")
        with adapter_for(fake) as erp:
            catalog = erp.pull_catalog()
        pages = fake.requests_to("/items")
    assert [(q["page"], q["per_page"]) for q in pages] == [(["1"], ["50"]), (["2"], ["50"]), (["3"], ["50"])]
    items = {i.code: i for i in catalog.items}
    assert len(items) == 120 and catalog.currency == "CNY"
    assert items["DS-019"].price_minor == 1999 and items["DR-029"].price_minor == 29
    assert items["WK-116"].price_minor == 1000 + 116 * 37
    assert dict(items["DS-019"].names) == {"zh": "虾饺", "en": "Har gow"} and items["DS-019"].category == "Dim sum"
    assert dict(items["DR-029"].names) == {"en": "Tea"}  # no zh name: none is made up
    assert items["DR-OLD"].active is False and items["DS-019"].active is True


def test_the_defaults_read_a_bare_list_with_one_name_and_string_prices():
    with running(style="plain") as fake:
        stock_menu(fake)
        with adapter_for(fake) as erp:
            catalog = erp.pull_catalog()
        assert fake.requests_to("/items") == [{}]  # one GET, no paging parameters
    items = {i.code: i for i in catalog.items}
    assert dict(items["ND-DDM"].names) == {"zh": "担担面"} and items["ND-DDM"].price_minor == 3100
    assert items["DR-LT"].category == "Drinks" and items["DR-LT"].active is True


def test_stock_is_summed_over_warehouses_and_never_below_zero():
    with running(style="wrapped") as fake:
        stock_menu(fake)
        fake.set_stock("DR-LT", 7)  # 3 in Main, 4 in Store
        fake.set_stock("XX-NEG", -3)  # the ERP went below zero
        with adapter_for(fake) as erp:
            assert erp.pull_stock() == {"DR-LT": 7, "ND-DDM": 20, "XX-NEG": 0}


def test_a_list_under_another_key_is_refused_with_what_to_set():
    with running(style="wrapped") as fake, adapter_for(fake, items_key="items") as erp:
        stock_menu(fake)
        with pytest.raises(Rejected) as refused:
            erp.pull_catalog()
    assert "expected the catalog as a list under 'items'" in refused.value.message


def test_money_converts_exactly_between_minor_units_and_decimal_strings():
    assert [major(m, 2) for m in (0, 5, 3250, 123456)] == ["0.00", "0.05", "32.50", "1234.56"]
    assert major(1200, 0) == "1200"
    assert [to_minor(v, 2) for v in ("32.5", "19.99", 7, "0.295")] == [3250, 1999, 700, 30]
    assert [to_minor(v, 2) for v in ("", None, "abc", "-1", True, "NaN")] == [None] * 6


# -- orders: exactly once ------------------------------------------------------------------------------------


def test_the_order_body_has_exact_decimal_amounts_and_the_idempotency_key():
    with running(style="plain") as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        erp_id = erp.push_order(order())
        [doc] = fake.documents("a1b2c3d4e5f60718293a4b5c6d7e8f90")
        posts = [(p, k) for m, p, _, k in fake.seen if m == "POST"]
    assert erp_id == "SO-00001"
    assert (doc["ticket"], doc["table"], doc["currency"]) == ("2026-11-21#12", "A1", "CNY")
    assert [(line["code"], line["quantity"], line["unit_price"], line["line_total"]) for line in doc["lines"]] == [
        ("ND-DDM", 2, "31.00", "62.00"),
        ("DR-LT", 1, "18.00", "18.00"),
    ]
    assert (doc["subtotal"], doc["service_charge"], doc["tax"], doc["total"]) == ("80.00", "0.00", "4.53", "80.00")
    assert doc["lines"][0]["note"] == "少辣"
    assert posts == [("/orders", "a1b2c3d4e5f60718293a4b5c6d7e8f90")]


def test_yen_amounts_have_no_decimals():
    with running(style="plain", currency="JPY") as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        erp.push_order(order(currency="JPY", unit_minor=1200))
        [doc] = fake.documents("a1b2c3d4e5f60718293a4b5c6d7e8f90")
        assert fake.order_total_minor("a1b2c3d4e5f60718293a4b5c6d7e8f90") == 2 * 1200 + 1800
    assert (doc["lines"][0]["unit_price"], doc["total"]) == ("1200", "4200")


@pytest.mark.parametrize("style", ["plain", "wrapped"])
@pytest.mark.parametrize("honour", [True, False], ids=["key-honoured", "key-ignored"])
def test_an_order_committed_then_dropped_is_found_by_the_retry_not_sent_again(style, honour):
    """The ERP commits, then the connection drops before the answer: the adapter cannot know. Its next
    call (the worker's retry) looks the order up and returns the same id; one document, whether or not the
    ERP honours Idempotency-Key."""
    with running(style=style, honour_idempotency_key=honour) as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        fake.drop_after_commit_rate = 1.0
        with pytest.raises(Retryable) as lost:
            erp.push_order(order())
        assert "may have been processed" in lost.value.message
        fake.drop_after_commit_rate = 0.0
        erp_id = erp.push_order(order())
        assert fake.order_counts() == {"a1b2c3d4e5f60718293a4b5c6d7e8f90": 1}
        expected_id = "SO-00001" if style == "plain" else "1001"
        assert erp_id == expected_id
        assert fake.order_total_minor("a1b2c3d4e5f60718293a4b5c6d7e8f90") == 8000
        assert fake.stock["ND-DDM"] == 18  # the ERP took stock once


@pytest.mark.parametrize("honour", [True, False], ids=["key-honoured", "key-ignored"])
def test_forty_orders_through_drops_and_5xx_each_land_once(honour):
    with running(style="plain", honour_idempotency_key=honour) as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        fake.stock["ND-DDM"] = 1000
        fake.drop_after_commit_rate, fake.error_rate = 0.4, 0.2
        refs = [f"{n:032x}" for n in range(40)]
        ids = {}
        for ref in refs:
            for _attempt in range(60):
                try:
                    ids[ref] = erp.push_order(order(ref))
                    break
                except Retryable:
                    continue
        assert fake.order_counts() == dict.fromkeys(refs, 1)
        assert {fake.order_total_minor(ref) for ref in refs} == {8000}
        assert len(set(ids.values())) == 40


def test_a_kept_key_replays_the_first_answer_and_the_lookup_covers_after_it_expires():
    with running(style="plain") as fake:
        stock_menu(fake)
        with adapter_for(fake, lookup_before_create=False) as erp:
            fake.drop_after_commit_rate = 1.0
            with pytest.raises(Retryable):
                erp.push_order(order())
            fake.drop_after_commit_rate = 0.0
            assert erp.push_order(order()) == "SO-00001"  # the ERP replayed its first answer
        assert fake.order_counts() == {"a1b2c3d4e5f60718293a4b5c6d7e8f90": 1}
        start = fake.clock()
        fake.clock = lambda: start + 25 * 3600  # the ERP forgets keys after 24 h
        with adapter_for(fake) as erp:
            assert erp.push_order(order()) == "SO-00001"
        assert fake.order_counts() == {"a1b2c3d4e5f60718293a4b5c6d7e8f90": 1}


def test_a_retry_while_the_erp_is_still_working_waits_instead_of_duplicating():
    """The client gives up while the ERP is still processing; the retry's lookup finds nothing yet, its POST
    with the same key gets 409 'in progress': retry later. Once the first commit lands, the next try finds it."""
    with running(style="plain") as fake, adapter_for(fake, timeout_seconds=0.5) as erp:
        stock_menu(fake)
        fake.hold_orders()
        try:
            with pytest.raises(Retryable) as gave_up:
                erp.push_order(order())
            assert "did not answer within 0.5 s" in gave_up.value.message
            with pytest.raises(Retryable) as busy:
                erp.push_order(order())
            assert busy.value.status == 409 and "still being processed" in busy.value.message
        finally:
            fake.release_orders()
        assert fake.wait_for_orders(1)
        assert erp.push_order(order()) == "SO-00001"
        assert fake.order_counts() == {"a1b2c3d4e5f60718293a4b5c6d7e8f90": 1}


def test_409_already_exists_is_looked_up():
    with (
        running(style="plain", honour_idempotency_key=False, unique_order_ref=True) as fake,
        adapter_for(fake, lookup_before_create=False) as erp,
    ):
        stock_menu(fake)
        fake.drop_after_commit_rate = 1.0
        with pytest.raises(Retryable):
            erp.push_order(order())
        fake.drop_after_commit_rate = 0.0
        assert erp.push_order(order()) == "SO-00001"
        assert fake.order_counts() == {"a1b2c3d4e5f60718293a4b5c6d7e8f90": 1}


# -- what goes wrong, as a person reads it ---------------------------------------------------------------------


def test_a_wrong_api_key_is_rejected_with_check_the_api_key():
    with running(style="plain") as fake:
        stock_menu(fake)
        with adapter_for(fake, auth_header="Authorization: Bearer not-the-key") as erp:
            with pytest.raises(Rejected) as refused:
                erp.pull_catalog()
            with pytest.raises(Rejected) as refused_order:
                erp.push_order(order())
        assert fake.order_counts() == {}
    assert refused.value.status == 401 and refused_order.value.status == 401
    assert "check the API key" in refused.value.message
    assert "Invalid or expired API token" in refused.value.message  # the ERP's own words


def test_an_unknown_item_is_rejected_with_the_erps_message():
    with running(style="wrapped") as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        with pytest.raises(Rejected) as refused:
            erp.push_order(order(code="NOPE"))
        assert fake.order_counts() == {}
    assert refused.value.status == 422
    assert "Unknown item code 'NOPE' on line 1" in refused.value.message


def test_a_dish_the_erp_does_not_know_goes_as_a_line_without_code():
    with running(style="plain") as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        erp.push_order(order(code=None))
        [doc] = fake.documents("a1b2c3d4e5f60718293a4b5c6d7e8f90")
    assert [line["code"] for line in doc["lines"]] == [None, "DR-LT"]


@pytest.mark.parametrize("fault", ["503", "timeout", "refused", "proxy_502", "html_200"])
def test_network_trouble_and_5xx_are_retryable(fault):
    with running(style="plain") as fake, adapter_for(fake, timeout_seconds=0.3) as erp:
        stock_menu(fake)
        if fault == "503":
            fake.error_rate = 1.0
        elif fault == "timeout":
            fake.slow_seconds = 1.0
        elif fault == "refused":
            fake.go_down()
        elif fault == "proxy_502":
            fake.broken_paths["/items"] = fake.broken_paths["/orders/a1b2c3d4e5f60718293a4b5c6d7e8f90"] = 502
        else:
            fake.broken_paths["/items"] = fake.broken_paths["/orders/a1b2c3d4e5f60718293a4b5c6d7e8f90"] = 200
        with pytest.raises(Retryable) as pulled:
            erp.pull_catalog()
        with pytest.raises(Retryable) as pushed:
            erp.push_order(order())
        expected = {
            "503": "HTTP 503",
            "timeout": "did not answer within 0.3 s",
            "refused": "cannot reach",
            "proxy_502": "HTTP 502",
            "html_200": "is not JSON",
        }[fault]
        assert expected in pulled.value.message and expected in pushed.value.message
        fake.error_rate, fake.slow_seconds = 0.0, 0.0
        fake.broken_paths.clear()
        fake.come_back()
        assert len(erp.pull_catalog().items) == 2  # the same adapter works again once the ERP is back
        erp.push_order(order())
        assert fake.order_counts() == {"a1b2c3d4e5f60718293a4b5c6d7e8f90": 1}


def test_secrets_never_reach_the_logs_or_the_error_messages(caplog):
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with running(style="plain") as fake, structlog.testing.capture_logs() as logs:
        stock_menu(fake)
        wrong = "wrong-key-7f3e9a1c"
        with adapter_for(fake) as erp, adapter_for(fake, auth_header=f"Authorization: Bearer {wrong}") as bad:
            texts.append(repr(erp))
            erp.pull_catalog()
            erp.push_order(order())
            for setup in ("drop", "503", "down", "401"):
                fake.drop_after_commit_rate = 1.0 if setup == "drop" else 0.0
                fake.error_rate = 1.0 if setup == "503" else 0.0
                if setup == "down":
                    fake.go_down()
                try:
                    (bad if setup == "401" else erp).push_order(order(f"{len(texts):032x}"))
                except (Retryable, Rejected) as exc:
                    texts.append(exc.message)
                fake.come_back()
    texts += [repr(entry) for entry in logs] + [caplog.text]
    assert any(entry["event"] == "sync.http.failed" for entry in logs)
    assert any("check the API key" in t for t in texts)
    for secret in (fake.secret, wrong):
        assert not [t for t in texts if secret in t]


def test_status_and_payments_carry_their_own_keys():
    with running(style="plain") as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        erp.push_order(order())
        erp.push_status("a1b2c3d4e5f60718293a4b5c6d7e8f90", "cancelled", "kitchen closed")
        payment_id = erp.push_payment(
            PaymentDoc(
                "payment:41",
                ["a1b2c3d4e5f60718293a4b5c6d7e8f90"],
                "A1",
                "wechat",
                8000,
                "CNY",
                "2026-11-21T12:00:00.000000Z",
            )
        )
        with pytest.raises(Rejected) as unknown:
            erp.push_status("ffffffffffffffffffffffffffffffff", "cancelled", None)
        keys = [k for m, _, _, k in fake.seen if m == "POST"]
        assert fake.statuses == [("a1b2c3d4e5f60718293a4b5c6d7e8f90", "cancelled", "kitchen closed")]
        assert fake.payments() == {"payment:41": [("payment", "wechat", 8000)]}
    assert payment_id == "PAY-0001" and unknown.value.status == 404
    assert keys[1:3] == ["a1b2c3d4e5f60718293a4b5c6d7e8f90:status:cancelled", "payment:41"]


def test_an_empty_status_path_means_the_erp_is_not_told():
    with running(style="plain") as fake, adapter_for(fake, status_path="") as erp:
        erp.push_status("a1b2c3d4e5f60718293a4b5c6d7e8f90", "cancelled", None)
        assert fake.requests == 0


@pytest.mark.parametrize(
    "config,complaint",
    [
        ({"kind": "rest"}, "base_url must start with http"),
        ({"kind": "rest", "base_url": "http://erp.lan", "auth_header": "Bearer xyz"}, "auth_header must look like"),
        ({"kind": "rest", "base_url": "http://erp.lan", "currency": "XXX"}, "unknown currency"),
        ({"kind": "rest", "base_url": "https://erp.lan", "ca_file": "/nonexistent/ca.pem"}, "cannot use ca_file"),
    ],
)
def test_bad_settings_are_named(config, complaint):
    with pytest.raises(ValueError, match=complaint):
        make_adapter("erp", config)
