"""Every bad input gets a clear answer from the relay, never a 500 nor a 503 (issue #13): the box API's signature
headers checked for form before any is used (a timestamp of a non-ASCII digit or 5,000 digits used to reach the
database thread and answer 503 `storage_unavailable`, skipping the refusal limiter), JSON bodies only as
application/json, nesting bounded, an empty body 400, and a client that goes away is an info line."""

from __future__ import annotations

import json
import socket
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import structlog

from appliance.contract.decode import MAX_JSON_DEPTH
from appliance.contract.signing import NONCE_HEADER, SIGNATURE_HEADER, STORE_HEADER, TIMESTAMP_HEADER, sign
from appliance.domain.messages import MESSAGES
from tests.relay.test_cli import RelayProcess, enroll

SQLITE_ONLY = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


def key() -> str:
    return uuid.uuid4().hex


def online_box(relay: Any) -> Any:
    box = relay.enroll()
    assert box.poll(0, 0).status_code == 200
    assert box.push_menu(1).status_code == 200
    return box


# -- the box API's headers, against a real relay process -----------------------------------------------------------
BAD_HEADERS = [
    (TIMESTAMP_HEADER, "\xb2".encode("latin-1"), "stale_timestamp"),  # "²": str.isdigit() says yes, int() says no
    (TIMESTAMP_HEADER, "١٧٠٠٠٠٠٠٠٠".encode(), "stale_timestamp"),  # Arabic-Indic digits
    (TIMESTAMP_HEADER, b"9" * 5000, "stale_timestamp"),  # more digits than int() converts
    (TIMESTAMP_HEADER, b"-1", "stale_timestamp"),
    (NONCE_HEADER, "é".encode() * 20, "bad_signature"),
    (NONCE_HEADER, b"n" * 5000, "bad_signature"),
    (SIGNATURE_HEADER, "é".encode() * 32, "bad_signature"),  # hmac.compare_digest refuses non-ASCII text
    (SIGNATURE_HEADER, b"a" * 5000, "bad_signature"),
    (SIGNATURE_HEADER, b"A" * 64, "bad_signature"),
    (STORE_HEADER, "店".encode() * 10, "unknown_store"),
    (STORE_HEADER, b"s" * 5000, "unknown_store"),
]


def log_lines(path: Path) -> list[dict[str, Any]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict):
            out.append(entry)
    return out


@pytest.mark.slow
def test_malformed_signature_headers_are_401_and_counted_by_the_refusal_limiter(database_url, tmp_path):
    store_id, secret, _ = enroll(database_url)
    relay = RelayProcess(database_url, tmp_path / "relay.log")
    try:
        with httpx.Client(base_url=relay.url, timeout=10) as http:
            path = "/v1/box/inbox?after=0&wait=0"

            def signed() -> dict[str, Any]:
                return dict(sign(store_id, bytes.fromhex(secret), "GET", path, b""))

            for name, value, code in BAD_HEADERS:
                headers: dict[str, Any] = signed()
                headers[name] = value
                answer = http.get(path, headers=headers)
                assert answer.status_code == 401, (name, value[:20], answer.text)
                assert answer.json()["error"]["code"] == code, (name, value[:20])
            assert http.get(path, headers=signed()).status_code == 200  # the same box, signing right, goes on
            # the refusals above count against this address like any other (60 a minute at least): bad headers
            # are slowed down as bad signatures are
            statuses = []
            for _ in range(70):
                headers = signed()
                headers[TIMESTAMP_HEADER] = b"9" * 5000
                statuses.append(http.get(path, headers=headers).status_code)
            assert set(statuses) == {401, 429} and statuses[-1] == 429
            assert http.get(path, headers=signed()).status_code == 200  # a signed request is never refused for it
    finally:
        relay.stop()
    logs = log_lines(tmp_path / "relay.log")
    refused = [e for e in logs if e.get("event") == "relay.refused"]
    assert len(refused) >= len(BAD_HEADERS) and {e["code"] for e in refused} >= {c for _, _, c in BAD_HEADERS}
    assert [e for e in logs if e.get("level") in ("error", "critical")] == []
    assert not any(e.get("event") == "relay.storage_failed" for e in logs)


# -- JSON bodies --------------------------------------------------------------------------------------------------
def raw_post(phone: Any, path: str, content: bytes, content_type: str | None) -> httpx.Response:
    headers = {"Content-Type": content_type} if content_type is not None else {}
    return phone.http.post(phone.prefix + path, content=content, headers=headers, params={"lang": "en"})


