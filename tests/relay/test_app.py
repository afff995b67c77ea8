"""The relay service over real HTTP (uvicorn on 127.0.0.1, httpx), on SQLite and on PostgreSQL: signed long-polls,
refusals, online/offline, the phones' orders with their idempotency and the box's answers, events, menus, limits."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx
import msgspec
import pytest
import structlog

from appliance.contract.signing import sign
from tests.relay.conftest import accepted, new_token, refused, status_event, wait_until


def key() -> str:
    return uuid.uuid4().hex


def in_thread(fn: Any, *args: Any, **kwargs: Any) -> tuple[threading.Thread, dict[str, Any]]:
    out: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        out["answer"] = fn(*args, **kwargs)
        out["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def polling(relay: Any, box: Any) -> bool:
    row = relay.storage.store(box.store_id)
    return row.polling


def online_box(relay: Any) -> Any:
    box = relay.enroll()
    assert box.poll(0, 0).status_code == 200  # the heartbeat: the store is online from now
    return box


# -- the box's long-poll ------------------------------------------------------------------------------------------
def test_a_waiting_poll_gets_a_message_posted_during_the_wait_and_keeps_getting_it_until_acknowledged(make_relay):
    # recheck_seconds = 25: only the in-process wake-up can deliver before the wait ends
    relay = make_relay(recheck_seconds=25)
    box = online_box(relay)
    phone = relay.phone(box)
    thread, out = in_thread(box.poll, 0, 20)
    wait_until(lambda: polling(relay, box), what="the poll to start")
    client_key = key()
    assert phone.order(client_key).status_code == 202
    thread.join(30)
    answer = out["answer"]
    assert answer.status_code == 200
    assert out["seconds"] < 15, "the poll waited out its time instead of being woken"
    [message] = answer.json()["messages"]
    assert message["seq"] == 1 and message["kind"] == "order" and message["client_key"] == client_key
    assert message["token"] == phone.token
    assert message["body"]["lines"] == [{"item_id": 3, "quantity": 2, "variant_id": None, "option_ids": [], "note": ""}]
    assert message["body"]["client_key"] == client_key and message["received_at"].endswith("Z")
    # not acknowledged yet: the same message again
    assert [m["seq"] for m in box.poll(0, 0).json()["messages"]] == [1]
    # after=1 acknowledges it
    assert box.poll(1, 0).json()["messages"] == []
    assert relay.storage.store(box.store_id).acked_seq == 1


def test_a_poll_returns_at_once_what_is_waiting_oldest_first_and_at_most_100(relay):
    box = online_box(relay)
    phone = relay.phone(box)
    for _ in range(3):
        assert phone.order(key()).status_code == 202
    assert phone.post("/requests", {"kind": "bill"}).status_code == 202
    messages = box.poll(0, 20).json()["messages"]
    assert [(m["seq"], m["kind"]) for m in messages] == [(1, "order"), (2, "order"), (3, "order"), (4, "request")]
    assert messages[3]["client_key"] is None and messages[3]["body"]["kind"] == "bill"
    assert [m["seq"] for m in box.poll(2, 0).json()["messages"]] == [3, 4]
    for n in range(120):
        relay.storage.put_message(box.store_id, "order", f"bulk{n:012d}", phone.token, "{}", "h", time.time())
    page = box.poll(4, 0).json()["messages"]
    assert len(page) == 100 and page[0]["seq"] == 5 and page[-1]["seq"] == 104


def test_a_poll_that_times_out_answers_an_empty_list(make_relay):
    relay = make_relay(recheck_seconds=0.05)
    box = relay.enroll()
    answer = box.poll(0, 0.3)
    assert answer.status_code == 200 and answer.json() == {"messages": []}
    assert not relay.storage.store(box.store_id).polling


def test_two_relay_processes_on_one_database_deliver_through_the_recheck(storage, make_relay):
    """A phone's order reaches relay A; the box waits on relay B, which re-reads the database."""
    a = make_relay(recheck_seconds=0.1)
    b = make_relay(recheck_seconds=0.1)
    box_on_b = b.enroll()
    assert box_on_b.poll(0, 0).status_code == 200
    phone_on_a = a.phone(box_on_b)
    thread, out = in_thread(box_on_b.poll, 0, 20)
    wait_until(lambda: polling(b, box_on_b), what="the poll to start")
    client_key = key()
    assert phone_on_a.order(client_key).status_code == 202
    thread.join(30)
    assert [m["client_key"] for m in out["answer"].json()["messages"]] == [client_key]
    assert out["seconds"] < 15


