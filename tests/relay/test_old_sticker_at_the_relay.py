"""An old sticker opened through the relay (a phone off the store Wi-Fi, `public_base_url` on the relay): the relay
can tell the code is old from the tables the box pushed, so the page names the store and the table, says what to do
in the phone's language with a switch, and offers the waiter call: POST .../old-sticker-call beside the page, which
the relay puts into the store's inbox as a `request` marked `source: "old_sticker"` (one per table and minute); the
box's relay link takes it as a waiter call with source 'old_sticker', once, for a genuine old code only (the relay
checks the MAC of the last three voided codes from their pushed hashes; an older one's the box checks). SQLite and
PostgreSQL relay storage; the last tests run the real processes (relay, box web and syncd), one with Chromium."""

from __future__ import annotations

import json
import re
from urllib.parse import urljoin

import httpx
import pytest

from appliance.contract.relay import OLD_CODES_PUSHED, table_code_hash
from appliance.db.connection import write_transaction
from appliance.db.orders import MenuCache
from appliance.db.tables import rekey_table
from appliance.diner_page.refusal import OLD_STICKER_TEXTS
from appliance.store import read_secret
from sync.relay_link import menu_document
from tests.appliance.web.test_diner_page_browser import browser  # noqa: F401 (the fixture)
from tests.appliance.web.test_diner_page_browser import phone as chromium_phone
from tests.conftest import token_for
from tests.relay.test_box_link import applier, inbox_message, outbox, targets  # noqa: F401 (fixtures)
from tests.relay.test_codes_at_the_relay import BOX_STORE, code, forge, online, phone_at, push
from tests.relay.test_relay_end_to_end import Box, Phone, Relay, menu_on_relay, stack, wait_for  # noqa: F401

WAITER = {"kind": "waiter"}


def test_the_relay_names_the_store_and_table_of_an_old_sticker_and_offers_the_call(relay):
    box = online(relay)
    assert push(box, 2, a1_version=3).status_code == 200  # staff re-keyed A1: its sticker at version 2 is old
    old = code(1, 2)
    page_url = f"{relay.url}/s/{box.store_id}/t/{old}"
    for accept, lang in (("en-GB,en;q=0.9", "en"), ("ja-JP", "ja"), ("zh-CN", "zh")):
        page = httpx.get(page_url, headers={"Accept-Language": accept}, timeout=10)
        texts = OLD_STICKER_TEXTS[lang]
        assert page.status_code == 410 and page.headers["cache-control"] == "no-cache"
        assert f'<html lang="{lang}">' in page.text
        assert '<p class="store">Dumpling House</p>' in page.text
        assert texts["table"].format(table="A1") in page.text and texts["title"] in page.text
        assert texts["what"] in page.text and f'id="call">{texts["call"]}</button>' in page.text
        assert f'"call": "../api/v1/tables/{old}/old-sticker-call"' in page.text  # page-relative, as on the box
        assert all(f'data-lang="{other}"' in page.text for other in ("zh", "en", "ja"))  # the switch
    assert urljoin(page_url, f"../api/v1/tables/{old}/old-sticker-call") == (
        f"{relay.url}/s/{box.store_id}/api/v1/tables/{old}/old-sticker-call"
    )
    assert httpx.get(f"{relay.url}/s/{box.store_id}/t/{code(1, 3)}", timeout=10).status_code == 200  # the new one
    forged = httpx.get(f"{relay.url}/s/{box.store_id}/t/{forge(1, 3)}", headers={"Accept-Language": "en"}, timeout=10)
    assert forged.status_code == 403 and "old-sticker-call" not in forged.text  # no button for a refused code


