"""The box's relay client and adapter (sync/adapters/relay.py) against the real relay app on 127.0.0.1, on SQLite and
on PostgreSQL: signed requests accepted, order events reaching what a phone reads, and every failure turned into
Retryable (try later) or Rejected (a person must fix the settings) with a message that says what to do. If these
failed, a box with a wrong secret would retry forever in silence, or a phone would never hear its order was taken."""

from __future__ import annotations

import functools
import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest

from appliance.contract import signing
from appliance.contract.relay import MenuPush
from sync.adapters import make_adapter
from sync.adapters.base import OrderDoc, OrderLine, Rejected, Retryable
from sync.adapters.relay import RelayAdapter, RelayClient
from sync.relay.app import create_relay_app
from sync.relay.settings import RelaySettings
from tests.appliance.test_crash import free_port
from tests.appliance.web.conftest import LiveServer
from tests.relay.conftest import new_token


class Relay:
    def __init__(self, storage: Any, server: LiveServer) -> None:
        self.storage = storage
        self.url = server.url
        enrolled = storage.enroll("小笼天下 Dumpling House")
        self.store_id, self.secret = enrolled.store_id, enrolled.secret
        self.token = new_token()

    def config(self, **changes: Any) -> dict[str, Any]:
        return {
            "kind": "relay",
            "base_url": self.url,
            "store_id": self.store_id,
            "api_secret": self.secret,
            "timeout_seconds": 5,
            **changes,
        }

    def phone(self, path: str = "") -> str:
        return f"{self.url}/s/{self.store_id}/api/v1/tables/{self.token}{path}"


@pytest.fixture
def relay(storage) -> Iterator[Relay]:
    settings = RelaySettings(
        rate_limit_address_per_minute=0,
        rate_limit_address_orders_per_minute=0,
        rate_limit_store_per_minute=0,
        rate_limit_token_per_minute=0,
        recheck_seconds=0.05,
        log_format="console",
    )
    with LiveServer(create_relay_app(settings, storage)) as server:
        yield Relay(storage, server)


def phone_order(relay: Relay, client_key: str | None = None, quantity: int = 2) -> dict[str, Any]:
    body = {"client_key": client_key or uuid.uuid4().hex, "lines": [{"item_id": 3, "quantity": quantity}]}
    answer = httpx.post(relay.phone("/orders?lang=en"), json=body, timeout=5)
    assert answer.status_code == 202, answer.text
    assert answer.json() == {"status": "pending", "client_key": body["client_key"]}
    return body


def order_doc(client_key: str, status: str = "submitted") -> OrderDoc:
    view = {
        "id": 41,
        "ticket_no": 7,
        "ticket_day": "2026-11-21",
        "status": status,
        "channel": "relay",
        "table": "A1",
        "table_id": 1,
        "session_id": 9,
        "client_key": client_key,
        "currency": "CNY",
        "subtotal_minor": 6400,
        "service_charge_minor": 0,
        "total_minor": 6400,
        "tax_minor": 362,
        "note": "",
        "created_at": "2026-11-21T12:00:00.000000Z",
        "updated_at": "2026-11-21T12:00:00.000000Z",
        "cancel_reason": None,
        "lines": [
            {
                "line_no": 1,
                "item_id": 3,
                "names": {"zh": "水晶虾饺", "en": "Crystal shrimp dumplings"},
                "variant_id": None,
                "variant_names": None,
                "options": [],
                "quantity": 2,
                "unit_price_minor": 3200,
                "line_total_minor": 6400,
                "note": "",
                "station": "kitchen",
                "status": "active",
                "void_reason": None,
            }
        ],
    }
    return OrderDoc(
        order_ref=client_key,
        order_id=41,
        ticket="2026-11-21#7",
        table="A1",
        created_at=view["created_at"],
        currency="CNY",
        lines=[OrderLine("HG", "har_gow", "水晶虾饺", 2, 3200, 6400)],
        subtotal_minor=6400,
        service_charge_minor=0,
        total_minor=6400,
        tax_minor=362,
        status=status,
        view=view,
    )


