"""The generic REST adapter against a fake in-house ERP on 127.0.0.1: catalog paging and field mapping,
stock, exactly-once order delivery whatever the connection does, and what a person sees when it fails."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog

from sync.adapters import make_adapter
from sync.adapters.base import (
    Capability,
    CheckState,
    OrderChange,
    OrderDoc,
    OrderLine,
    PaymentDoc,
    Rejected,
    Retryable,
)
from sync.adapters.body_templates import render
from sync.adapters.rest import RestAdapter, major, order_values, to_minor
from sync.adapters.signing import hmac_headers, hmac_string_to_sign
from tests.fakes.erp_rest import CUSTOM_TEMPLATES, FakeRestERP
from tests.sync.test_http_adapter import make_certificates


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


def lost_then_retried(fake: FakeRestERP, send: Callable[[], Any]) -> Any:
    """The ERP commits `send`'s request and the answer is lost (Retryable: it may have been processed); then the
    worker's retry, whose answer this is."""
    fake.drop_after_commit_rate = 1.0
    with pytest.raises(Retryable) as lost:
        send()
    assert "may have been processed" in lost.value.message
    fake.drop_after_commit_rate = 0.0
    return send()


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
            assert lost_then_retried(fake, lambda: erp.push_order(order())) == "SO-00001"  # the first answer, replayed
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
        assert lost_then_retried(fake, lambda: erp.push_order(order())) == "SO-00001"
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
    assert keys[1].startswith("a1b2c3d4e5f60718293a4b5c6d7e8f90:status:cancelled:") and keys[2] == "payment:41"


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


# -- authentication ----------------------------------------------------------------------------------------------------
def payment(ref: str = "pay-1", *, amount_minor: int = 8000, method: str = "wechat", **kw: Any) -> PaymentDoc:
    return PaymentDoc(
        ref, ["a1b2c3d4e5f60718293a4b5c6d7e8f90"], "A1", method, amount_minor, "CNY", "2026-11-21T12:00:00Z", **kw
    )


@pytest.mark.parametrize("auth", ["bearer", "basic", "header", "hmac", "none"])
@pytest.mark.parametrize("style", ["plain", "wrapped"])
def test_each_kind_of_auth_gets_through_and_a_wrong_secret_is_refused(auth, style):
    with running(style=style, auth=auth) as fake:
        stock_menu(fake)
        config = fake.target_config()
        assert config.get("auth", "header") == auth or "auth_header" in config
        with adapter_for(fake) as erp:
            assert len(erp.pull_catalog().items) == 2
            erp.push_order(order())
            erp.push_payment(payment())
        assert fake.order_counts() == {"a1b2c3d4e5f60718293a4b5c6d7e8f90": 1}
        assert fake.payments() == {"pay-1": [("payment", "wechat", 8000)]}
        assert fake.auth_failures == []
        if auth == "none":
            return
        secret_key = {"bearer": "token", "basic": "password", "header": "api_key", "hmac": "hmac_secret"}[auth]
        wrong = {secret_key: "not-the-secret-at-all-5a5a"}
        if "auth_header" in config:
            wrong = {"auth_header": "Authorization: Bearer not-the-secret-at-all-5a5a"}
        with adapter_for(fake, **wrong) as bad:
            with pytest.raises(Rejected) as refused:
                bad.pull_catalog()
    assert refused.value.status == 401 and "check the API key / credentials" in refused.value.message
    assert "not-the-secret-at-all-5a5a" not in refused.value.message
    expected = {
        "bearer": "Invalid or expired API token",
        "basic": "Invalid username or password",
        "header": "Invalid API key",
        "hmac": "signature does not match",
    }[auth]
    assert fake.auth_failures == [expected] and expected in refused.value.message