@SQLITE_ONLY
@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/x-www-form-urlencoded", "application/json; charset=latin-1", None],
)
def test_a_phone_body_not_sent_as_json_is_415_and_never_reaches_the_inbox(relay, content_type):
    box = online_box(relay)
    phone = relay.phone(box)
    order = msgspec.json.encode({"client_key": key(), "lines": [{"item_id": 3, "quantity": 1}]})
    for path, body in (("/orders", order), ("/requests", b'{"kind": "waiter"}')):
        answer = raw_post(phone, path, body, content_type)
        assert answer.status_code == 415, answer.text
        assert answer.json()["error"] == {
            "code": "unsupported_media_type",
            "message": MESSAGES["unsupported_media_type"]["en"],
            "details": {"content_type": content_type or ""},
        }
    assert box.poll(0, 0).json()["messages"] == []
    assert raw_post(phone, "/orders", order, "application/json; charset=utf-8").status_code == 202


@SQLITE_ONLY
def test_empty_and_deeply_nested_phone_bodies_are_400(relay):
    box = online_box(relay)
    phone = relay.phone(box)
    deep = b'{"client_key": "abcdefgh", "lines": ' + b"[" * 2000 + b"]" * 2000 + b"}"
    with structlog.testing.capture_logs() as logs:
        for path in ("/orders", "/requests"):
            for content in (b"", b" \n", deep):
                answer = raw_post(phone, path, content, "application/json")
                assert answer.status_code == 400, answer.text
                error = answer.json()["error"]
                assert error["code"] == "malformed_json" and error["message"] == MESSAGES["malformed_json"]["en"]
                assert "'data'" not in answer.text
            assert raw_post(phone, path, deep, "application/json").json()["error"]["details"] == {
                "max_depth": MAX_JSON_DEPTH
            }
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []
    assert box.poll(0, 0).json()["messages"] == []


@SQLITE_ONLY
def test_the_box_api_checks_a_signed_body_as_strictly(relay):
    """A signed request from the box itself: its body too must be JSON, sent as such, not empty, not too deep
    (a menu push is about ten levels; the old decoder recursed into whatever it was given)."""
    box = relay.enroll()
    deep = b'{"names": [], "x": ' + b"[" * 5000 + b"]" * 5000 + b"}"
    for method, path in (("PUT", "/v1/box/menu"), ("POST", "/v1/box/events"), ("POST", "/v1/box/images/missing")):
        for content, content_type, status, code in (
            (b"", "application/json", 400, "malformed_json"),
            (deep, "application/json", 400, "malformed_json"),
            (b'{"events": []}', "text/plain", 415, "unsupported_media_type"),
        ):
            headers = {**sign(box.store_id, box.secret, method, path, content, now=relay.clock()), "Accept": "*/*"}
            if content_type:
                headers["Content-Type"] = content_type
            answer = box.http.request(method, path, content=content, headers=headers)
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), (path, content[:20])
        # unsigned, the same bodies are a 401 first: nothing about a body is said to a stranger
        stranger = box.http.request(method, path, content=b"", headers={"Content-Type": "text/plain"})
        assert stranger.status_code == 401


@SQLITE_ONLY
def test_options_names_every_method_of_the_orders_path(relay):
    box = relay.enroll()
    phone = relay.phone(box)
    answer = phone.http.options(phone.prefix + "/orders")
    assert answer.status_code == 204
    assert sorted(m.strip() for m in answer.headers["allow"].split(",")) == ["GET", "OPTIONS", "POST"]


# -- clients that go away -----------------------------------------------------------------------------------------
def wait_for(check: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@SQLITE_ONLY
def test_a_phone_that_goes_away_mid_body_or_mid_stream_is_no_error(relay):
    box = online_box(relay)
    phone = relay.phone(box)
    host, port = relay.url.removeprefix("http://").split(":")
    with structlog.testing.capture_logs() as logs:
        with socket.create_connection((host, int(port))) as sock:
            sock.sendall(
                f"POST {phone.prefix}/orders HTTP/1.1\r\nHost: relay\r\nContent-Type: application/json\r\n"
                f'Content-Length: 1000\r\n\r\n{{"client_key": '.encode()
            )
            time.sleep(0.2)
        wait_for(lambda: any(e["event"] == "relay.client_gone" for e in logs))
        with httpx.Client(base_url=relay.url, timeout=5) as http:
            with http.stream("GET", phone.prefix + "/events") as stream:
                assert stream.status_code == 200
                next(stream.iter_raw())
        assert phone.order(key()).status_code == 202  # and the relay goes on
    gone = next(e for e in logs if e["event"] == "relay.client_gone")
    assert gone["log_level"] == "info" and gone["method"] == "POST"
    assert [e for e in logs if e["log_level"] in ("error", "critical")] == []
