"""Every bad input gets a clear answer, never a 500 (issue #13): JSON bodies only as application/json (415
otherwise: a web page can post text/plain to the box without asking), nesting bounded (400), an empty body 400
`malformed_json`, no internal text in any message, and a client that goes away is an info line."""

from __future__ import annotations

import socket
import time

import httpx
import pytest
import structlog

from appliance.contract.decode import MAX_JSON_DEPTH, nested_deeper_than
from appliance.domain.messages import MESSAGES
from tests.appliance.web.conftest import item_id, key


def order_body(db) -> dict:
    return {"client_key": key(), "lines": [{"item_id": item_id(db, "har_gow"), "quantity": 1}]}


def post_raw(client, path, content, content_type=None, lang="en"):
    headers = {"content-type": content_type} if content_type is not None else {}
    return client.post(f"{path}?lang={lang}", content=content, headers=headers)


def orders_of(db) -> int:
    return db.execute("SELECT count(*) FROM orders").fetchone()[0]


@pytest.mark.parametrize(
    "content_type",
    [
        "text/plain",  # what any web page may post cross-site without a preflight
        "text/plain; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "application/json-patch+json",
        "application/json; charset=latin-1",
        None,
    ],
)
def test_an_order_not_sent_as_json_is_415_and_not_taken(client, token, db, content_type):
    import msgspec

    before = orders_of(db)
    body = msgspec.json.encode(order_body(db))
    r = post_raw(client, f"/api/v1/tables/{token}/orders", body, content_type)
    assert r.status_code == 415, r.text
    assert r.json()["error"]["code"] == "unsupported_media_type"
    assert r.json()["error"]["message"] == MESSAGES["unsupported_media_type"]["en"]
    zh = post_raw(client, f"/api/v1/tables/{token}/orders", body, content_type, lang="zh")
    assert zh.json()["error"]["message"] == MESSAGES["unsupported_media_type"]["zh"]
    calls = post_raw(client, f"/api/v1/tables/{token}/requests", b'{"kind": "waiter"}', content_type)
    assert (calls.status_code, calls.json()["error"]["code"]) == (415, "unsupported_media_type")
    assert orders_of(db) == before
    assert db.execute("SELECT count(*) FROM service_requests").fetchone()[0] == 0


@pytest.mark.parametrize("content_type", ["application/json", "Application/JSON", "application/json; charset=UTF-8"])
def test_json_with_or_without_its_charset_is_taken(client, token, db, content_type):
    import msgspec

    r = post_raw(client, f"/api/v1/tables/{token}/orders", msgspec.json.encode(order_body(db)), content_type)
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("content", [b"", b"   \r\n\t "])
@pytest.mark.parametrize("content_type", ["application/json", None])
def test_an_empty_body_is_400_malformed_json(client, token, content, content_type):
    for path in ("orders", "requests"):
        r = post_raw(client, f"/api/v1/tables/{token}/{path}", content, content_type)
        assert r.status_code == 400, r.text
        error = r.json()["error"]
        assert error["code"] == "malformed_json" and error["message"] == MESSAGES["malformed_json"]["en"]


def nested(depth: int, inner: bytes = b"1") -> bytes:
    return b'{"client_key": "abcdefgh", "lines": ' + b"[" * depth + inner + b"]" * depth + b"}"


def test_json_nested_2000_deep_is_400_and_never_reaches_the_decoder(client, token):
    with structlog.testing.capture_logs() as logs:
        for body in (nested(2000), b"[" * 2000 + b"]" * 2000, b'{"a":' * 2000 + b"1" + b"}" * 2000):
            for path in ("orders", "requests"):
                r = post_raw(client, f"/api/v1/tables/{token}/{path}", body, "application/json")
                assert r.status_code == 400, r.text
                assert r.json()["error"] == {
                    "code": "malformed_json",
                    "message": MESSAGES["malformed_json"]["en"],
                    "details": {"max_depth": MAX_JSON_DEPTH},
                }
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []


