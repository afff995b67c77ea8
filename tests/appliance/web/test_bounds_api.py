"""Every input bounded: sizes, counts, lengths, types, unknown fields; too many requests get 429. Never a 500."""

from __future__ import annotations

from pathlib import Path

import pytest
from litestar.testing import TestClient

from appliance.demo import ensure_demo_store
from appliance.store import Store
from appliance.web.app import create_app
from tests.appliance.web.conftest import item_id, key, token_for
from tests.conftest import make_settings


def line(db, **over):
    base = {"item_id": item_id(db, "har_gow"), "quantity": 1}
    base.update(over)
    return base


def post_raw(client, token, content, content_type="application/json"):
    return client.post(
        f"/api/v1/tables/{token}/orders?lang=en", content=content, headers={"content-type": content_type}
    )


def error(r):
    assert r.status_code < 500
    return r.status_code, r.json()["error"]["code"]


def test_malformed_json_is_400(client, token):
    assert error(post_raw(client, token, b'{"client_key": "abcdefgh", "lines": [')) == (400, "malformed_json")
    assert error(post_raw(client, token, b"\xff\xfe")) == (400, "malformed_json")


def test_a_body_over_the_limit_is_413(client, token, db):
    big = b'{"client_key": "abcdefgh", "lines": [], "note": "' + b"x" * 70_000 + b'"}'
    assert error(post_raw(client, token, big)) == (413, "body_too_large")


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda b: b.update(lines=[b["lines"][0]] * 51), "lines"),
        (lambda b: b["lines"][0].update(quantity=0), "lines[0].quantity"),
        (lambda b: b["lines"][0].update(quantity=100), "lines[0].quantity"),
        (lambda b: b["lines"][0].update(quantity="2"), "lines[0].quantity"),
        (lambda b: b["lines"][0].update(quantity=1.5), "lines[0].quantity"),
        (lambda b: b["lines"][0].update(item_id=10**30), "lines[0].item_id"),
        (lambda b: b["lines"][0].update(item_id=-1), "lines[0].item_id"),
        (lambda b: b["lines"][0].update(price_minor=1), "lines[0]"),
        (lambda b: b.update(total_minor=1), ""),
        (lambda b: b.update(client_key="short"), "client_key"),
        (lambda b: b.update(client_key="bad key with spaces"), "client_key"),
        (lambda b: b.update(lines="everything"), "lines"),
        (lambda b: b.update(expected_total_minor=10**20), "expected_total_minor"),
        (lambda b: b["lines"][0].update(option_ids=list(range(1, 30))), "lines[0].option_ids"),
        (lambda b: b["lines"][0].update(note=281), "lines[0].note"),
        (lambda b: b.pop("client_key"), ""),
    ],
)
def test_wrong_shapes_are_422_naming_the_field(client, token, db, mutate, field):
    body = {"client_key": key(), "lines": [line(db)]}
    mutate(body)
    r = client.post(f"/api/v1/tables/{token}/orders", json=body)
    assert error(r) == (422, "invalid_body")
    assert r.json()["error"]["details"]["field"] == field


def test_a_json_array_instead_of_an_object(client, token):
    assert error(post_raw(client, token, b"[1, 2]")) == (422, "invalid_body")


def test_a_note_of_141_characters_is_refused_naming_the_line(client, token, db):
    r = client.post(f"/api/v1/tables/{token}/orders", json={"client_key": key(), "lines": [line(db, note="辣" * 141)]})
    assert error(r) == (422, "text_too_long")
    assert r.json()["error"]["details"]["line"] == 1


@pytest.mark.parametrize("note", ["x" * 281, "x" * 130 + "\n" * 11, " " * 141])
def test_a_note_is_140_characters_as_sent_whatever_they_are(client, token, db, note):
    """The limit the API description states (maxLength 140) and the diner page's: white space and control characters
    count, although the stored note drops them."""
    r = client.post(f"/api/v1/tables/{token}/orders", json={"client_key": key(), "lines": [line(db, note=note)]})
    assert error(r) == (422, "text_too_long")
    assert r.json()["error"]["details"] == {"field": "note", "max_chars": 140, "line": 1}
    fits = client.post(
        f"/api/v1/tables/{token}/orders", json={"client_key": key(), "lines": [line(db, note=note[:140])]}
    )
    assert fits.status_code == 201, fits.text