def test_the_signature_scheme_matches_its_published_example():
    """The example in the README lets an ERP's developer test their verifier; if this failed, the README would
    describe a scheme the box does not speak."""
    signed = hmac_string_to_sign(
        "store-1", "1767225600", "4f1c2a9e8b7d6c5e4f3a2b1c0d9e8f7a", "post", "/api/v1/orders?x=a%20b", b'{"a":1}'
    )
    assert signed == (
        b"TABLEBOX-HMAC-SHA256\nstore-1\n1767225600\n4f1c2a9e8b7d6c5e4f3a2b1c0d9e8f7a\nPOST\n/api/v1/orders?x=a%20b\n"
        + hashlib.sha256(b'{"a":1}').hexdigest().encode()
    )
    headers = hmac_headers(
        "store-1",
        b"0123456789abcdef0123456789abcdef",
        "POST",
        "/api/v1/orders?x=a%20b",
        b'{"a":1}',
        timestamp=1767225600,
        nonce="4f1c2a9e8b7d6c5e4f3a2b1c0d9e8f7a",
    )
    assert (
        headers["X-Tablebox-Signature"] == hmac.new(b"0123456789abcdef0123456789abcdef", signed, "sha256").hexdigest()
    )
    assert headers["X-Tablebox-Signature"] == HMAC_EXAMPLE_SIGNATURE
    assert headers["X-Tablebox-Content-SHA256"] == hashlib.sha256(b'{"a":1}').hexdigest()


# Computed once with `openssl dgst -sha256 -hmac` over the same lines (README, "Signed requests").
HMAC_EXAMPLE_SIGNATURE = "403e20398e7489187ef4d46d6f6519d74d30870736d00a86d2533ffd4581c4e6"


def test_a_signed_request_with_a_query_and_a_body_is_accepted_and_cannot_be_replayed_or_altered():
    with running(style="wrapped", auth="hmac") as fake:
        stock_menu(fake)
        with adapter_for(fake, catalog_params={"warehouse": "Main Store/1", "q": "担担"}) as erp:
            assert len(erp.pull_catalog().items) == 2  # signed over the percent-encoded query as sent
            request = erp.http.build_request(
                "POST", "/orders", content=b'{"order_ref": "x"}', headers={"Content-Type": "application/json"}
            )
            signed = next(erp.hmac.auth_flow(request))
            with httpx.Client() as raw:
                first = raw.send(signed)
                again = raw.send(signed)
                signed.headers["X-Tablebox-Signature"] = "0" * 64
                forged = raw.send(signed)
                tampered = httpx.Request(
                    "POST", signed.url, content=b'{"order_ref": "y"}', headers=dict(signed.headers)
                )
                tampered.headers["X-Tablebox-Nonce"] = "fresh-nonce-1"
                altered = raw.send(tampered)
    assert first.status_code == 422  # through the signature check, refused as an order: no lines
    assert [again.status_code, forged.status_code, altered.status_code] == [401, 401, 401]
    assert fake.auth_failures == [
        "nonce already used (replayed request)",
        "signature does not match",
        "body does not match X-Tablebox-Content-SHA256",
    ]


def test_a_stale_signature_from_a_wrong_clock_says_so_and_is_retried():
    """The box's clock ten minutes behind: the ERP refuses the signature as stale. The row is retried (NTP will set
    the clock) with a message naming the clock, and `sync check` fails its clock line."""
    with running(style="plain", auth="hmac") as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        erp.hmac.clock = lambda: time.time() - 600
        with pytest.raises(Retryable) as stale:
            erp.push_order(order())
        checks = {c.name: c for c in erp.check()}
        erp.hmac.clock = time.time
        erp.push_order(order())
        assert fake.order_counts() == {"a1b2c3d4e5f60718293a4b5c6d7e8f90": 1}
    assert fake.auth_failures[0] == "timestamp outside the allowed window of 300 s"
    # The ERP's Date header has whole seconds: 599 to 601 s.
    assert stale.value.status == 401 and re.search(
        r"the box's clock is (599|600|601) s off the ERP's", stale.value.message
    )
    assert checks["clock"].state is CheckState.FAIL and re.search(r"(599|600|601) s behind", checks["clock"].detail)


def test_the_hmac_secret_may_be_hex_or_base64():
    secret = bytes(range(32))  # the fake keys its HMAC with the secret's UTF-8 bytes: these are ASCII
    with running(style="plain", auth="hmac", secret=secret.decode("ascii")) as fake:
        stock_menu(fake)
        for encoding, text in (("hex", secret.hex()), ("base64", base64.b64encode(secret).decode())):
            with adapter_for(fake, hmac_secret=text, hmac_secret_encoding=encoding) as erp:
                assert len(erp.pull_catalog().items) == 2
        assert fake.auth_failures == []


# -- client certificates -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_certificates(tmp_path_factory.mktemp("tls"))


