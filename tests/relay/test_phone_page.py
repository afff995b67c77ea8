"""What a phone's browser gets from the relay besides the API, on SQLite and on PostgreSQL: the diner page and its
files under the store's address, the table named from the box's push, codes the relay can already tell are wrong
refused early, and order views in the phone's language."""

from __future__ import annotations

import gzip
import json
import re
import uuid

import brotli

from appliance.diner_page import SERVICE_WORKER, STATIC_DIR, page, slim
from appliance.diner_page.delivery import etag_of
from appliance.domain.tokens import TableRef, sign_table_token

BOX_STORE = "0a0b0c0d"  # the store id inside the box's table codes (not the relay's store id)
SECRET = b"the box's own secret, which the relay never sees"
BOOT = re.compile(rb'<script id="tb-boot" type="application/json">(.*?)</script>', re.S)


def code(table_id: int, version: int, store: str = BOX_STORE) -> str:
    return sign_table_token(SECRET, TableRef(store, table_id, version))


def push_tables(box, version: int = 3) -> None:
    answer = box.request(
        "PUT",
        "/v1/box/menu",
        {
            "version": version,
            "store": {
                "name": "小笼天下 Dumpling House",
                "currency": "CNY",
                "languages": ["zh", "en"],
                "open_now": True,
            },
            "menus": {lang: {"version": version, "lang": lang, "categories": []} for lang in ("zh", "en")},
            "token_store": BOX_STORE,
            "tables": [
                {"id": 1, "name": "A1", "area": "窗边", "seats": 4, "version": 2, "active": True},
                {"id": 2, "name": "B2", "area": "", "seats": None, "version": 0, "active": False},
            ],
        },
    )
    assert answer.status_code == 200 and answer.json() == {"version": version}


def test_the_table_is_named_and_wrong_codes_are_refused_before_the_inbox(relay):
    box = relay.enroll()
    push_tables(box)
    box.poll()  # online
    info = relay.phone(box, code(1, 2)).get("")
    assert info.status_code == 200
    assert info.json()["table"] == {"name": "A1", "area": "窗边", "seats": 4, "takes_orders": True, "session": None}
    assert info.json()["online"] is True

    cases = {
        code(1, 1): (410, "table_rekeyed", "out of date"),  # an old sticker
        code(1, 3): (403, "forged_token", "not valid"),  # a version the box never printed
        code(1, 2, "ffffffff"): (403, "other_store", "another restaurant"),
        code(2, 0): (410, "table_gone", "no longer takes orders"),  # a table taken out of use
        code(9, 0): (410, "table_gone", "no longer takes orders"),
    }
    for token, (status, error, words) in cases.items():
        phone = relay.phone(box, token)
        for answer in (
            phone.get("", params={"lang": "en"}),
            phone.order(uuid.uuid4().hex, params={"lang": "en"}),
            phone.post("/requests", {"kind": "waiter"}, params={"lang": "en"}),
        ):
            assert answer.status_code == status, (token, answer.text)
            assert answer.json()["error"]["code"] == error and words in answer.json()["error"]["message"]
    assert relay.storage.inbox_after(box.store_id, 0) == []  # nothing reached the box's inbox

    good = relay.phone(box, code(1, 2)).order(uuid.uuid4().hex)
    assert good.status_code == 202
    assert [m.token for m in relay.storage.inbox_after(box.store_id, 0)] == [code(1, 2)]


def test_a_box_that_pushes_no_tables_leaves_the_codes_to_the_box(relay):
    box = relay.enroll()
    assert box.push_menu(1).status_code == 200
    box.poll()
    phone = relay.phone(box, code(1, 1))  # would be an old sticker, but the relay cannot know
    assert phone.get("").json()["table"] is None
    assert phone.order(uuid.uuid4().hex).status_code == 202


def fetch(http, url: str, **headers: str):
    """The answer and its body exactly as sent (not decoded by httpx)."""
    with http.stream("GET", url, headers=headers) as r:
        return r, b"".join(r.iter_raw())


def decoded(r, raw: bytes) -> bytes:
    coding = r.headers.get("content-encoding")
    return bytes(brotli.decompress(raw)) if coding == "br" else gzip.decompress(raw) if coding == "gzip" else raw


