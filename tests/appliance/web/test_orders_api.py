"""Submitting orders: server-side pricing, idempotency, refusals naming the line, and the one transaction."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime

import pytest
import structlog
from litestar.testing import AsyncTestClient

from appliance.db.orders import change_status
from appliance.db.store_settings import load_store_settings, set_store_setting
from appliance.db.tables import open_session
from appliance.domain.orders import Actor, OrderStatus
from appliance.web.app import create_app
from tests.appliance.web.conftest import item_id, key, option_id, variant_id


@pytest.fixture
def targets(db):
    with db:
        db.execute(
            "INSERT INTO sync_targets (name, kind, inbox_source) VALUES ('books', 'odoo', NULL), ('erp', 'erp', NULL), ('relay', 'relay', 'relay:relay@')"
        )
    return ["books", "erp", "relay"]


def noodles(db, quantity=2, note=""):
    """Dan dan noodles 28.00 + egg 3.00, spice chosen: 31.00 each (kitchen)."""
    return {
        "item_id": item_id(db, "dan_dan_noodles"),
        "quantity": quantity,
        "note": note,
        "option_ids": [option_id(db, "spice", "mild"), option_id(db, "addons", "egg")],
    }


def tea(db, quantity=1):
    """Lemon tea, medium 18.00, ice and sugar chosen (bar)."""
    return {
        "item_id": item_id(db, "lemon_tea"),
        "variant_id": variant_id(db, "lemon_tea", "medium"),
        "quantity": quantity,
        "option_ids": [option_id(db, "ice", "less_ice"), option_id(db, "sugar", "half")],
    }


def post(client, token, lines, **extra):
    return client.post(
        f"/api/v1/tables/{token}/orders", json={"client_key": extra.pop("client_key", key()), "lines": lines, **extra}
    )


def count(db, sql, *params):
    return db.execute(sql, params).fetchone()[0]


def test_submit_prices_on_the_server_and_writes_everything_in_one_go(client, token, db, targets):
    r = post(client, token, [noodles(db), tea(db)], expected_total_minor=8000, note="生日\x1b快乐", diners=3)
    assert r.status_code == 201, r.text
    order = r.json()
    assert order["status"] == "submitted"
    assert (order["subtotal_minor"], order["service_charge_minor"], order["total_minor"]) == (8000, 0, 8000)
    assert order["tax_minor"] == 453  # 6% included: 8000 * 6 / 106
    assert order["ticket_no"] == 1 and order["table"] == "A1" and order["channel"] == "lan"
    assert order["note"] == "生日快乐"
    first = order["lines"][0]
    assert (first["unit_price_minor"], first["line_total_minor"], first["quantity"]) == (3100, 6200, 2)
    assert [o["price_delta_minor"] for o in first["options"]] == [0, 300]
    oid = order["id"]
    assert count(db, "SELECT count(*) FROM order_lines WHERE order_id = ?", oid) == 2
    assert db.execute("SELECT to_status, actor FROM order_events WHERE order_id = ?", (oid,)).fetchall() == [
        ("submitted", "diner")
    ]
    assert db.execute(
        "SELECT station, kind, state FROM print_jobs WHERE order_id = ? ORDER BY station", (oid,)
    ).fetchall() == [("bar", "ticket", "pending"), ("kitchen", "ticket", "pending")]
    outbox = db.execute("SELECT target, kind, idempotency_key, payload FROM outbox ORDER BY target").fetchall()
    # one row per ERP target; the relay target gets rows only for orders that came through the relay, not this one
    assert [(t, k) for t, k, _, _ in outbox] == [("books", "order.submitted"), ("erp", "order.submitted")]
    assert outbox[0][2] == f"order.submitted:{order['client_key']}"
    assert json.loads(outbox[0][3])["total_minor"] == 8000
    assert db.execute("SELECT status, diners FROM table_sessions").fetchall() == [("open", 3)]


def test_the_order_is_in_the_diners_language(client, token, db):
    zh = post(client, token, [noodles(db)]).json()
    en = client.post(
        f"/api/v1/tables/{token}/orders?lang=en", json={"client_key": key(), "lines": [noodles(db)]}
    ).json()
    assert zh["lines"][0]["name"] == "担担面" and zh["lines"][0]["options"][1]["name"] == "加蛋"
    assert en["lines"][0]["name"] == "Dan dan noodles"
    assert en["ticket_no"] == zh["ticket_no"] + 1


def test_a_repeated_client_key_returns_the_original_order(client, token, db, targets):
    body = {"client_key": key(), "lines": [noodles(db), tea(db)]}
    first = client.post(f"/api/v1/tables/{token}/orders", json=body)
    again = client.post(f"/api/v1/tables/{token}/orders", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert count(db, "SELECT count(*) FROM orders") == 1
    assert count(db, "SELECT count(*) FROM print_jobs") == 2
    assert count(db, "SELECT count(*) FROM outbox") == 2


def test_the_same_key_with_another_body_is_refused(client, token, db):
    k = key()
    assert post(client, token, [noodles(db)], client_key=k).status_code == 201
    r = post(client, token, [noodles(db, quantity=3)], client_key=k)
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "idempotency_key_reused"
    assert count(db, "SELECT count(*) FROM orders") == 1


@pytest.mark.anyio
async def test_concurrent_duplicates_make_one_order(settings, store, token, db, targets):
    body = {"client_key": key(), "lines": [noodles(db), tea(db)]}
    async with AsyncTestClient(create_app(settings, store)) as client:
        answers = await asyncio.gather(*[client.post(f"/api/v1/tables/{token}/orders", json=body) for _ in range(25)])
    codes = sorted(a.status_code for a in answers)
    assert codes.count(201) == 1 and codes.count(200) == 24
    assert len({a.json()["id"] for a in answers}) == 1
    assert count(db, "SELECT count(*) FROM orders") == 1
    assert count(db, "SELECT count(*) FROM print_jobs") == 2
    assert count(db, "SELECT count(*) FROM outbox") == 2


def test_a_stale_total_gets_409_with_the_fresh_total_and_writes_nothing(client, token, db):
    with db:
        db.execute("UPDATE items SET price_minor = 3000 WHERE key = 'dan_dan_noodles'")
    r = client.post(
        f"/api/v1/tables/{token}/orders?lang=en",
        json={"client_key": key(), "lines": [noodles(db)], "expected_total_minor": 6200},
    )
    assert r.status_code == 409
    error = r.json()["error"]
    assert error["code"] == "price_changed"
    assert error["details"]["total_minor"] == 6600
    assert "¥66.00" in error["message"]
    assert count(db, "SELECT count(*) FROM orders") == 0
    assert post(client, token, [noodles(db)], expected_total_minor=6600).status_code == 201


def test_the_service_charge_from_settings(client, token, db):
    with db:
        set_store_setting(db, "service_charge_bp", 1000)
    order = post(client, token, [noodles(db)]).json()
    assert (order["subtotal_minor"], order["service_charge_minor"], order["total_minor"]) == (6200, 620, 6820)


def _line_error(client, token, bad_line, good_line):
    r = client.post(
        f"/api/v1/tables/{token}/orders?lang=en", json={"client_key": key(), "lines": [good_line, bad_line]}
    )
    assert r.status_code == 422, r.text
    return r.json()["error"]


def test_sold_out_names_the_line(client, token, db):
    error = _line_error(client, token, {"item_id": item_id(db, "oil_fried_shrimp"), "quantity": 1}, tea(db))
    assert error["code"] == "sold_out" and error["details"]["line"] == 2
    assert error["message"] == "Line 2: Crispy fried river shrimp is sold out."


def test_unknown_and_hidden_items(client, token, db):
    assert _line_error(client, token, {"item_id": 99999, "quantity": 1}, tea(db))["code"] == "unknown_item"
    hidden = {"item_id": item_id(db, "chef_special_duck"), "quantity": 1}
    assert _line_error(client, token, hidden, tea(db))["code"] == "unknown_item"


def test_unavailable_now(client, token, db):
    tz = load_store_settings(db).tz
    now = datetime.now(tz)
    start = (now.hour + 2) % 24
    with db:
        db.execute(
            "UPDATE items SET available_from = ?, available_until = ? WHERE key = 'mapo_tofu'",
            (f"{start:02d}:00", f"{(start + 1) % 24:02d}:00"),
        )
    mapo = {"item_id": item_id(db, "mapo_tofu"), "quantity": 1, "option_ids": [option_id(db, "spice", "hot")]}
    error = _line_error(client, token, mapo, tea(db))
    assert error["code"] == "unavailable_now"
    assert error["details"]["window"] == f"{start:02d}:00-{(start + 1) % 24:02d}:00"


@pytest.mark.parametrize(
    "case,reason", [("below_min", "below_min"), ("above_max", "above_max"), ("other_item", "not_offered")]
)
def test_invalid_option_choices(client, token, db, case, reason):
    line = noodles(db)
    spice = [option_id(db, "spice", s) for s in ("mild", "hot")]
    line["option_ids"] = {
        "below_min": [],
        "above_max": spice,
        "other_item": [spice[0], option_id(db, "ice", "no_ice")],
    }[case]
    error = _line_error(client, token, line, tea(db))
    assert error["code"] == "invalid_option"
    assert error["details"]["reason"] == reason and error["details"]["line"] == 2


def test_variant_rules(client, token, db):
    no_variant = {
        "item_id": item_id(db, "lemon_tea"),
        "quantity": 1,
        "option_ids": [option_id(db, "ice", "no_ice"), option_id(db, "sugar", "none")],
    }
    assert _line_error(client, token, no_variant, noodles(db))["code"] == "variant_required"
    foreign = {**no_variant, "variant_id": variant_id(db, "xiaolongbao", "six")}
    assert _line_error(client, token, foreign, noodles(db))["code"] == "unknown_variant"


def test_stock_goes_down_and_the_last_portion_sells_the_dish_out(client, token, db):
    crab = {
        "item_id": item_id(db, "crab_xiaolongbao"),
        "variant_id": variant_id(db, "crab_xiaolongbao", "six"),
        "quantity": 7,
    }
    assert post(client, token, [crab]).status_code == 201
    assert db.execute("SELECT stock, sold_out FROM items WHERE key = 'crab_xiaolongbao'").fetchone() == (3, 0)
    error = _line_error(client, token, {**crab, "quantity": 4}, tea(db))
    assert (error["code"], error["details"]["available"]) == ("not_enough_stock", 3)
    assert post(client, token, [{**crab, "quantity": 3}]).status_code == 201
    assert db.execute("SELECT stock, sold_out FROM items WHERE key = 'crab_xiaolongbao'").fetchone() == (0, 1)
    assert _line_error(client, token, {**crab, "quantity": 1}, tea(db))["code"] == "sold_out"
    menu = client.get(f"/api/v1/tables/{token}/menu?lang=en").json()
    crab_item = next(i for c in menu["categories"] for i in c["items"] if i["id"] == crab["item_id"])
    assert crab_item["sold_out"] is True


def test_auto_accept_moves_the_order_and_logs_both_events(client, token, db):
    with db:
        set_store_setting(db, "auto_accept", True)
    order = post(client, token, [noodles(db)]).json()
    assert order["status"] == "accepted"
    assert db.execute(
        "SELECT to_status, actor FROM order_events WHERE order_id = ? ORDER BY id", (order["id"],)
    ).fetchall() == [("submitted", "diner"), ("accepted", "system")]


def test_print_on_accept_holds_tickets_until_staff_accept(client, token, db):
    with db:
        set_store_setting(db, "print_on", "accept")
    order = post(client, token, [noodles(db), tea(db)]).json()
    assert count(db, "SELECT count(*) FROM print_jobs") == 0
    with db:
        change_status(db, order["id"], OrderStatus.ACCEPTED, Actor.STAFF)
    assert count(db, "SELECT count(*) FROM print_jobs WHERE kind = 'ticket'") == 2


def test_tables_that_staff_must_open(client, token, db):
    with db:
        set_store_setting(db, "tables_need_staff_open", True)
    r = post(client, token, [noodles(db)])
    assert r.status_code == 409 and r.json()["error"]["code"] == "table_not_open"
    assert client.get(f"/api/v1/tables/{token}").json()["table"]["takes_orders"] is False
    with db:
        open_session(db, db.execute("SELECT id FROM tables WHERE name = 'A1'").fetchone()[0], "staff", 2)
    assert post(client, token, [noodles(db)]).status_code == 201


def test_a_closed_restaurant_takes_no_orders(client, token, db):
    tz = load_store_settings(db).tz
    start = (datetime.now(tz).hour + 2) % 24
    with db:
        set_store_setting(db, "opening_hours", [f"{start:02d}:00-{(start + 1) % 24:02d}:00"])
    r = post(client, token, [noodles(db)])
    assert r.status_code == 409 and r.json()["error"]["code"] == "store_closed"
    assert client.get(f"/api/v1/tables/{token}").json()["store"]["open_now"] is False


def test_the_visits_orders_and_running_total(client, token, db, settings):
    from tests.appliance.web.conftest import token_for

    a = post(client, token, [noodles(db)]).json()
    b = post(client, token, [tea(db, 2)]).json()
    post(client, token_for(settings, "A2"), [tea(db)])
    with db:
        change_status(db, b["id"], OrderStatus.CANCELLED, Actor.STAFF, "out of lemons")
    visit = client.get(f"/api/v1/tables/{token}/orders").json()
    assert [o["cancel_reason"] for o in visit["orders"]] == [None, "out of lemons"]
    assert [o["id"] for o in visit["orders"]] == [a["id"], b["id"]]
    assert [o["status"] for o in visit["orders"]] == ["submitted", "cancelled"]
    assert visit["total_minor"] == a["total_minor"]
    assert visit["session"]["status"] == "open"


def test_one_log_event_per_order_with_id_table_total_and_latency(client, token, db):
    with structlog.testing.capture_logs() as logs:
        order = post(client, token, [noodles(db)]).json()
    events = [e for e in logs if e["event"] == "order.submitted"]
    assert len(events) == 1
    assert (events[0]["order_id"], events[0]["table"], events[0]["total_minor"]) == (order["id"], "A1", 6200)
    assert events[0]["latency_ms"] > 0