def test_mutual_tls_orders_and_check_with_a_client_certificate(certificates):
    tls = (certificates / "server.pem", certificates / "server.key", certificates / "client-ca.pem")
    with running(style="plain", auth="none", tls=tls) as fake:
        stock_menu(fake)
        ca = {"ca_file": str(certificates / "ca.pem")}
        with adapter_for(fake, **ca) as anonymous:
            with pytest.raises(Rejected) as refused:
                anonymous.push_order(order())
            checks = anonymous.check()
        assert fake.requests == 0  # refused in the handshake: no request ever reached the ERP
        client = {"client_cert": str(certificates / "client.pem"), "client_key": str(certificates / "client.key")}
        with adapter_for(fake, **ca, **client) as erp:
            erp.push_order(order())
            good = erp.check()
        assert fake.order_counts() == {"a1b2c3d4e5f60718293a4b5c6d7e8f90": 1}
    assert "refused our client certificate" in refused.value.message and fake.url.startswith("https://")
    assert [(c.name, c.state) for c in checks] == [("reachable", CheckState.OK), ("authenticated", CheckState.FAIL)]
    assert "client_cert" in checks[1].fix
    authenticated = next(c for c in good if c.name == "authenticated")
    assert authenticated.state is CheckState.OK and "client certificate" in authenticated.detail


# -- body templates ----------------------------------------------------------------------------------------------------
def test_an_erp_with_its_own_body_shape_refuses_the_default_body_and_takes_the_templated_one():
    """A shop's ERP wants {"order": {"ref", "table_no", "items": [{"sku", "qty", "price_minor"}], ...}}: without
    templates every order is refused (422); with them it lands, as do status, payment and refund."""
    with running(style="plain", body="custom") as fake:
        stock_menu(fake)
        with adapter_for(fake, templates={}) as plain:
            with pytest.raises(Rejected) as refused:
                plain.push_order(order())
        assert refused.value.status == 422 and "order.ref: required" in refused.value.message
        with adapter_for(fake, payment_methods={"wechat": "WeChat Pay"}) as erp:  # target_config has the templates
            erp.push_order(order())
            erp.push_status("a1b2c3d4e5f60718293a4b5c6d7e8f90", "cancelled", "guest left")
            erp.push_payment(payment())
            erp.push_payment(payment("refund-1", amount_minor=3000, kind="refund", refund_of="pay-1", reason="cold"))
        [doc] = fake.documents("a1b2c3d4e5f60718293a4b5c6d7e8f90")
    assert doc["custom"] == {
        "ref": "a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "table_no": "Table A1",
        "currency": "CNY",
        "items": [
            {"sku": "ND-DDM", "qty": 2, "price_minor": 3100},
            {"sku": "DR-LT", "qty": 1, "price_minor": 1800},
        ],
        "total_minor": 8000,
        "source": "tablebox",
    }
    assert fake.statuses == [("a1b2c3d4e5f60718293a4b5c6d7e8f90", "cancelled", "guest left")]
    assert fake.cancelled("a1b2c3d4e5f60718293a4b5c6d7e8f90")
    assert fake.payments() == {
        "pay-1": [("payment", "WeChat Pay", 8000)],
        "refund-1": [("refund", "WeChat Pay", 3000)],
    }


def test_amounts_come_three_ways_and_lines_are_numbered():
    values = order_values(order())
    body = render(
        {
            "lines": {"$each": "lines", "$as": "l", "$do": ["${l.no}", "${l.line_total_number}", "${l.line_total}"]},
            "t": ["${total}", "${total_minor}", "${total_number}", "${tax_minor}", "${line_count}"],
        },
        values,
    )
    assert body == {
        "lines": [[1, Decimal("62.00"), "62.00"], [2, Decimal("18.00"), "18.00"]],
        "t": ["80.00", 8000, Decimal("80.00"), 453, 2],
    }


def test_a_template_from_a_json_file(tmp_path):
    path = tmp_path / "order.json"
    path.write_text(json.dumps(CUSTOM_TEMPLATES["order"]), encoding="utf-8")
    with running(style="plain", body="custom") as fake:
        stock_menu(fake)
        with adapter_for(fake, templates={**CUSTOM_TEMPLATES, "order": str(path)}) as erp:
            erp.push_order(order())
        assert fake.order_total_minor("a1b2c3d4e5f60718293a4b5c6d7e8f90") == 8000