def test_bad_poll_parameters_are_refused(relay):
    box = relay.enroll()
    for query in ("after=-1&wait=0", "after=0&wait=26", "after=x&wait=0", "after=1.5&wait=0"):
        answer = box.request("GET", f"/v1/box/inbox?{query}")
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_body", query


# -- refused box requests -----------------------------------------------------------------------------------------
def test_wrong_secret_replay_skew_unknown_store_and_missing_headers_are_refused_and_logged(relay):
    box = relay.enroll()
    path = "/v1/box/inbox?after=0&wait=0"
    replayed = sign(box.store_id, box.secret, "GET", path, b"", now=relay.clock())
    with structlog.testing.capture_logs() as logs:
        wrong = box.poll(secret=bytes(32))
        first = box.request("GET", path, headers=replayed)
        again = box.request("GET", path, headers=replayed)
        skewed = box.poll(now=relay.clock() - 360)
        ahead = box.poll(now=relay.clock() + 360)
        unknown = box.poll(store_id="nosuchstore0")
        bare = box.request("GET", path, headers={})
    assert first.status_code == 200
    codes = [(r.status_code, r.json()["error"]["code"]) for r in (wrong, again, skewed, ahead, unknown, bare)]
    assert codes == [
        (401, "bad_signature"),
        (401, "replayed_nonce"),
        (401, "stale_timestamp"),
        (401, "stale_timestamp"),
        (401, "unknown_store"),
        (401, "missing_signature"),
    ]
    refusals = [entry for entry in logs if entry["event"] == "relay.refused"]
    assert [entry["code"] for entry in refusals] == [
        "bad_signature",
        "replayed_nonce",
        "stale_timestamp",
        "stale_timestamp",
        "unknown_store",
        "missing_signature",
    ]
    assert refusals[0]["store"] == box.store_id and refusals[0]["address"] == "127.0.0.1"
    secret_hex = box.secret.hex()
    for entry in logs:
        assert secret_hex not in repr(entry) and replayed["X-Tablebox-Signature"] not in repr(entry)


def test_a_tampered_request_is_refused(relay):
    """The signature covers the query and the body: changing either after signing is caught."""
    box = relay.enroll()
    headers = sign(box.store_id, box.secret, "GET", "/v1/box/inbox?after=5&wait=0", b"", now=relay.clock())
    answer = box.request("GET", "/v1/box/inbox?after=0&wait=0", headers=headers)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "bad_signature"
    body = msgspec.json.encode({"events": []})
    headers = sign(box.store_id, box.secret, "POST", "/v1/box/events", body, now=relay.clock())
    tampered = box.http.post("/v1/box/events", content=body.replace(b"[]", b"[ ]"), headers=headers)
    assert tampered.status_code == 401 and tampered.json()["error"]["code"] == "bad_signature"


def test_another_stores_inbox_cannot_be_read(relay):
    """The store comes from the signed header only: B's valid signature reads B's inbox; B's secret cannot sign
    for A."""
    store_a, store_b = relay.enroll("A"), relay.enroll("B")
    assert store_a.poll().status_code == 200 and store_b.poll().status_code == 200
    relay.phone(store_a).order(key())
    assert len(store_a.poll(0, 0).json()["messages"]) == 1
    assert store_b.poll(0, 0).json()["messages"] == []
    as_a = store_b.poll(store_id=store_a.store_id)  # B's secret, A's name
    assert as_a.status_code == 401 and as_a.json()["error"]["code"] == "bad_signature"
    events = store_b.post_events(accepted("x" * 32))  # B's events land in B, whatever the key
    assert events.status_code == 200
    assert relay.storage.events_for_key(store_a.store_id, "x" * 32) == []


def test_too_many_refusals_from_one_address_get_429(make_relay):
    relay = make_relay(rate_limit_address_per_minute=60)
    box = relay.enroll()
    answers = [box.poll(secret=bytes(32)).status_code for _ in range(61)]
    assert answers[:60] == [401] * 60 and answers[60] == 429