def test_control_characters_are_stripped_before_storage(client, token, db):
    note = "no\x1b@ onion\x00\u202e please\r\n" + "\x07" * 100
    r = client.post(f"/api/v1/tables/{token}/orders", json={"client_key": key(), "lines": [line(db, note=note)]})
    assert r.status_code == 201
    assert r.json()["lines"][0]["note"] == "no@ onion please"
    assert db.execute("SELECT note FROM order_lines").fetchone()[0] == "no@ onion please"


def test_an_empty_order_is_refused(client, token):
    r = client.post(f"/api/v1/tables/{token}/orders", json={"client_key": key(), "lines": []})
    assert error(r) == (422, "empty_order")


def test_unknown_routes_and_methods_answer_in_our_shape(client, token):
    assert error(client.get("/api/v1/nothing")) == (404, "not_found")
    assert error(client.delete(f"/api/v1/tables/{token}/orders")) == (405, "method_not_allowed")


@pytest.fixture
def limited(tmp_path: Path):
    settings = make_settings(tmp_path / "lim", rate_limit_table_per_minute=3, rate_limit_address_per_minute=8)
    ensure_demo_store(settings)
    store = Store.open(settings)
    with TestClient(create_app(settings, store)) as client:
        yield settings, client
    store.close()


def test_too_many_orders_from_one_table_get_429(limited, db_for_limited=None):
    settings, client = limited
    token = token_for(settings, "A1")
    from appliance.db.connection import open_connection

    conn = open_connection(settings.db_path)
    har_gow = item_id(conn, "har_gow")
    conn.close()
    codes = [
        client.post(
            f"/api/v1/tables/{token}/orders", json={"client_key": key(), "lines": [{"item_id": har_gow, "quantity": 1}]}
        ).status_code
        for _ in range(4)
    ]
    assert codes == [201, 201, 201, 429]
    r = client.post(f"/api/v1/tables/{token}/requests", json={"kind": "waiter"})
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    assert r.json()["error"]["code"] == "rate_limited"
    other = token_for(settings, "A2")
    assert client.post(f"/api/v1/tables/{other}/requests", json={"kind": "waiter"}).status_code == 201


def test_too_many_requests_from_one_address_get_429(limited):
    settings, client = limited
    token = token_for(settings, "A3")
    codes = [client.get(f"/api/v1/tables/{token}/menu").status_code for _ in range(10)]
    assert codes[:8] == [200] * 8 and codes[8:] == [429, 429]


def test_waiter_and_bill_requests(client, token, db):
    r = client.post(f"/api/v1/tables/{token}/requests", json={"kind": "waiter"})
    assert r.status_code == 201 and r.json()["already_waiting"] is False
    again = client.post(f"/api/v1/tables/{token}/requests", json={"kind": "waiter"})
    assert again.status_code == 200 and again.json()["id"] == r.json()["id"] and again.json()["already_waiting"]
    bill = client.post(f"/api/v1/tables/{token}/requests", json={"kind": "bill"})
    assert error(bill) == (409, "no_open_visit")
    client.post(f"/api/v1/tables/{token}/orders", json={"client_key": key(), "lines": [line(db)]})
    assert client.post(f"/api/v1/tables/{token}/requests", json={"kind": "bill"}).status_code == 201
    assert db.execute("SELECT status FROM table_sessions").fetchone()[0] == "bill_requested"
    assert error(client.post(f"/api/v1/tables/{token}/requests", json={"kind": "dance"})) == (422, "invalid_body")
    # ordering more after asking for the bill puts the visit back to open
    client.post(f"/api/v1/tables/{token}/orders", json={"client_key": key(), "lines": [line(db)]})
    assert db.execute("SELECT status FROM table_sessions").fetchone()[0] == "open"
    assert db.execute("SELECT count(*) FROM service_requests").fetchone()[0] == 2