# -- idempotency header and method -------------------------------------------------------------------------------------
def test_the_idempotency_header_is_the_one_the_erp_reads():
    """An ERP that keys on X-Request-Id: with the default header name a retried POST after commit-then-drop makes a
    second order (no lookup configured); with idempotency_header = "X-Request-Id" the ERP replays the first answer."""
    with running(style="plain", idempotency_header="X-Request-Id") as fake:
        stock_menu(fake)
        for header, ref in (("Idempotency-Key", "1" * 32), ("X-Request-Id", "2" * 32)):
            with adapter_for(fake, idempotency_header=header, lookup_before_create=False) as erp:
                lost_then_retried(fake, lambda: erp.push_order(order(ref)))  # noqa: B023 - called at once
        assert fake.order_counts() == {"1" * 32: 2, "2" * 32: 1}
        assert {k for m, _, _, k in fake.seen if m == "POST"} == {None, "2" * 32}


def test_put_to_the_orders_own_url_is_idempotent_by_itself():
    with running(style="plain", honour_idempotency_key=False) as fake:
        stock_menu(fake)
        with adapter_for(
            fake,
            orders_method="PUT",
            orders_path="/orders/{order_ref}",
            lookup_before_create=False,
            idempotency_header="",
        ) as erp:
            assert lost_then_retried(fake, lambda: erp.push_order(order())) == "SO-00001"
        assert fake.order_counts() == {"a1b2c3d4e5f60718293a4b5c6d7e8f90": 1}
        assert [(m, p) for m, p, _, _ in fake.seen] == [("PUT", "/orders/a1b2c3d4e5f60718293a4b5c6d7e8f90")] * 2


# -- paging ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("paging", ["page", "offset", "cursor", "link"])
def test_every_kind_of_paging_reads_the_whole_catalog(paging):
    style = "plain" if paging == "link" else "wrapped"
    with running(style=style, paging=paging) as fake:
        for n in range(120):
            fake.add_item(f"WK-{n:03d}", {"zh": f"小炒{n}", "en": f"Wok {n}"}, 1000 + n)
        with adapter_for(fake) as erp:
            items = erp.pull_catalog().items
        pages = fake.requests_to("/items")
    assert sorted(i.code for i in items) == [f"WK-{n:03d}" for n in range(120)]
    assert len(pages) == 3
    if paging == "offset":
        assert [(q["offset"], q["limit"]) for q in pages] == [(["0"], ["50"]), (["50"], ["50"]), (["100"], ["50"])]
    elif paging == "cursor":
        assert "cursor" not in pages[0] and pages[1]["cursor"] != pages[2]["cursor"]
    else:
        assert [q["page"] for q in pages[1:]] == [["2"], ["3"]]


def test_offset_paging_with_a_total_reads_past_a_server_that_caps_its_pages():
    """page_size 100 but the ERP sends at most 50: a short page is not the end when the answer says the total."""
    with running(style="wrapped", paging="offset") as fake:
        for n in range(120):
            fake.add_item(f"WK-{n:03d}", {"zh": f"小炒{n}"}, 1000)
        with adapter_for(fake, page_size=100) as erp:
            assert len(erp.pull_catalog().items) == 120
        assert [q["offset"] for q in fake.requests_to("/items")] == [["0"], ["50"], ["100"]]


def test_a_link_to_another_server_is_not_followed():
    """The ERP's Link header points elsewhere: the box's credentials never go there."""
    with running(style="plain", paging="link") as fake:
        for n in range(60):
            fake.add_item(f"WK-{n:03d}", {"zh": f"小炒{n}"}, 1000)
        fake.link_base = "http://127.0.0.2:9/items"
        with adapter_for(fake) as erp:
            with pytest.raises(Rejected) as refused:
                erp.pull_catalog()
    assert "sends the next catalog page to http://127.0.0.2:9" in refused.value.message
    assert "credentials only to base_url" in refused.value.message