def test_an_old_stickers_call_goes_into_the_inbox_marked_and_once_a_minute_per_table(relay):
    box = online(relay)
    assert push(box, 2, a1_version=3).status_code == 200
    first = relay.phone(box, code(1, 2)).post("/old-sticker-call", WAITER, headers={"Accept-Language": "ja"})
    assert first.status_code == 202, first.text
    answer = first.json()
    assert answer["status"] == "pending" and answer["kind"] == "waiter"
    assert re.fullmatch(r"request:[A-Za-z0-9_-]{22}", answer["client_key"])

    # another phone, another address, an even older sticker of the same table: the table's minute is used
    again = phone_at(relay, box, code(1, 1), "127.0.0.2").post("/old-sticker-call", WAITER)
    assert again.status_code == 429 and again.json()["error"]["details"] == {"scope": "table"}
    assert int(again.headers["retry-after"]) >= 1
    # another table's old sticker is its own minute; a current code makes an ordinary waiter call
    b2_current = relay.phone(box, code(2, 0)).post("/old-sticker-call", WAITER)
    assert b2_current.status_code == 202

    messages = relay.storage.inbox_after(box.store_id, 0)
    assert [(m.kind, m.idempotency_key, m.token) for m in messages] == [
        ("request", answer["client_key"], code(1, 2)),
        ("request", b2_current.json()["client_key"], code(2, 0)),
    ]
    assert json.loads(messages[0].body) == {"kind": "waiter", "lang": "ja", "source": "old_sticker"}
    assert json.loads(messages[1].body) == {"kind": "waiter", "lang": "zh"}  # no mark: the box checks it as current
    polled = box.poll().json()["messages"]
    assert [m["body"] for m in polled] == [json.loads(m.body) for m in messages]  # what the box reads


def test_what_the_relay_refuses_before_the_inbox(relay):
    box = online(relay)
    assert push(box, 2, a1_version=3).status_code == 200
    cases = {
        "bill": (code(1, 2), {"kind": "bill"}, 422, "invalid_body"),
        "extra field": (code(1, 2), {"kind": "waiter", "source": "x"}, 422, "invalid_body"),
        "forged current code": (forge(1, 3), WAITER, 403, "forged_token"),
        "a version never printed": (code(1, 4), WAITER, 403, "forged_token"),
        "removed table": (code(9, 0), WAITER, 410, "table_gone"),
        "another store's code": ("x" * 32, WAITER, 403, "other_store"),
        "not a code": ("1" * 32, WAITER, 403, "forged_token"),
    }
    for what, (token, body, status, error) in cases.items():
        answer = relay.phone(box, token).post("/old-sticker-call", body)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, error), what
    form = relay.phone(box, code(1, 2)).http.post(
        f"/s/{box.store_id}/api/v1/tables/{code(1, 2)}/old-sticker-call", data={"kind": "waiter"}
    )
    assert form.status_code == 415  # a cross-site form cannot make one
    assert relay.storage.inbox_after(box.store_id, 0) == []


def test_an_offline_box_gets_no_call_and_the_tables_minute_is_kept(relay, clock):
    box = online(relay)
    assert push(box, 2, a1_version=3).status_code == 200
    clock.advance(relay.settings.offline_after_seconds + 60)  # the box stopped polling
    phone = relay.phone(box, code(1, 2))
    offline = phone.post("/old-sticker-call", WAITER, headers={"Accept-Language": "en"})
    assert offline.status_code == 503 and offline.json()["error"]["code"] == "restaurant_offline"
    assert box.poll().status_code == 200  # back
    assert phone.post("/old-sticker-call", WAITER).status_code == 202


def test_a_forged_old_sticker_is_refused_at_the_relay_when_the_box_pushed_its_old_codes(relay):
    """A box of this version pushes the hashes of each table's last OLD_CODES_PUSHED voided codes: the relay tells
    a genuine old sticker from a made-up one, so a forged "old sticker" gets no button, no call, and uses up no
    table's minute. A code voided longer ago the relay cannot check: the box does (see the tests below)."""
    box = online(relay)
    a1 = {"id": 1, "name": "A1", "version": 5, "code_hash": table_code_hash(code(1, 5))}
    a1["old_code_hashes"] = [table_code_hash(code(1, v)) for v in (4, 3, 2)]
    pushed = box.request(
        "PUT",
        "/v1/box/menu",
        {
            "version": 2,
            "store": {"name": "Dumpling House", "currency": "CNY", "languages": ["en"], "open_now": True},
            "menus": {"en": {"version": 2, "lang": "en", "categories": []}},
            "token_store": BOX_STORE,
            "tables": [a1],
        },
    )
    assert pushed.status_code == 200, pushed.text
    page = f"{relay.url}/s/{box.store_id}/t/"
    for forged in (forge(1, 4), forge(1, 2)):
        shown = httpx.get(page + forged, headers={"Accept-Language": "en"}, timeout=10)
        assert shown.status_code == 403 and "old-sticker-call" not in shown.text
        refused = relay.phone(box, forged).post("/old-sticker-call", WAITER)
        assert (refused.status_code, refused.json()["error"]["code"]) == (403, "forged_token")
    assert httpx.get(page + code(1, 2), timeout=10).status_code == 410  # genuine: the old-sticker page
    assert relay.phone(box, code(1, 2)).post("/old-sticker-call", WAITER).status_code == 202
    # voided before the last three: the relay cannot tell genuine from made-up, it shows the old-sticker page
    assert httpx.get(page + forge(1, 1), timeout=10).status_code == 410
    assert [m.token for m in relay.storage.inbox_after(box.store_id, 0)] == [code(1, 2)]