def test_the_settings_are_checked_with_errors_that_say_what_to_do(relay):
    adapter = make_adapter("relay", relay.config())
    assert isinstance(adapter, RelayAdapter)
    adapter.close()
    cases = [
        ({"store_id": None}, "store_id is missing: run `tablebox relay enroll STORE_NAME`"),
        ({"store_id": "a b"}, "store_id must be the 8-64 letters"),
        ({"api_secret": None}, "api_secret is missing: the 64 hex digits"),
        ({"api_secret": "zz" * 32}, "api_secret must be the 64 hex digits"),
        ({"timeout_seconds": 0}, "timeout_seconds must be a number"),
    ]
    for change, message in cases:
        config = {k: v for k, v in relay.config(**change).items() if v is not None}
        with pytest.raises(ValueError) as err:
            make_adapter("relay", config)
        assert message in str(err.value)
        assert relay.secret not in str(err.value)
    with pytest.raises(Rejected, match="the relay has no catalog"):
        RelayAdapter("relay", relay.config()).pull_catalog()


def test_polls_deliver_the_phones_orders_oldest_first_and_after_acknowledges(relay):
    client = RelayClient("relay", relay.config())
    try:
        assert client.poll(0, 0) == []  # the first poll also puts the store online
        first, second = phone_order(relay), phone_order(relay, quantity=1)
        messages = client.poll(0, 0)
        assert [(m.seq, m.kind, m.client_key, m.token) for m in messages] == [
            (1, "order", first["client_key"], relay.token),
            (2, "order", second["client_key"], relay.token),
        ]
        body = msgspec.json.decode(messages[0].body)
        assert body["lines"][0]["quantity"] == 2 and body["lang"] == "en"
        assert [m.seq for m in client.poll(1, 0)] == [2] and client.poll(2, 0) == []

        # a long-poll is answered as soon as a phone orders
        got: dict[str, Any] = {}
        poller = threading.Thread(target=lambda: got.update(messages=client.poll(2, 10)))
        poller.start()
        deadline = time.monotonic() + 5
        while not relay.storage.store(relay.store_id).polling and time.monotonic() < deadline:
            time.sleep(0.01)
        third = phone_order(relay)
        poller.join(10)
        assert [m.client_key for m in got["messages"]] == [third["client_key"]]
    finally:
        client.close()


def test_the_menu_push_keeps_the_newest_version(relay):
    client = RelayClient("relay", relay.config())
    document = MenuPush(
        version=5,
        store={"name": "小笼天下", "currency": "CNY", "languages": ["zh", "en"], "open_now": True},
        menus={
            "zh": {"version": 5, "lang": "zh", "categories": []},
            "en": {"version": 5, "lang": "en", "categories": []},
        },
    )
    try:
        assert client.push_menu(document) == 5
        assert client.push_menu(msgspec.structs.replace(document, version=3)) == 5  # older: ignored
        menu = httpx.get(relay.phone("/menu?lang=en"), timeout=5)
        assert menu.status_code == 200 and menu.json() == document.menus["en"]
    finally:
        client.close()