def test_the_nesting_limit_is_exactly_32_levels(client, token):
    """32 levels (the object and 31 arrays) pass the depth check and are refused for their shape; 33 are not JSON
    the box reads."""
    at_limit = nested(MAX_JSON_DEPTH - 1, b"")
    assert not nested_deeper_than(at_limit) and nested_deeper_than(nested(MAX_JSON_DEPTH, b""))
    r = post_raw(client, f"/api/v1/tables/{token}/orders", at_limit, "application/json")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_body")
    r = post_raw(client, f"/api/v1/tables/{token}/orders", nested(MAX_JSON_DEPTH, b""), "application/json")
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed_json")


def test_brackets_inside_strings_do_not_count(client, token, db):
    body = order_body(db)
    body["note"] = "[[[[{{{{" * 17  # 136 characters of brackets: text, not nesting
    r = client.post(f"/api/v1/tables/{token}/orders", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["note"] == body["note"]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"{",
        b"null",
        b"[]",
        b'"text"',
        b"\xff\xfe",
        b'{"client_key": "abcdefgh"}',
        b'{"client_key": "abcdefgh", "lines": [{"item_id": "1", "quantity": 1}]}',
        b'{"client_key": "abcdefgh", "lines": [], "extra": 1}',
        nested(40),
    ],
)
def test_no_refusal_carries_internal_text(client, token, content):
    """What a diner reads is the box's own sentence for the code; the details name fields, never a Python repr or a
    parser's internals (the empty body used to answer `": 'data'"`)."""
    for path in ("orders", "requests"):
        r = post_raw(client, f"/api/v1/tables/{token}/{path}", content, "application/json")
        assert 400 <= r.status_code < 500, r.text
        error = r.json()["error"]
        text = r.text
        for internal in ("'data'", "Traceback", "litestar", "msgspec", "Error(", "\\n  File"):
            assert internal not in text, (content, text)
        template = MESSAGES[error["code"]]["en"]
        if "{" not in template:
            assert error["message"] == template


def test_options_names_every_method_of_the_orders_path(client, token):
    r = client.options(f"/api/v1/tables/{token}/orders")
    assert r.status_code == 204
    assert sorted(m.strip() for m in r.headers["allow"].split(",")) == ["GET", "OPTIONS", "POST"]


def wait_for(check, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def test_a_client_that_goes_away_mid_body_is_an_info_line(live, token, store):
    host, port = live.url.removeprefix("http://").split(":")
    with structlog.testing.capture_logs() as logs:
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                f"POST /api/v1/tables/{token}/orders HTTP/1.1\r\nHost: box\r\nContent-Type: application/json\r\n"
                f'Content-Length: 1000\r\n\r\n{{"client_key": '.encode()
            )
            time.sleep(0.2)
        wait_for(lambda: any(e["event"] == "http.client_gone" for e in logs))
        # the server goes on serving
        assert httpx.get(live.url + "/healthz", timeout=5).status_code == 200
    gone = next(e for e in logs if e["event"] == "http.client_gone")
    assert gone["log_level"] == "info" and gone["path"] == f"/api/v1/tables/{token}/orders"
    assert [e for e in logs if e["log_level"] in ("error", "critical", "warning")] == []
    assert store.read.execute("SELECT count(*) FROM orders").fetchone()[0] == 0


def test_a_client_that_leaves_an_event_stream_leaves_no_error_and_no_subscriber(live, token):
    hub = live.server.config.app.state.hub
    with structlog.testing.capture_logs() as logs:
        with httpx.Client(base_url=live.url, timeout=5) as client:
            with client.stream("GET", f"/api/v1/tables/{token}/events") as stream:
                assert stream.status_code == 200
                next(stream.iter_raw())
                assert hub.subscriber_count == 1, logs  # what the stream logged, if it ended early
        wait_for(lambda: hub.subscriber_count == 0)
        assert httpx.get(live.url + "/healthz", timeout=5).status_code == 200
    assert [e for e in logs if e["log_level"] in ("error", "critical", "warning")] == []