def test_a_cursor_that_comes_back_is_a_loop_not_a_hang():
    """An ERP that ignores the cursor and answers the first page again: refused after the second time, not read
    10,000 times over."""
    with running(style="wrapped", paging="cursor") as fake:
        for n in range(60):
            fake.add_item(f"WK-{n:03d}", {"zh": f"小炒{n}"}, 1000)
        fake.ignore_cursor = True
        with adapter_for(fake) as erp:
            with pytest.raises(Rejected, match="sent the same next catalog page twice"):
                erp.pull_catalog()
        assert len(fake.requests_to("/items")) == 2


# -- Retry-After -------------------------------------------------------------------------------------------------------
def test_a_plain_text_429_carries_its_retry_after():
    """frappe's rate limiter answers "Too Many Requests" as text with Retry-After: the seconds left in its window.
    The row is retried, and the engine waits that long (Retryable.retry_after)."""
    with running(style="plain") as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        fake.clock = lambda: 1_767_225_630.0  # 30 s into a 60 s window
        fake.rate_limit = (2, 60)
        erp.push_order(order())  # the lookup and the POST
        with pytest.raises(Retryable) as limited:
            erp.push_payment(payment())
        with pytest.raises(Retryable) as limited_pull:
            erp.pull_catalog()
    assert (limited.value.status, limited.value.retry_after) == (429, 30.0)
    assert "HTTP 429" in limited.value.message and "Too Many Requests" in limited.value.message
    assert limited_pull.value.retry_after == 30.0
    assert fake.payments() == {}


# -- payments and refunds ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("style", ["plain", "wrapped"])
@pytest.mark.parametrize("honour", [True, False], ids=["key-honoured", "key-ignored"])
def test_a_payment_and_a_refund_each_land_once_through_drops(style, honour):
    with running(style=style, honour_idempotency_key=honour) as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        erp.push_order(order())
        refund = payment("refund-1", amount_minor=3000, kind="refund", refund_of="pay-1", reason="soup was cold")
        for doc in (payment(), refund):
            lost_then_retried(fake, lambda: erp.push_payment(doc))  # noqa: B023 - called at once
            erp.push_payment(doc)  # and a third time: still once
        with pytest.raises(Rejected) as too_much:
            erp.push_payment(payment("refund-2", amount_minor=5001, kind="refund", refund_of="pay-1"))
        with pytest.raises(Rejected) as unknown:
            erp.push_payment(payment("refund-3", amount_minor=100, kind="refund", refund_of="pay-404"))
        assert fake.payments() == {"pay-1": [("payment", "wechat", 8000)], "refund-1": [("refund", "wechat", 3000)]}
        [kept] = [d for d in fake.payment_docs.values() if d["kind"] == "refund"]
    assert (kept["refund_of"], kept["reason"]) == ("pay-1", "soup was cold")
    assert too_much.value.status == 422 and "refund exceeds what is left of payment pay-1" in too_much.value.message
    assert "payment pay-404 to refund not found" in unknown.value.message


def test_refunds_may_go_to_their_own_endpoint_and_payments_may_be_switched_off():
    with running(style="plain") as fake:
        stock_menu(fake)
        with adapter_for(fake, refunds_path="/refunds") as erp:
            erp.push_order(order())
            erp.push_payment(payment())
            with pytest.raises(Rejected) as no_route:
                erp.push_payment(payment("refund-1", amount_minor=100, kind="refund", refund_of="pay-1"))
        assert [p for m, p, _, _ in fake.seen if m == "POST"][-1] == "/refunds"
        assert no_route.value.status == 404
        with adapter_for(fake, payments_path="", refunds_path="") as erp:
            before = fake.requests
            assert erp.push_payment(payment("pay-2")) == ""
            assert fake.requests == before


# -- tablebox sync check -----------------------------------------------------------------------------------------------
def states(checks: Any) -> dict[str, CheckState]:
    return {c.name: c.state for c in checks}


@pytest.mark.parametrize("style", ["plain", "wrapped"])
def test_check_passes_against_a_well_set_up_erp(style):
    with running(style=style) as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        erp.expected_codes = ["ND-DDM", "DR-LT"]
        erp.box_facts = {"currency": "CNY"}
        checks = erp.check()
        assert fake.order_counts() == {} and fake.payments() == {}  # asking created nothing
    assert [(c.name, c.state) for c in checks] == [
        ("reachable", CheckState.OK),
        ("authenticated", CheckState.OK),
        ("catalog readable", CheckState.OK),
        ("currency", CheckState.OK),
        ("dish codes", CheckState.OK),
        ("order endpoint", CheckState.OK),
        ("payments endpoint", CheckState.OK),
        ("payment methods", CheckState.OK),
    ]
    assert "2 items (0 inactive) in CNY" in checks[2].detail


