"""An old sticker (its table was re-keyed, the sticker not replaced): the page it opens names the store and the table,
says what to do in the phone's language (with a switch), and calls a waiter to that table, marked for staff as coming
from an old sticker so they bring the new code; the call is rate-limited. In litestar's test client and in real
Chromium against a real server process."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from appliance.db.connection import write_transaction
from appliance.db.floor import floor, handle_calls
from appliance.db.store_settings import load_store_settings
from appliance.db.tables import rekey_table
from appliance.diner_page.refusal import OLD_STICKER_TEXTS
from tests.appliance.web.conftest import token_for
from tests.appliance.web.test_diner_page_a11y import axe_source, explain, violations
from tests.appliance.web.test_diner_page_browser import browser, phone, shop  # noqa: F401 (fixtures)

WAITER = b'{"kind":"waiter"}'
JSON = {"Content-Type": "application/json"}


def old_code(settings, db, name: str) -> str:
    old = token_for(settings, name)
    (table_id,) = db.execute("SELECT id FROM tables WHERE name = ?", (name,)).fetchone()
    with write_transaction(db):
        rekey_table(db, table_id)
    return old


def waiting_calls(db) -> list[tuple[str, str, str | None]]:
    """(table, kind, source) of every call waiting, as the console's tables screen reads them."""
    return [(t.name, c.kind, c.source) for t in floor(db) for c in t.calls]


def test_an_old_sticker_calls_a_waiter_marked_for_staff_and_limited(settings, client, db):
    old = old_code(settings, db, "A3")
    page = client.get(f"/t/{old}", headers={"Accept-Language": "en-US"})
    assert page.status_code == 410
    assert "This QR code is out of date" in page.text and "Table A3" in page.text
    assert load_store_settings(db).store_name in page.text  # 小笼天下 Dumpling House
    assert f"../api/v1/tables/{old}/old-sticker-call" in page.text

    # The page's button: the old code still names its table, so the waiter goes there.
    first = client.post(f"/api/v1/tables/{old}/old-sticker-call", content=WAITER, headers=JSON)
    assert first.status_code == 201 and first.json()["already_waiting"] is False
    assert waiting_calls(db) == [("A3", "waiter", "old_sticker")]
    again = client.post(f"/api/v1/tables/{old}/old-sticker-call", content=WAITER, headers=JSON)
    assert (again.status_code, again.json()["already_waiting"], again.json()["id"]) == (200, True, first.json()["id"])

    # The console shows staff where it came from.
    from tui.screens.tables import detail_text

    a3 = next(t for t in floor(db) if t.name == "A3")
    shown = detail_text(a3, datetime.now(UTC), load_store_settings(db)).plain
    assert "waiter called" in shown and "OLD STICKER: bring the new code" in shown

    # Once staff went over, a new call from the old sticker waits its turn (one a minute per table) ...
    with write_transaction(db):
        handle_calls(db, a3.id, "Manager")
    limited = client.post(f"/api/v1/tables/{old}/old-sticker-call", content=WAITER, headers=JSON)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["error"]["code"] == "rate_limited"
    assert waiting_calls(db) == []

    # ... while the table's new sticker calls as ever, unmarked.
    new = client.post(f"/api/v1/tables/{token_for(settings, 'A3')}/requests", content=WAITER, headers=JSON)
    assert new.status_code == 201
    assert waiting_calls(db) == [("A3", "waiter", None)]


def test_only_a_genuine_code_of_this_store_calls_and_only_a_waiter(settings, client, db):
    old = old_code(settings, db, "A3")
    bill = client.post(f"/api/v1/tables/{old}/old-sticker-call", content=b'{"kind":"bill"}', headers=JSON)
    assert bill.status_code == 422 and bill.json()["error"]["code"] == "invalid_body"
    forged = old[:-4] + ("aaaa" if not old.endswith("aaaa") else "bbbb")
    refused = client.post(f"/api/v1/tables/{forged}/old-sticker-call", content=WAITER, headers=JSON)
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forged_token"
    form = client.post(f"/api/v1/tables/{old}/old-sticker-call", content=b"kind=waiter")  # a cross-site form
    assert form.status_code == 415
    assert waiting_calls(db) == []
    # The table's current code may use the same button: an ordinary call.
    current = client.post(f"/api/v1/tables/{token_for(settings, 'A3')}/old-sticker-call", content=WAITER, headers=JSON)
    assert current.status_code == 201 and waiting_calls(db) == [("A3", "waiter", None)]


