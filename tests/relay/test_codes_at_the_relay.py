"""Forged table codes stop at the relay, and one address cannot use up a store's budget (SQLite and PostgreSQL).

The box pushes, with its tables, the SHA-256 of each table's current code (`code_hash`): the relay refuses a code
whose hash is not the one pushed (403 forged_token) on every phone endpoint, before anything reaches the inbox,
without holding the store's secret. Two client addresses are two loopback source addresses (127.0.0.1 and
127.0.0.2): the relay takes the connection's address (no X-Forwarded-For is sent)."""

from __future__ import annotations

import base64
import os
import uuid
from typing import Any

import httpx

from appliance.contract.relay import table_code_hash
from appliance.domain.tokens import TableRef, sign_table_token
from tests.relay.conftest import Phone

BOX_STORE = "0a0b0c0d"  # the store id inside the box's table codes
SECRET = b"the box's own secret, which the relay never sees"


def code(table_id: int, version: int) -> str:
    return sign_table_token(SECRET, TableRef(BOX_STORE, table_id, version))


def forge(table_id: int, version: int) -> str:
    """A code with the right store, table and version but a MAC made up (what a forger without the secret sends)."""
    raw = base64.b32decode(code(table_id, version).upper())
    forged = base64.b32encode(raw[:10] + os.urandom(10)).decode("ascii").lower()
    assert forged != code(table_id, version)
    return forged


def push(box: Any, version: int, a1_version: int = 2) -> Any:
    """Table 1 (A1) and 2 (B2) with their codes' hashes; table 3 (C3) pushed without one (left to the box)."""
    return box.request(
        "PUT",
        "/v1/box/menu",
        {
            "version": version,
            "store": {"name": "Dumpling House", "currency": "CNY", "languages": ["en"], "open_now": True},
            "menus": {"en": {"version": version, "lang": "en", "categories": []}},
            "token_store": BOX_STORE,
            "tables": [
                {"id": 1, "name": "A1", "version": a1_version, "code_hash": table_code_hash(code(1, a1_version))},
                {"id": 2, "name": "B2", "version": 0, "code_hash": table_code_hash(code(2, 0))},
                {"id": 3, "name": "C3", "version": 0},
            ],
        },
    )


def phone_at(relay: Any, box: Any, token: str, address: str) -> Phone:
    """A phone whose connections come from `address` (a loopback address other than 127.0.0.1: another client)."""
    phone = relay.phone(box, token)
    phone.http.close()
    phone.http = httpx.Client(base_url=relay.url, timeout=30, transport=httpx.HTTPTransport(local_address=address))
    return phone


def online(relay: Any) -> Any:
    box = relay.enroll()
    assert push(box, 1).status_code == 200
    assert box.poll().status_code == 200  # the box is polling: the store is online
    return box


def key() -> str:
    return uuid.uuid4().hex


def test_a_forged_code_is_refused_on_every_endpoint_and_never_reaches_the_box(relay):
    box = online(relay)
    forged = forge(1, 2)
    phone = relay.phone(box, forged)
    answers = {
        "table": phone.get("", params={"lang": "en"}),
        "menu": phone.get("/menu"),
        "orders": phone.get("/orders"),
        "events": phone.get("/events"),
        "order": phone.order(key(), params={"lang": "en"}),
        "request": phone.post("/requests", {"kind": "waiter"}),
    }
    for what, answer in answers.items():
        assert answer.status_code == 403, (what, answer.text)
        assert answer.json()["error"]["code"] == "forged_token", what
    assert "not valid" in answers["order"].json()["error"]["message"]
    page = phone.http.get(f"/s/{box.store_id}/t/{forged}", headers={"Accept-Language": "en"})
    assert (
        page.status_code == 403 and page.headers["content-type"].startswith("text/html") and "<script" not in page.text
    )

    assert relay.storage.inbox_after(box.store_id, 0) == []
    assert box.poll().json() == {"messages": []}  # nothing for the box

    good = relay.phone(box, code(1, 2))
    assert good.get("").json()["table"]["name"] == "A1"
    assert good.order(key()).status_code == 202
    assert good.get("/orders").status_code == 200
    # a table pushed without a hash: the relay names it and leaves its code to the box, as with an older box
    unchecked = relay.phone(box, forge(3, 0))
    assert unchecked.order(key()).status_code == 202
    assert [m.token for m in relay.storage.inbox_after(box.store_id, 0)] == [code(1, 2), unchecked.token]


def test_a_rekeyed_table_takes_its_new_code_only_and_an_older_push_does_not_bring_the_old_back(relay):
    box = online(relay)
    assert push(box, 2, a1_version=3).json() == {"version": 2}  # staff re-keyed A1: new stickers
    old, new = relay.phone(box, code(1, 2)), relay.phone(box, code(1, 3))
    refused = old.order(key(), params={"lang": "en"})
    assert refused.status_code == 410 and refused.json()["error"]["code"] == "table_rekeyed"
    assert new.order(key()).status_code == 202
    assert relay.phone(box, forge(1, 3)).order(key()).status_code == 403

    assert push(box, 1, a1_version=2).json() == {"version": 2}  # a late push of the older menu is ignored
    assert old.order(key()).status_code == 410 and new.order(key()).status_code == 202
    assert [m.token for m in relay.storage.inbox_after(box.store_id, 0)] == [code(1, 3)] * 2


def test_a_refused_code_costs_its_address_ten_requests_and_no_one_elses(make_relay):
    relay = make_relay(rate_limit_address_per_minute=10)
    box = online(relay)
    attacker = relay.phone(box, forge(2, 0))
    assert attacker.order(key()).status_code == 403  # one request and a nine-request penalty: the minute's budget
    genuine_same_address = relay.phone(box, code(2, 0)).get("")
    assert genuine_same_address.status_code == 429
    assert genuine_same_address.json()["error"]["details"] == {"scope": "address"}
    assert int(genuine_same_address.headers["retry-after"]) >= 1

    diner = phone_at(relay, box, code(2, 0), "127.0.0.2")
    assert [diner.get("").status_code for _ in range(9)] == [200] * 9  # a valid code costs one request each
    assert diner.order(key()).status_code == 202


def test_one_address_gets_a_share_of_the_store_budget_and_forged_codes_none(make_relay):
    relay = make_relay(rate_limit_store_per_minute=5, rate_limit_address_orders_per_minute=3)
    box = online(relay)

    forged = [relay.phone(box, forge(1, 2)).order(key()).status_code for _ in range(40)]
    assert forged == [403] * 40  # refused at the relay; the store's budget is untouched
    attacker = relay.phone(box, code(1, 2))  # a photo of A1's sticker, from the same address
    flood = [attacker.order(key()) for _ in range(6)]
    assert [a.status_code for a in flood] == [202] * 3 + [429] * 3
    assert flood[-1].json()["error"]["details"] == {"scope": "address"}

    diner = phone_at(relay, box, code(2, 0), "127.0.0.2")
    first = key()
    assert diner.order(first).status_code == 202
    assert diner.order(first).status_code == 202  # the page asking again: no new message, no store budget
    assert diner.order(key()).status_code == 202  # 3 + 2 new messages: the store's budget of 5 is used up
    assert relay.storage.store(box.store_id).next_seq == 6
    limited = phone_at(relay, box, code(1, 2), "127.0.0.3").order(key())
    assert limited.status_code == 429 and limited.json()["error"]["details"] == {"scope": "store"}

    tokens = [m.token for m in relay.storage.inbox_after(box.store_id, 0)]
    assert tokens == [code(1, 2)] * 3 + [code(2, 0)] * 2
