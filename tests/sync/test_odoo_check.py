"""`tablebox sync check` against the fake Odoo: every line ✓ when Odoo is set up as the README says, and the line
that names what to fix when it is not (issue 15)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing
from typing import Any

import pytest

from sync.adapters import make_adapter
from sync.adapters.base import Check, CheckState
from sync.adapters.odoo import OdooAdapter
from tests.fakes.odoo import POS_SESSION, TAX_EXCLUDED, FakeOdoo
from tests.sync.test_odoo import MENU, fake_odoo

FACTS = {"currency": "CNY", "prices_include_tax": True, "payment_methods": ["cash", "card", "wechat"]}
CODES = [code for code, *_ in MENU]


@pytest.fixture(params=[19, 17], ids=["odoo19-json2", "odoo17-jsonrpc"])
def odoo(request: pytest.FixtureRequest) -> Iterator[FakeOdoo]:
    fake = fake_odoo(request.param)
    try:
        yield fake
    finally:
        fake.stop()


def run_check(fake: FakeOdoo, *, pos: bool = False, codes: list[str] = CODES, **changes: Any) -> dict[str, Check]:
    config = {**(fake.pos_target_config() if pos else fake.target_config()), **changes}
    adapter: OdooAdapter = make_adapter("erp", {k: v for k, v in config.items() if v is not None})  # type: ignore[assignment]
    adapter.expected_codes, adapter.box_facts = codes, FACTS
    with closing(adapter):
        return {check.name: check for check in adapter.check()}


def states(checks: dict[str, Check]) -> dict[str, CheckState]:
    return {name: check.state for name, check in checks.items()}


@pytest.mark.parametrize("pos", [False, True], ids=["sale_order", "pos_order"])
def test_a_well_set_up_odoo_passes_every_check(odoo, pos):
    checks = run_check(odoo, pos=pos)
    assert set(states(checks).values()) == {CheckState.OK}, [c for c in checks.values() if c.state != CheckState.OK]
    assert f"Odoo {odoo.version}" in checks["reachable"].detail
    assert ("POS payment methods" in checks) is pos and ("payment journals" in checks) is not pos
    assert checks["dish codes"].detail == f"all {len(CODES)} found"


def test_an_unreachable_odoo_stops_at_the_first_line(odoo):
    odoo.go_down()
    checks = run_check(odoo)
    assert states(checks) == {"reachable": CheckState.FAIL}
    assert "base_url" in checks["reachable"].fix


def test_a_wrong_api_key_fails_authenticated(odoo):
    checks = run_check(odoo, api_key="not-the-key")
    assert checks["authenticated"].state is CheckState.FAIL and "API Key" in checks["authenticated"].fix
    assert "dish codes" not in checks


def test_a_plan_without_the_external_api_says_so(odoo):
    odoo.api_access = False
    checks = run_check(odoo)
    assert checks["API access"].state is CheckState.FAIL and "Custom plan" in checks["API access"].fix


def test_a_misconfigured_odoo_names_each_thing_to_fix(odoo):
    with odoo.lock:
        odoo.product("TEA4")["taxes_id"] = [TAX_EXCLUDED]
        odoo.product("CN03")["active"] = False
    checks = run_check(
        odoo, codes=[*CODES, "LOB9"], partner_id=99, location_id=999, payment_journals={"wechat": "WeChat"}
    )
    failed = {name for name, state in states(checks).items() if state is CheckState.FAIL}
    assert failed == {"customer (partner_id)", "stock location", "payment journals", "prices include tax", "dish codes"}
    assert "CN03 (archived), LOB9" in checks["dish codes"].detail
    assert "13%" in checks["prices include tax"].detail and "Included in Price" in checks["prices include tax"].fix
    assert "'WeChat'" in checks["payment journals"].detail


def test_a_pos_without_the_boxs_payment_methods_or_an_open_session(odoo):
    with odoo.lock:
        odoo.db.tables["pos.config"][1]["payment_method_ids"] = [1, 2]  # cash and card, no WeChat Pay
        odoo.db.tables["pos.session"][POS_SESSION]["state"] = "closed"
    checks = run_check(odoo, pos=True)
    assert checks["POS payment methods"].state is CheckState.FAIL
    assert "wechat (WeChat Pay)" in checks["POS payment methods"].detail
    assert checks["POS session"].state is CheckState.WARN
    assert run_check(odoo, pos=True, pos_config_id=5)["POS config"].state is CheckState.FAIL


def test_a_currency_the_box_does_not_sell_in_fails():
    fake = fake_odoo(19, currency="JPY")
    try:
        assert run_check(fake)["currency"].state is CheckState.FAIL
    finally:
        fake.stop()


def test_an_odoo_older_than_17_is_a_warning():
    fake = fake_odoo(16)
    try:
        checks = run_check(fake)
        assert checks["reachable"].state is CheckState.WARN and "17, 18 and 19" in checks["reachable"].detail
        assert checks["dish codes"].state is CheckState.OK  # the rest is still checked
    finally:
        fake.stop()