def test_check_names_what_is_wrong_with_an_erp_set_up_badly():
    with running(style="wrapped") as fake:
        stock_menu(fake)
        fake.deactivate("DR-LT")
        with adapter_for(fake, currency="USD", order_lookup_path="", items_key="data") as erp:
            erp.expected_codes = ["ND-DDM", "DR-LT", "XX-GONE"]
            erp.box_facts = {"currency": "CNY"}
            bad = {c.name: c for c in erp.check()}
        with adapter_for(fake, api_key="wrong-key-1234") as wrong:
            refused = wrong.check()
        fake.broken_paths["/payments"] = 403
        with adapter_for(fake) as erp:
            erp.expected_codes = ["ND-DDM"]
            payments_refused = {c.name: c for c in erp.check()}
        fake.go_down()
        with adapter_for(fake) as erp:
            down = erp.check()
    assert bad["catalog readable"].state is CheckState.FAIL and "prices items in CNY" in bad["catalog readable"].detail
    assert bad["currency"].state is CheckState.FAIL and "the box sells in CNY" in bad["currency"].detail
    assert "dish codes" not in bad  # the catalog could not be read: nothing to compare
    assert bad["order endpoint"].state is CheckState.WARN and "not checked" in bad["order endpoint"].detail
    assert [(c.name, c.state) for c in refused] == [("reachable", CheckState.OK), ("authenticated", CheckState.FAIL)]
    assert "Invalid API key" in refused[1].detail and "api_key" in refused[1].fix
    assert payments_refused["payments endpoint"].state is CheckState.FAIL
    assert "HTTP 403" in payments_refused["payments endpoint"].detail
    assert payments_refused["dish codes"].state is CheckState.OK
    assert payments_refused["currency"].state is CheckState.WARN  # the box's currency was not given
    assert [(c.name, c.state) for c in down] == [("reachable", CheckState.FAIL)]
    assert "cannot reach" in down[0].detail and "base_url" in down[0].fix


def test_check_names_the_payment_methods_without_an_erp_name():
    with (
        running(style="plain") as fake,
        adapter_for(fake, payment_methods={"cash": "Cash", "wechat": "WeChat Pay"}) as erp,
    ):
        stock_menu(fake)
        erp.box_facts = {"payment_methods": ["cash", "card", "wechat", "alipay"]}
        methods = next(c for c in erp.check() if c.name == "payment methods")
        erp.box_facts = {"payment_methods": ["cash", "wechat"]}
        mapped = next(c for c in erp.check() if c.name == "payment methods")
    assert methods.state is CheckState.WARN and "no ERP name for card, alipay" in methods.detail
    assert mapped.state is CheckState.OK and mapped.detail == "cash = Cash, wechat = WeChat Pay"


def test_check_lists_the_dish_codes_the_erp_lacks_or_disabled():
    with running(style="plain") as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        fake.deactivate("DR-LT")
        erp.expected_codes = ["ND-DDM", "DR-LT", "XX-GONE"]
        codes = next(c for c in erp.check() if c.name == "dish codes")
        erp.expected_codes = []
        unchecked = next(c for c in erp.check() if c.name == "dish codes")
    assert codes.state is CheckState.FAIL
    assert "1 not in the ERP's catalog: XX-GONE" in codes.detail and "1 disabled in the ERP: DR-LT" in codes.detail
    assert unchecked.state is CheckState.WARN and "not checked" in unchecked.detail


# -- every setting has its clear error ---------------------------------------------------------------------------------
REST = {"kind": "rest", "base_url": "http://erp.lan"}