def test_order_events_become_what_the_phone_reads(relay):
    adapter = RelayAdapter("relay", relay.config())
    try:
        adapter.client.poll(0, 0)
        accepted, refused = phone_order(relay), phone_order(relay, quantity=1)
        key = accepted["client_key"]
        assert adapter.push_order(order_doc(key)) == f"accepted:{key}"
        assert adapter.push_order(order_doc(key)) == f"accepted:{key}"  # a retried delivery: the same event
        events = relay.storage.events_for_key(relay.store_id, key)
        assert [(e.event_id, e.type) for e in events] == [(f"accepted:{key}", "accepted")]
        shown = json.loads(events[0].body)["order"]
        assert shown["lines"][0]["names"]["zh"] == "水晶虾饺" and shown["total_minor"] == 6400
        assert "station" not in shown["lines"][0] and "session_id" not in shown  # the kitchen's business only

        again = httpx.post(relay.phone("/orders"), json=accepted, timeout=5)
        assert again.status_code == 200 and again.json()["id"] == 41 and again.json()["status"] == "submitted"

        moved = order_doc(key, "preparing").view
        adapter.push_status(key, "preparing", None, order=moved)
        error = {
            "code": "sold_out",
            "message": "Line 1: Crystal shrimp dumplings is sold out.",
            "details": {"line": 1, "item_id": 3},
        }
        adapter.push_status(refused["client_key"], "refused", json.dumps(error))
        visit = httpx.get(relay.phone("/orders"), timeout=5).json()
        assert [(o["client_key"], o["status"]) for o in visit["orders"]] == [(key, "preparing")]
        assert visit["refused"] == [{"client_key": refused["client_key"], "error": error}] and visit["pending"] == []
        told = httpx.post(relay.phone("/orders"), json=refused, timeout=5)
        assert told.status_code == 422 and told.json() == {"error": error}
        ids = [e.event_id for e in relay.storage.events_for_token(relay.store_id, relay.token)]
        assert ids == [f"accepted:{key}", f"status:{key}:preparing", f"refused:{refused['client_key']}"]
    finally:
        adapter.close()


def test_a_wrong_secret_or_store_is_rejected_with_what_to_check(relay):
    other_secret = ("0" if relay.secret[0] != "0" else "1") + relay.secret[1:]
    for config in (relay.config(api_secret=other_secret), relay.config(store_id="nosuchstore1")):
        adapter = RelayAdapter("relay", config)
        try:
            with pytest.raises(Rejected) as err:
                adapter.push_order(order_doc(uuid.uuid4().hex))
            assert (
                err.value.status == 401
                and "check store_id and the relay secret (api_secret) of [sync.relay]" in err.value.message
            )
            assert relay.secret not in err.value.message and other_secret not in err.value.message
            with pytest.raises(Rejected):
                adapter.client.poll(0, 0)
        finally:
            adapter.close()


def test_a_box_clock_far_off_is_retried_and_says_so(relay):
    adapter = RelayAdapter("relay", relay.config(), clock=lambda: time.time() - 600)
    try:
        with pytest.raises(Retryable) as err:
            adapter.client.poll(0, 0)
        assert "the box's clock is off by more than 5 minutes" in err.value.message and "NTP" in err.value.message
    finally:
        adapter.close()
    assert relay.storage.store(relay.store_id).last_poll_at is None  # refused: not a heartbeat


def test_a_replayed_request_is_refused_and_retried_with_a_fresh_nonce(relay, monkeypatch):
    monkeypatch.setattr("sync.adapters.relay.sign", functools.partial(signing.sign, nonce="n" * 24))
    client = RelayClient("relay", relay.config())
    try:
        assert client.poll(0, 0) == []
        with pytest.raises(Retryable, match="nonce before"):
            client.poll(0, 0)
        monkeypatch.setattr("sync.adapters.relay.sign", signing.sign)
        assert client.poll(0, 0) == []
    finally:
        client.close()