def test_a_removed_table_or_a_forged_code_gets_one_sentence_not_a_call_button(settings, client, db):
    code = token_for(settings, "A3")
    forged = client.get(
        f"/t/{code[:-4]}{'aaaa' if not code.endswith('aaaa') else 'bbbb'}", headers={"Accept-Language": "en"}
    )
    assert forged.status_code == 403 and "This QR code is not valid here." in forged.text
    with write_transaction(db):
        db.execute("UPDATE tables SET active = 0 WHERE name = 'A3'")
    gone = client.get(f"/t/{code}", headers={"Accept-Language": "en"})
    assert gone.status_code == 410 and "This table no longer takes orders" in gone.text
    assert all('id="call"' not in page.text and "old-sticker-call" not in page.text for page in (forged, gone))


@pytest.mark.parametrize(
    ("locale", "lang"), [("zh-CN", "zh"), ("en-US", "en"), ("ja-JP", "ja")], ids=["zh", "en", "ja"]
)
def test_the_old_sticker_page_in_chromium_calls_a_waiter_in_the_phones_language(browser, shop, locale, lang):  # noqa: F811
    settings, server, conn = shop
    old = old_code(settings, conn, "A4")
    context, page, errors = phone(browser, locale)
    try:
        response = page.goto(f"{server.url}/t/{old}")
        assert response is not None and response.status == 410
        texts = OLD_STICKER_TEXTS[lang]
        assert page.locator("html").get_attribute("lang") == lang
        assert page.locator("h1").inner_text() == texts["title"]
        assert page.locator(".store").inner_text() == load_store_settings(conn).store_name
        assert page.locator(".table").inner_text() == texts["table"].format(table="A4")
        button = page.get_by_role("button", name=texts["call"])
        box = button.bounding_box()
        assert box is not None and box["height"] >= 44 and box["width"] >= 300  # one thumb, the whole width
        found = violations(page, axe_source())  # axe-core, as the menu page's checks run it
        assert found == [], explain(found)

        button.click()
        page.get_by_role("status").filter(has_text=texts["sent"]).wait_for(timeout=10_000)
        assert button.is_disabled()  # called: no second call from impatient taps
        assert waiting_calls(conn) == [("A4", "waiter", "old_sticker")]

        # The switch: every text in the other language at once, remembered for this store's pages.
        other = "en" if lang != "en" else "zh"
        page.locator(f"nav a[data-lang={other}]").click()
        assert page.locator("html").get_attribute("lang") == other
        assert page.locator("h1").inner_text() == OLD_STICKER_TEXTS[other]["title"]
        assert page.get_by_role("status").inner_text() == OLD_STICKER_TEXTS[other]["sent"]
        assert page.locator(f"nav a[data-lang={other}]").get_attribute("aria-current") == "true"
        assert {c["name"]: c["value"] for c in context.cookies()}.get("tb_lang") == other
        assert page.url.endswith(f"?lang={other}")
        page.reload()
        assert page.locator("h1").inner_text() == OLD_STICKER_TEXTS[other]["title"]  # the reload keeps it
        found = violations(page, axe_source())
        assert found == [], explain(found)
        assert errors == []
    finally:
        context.close()


def test_a_second_phone_hears_the_waiter_is_already_called_and_a_rate_limited_call_says_wait(browser, shop):  # noqa: F811
    settings, server, conn = shop
    old = old_code(settings, conn, "A4")
    texts = OLD_STICKER_TEXTS["en"]
    pages = []
    try:
        for _ in range(2):
            context, page, errors = phone(browser, "en-US")
            pages.append((context, page, errors))
            page.goto(f"{server.url}/t/{old}")
        (_, first, _), (_, second, _) = pages
        first.get_by_role("button", name=texts["call"]).click()
        first.get_by_role("status").filter(has_text=texts["sent"]).wait_for(timeout=10_000)
        second.get_by_role("button", name=texts["call"]).click()
        second.get_by_role("status").filter(has_text=texts["already"]).wait_for(timeout=10_000)

        (a4,) = [t.id for t in floor(conn) if t.name == "A4"]
        with write_transaction(conn):
            handle_calls(conn, a4, "Waiter")
        second.reload()
        second.get_by_role("button", name=texts["call"]).click()
        second.get_by_role("status").filter(has_text=texts["wait"]).wait_for(timeout=10_000)
        assert second.get_by_role("button", name=texts["call"]).is_enabled()  # may try again later
        assert waiting_calls(conn) == []
        assert all(errors == [] for _, _, errors in pages)
    finally:
        for context, _, _ in pages:
            context.close()