@pytest.mark.parametrize(
    "settings,complaint",
    [
        ({"auth": "oauth"}, "auth must be one of none, bearer, basic, header, hmac"),
        ({"auth": "bearer"}, "token is empty"),
        ({"token": "t-123456", "api_key": "k-123456"}, "credentials for more than one kind of auth"),
        ({"auth": "basic", "username": "u", "token": "t-123456"}, "token is set but auth = 'basic' does not send it"),
        ({"auth": "basic", "username": "u"}, "needs username and password"),
        ({"auth": "basic", "username": "a:b", "password": "p"}, "username cannot hold ':'"),
        ({"token": "tok\nen"}, "token must be printable ASCII"),
        ({"api_key": "k-123456", "api_key_header": "X Key"}, "api_key_header must be a header name"),
        ({"api_key": "k-123456", "auth_header": "X-Key: v"}, "api_key .*or auth_header, not both"),
        ({"auth": "hmac", "hmac_secret": "short"}, "hmac_secret is too short"),
        ({"hmac_secret": "zz" * 16, "hmac_secret_encoding": "hex"}, "hmac_secret is not hex"),
        ({"hmac_secret": "not base64!" * 3, "hmac_secret_encoding": "base64"}, "hmac_secret is not base64"),
        ({"hmac_secret": "x" * 32, "hmac_secret_encoding": "rot13"}, "hmac_secret_encoding must be one of"),
        ({"hmac_secret": "x" * 32, "hmac_window_seconds": 0}, "hmac_window_seconds must be a whole number"),
        ({"paging": "pages"}, "paging must be one of none, page, offset, cursor, link"),
        ({"paging": "cursor"}, "next_cursor_key must name where"),
        ({"page_param": "page", "page_size": 0}, "page_size must be a whole number from 1"),
        ({"page_size": "50"}, "page_size must be a whole number"),
        ({"orders_method": "GET"}, "orders_method must be one of POST, PUT, PATCH"),
        ({"orders_method": "PUT"}, "orders_path must hold {order_ref}"),
        ({"payments_method": "PUT"}, "payments_path must hold {payment_ref}"),
        ({"idempotency_header": "Idempotency Key"}, "idempotency_header must be a header name"),
        ({"status_path": "/orders/{id}/status"}, r"status_path may fill in \{order_ref\}, \{status\} only"),
        ({"orders_path": "orders"}, "orders_path must start with /"),
        ({"orders_path": ""}, "orders_path cannot be empty"),
        ({"templates": {"invoice": {}}}, "templates.invoice: the kinds are order, status, payment, refund"),
        ({"templates": {"order": {"x": "${nope}"}}}, r"templates.order: \$\{nope\} is not a value"),
        ({"templates": {"refund": {"x": "${amount_cents}"}}}, r"templates.refund: \$\{amount_cents\} is not"),
        ({"templates": {"order": "/nonexistent/order.json"}}, "templates.order: cannot read"),
        ({"templates": {"order": 5}}, "templates.order must be a table"),
        ({"templates": "order"}, "templates must be a table"),
        ({"payment_methods": {"cash": 3}}, "payment_methods.cash must be the ERP's name"),
        ({"fields": {"code": 3}}, "fields.code must be a field name"),
        ({"catalog_params": ["a"]}, "catalog_params must be a table"),
        ({"lookup_before_create": "yes"}, "lookup_before_create must be true or false"),
        ({"currency": 156}, "currency must be text"),
        ({"orders_methd": "PUT"}, r"orders_methd is not a setting of kind rest \(did you mean orders_method\?\)"),
        ({"api_secret": "s-123456"}, "api_secret is not a setting of kind rest"),
    ],
)
def test_every_bad_setting_is_named(settings, complaint):
    with pytest.raises(ValueError, match=complaint):
        make_adapter("erp", {**REST, **settings})


def test_a_template_file_that_is_not_json_is_named(tmp_path):
    (tmp_path / "order.json").write_text("{order: }")
    with pytest.raises(ValueError, match=r"templates.order: .* is not JSON"):
        make_adapter("erp", {**REST, "templates": {"order": str(tmp_path / "order.json")}})


def test_two_voided_lines_of_one_order_each_reach_the_erp():
    """The engine sends a line void as status "line_voided" with the line in the reason: the second void of the same
    order must not reuse the first one's idempotency key (the ERP would refuse it as a key reused with another body,
    and the row would park); a retry of one void is still the same key."""
    with running(style="plain") as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        erp.push_order(order())
        ref = "a1b2c3d4e5f60718293a4b5c6d7e8f90"
        erp.push_status(ref, "line_voided", "line 1 voided: sold out")
        erp.push_status(ref, "line_voided", "line 1 voided: sold out")  # a retry: replayed, not booked twice
        erp.push_status(ref, "line_voided", "line 2 voided")
        keys = [k for m, p, _, k in fake.seen if m == "POST" and p.endswith("/status")]
    assert fake.statuses == [(ref, "line_voided", "line 1 voided: sold out"), (ref, "line_voided", "line 2 voided")]
    assert keys[0] == keys[1] != keys[2] and keys[0].startswith(f"{ref}:status:line_voided:")