# -- the box's relay link --------------------------------------------------------------------------------------------
def test_the_box_pushes_the_hashes_of_each_tables_last_voided_codes(settings, db):
    (start,) = db.execute("SELECT token_version FROM tables WHERE name = 'A2'").fetchone()
    old = [rekeyed(settings, db, "A2") for _ in range(4)]  # four codes voided
    snap = MenuCache().get(db)
    document = menu_document(snap, 12 * 60, read_secret(settings.secret_path))
    tables = {t.name: t for t in document.tables or []}
    assert tables["A2"].version == start + 4 and tables["A2"].code_hash == table_code_hash(token_for(settings, "A2"))
    assert tables["A2"].old_code_hashes == [table_code_hash(t) for t in reversed(old[1:])]  # the newest three
    a1 = tables["A1"]  # not re-keyed here: as many as its version has below it, at most three
    assert a1.old_code_hashes is not None and len(a1.old_code_hashes) == min(a1.version, OLD_CODES_PUSHED)


def waiting(db):
    return db.execute(
        "SELECT t.name, r.kind, r.source FROM service_requests r JOIN tables t ON t.id = r.table_id"
        " WHERE r.handled_at IS NULL ORDER BY r.id"
    ).fetchall()


def made_up_mac(token: str) -> str:
    """The same store, table and version, the last bits of the MAC changed (what a forger without the secret sends)."""
    return token[:-4] + ("aaaa" if token[-4:] != "aaaa" else "bbbb")


def rekeyed(settings, db, name):
    old = token_for(settings, name)
    with write_transaction(db):
        rekey_table(db, db.execute("SELECT id FROM tables WHERE name = ?", (name,)).fetchone()[0])
    return old


def test_the_box_takes_a_marked_call_with_a_genuine_old_code_once_and_nothing_else(applier, settings, db):  # noqa: F811
    old_a2, old_a3 = rekeyed(settings, db, "A2"), rekeyed(settings, db, "A3")
    marked = {"kind": "waiter", "lang": "en", "source": "old_sticker"}
    call = inbox_message(1, "request", old_a2, marked, key="request:a2")
    assert applier.apply(call) == "request"
    assert applier.apply(call) == "duplicate"  # delivered again: applied once
    assert waiting(db) == [("A2", "waiter", "old_sticker")]

    forged = made_up_mac(old_a3)
    refused = {
        "forged": inbox_message(2, "request", forged, marked, key="request:forged"),
        "unmarked": inbox_message(3, "request", old_a3, {"kind": "waiter", "lang": "en"}, key="request:plain"),
        "bill": inbox_message(4, "request", old_a3, {**marked, "kind": "bill"}, key="request:bill"),
    }
    for what, message in refused.items():
        assert applier.apply(message) == "request_refused", what
    codes = {
        json.loads(payload)["client_key"]: json.loads(payload)["error"]["code"]
        for _, kind, _, payload in outbox(db)
        if kind == "request.refused"
    }
    assert codes == {"request:forged": "forged_token", "request:plain": "table_rekeyed", "request:bill": "invalid_body"}
    current = inbox_message(5, "request", token_for(settings, "A3"), marked, key="request:current")
    assert applier.apply(current) == "request"  # the current code with the mark: an ordinary call
    assert waiting(db) == [("A2", "waiter", "old_sticker"), ("A3", "waiter", None)]


