"""What a phone's browser gets from the relay besides the API, on SQLite and on PostgreSQL: the diner page and its
files under the store's address, the table named from the box's push, codes the relay can already tell are wrong
refused early, and order views in the phone's language."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urljoin

from appliance.diner_page import SHELL, STATIC_DIR
from appliance.domain.tokens import TableRef, sign_table_token

BOX_STORE = "0a0b0c0d"  # the store id inside the box's table codes (not the relay's store id)
SECRET = b"the box's own secret, which the relay never sees"


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


def test_the_diner_page_and_its_files_are_served_under_the_stores_address(relay):
    box = relay.enroll()
    push_tables(box)
    http = relay.phone(box).http
    page_path = f"/s/{box.store_id}/t/{code(1, 2)}"
    page = http.get(page_path)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.content == SHELL  # the box's own page, byte for byte
    assets = [a for a in re.findall(r'(?:src|href)="([^"]+)"', page.text) if a != "data:,"]
    assert len(assets) == 2
    for asset in assets:
        path = urljoin(page_path, asset)
        assert path.startswith(f"/s/{box.store_id}/static/")
        answer = http.get(path)
        assert answer.status_code == 200 and answer.content == (STATIC_DIR / path.rsplit("/", 1)[1]).read_bytes()
        assert answer.headers["content-type"].split(";")[0] in ("text/css", "text/javascript")
        again = http.get(path, headers={"If-None-Match": answer.headers["etag"]})
        assert again.status_code == 304 and again.content == b""
    assert http.get(f"/s/{box.store_id}/static/diner.html").status_code == 404
    assert http.get(f"/s/{box.store_id}/static/..%2Fapp.py").status_code == 404

    old = http.get(f"/s/{box.store_id}/t/{code(1, 1)}", headers={"Accept-Language": "zh-CN"})
    assert old.status_code == 410 and old.headers["content-type"].startswith("text/html")
    assert "二维码" in old.text and "<script" not in old.text
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