# -- cancels and voids as amendments (Capability.AMENDS) ---------------------------------------------------------------
REF = "a1b2c3d4e5f60718293a4b5c6d7e8f90"


def after_voids(*voided: int) -> OrderDoc | None:
    """order() with the given lines (1-based) voided and its totals recomputed, as the engine builds it."""
    whole = order()
    lines = [line for n, line in enumerate(whole.lines, start=1) if n not in voided]
    if not lines:
        return None
    subtotal = sum(line.line_total_minor for line in lines)
    return OrderDoc(
        REF, 7, whole.ticket, whole.table, whole.created_at, "CNY", lines, subtotal, 0, subtotal, subtotal * 6 // 106
    )


def change(event: str, status: str, key: str, *, line_no: int | None = None, reason: str | None = None, order=None):
    return OrderChange(REF, event, status, reason, order, change_ref=key, line_no=line_no)


def test_a_voided_line_amends_the_erps_order_to_what_is_left():
    """The ERP gets the order as it now stands with each void: its document's lines and total follow the box's."""
    assert Capability.AMENDS in RestAdapter.capabilities
    with running(style="plain") as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        erp.push_order(order())
        erp.push_change(change("line_voided", "accepted", "k1", line_no=1, reason="sold out", order=after_voids(1)))
        [doc] = fake.documents(REF)
        assert fake.order_total_minor(REF) == 1800 and [line["code"] for line in doc["lines"]] == ["DR-LT"]
        erp.push_change(change("line_voided", "accepted", "k2", line_no=2, order=None))  # nothing left
        assert fake.order_total_minor(REF) == 0
        erp.push_change(change("status", "cancelled", "k3", reason="guest left", order=None))
        assert fake.cancelled(REF) and fake.documents(REF)[0]["erp_status"] == "cancelled"
    assert fake.statuses == [
        (REF, "line_voided", "line 1 voided: sold out"),
        (REF, "line_voided", "line 2 voided"),
        (REF, "cancelled", "guest left"),
    ]


def test_a_void_retried_after_another_void_carries_the_newer_order_and_is_not_refused():
    """The first void's answer is lost; before its retry a second line is voided, so the retry carries the order with
    both voids. Under the same key an ERP that keeps keys would refuse it (422, key reused with another body) and
    the row would park; the key follows the body, so the ERP takes the newer state."""
    with running(style="plain") as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        erp.push_order(order())
        fake.drop_after_commit_rate = 1.0
        with pytest.raises(Retryable):
            erp.push_change(change("line_voided", "accepted", "k1", line_no=1, order=after_voids(1)))
        fake.drop_after_commit_rate = 0.0
        assert fake.order_total_minor(REF) == 1800  # the ERP had applied it
        erp.push_change(change("line_voided", "accepted", "k1", line_no=1, order=None))  # the retry, newer state
        erp.push_change(change("line_voided", "accepted", "k1", line_no=1, order=None))  # and once more: replayed
        assert fake.order_total_minor(REF) == 0
        keys = [k for m, p, _, k in fake.seen if m == "POST" and p.endswith("/status")]
    assert len(set(keys)) == 2 and all(k.startswith("k1:") for k in keys)
    assert len(fake.statuses) == 2  # the replay was answered from the kept key, not applied again


def test_the_order_in_a_status_message_follows_the_order_template():
    """An ERP with its own body shape gets the amended order in that same shape (templates.order)."""
    with running(style="plain", body="custom") as fake, adapter_for(fake) as erp:
        stock_menu(fake)
        erp.push_order(order())
        erp.push_change(change("line_voided", "accepted", "k1", line_no=2, order=after_voids(2)))
        [doc] = fake.documents(REF)
    assert doc["custom"]["items"] == [{"sku": "ND-DDM", "qty": 2, "price_minor": 3100}]
    assert doc["custom"]["total_minor"] == 6200 and fake.order_total_minor(REF) == 6200