# -- end to end ------------------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_an_old_stickers_call_through_the_relay_reaches_the_box_once_and_a_forged_one_does_not(stack, database_url):  # noqa: F811
    relay = Relay(stack, database_url).start()
    box = Box(stack, relay).start()
    phone_api = Phone(relay, box.token)
    menu_on_relay(box, phone_api)
    old_a2, old_a3 = token_for(box.settings, "A2"), token_for(box.settings, "A3")
    for name, times in (("A2", 1), ("A3", 4)):  # A3's first code is then older than the voided codes pushed
        for _ in range(times):
            with write_transaction(box.db):
                rekey_table(box.db, box.db.execute("SELECT id FROM tables WHERE name = ?", (name,)).fetchone()[0])
    menu_on_relay(box, phone_api)  # the relay holds the re-keyed tables

    page_url = f"{relay.url}/s/{relay.store_id}/t/{old_a2}"
    page = httpx.get(page_url, headers={"Accept-Language": "en"}, timeout=10)
    assert page.status_code == 410 and "Table A2" in page.text
    found = re.search(r'"call": "([^"]+)"', page.text)
    assert found is not None
    call_url = urljoin(page_url, found.group(1))  # as the page's script resolves it
    called = httpx.post(call_url, json=WAITER, headers={"Accept-Language": "en"}, timeout=10)
    assert called.status_code == 202, called.text
    calls = "SELECT t.name, r.kind, r.source FROM service_requests r JOIN tables t ON t.id = r.table_id"
    wait_for(lambda: box.db.execute(calls).fetchall(), "the call on the box")
    assert box.db.execute(calls).fetchall() == [("A2", "waiter", "old_sticker")]
    assert httpx.post(call_url, json=WAITER, timeout=10).status_code == 429  # the table's minute at the relay

    def old_sticker_call(token: str) -> httpx.Response:
        return httpx.post(
            f"{relay.url}/s/{relay.store_id}/api/v1/tables/{token}/old-sticker-call", json=WAITER, timeout=10
        )

    # A2's old code with a made-up MAC: the relay has its hash from the box, and refuses it
    assert old_sticker_call(made_up_mac(old_a2)).status_code == 403
    # A3's first code voided four re-keyings ago: the relay cannot tell; the box can, and refuses it
    sent = old_sticker_call(made_up_mac(old_a3))
    assert sent.status_code == 202, sent.text
    key = sent.json()["client_key"]
    refusal = wait_for(lambda: relay.events(key), "the box's refusal at the relay")
    assert [(e.type, json.loads(e.body)["error"]["code"]) for e in refusal] == [("refused", "forged_token")]
    assert relay.store().next_seq == 3  # two calls went into the inbox, both applied
    assert box.db.execute(calls).fetchall() == [("A2", "waiter", "old_sticker")]  # still the one call


@pytest.mark.slow
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the storages are the tests' above
def test_the_button_on_the_relays_old_sticker_page_calls_the_waiter_in_chromium(stack, database_url, browser):  # noqa: F811
    relay = Relay(stack, database_url).start()
    box = Box(stack, relay).start()
    phone_api = Phone(relay, box.token)
    menu_on_relay(box, phone_api)
    old = token_for(box.settings, "A2")
    with write_transaction(box.db):
        rekey_table(box.db, box.db.execute("SELECT id FROM tables WHERE name = 'A2'").fetchone()[0])
    menu_on_relay(box, phone_api)

    texts = OLD_STICKER_TEXTS["ja"]
    context, page, errors = chromium_phone(browser, "ja-JP")
    stack.cleanups.append(context.close)
    page.goto(f"{relay.url}/s/{relay.store_id}/t/{old}")
    page.locator("#call", has_text=texts["call"]).click()
    page.locator("#status", has_text=texts["sent"]).wait_for(timeout=10_000)
    assert page.locator("#call").is_disabled()  # called: nothing more to tap
    calls = "SELECT t.name, r.kind, r.source FROM service_requests r JOIN tables t ON t.id = r.table_id"
    wait_for(lambda: box.db.execute(calls).fetchall(), "the call on the box")
    assert box.db.execute(calls).fetchall() == [("A2", "waiter", "old_sticker")]

    other, second, more_errors = chromium_phone(browser, "en-US")  # another diner at the table, a moment later
    stack.cleanups.append(other.close)
    second.goto(f"{relay.url}/s/{relay.store_id}/t/{old}")
    second.locator("#call").click()
    second.locator("#status", has_text=OLD_STICKER_TEXTS["en"]["wait"]).wait_for(timeout=10_000)
    assert not second.locator("#call").is_disabled()  # trying again later makes sense
    assert box.db.execute(calls).fetchall() == [("A2", "waiter", "old_sticker")]
    assert errors == [] and more_errors == []