class Misbehaving(http.server.BaseHTTPRequestHandler):
    """An upstream that is not a working relay: a 503, a proxy's HTML page, a 400, a redirect."""

    answers: dict[str, tuple[int, bytes, dict[str, str]]] = {}

    def do_POST(self) -> None:
        status, body, headers = self.answers[self.path]
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_network_and_upstream_failures_map_to_retryable_or_rejected(relay):
    down = RelayAdapter("relay", relay.config(base_url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(Retryable, match="cannot reach the relay"):
        down.push_order(order_doc("k" * 16))
    down.close()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Misbehaving)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    adapter = RelayAdapter("relay", relay.config(base_url=f"http://127.0.0.1:{server.server_address[1]}"))
    try:
        for status, body, headers, expected, words in [
            (
                503,
                b'{"error": {"code": "storage_unavailable", "message": "db down"}}',
                {},
                Retryable,
                "HTTP 503 from the relay for POST /v1/box/events (storage_unavailable: db down)",
            ),
            (200, b"<html>captive portal</html>", {}, Retryable, "is not JSON"),
            (200, b"[" * 5000 + b"]" * 5000, {}, Retryable, "is not JSON"),  # a hostile relay: no RecursionError
            (503, b'{"error": ' * 3000 + b"1" + b"}" * 3000, {}, Retryable, "HTTP 503 from the relay"),
            (
                400,
                b'{"error": {"code": "invalid_body", "message": "events: bad"}}',
                {},
                Rejected,
                "the relay refused POST /v1/box/events: HTTP 400 (invalid_body: events: bad)",
            ),
            (301, b"", {"location": "https://relay.example.com/v1/box/events"}, Rejected, "set base_url"),
        ]:
            Misbehaving.answers = {"/v1/box/events": (status, body, headers)}
            with pytest.raises(expected) as err:
                adapter.push_status("k" * 16, "ready", None, order=order_doc("k" * 16, "ready").view)
            assert words in err.value.message
    finally:
        adapter.close()
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_each_part_of_a_line_voided_reaches_the_phone_once(relay):
    """One of the 2x voided, then the other (appliance.db.orders.void_line splits the part off as a voided line
    of its own): two events, each once however often it is delivered, the phone ending on nothing left."""
    adapter = RelayAdapter("relay", relay.config())
    try:
        adapter.client.poll(0, 0)
        key = phone_order(relay)["client_key"]
        adapter.push_order(order_doc(key))
        view = order_doc(key, "accepted").view
        line = view["lines"][0]
        one = {**line, "quantity": 1, "line_total_minor": 3200}
        part = {**one, "line_no": 2, "status": "voided", "void_reason": "cold"}
        first = {**view, "total_minor": 3200, "lines": [one, part]}
        second = {**view, "total_minor": 0, "lines": [{**one, "status": "voided", "void_reason": "cold"}, part]}
        for _ in range(2):  # each delivered twice: one event each
            adapter.push_status(key, "line_voided", "1 of line 1 voided (1 left): cold", order=first)
        for _ in range(2):
            adapter.push_status(key, "line_voided", "line 1 voided: cold", order=second)
        ids = [e.event_id for e in relay.storage.events_for_key(relay.store_id, key)]
        assert ids == [f"accepted:{key}", f"status:{key}:line_voided:2", f"status:{key}:line_voided:1,2"]
        (shown,) = httpx.get(relay.phone("/orders"), timeout=5).json()["orders"]
        assert shown["total_minor"] == 0 and [x["status"] for x in shown["lines"]] == ["voided", "voided"]
    finally:
        adapter.close()


def test_a_voided_line_reaches_the_phone_with_the_new_total(relay):
    adapter = RelayAdapter("relay", relay.config())
    try:
        adapter.client.poll(0, 0)
        key = phone_order(relay)["client_key"]
        adapter.push_order(order_doc(key))
        view = order_doc(key, "accepted").view
        voided = {**view, "total_minor": 0, "lines": [{**view["lines"][0], "status": "voided"}]}
        adapter.push_status(key, "line_voided", "line 1 voided: ran out", order=voided)
        adapter.push_status(key, "line_voided", "line 1 voided: ran out", order=voided)  # retried: one event
        ids = [e.event_id for e in relay.storage.events_for_key(relay.store_id, key)]
        assert ids == [f"accepted:{key}", f"status:{key}:line_voided:1"]
        (shown,) = httpx.get(relay.phone("/orders"), timeout=5).json()["orders"]
        assert shown["total_minor"] == 0 and shown["lines"][0]["status"] == "voided"
    finally:
        adapter.close()