def test_the_diner_page_and_its_files_are_served_under_the_stores_address(relay):
    box = relay.enroll()
    push_tables(box)
    box.poll()  # online
    phone = relay.phone(box, code(1, 2))
    http = phone.http
    page_path = f"/s/{box.store_id}/t/{code(1, 2)}"
    r, raw = fetch(http, page_path, **{"Accept-Encoding": "identity", "Accept-Language": "en-GB,en;q=0.9"})
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert [a for a in re.findall(r'(?:src|href)="([^"]+)"', raw.decode()) if a != "data:,"] == []  # one document
    # what the phone would have asked the relay's API for, inside the page, in the phone's language
    found = BOOT.search(raw)
    assert found is not None
    boot = json.loads(found.group(1))
    assert boot["lang"] == "en"
    assert boot["info"] == phone.get("").json() and boot["info"]["online"] is True
    assert boot["info"]["table"]["name"] == "A1"
    assert boot["menu"] == phone.get("/menu", params={"lang": "en"}).json()
    # and around that data, the box's own page byte for byte
    assert raw == page(found.group(1).decode(), "en")
    _, cookie_raw = fetch(http, page_path, **{"Accept-Encoding": "identity", "Cookie": "tb_lang=zh"})
    assert json.loads(BOOT.search(cookie_raw).group(1))["lang"] == "zh"  # type: ignore[union-attr]

    # compressed as the box compresses, one validator for every encoding, 304 for a current copy
    for accept, coding in (("gzip, deflate, br, zstd", "br"), ("gzip, deflate", "gzip")):
        enc, enc_raw = fetch(http, page_path, **{"Accept-Encoding": accept, "Accept-Language": "en"})
        assert enc.headers["content-encoding"] == coding and decoded(enc, enc_raw) == raw
        assert len(enc_raw) * 3 < len(raw)
        assert enc.headers["etag"] == r.headers["etag"] == etag_of(raw)
        assert enc.headers["vary"] == "Accept-Encoding, Accept-Language, Cookie"
        assert enc.headers["cache-control"] == "no-cache"
    again, body = fetch(http, page_path, **{"If-None-Match": r.headers["etag"], "Accept-Language": "en"})
    assert again.status_code == 304 and body == b"" and "content-encoding" not in again.headers

    # the service worker under the store's address (its scope: /s/STORE/), and the page's parts
    for path, name in (("sw.js", SERVICE_WORKER), ("static/diner.css", "diner.css")):
        f, f_raw = fetch(http, f"/s/{box.store_id}/{path}", **{"Accept-Encoding": "br"})
        assert (
            f.status_code == 200
            and decoded(f, f_raw) == slim((STATIC_DIR / name).read_text(), name.endswith(".js")).encode()
        )
        assert f.headers["content-type"].startswith(("text/javascript", "text/css"))
        assert f.headers["cache-control"] == "no-cache" and f.headers["vary"] == "Accept-Encoding"
        same, _ = fetch(http, f"/s/{box.store_id}/{path}", **{"If-None-Match": f.headers["etag"]})
        assert same.status_code == 304
    assert http.get(f"/s/{box.store_id}/static/diner.html").status_code == 404
    assert http.get(f"/s/{box.store_id}/static/..%2Fapp.py").status_code == 404

    old = http.get(f"/s/{box.store_id}/t/{code(1, 1)}", headers={"Accept-Language": "zh-CN"})
    assert old.status_code == 410 and old.headers["content-type"] == "text/html; charset=utf-8"
    assert "二维码" in old.text and "小笼天下 Dumpling House" in old.text and "A1" in old.text
    chosen = http.get(f"/s/{box.store_id}/t/{code(1, 1)}", headers={"Accept-Language": "zh-CN", "Cookie": "tb_lang=en"})
    assert chosen.status_code == 410 and '<html lang="en">' in chosen.text  # the page's switch sets the cookie
    assert http.get(f"/s/nosuchstore1/t/{code(1, 2)}").status_code == 404


def test_a_page_for_a_store_whose_box_never_pushed_a_menu_says_so(relay):
    box = relay.enroll()
    answer = relay.phone(box).http.get(f"/s/{box.store_id}/t/{code(1, 2)}", headers={"Accept-Language": "en"})
    assert answer.status_code == 503 and "join the store Wi-Fi" in answer.text


def test_order_views_reach_the_phone_in_its_language(relay):
    box = relay.enroll()
    push_tables(box)
    box.poll()
    phone = relay.phone(box, code(1, 2))
    client_key = uuid.uuid4().hex
    assert phone.order(client_key).status_code == 202
    view = {
        "id": 41,
        "ticket_no": 7,
        "status": "submitted",
        "table": "A1",
        "client_key": client_key,
        "currency": "CNY",
        "total_minor": 3600,
        "cancel_reason": None,
        "lines": [
            {
                "line_no": 1,
                "item_id": 3,
                "names": {"zh": "水晶虾饺", "en": "Crystal shrimp dumplings"},
                "variant_id": 5,
                "variant_names": {"zh": "大份", "en": "Large"},
                "options": [{"id": 8, "names": {"zh": "加辣", "en": "Extra chili"}, "price_delta_minor": 0}],
                "quantity": 2,
                "line_total_minor": 3600,
                "status": "active",
            }
        ],
    }
    assert (
        box.post_events(
            {
                "id": f"accepted:{client_key}",
                "client_key": client_key,
                "type": "accepted",
                "order": view,
                "error": None,
                "at": "2026-11-22T12:00:00Z",
            }
        ).status_code
        == 200
    )
    for lang, (dish, size, option) in {
        "en": ("Crystal shrimp dumplings", "Large", "Extra chili"),
        "zh": ("水晶虾饺", "大份", "加辣"),
    }.items():
        (order,) = phone.get("/orders", params={"lang": lang}).json()["orders"]
        answer = phone.order(client_key, params={"lang": lang})
        assert answer.status_code == 200
        for shown in (order, answer.json()):
            (line,) = shown["lines"]
            assert (line["name"], line["variant"], line["options"][0]["name"]) == (dish, size, option)
            assert "names" not in line and "variant_names" not in line
            assert (shown["ticket_no"], line["quantity"], line["line_total_minor"]) == (7, 2, 3600)