# -- online and offline -------------------------------------------------------------------------------------------
def test_a_store_is_offline_until_its_box_polls_and_again_after_missed_polls(relay):
    box = relay.enroll()
    phone = relay.phone(box)
    zh = phone.order(key())
    en = phone.order(key(), params={"lang": "en"})
    assert zh.status_code == en.status_code == 503
    assert zh.json()["error"]["code"] == en.json()["error"]["code"] == "restaurant_offline"
    assert zh.json()["error"]["message"] == "餐厅暂时无法通过网络接单：请连接店内 Wi-Fi 点餐。"
    assert en.json()["error"]["message"] == "The restaurant is offline: join the store Wi-Fi to order."
    by_header = phone.order(key(), headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert by_header.json()["error"]["message"].startswith("The restaurant is offline")
    assert relay.storage.inbox_after(box.store_id, 0) == []  # nothing was taken

    assert box.poll(0, 0).status_code == 200
    assert phone.order(key()).status_code == 202
    relay.clock.advance(59)
    assert phone.order(key()).status_code == 202
    relay.clock.advance(2)  # 61 s: two missed 25 s polls and some slack
    late = phone.order(key(), params={"lang": "en"})
    assert late.status_code == 503 and late.json()["error"]["code"] == "restaurant_offline"
    assert phone.post("/requests", {"kind": "waiter"}).status_code == 503


def test_a_poll_in_progress_counts_as_online(make_relay):
    relay = make_relay(recheck_seconds=25)
    box = relay.enroll()
    thread, out = in_thread(box.poll, 0, 20)
    wait_until(lambda: polling(relay, box), what="the poll to start")
    relay.clock.advance(70)  # longer than offline_after_seconds since the poll began
    phone = relay.phone(box)
    assert phone.order(key()).status_code == 202
    thread.join(30)
    assert out["answer"].status_code == 200
    relay.clock.advance(61)  # no poll since that one ended
    assert phone.order(key()).status_code == 503


def test_offline_after_seconds_is_a_setting(make_relay):
    relay = make_relay(offline_after_seconds=5)
    box = online_box(relay)
    relay.clock.advance(6)
    assert relay.phone(box).order(key()).status_code == 503


# -- orders, their idempotency and the box's answers --------------------------------------------------------------
def test_a_repeated_order_gets_the_same_answer_and_another_body_with_its_key_is_refused(relay):
    box = online_box(relay)
    phone = relay.phone(box)
    client_key = key()
    first = phone.order(client_key)
    again = phone.order(client_key)
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json() == {"status": "pending", "client_key": client_key}
    assert len(relay.storage.inbox_after(box.store_id, 0)) == 1
    other = phone.order(client_key, body={"lines": [{"item_id": 4, "quantity": 1}]})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    assert other.json()["error"]["message"] == "该订单标识已用于另一笔订单。"
    elsewhere = relay.phone(box).order(client_key)  # the same key from another table
    assert elsewhere.status_code == 422
    assert len(relay.storage.inbox_after(box.store_id, 0)) == 1


def test_a_retry_answers_the_order_once_the_box_accepted_it_and_never_before(relay):
    box = online_box(relay)
    phone = relay.phone(box)
    client_key = key()
    assert phone.order(client_key).status_code == 202
    assert phone.get("/orders").json() == {"orders": [], "pending": [client_key], "refused": []}
    # the box polls, applies, and its outbox posts "accepted"
    assert box.poll(0, 0).json()["messages"][0]["client_key"] == client_key
    assert phone.order(client_key).status_code == 202  # applied but not yet accepted: still pending
    stored = box.post_events(accepted(client_key))
    assert stored.json() == {"stored": 1, "new": 1}
    assert box.post_events(accepted(client_key)).json() == {"stored": 1, "new": 0}  # a retried post
    retry = phone.order(client_key)
    assert retry.status_code == 200
    assert retry.json()["ticket_no"] == 7 and retry.json()["status"] == "submitted"
    listing = phone.get("/orders").json()
    assert [o["client_key"] for o in listing["orders"]] == [client_key] and listing["pending"] == []
    box.post_events(status_event(client_key, "107", "preparing"))
    assert phone.get("/orders").json()["orders"][0]["status"] == "preparing"
    assert phone.order(client_key).json()["status"] == "preparing"
    # another table's phone sees none of it
    assert relay.phone(box).get("/orders").json() == {"orders": [], "pending": [], "refused": []}


def test_the_boxs_refusal_reaches_the_phone_with_its_status_and_message(relay):
    box = online_box(relay)
    phone = relay.phone(box)
    client_key = key()
    phone.order(client_key)
    box.post_events(refused(client_key))
    retry = phone.order(client_key)
    assert retry.status_code == 422
    assert retry.json() == {"error": {"code": "sold_out", "message": "第 1 项：虾饺 已售罄。", "details": {"line": 1}}}
    changed = key()
    phone.order(changed)
    box.post_events(refused(changed, code="price_changed", message="价格已更新"))
    assert phone.order(changed).status_code == 409
    listing = phone.get("/orders").json()
    assert listing["orders"] == [] and listing["pending"] == []
    assert [r["client_key"] for r in listing["refused"]] == [client_key, changed]
    assert listing["refused"][0]["error"]["code"] == "sold_out"


def test_a_known_order_is_answered_even_while_the_box_is_offline(relay):
    """The message waits in the inbox: telling the diner 'offline, join the Wi-Fi' would make them order twice."""
    box = online_box(relay)
    phone = relay.phone(box)
    client_key = key()
    phone.order(client_key)
    relay.clock.advance(600)
    assert phone.order(client_key).status_code == 202
    assert phone.order(key()).status_code == 503


def test_notes_lose_control_characters_and_bounds_are_kept(relay):
    box = online_box(relay)
    phone = relay.phone(box)
    note = "no \x1b@chili\u202e please\x00\r\nthanks"
    answer = phone.order(key(), body={"note": note, "lines": [{"item_id": 3, "quantity": 1, "note": "ex\x07tra\thot"}]})
    assert answer.status_code == 202
    body = box.poll(0, 0).json()["messages"][0]["body"]
    assert body["note"] == "no @chili please thanks" and body["lines"][0]["note"] == "extra hot"
    too_long = phone.order(key(), body={"note": "辣" * 141}, params={"lang": "en"})
    assert too_long.status_code == 422 and too_long.json()["error"]["code"] == "text_too_long"
    for bad, field in (
        ({"client_key": "short"}, "client_key"),
        ({"lines": [{"item_id": 3, "quantity": 100}]}, "lines[0].quantity"),
        ({"price_minor": 1}, ""),
    ):
        answer = phone.post("/orders", {"client_key": key(), "lines": [{"item_id": 3, "quantity": 1}], **bad})
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_body", bad
        assert answer.json()["error"]["details"]["field"] == field
    assert phone.post("/orders", {"client_key": key(), "lines": []}).json()["error"]["code"] == "empty_order"
    malformed = phone.http.post(
        phone.prefix + "/orders", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert malformed.status_code == 400 and malformed.json()["error"]["code"] == "malformed_json"


def test_unknown_store_and_malformed_table_codes(relay):
    box = online_box(relay)
    unknown = httpx.get(f"{relay.url}/s/nosuchstore0/api/v1/tables/{new_token()}/menu", params={"lang": "en"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "unknown_store"
    forged = httpx.get(f"{relay.url}/s/{box.store_id}/api/v1/tables/not-a-code/menu")
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "forged_token"


def test_waiter_and_bill_requests_go_to_the_inbox(relay):
    box = online_box(relay)
    phone = relay.phone(box)
    answer = phone.post("/requests", {"kind": "waiter"}).json()
    assert (answer["status"], answer["kind"]) == ("pending", "waiter") and answer["client_key"].startswith("request:")
    assert phone.post("/requests", {"kind": "nap"}).status_code == 422
    [message] = box.poll(0, 0).json()["messages"]
    assert message["kind"] == "request" and message["body"] == {"kind": "waiter", "lang": "zh"}
    assert message["token"] == phone.token and message["key"] == answer["client_key"]
    assert message["client_key"] is None  # only an order's key is the diner's


def test_a_refused_request_reaches_that_tables_stream_as_a_request_event(relay):
    box = online_box(relay)
    phone = relay.phone(box)
    request_key = phone.post("/requests", {"kind": "bill"}).json()["client_key"]
    error = {"code": "no_open_visit", "message": "There is nothing to pay at this table yet.", "details": {}}
    with phone.http.stream("GET", phone.prefix + "/events", timeout=10) as stream:
        lines = stream.iter_lines()
        assert read_events(lines, 1)[0]["event"] == "snapshot"
        box.post_events(
            {
                "id": f"refused:{request_key}",
                "client_key": request_key,
                "type": "refused",
                "order": None,
                "error": error,
                "at": "2026-11-22T12:00:00Z",
            }
        )
        [event] = read_events(lines, 1)
    assert event["event"] == "request" and event["id"] == f"refused:{request_key}"
    data = msgspec.json.decode(event["data"])
    assert (data["type"], data["client_key"], data["error"]) == ("refused", request_key, error)
    # stored against the table code that sent the call: only that table's streams carry it
    assert [e.token for e in relay.storage.events_for_key(box.store_id, request_key)] == [phone.token]


# -- events to the phone ------------------------------------------------------------------------------------------
def read_events(lines: Any, count: int) -> list[dict[str, Any]]:
    """The next `count` events (not comments) from the lines of a text/event-stream."""
    events: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    for line in lines:
        if line == "":
            if "data" in current:
                events.append(current)
                if len(events) == count:
                    return events
            current = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            current[name] = value[1:] if value.startswith(" ") else value
    raise AssertionError("the stream ended")


def test_events_stream_the_boxs_answers_and_resume_after_last_event_id(relay):
    box = online_box(relay)
    phone = relay.phone(box)
    client_key = key()
    phone.order(client_key)
    with phone.http.stream("GET", phone.prefix + "/events", timeout=10) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        lines = stream.iter_lines()
        [snapshot] = read_events(lines, 1)
        assert snapshot["event"] == "snapshot"
        assert msgspec.json.decode(snapshot["data"]) == {"orders": [], "pending": [client_key], "refused": []}
        box.post_events(accepted(client_key))
        [first] = read_events(lines, 1)
        assert first["event"] == "order" and first["id"] == f"accepted:{client_key}"
        data = msgspec.json.decode(first["data"])
        assert data["type"] == "accepted" and data["client_key"] == client_key and data["order"]["ticket_no"] == 7
    box.post_events(status_event(client_key, "107", "preparing"), status_event(client_key, "107", "ready"))
    resumed = {"Last-Event-ID": f"accepted:{client_key}"}
    with phone.http.stream("GET", phone.prefix + "/events", headers=resumed, timeout=10) as stream:
        missed = read_events(stream.iter_lines(), 2)
    assert [e["id"] for e in missed] == ["status:107:preparing", "status:107:ready"]
    assert [msgspec.json.decode(e["data"])["order"]["status"] for e in missed] == ["preparing", "ready"]


def test_an_event_stream_sends_keepalive_comments(make_relay):
    relay = make_relay(keepalive_seconds=0.1)
    box = online_box(relay)
    phone = relay.phone(box)
    comments = []
    with phone.http.stream("GET", phone.prefix + "/events", timeout=10) as stream:
        for line in stream.iter_lines():
            if line == ": keepalive":
                comments.append(line)
                if len(comments) == 2:
                    break
    assert comments == [": keepalive", ": keepalive"]


def test_an_event_stream_sees_only_its_own_table_codes_events(relay):
    box = online_box(relay)
    mine, theirs = relay.phone(box), relay.phone(box)
    my_key, their_key = key(), key()
    mine.order(my_key)
    theirs.order(their_key)
    with mine.http.stream("GET", mine.prefix + "/events", timeout=10) as stream:
        lines = stream.iter_lines()
        read_events(lines, 1)
        box.post_events(accepted(their_key), accepted(my_key))
        [event] = read_events(lines, 1)
    assert event["id"] == f"accepted:{my_key}"


# -- the menu -----------------------------------------------------------------------------------------------------
def test_the_menu_goes_compressed_as_the_box_sends_it(relay):
    box = relay.enroll()
    categories = [{"id": n, "name": f"dim sum {n}", "items": []} for n in range(1, 40)]
    menu = {"version": 5, "lang": "en", "categories": categories}
    store = {"name": "Dumpling House", "currency": "CNY", "languages": ["en"], "open_now": True}
    assert box.request("PUT", "/v1/box/menu", {"version": 5, "store": store, "menus": {"en": menu}}).status_code == 200
    phone = relay.phone(box)
    plain = phone.get("/menu", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers and len(plain.content) > 1000
    gz = phone.get("/menu", headers={"Accept-Encoding": "gzip"})
    assert gz.headers["content-encoding"] == "gzip" and gz.content == plain.content
    assert gz.headers["etag"] == plain.headers["etag"] and "Accept-Encoding" in gz.headers["vary"]
    again = phone.get("/menu", headers={"Accept-Encoding": "gzip", "If-None-Match": gz.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_the_menu_is_served_from_the_boxs_last_push_with_an_etag(relay):
    box = relay.enroll()
    phone = relay.phone(box)
    missing = phone.get("/menu", params={"lang": "en"})
    assert missing.status_code == 503 and missing.json()["error"]["code"] == "menu_unavailable"
    assert phone.get("").status_code == 503
    assert box.push_menu(3).json() == {"version": 3}
    english = phone.get("/menu", params={"lang": "en"})
    assert english.status_code == 200 and english.json()["lang"] == "en" and english.json()["version"] == 3
    etag = english.headers["etag"]
    assert "3" in etag
    assert phone.get("/menu", params={"lang": "en"}, headers={"If-None-Match": etag}).status_code == 304
    assert phone.get("/menu").json()["lang"] == "zh"  # the default language
    assert phone.get("/menu", params={"lang": "fr"}).json()["lang"] == "zh"
    assert box.push_menu(2).json() == {"version": 3}  # older: ignored
    assert phone.get("/menu", params={"lang": "en"}, headers={"If-None-Match": etag}).status_code == 304
    assert box.push_menu(4).json() == {"version": 4}
    fresh = phone.get("/menu", params={"lang": "en"}, headers={"If-None-Match": etag})
    assert fresh.status_code == 200 and fresh.json()["version"] == 4
    info = phone.get("").json()
    assert info["store"]["name"] == "小笼天下 Dumpling House" and info["online"] is False
    box.poll()
    assert phone.get("").json()["online"] is True


# -- limits -------------------------------------------------------------------------------------------------------
def test_one_table_code_is_limited(make_relay):
    relay = make_relay(rate_limit_token_per_minute=3)
    box = online_box(relay)
    phone = relay.phone(box)
    answers = [phone.order(key()).status_code for _ in range(4)]
    assert answers == [202, 202, 202, 429]
    limited = phone.order(key(), params={"lang": "en"})
    assert limited.json()["error"]["code"] == "rate_limited" and int(limited.headers["retry-after"]) >= 1
    assert limited.json()["error"]["details"] == {"scope": "table"}
    assert relay.phone(box).order(key()).status_code == 202  # another table still orders


def test_one_store_is_limited(make_relay):
    relay = make_relay(rate_limit_store_per_minute=2)
    box = online_box(relay)
    answers = [relay.phone(box).order(key()).status_code for _ in range(3)]
    assert answers == [202, 202, 429]
    other = online_box(relay)
    assert relay.phone(other).order(key()).status_code == 202


def test_one_address_is_limited(make_relay):
    relay = make_relay(rate_limit_address_per_minute=5)
    box = online_box(relay)
    phone = relay.phone(box)
    answers = [phone.get("/orders").status_code for _ in range(6)]
    assert answers == [200] * 5 + [429]
    assert phone.get("/orders").json()["error"]["details"] == {"scope": "address"}


def test_bodies_over_the_limit_get_413(make_relay):
    relay = make_relay(max_body_bytes=2048, max_box_body_bytes=65_536)
    box = online_box(relay)
    phone = relay.phone(box)
    big = {"client_key": key(), "lines": [{"item_id": 3, "quantity": 1, "note": "x" * 100}] * 30}
    answer = phone.post("/orders", big, params={"lang": "en"})
    assert answer.status_code == 413 and answer.json()["error"] == {
        "code": "body_too_large",
        "message": "The request is too large.",
        "details": {},
    }
    # the box may push more than a phone may send, up to its own limit
    menu = {"version": 1, "store": {"name": "x"}, "menus": {"zh": {"pad": "y" * 10_000}}}
    assert box.request("PUT", "/v1/box/menu", menu).status_code == 200
    menu["menus"]["zh"]["pad"] = "y" * 70_000
    assert box.request("PUT", "/v1/box/menu", menu).status_code == 413


def test_health_answers_while_the_database_does(relay):
    answer = httpx.get(relay.url + "/healthz")
    assert answer.status_code == 200 and answer.json()["status"] == "ok"
    assert answer.json()["database"] == relay.storage.dialect


@pytest.mark.parametrize(
    "bad",
    [
        {"events": [{"id": "x y", "client_key": "k", "type": "accepted"}]},
        {"events": [{"id": "x", "client_key": "k", "type": "eaten"}]},
        {"nope": 1},
    ],
)
def test_malformed_box_bodies_are_refused(relay, bad):
    box = relay.enroll()
    answer = box.request("POST", "/v1/box/events", bad)
    assert answer.status_code == 422 and answer.json()["error"]["code"] == "invalid_body"
