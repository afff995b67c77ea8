"""A phone off the store Wi-Fi scans the table's sticker and orders in real headless Chromium through the relay:
real processes on 127.0.0.1 (relay, the box's web server, sync worker and print worker on a virtual printer).

The sticker's URL is the box's own (`public_base_url` = the store's address on the relay), the page is the box's
page, and it must never say "placed" before the box has accepted the order."""

from __future__ import annotations

import signal

import httpx
import pytest

from appliance.db.connection import write_transaction
from appliance.db.menu import set_image
from appliance.db.printing import table_stickers
from appliance.db.tables import rekey_table
from appliance.domain.orders import OrderStatus
from appliance.store import read_secret
from sync.relay.storage import open_storage
from tests.appliance.web.test_diner_page_browser import browser, phone  # noqa: F401 (the fixture)
from tests.appliance.web.test_page_delivery import first_view
from tests.relay.test_images import photo
from tests.relay.test_relay_end_to_end import Box, Phone, Relay, menu_on_relay, stack, wait_for  # noqa: F401

pytestmark = pytest.mark.slow

WAITING = "waiting for the restaurant to confirm"


@pytest.fixture
def database_url(tmp_path):
    """SQLite only here: the relay's behaviour on both storages is the API suite's and the end-to-end suite's."""
    return f"sqlite:///{tmp_path / 'relay.db'}"


def add_to_cart(page, dish: str) -> None:
    page.locator(".item", has_text=dish).first.locator(".open").click()
    page.locator("#dish button.primary").click()


def sticker_url(box: Box, relay: Relay, table: str) -> str:
    base = f"{relay.url}/s/{relay.store_id}"  # what `tablebox relay enroll` tells the technician to set
    (sticker,) = table_stickers(box.db, read_secret(box.settings.secret_path), base, [table])
    return sticker.url


def test_a_phone_off_the_wifi_orders_from_the_sticker_through_the_relay(stack, database_url, browser):  # noqa: F811
    relay = Relay(stack, database_url).start()
    box = Box(stack, relay)
    name, jpeg = photo(box.settings.data_dir, 1)  # `tablebox photo har_gow FILE`: the photo lives on the box
    with write_transaction(box.db):
        set_image(box.db, "har_gow", name)
    box.start()
    url = sticker_url(box, relay, "A1")
    assert url == f"{relay.url}/s/{relay.store_id}/t/{box.token}"
    menu_on_relay(box, Phone(relay, box.token))

    context, page, errors = phone(browser, "en-US")
    stack.cleanups.append(context.close)
    page.goto(url)
    page.locator(".item", has_text="Crystal shrimp").first.wait_for()
    # the relay sends the page as the box does: one brotli answer carrying the store, the table and the menu
    view = first_view(page)
    assert view["before"] == [] and (view["status"], view["encoding"]) == (200, "br")
    assert view["encoded"] * 3 < view["decoded"]
    assert page.locator("#store").inner_text() == "小笼天下 Dumpling House"
    assert page.locator("#table").inner_text() == "Table A1"  # the table's name, from the box's push
    # the dish photo comes from the relay, which got it from the box's sync worker
    img = page.locator(".item", has_text="Crystal shrimp").first.locator("img")
    img.scroll_into_view_if_needed()  # a row's photo is asked for once the row is near the screen
    page.wait_for_function("(img) => img.hasAttribute('src')", arg=img.element_handle(), timeout=15_000)
    assert img.get_attribute("src") == f"/images/{name}?w=192"  # the list-size copy on the box ...
    page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=img.element_handle(), timeout=15_000)
    # ... which the relay has not: it ignores ?w= and sends the photo the box pushed
    assert httpx.get(f"{relay.url}/images/{name}", params={"w": "192"}, timeout=5).content == jpeg
    # Asking for the bill before ordering: the relay takes the call ("sent"), the box refuses it (nothing to pay
    # yet) and its reason reaches the page through the relay.
    page.locator("#bill").click()  # ("Sent to the restaurant" first: checked with the waiter call below, which stays)
    page.locator("#notice", has_text="nothing to pay at this table yet").wait_for(timeout=20_000)

    add_to_cart(page, "Crystal shrimp")
    page.locator("#open-cart").click()

    # The box stalls (its sync worker frozen mid-poll): the relay takes the order, the page waits for the box.
    box.syncd.proc.send_signal(signal.SIGSTOP)
    try:
        page.locator("#submit").click()
        page.locator("#notice", has_text=WAITING).wait_for(timeout=10_000)
        page.wait_for_timeout(4_000)  # the page asks again (same client_key) at least once meanwhile
        pending = page.evaluate(
            "Object.keys(localStorage).filter(k => k.endsWith('.pending')).map(k => JSON.parse(localStorage[k]))"
        )
        assert len(pending) == 1 and len(pending[0]["lines"]) == 1
        client_key = pending[0]["client_key"]
        assert box.orders(client_key) == [] and box.tickets() == 0
        assert page.locator(".order").count() == 0  # never "placed" before the box accepted it
        assert WAITING in page.locator("#notice").inner_text()
    finally:
        box.syncd.proc.send_signal(signal.SIGCONT)

    # The box wakes up: it takes the order once, prints it once, and the page shows it with the box's ticket number.
    page.locator(".order").wait_for(timeout=20_000)
    ((order_id, channel, status),) = box.orders(client_key)
    assert (channel, status) == ("relay", "submitted")
    ticket_no = box.db.execute("SELECT ticket_no FROM orders WHERE id = ?", (order_id,)).fetchone()[0]
    assert f"Order placed! Ticket {ticket_no}" in page.locator("#notice").inner_text()
    assert f"Ticket {ticket_no}" in page.locator(".order").inner_text()
    assert "Crystal shrimp" in page.locator(".order").inner_text()  # the line in the phone's language
    wait_for(lambda: box.tickets() == 1, "the kitchen ticket")
    assert page.evaluate("Object.keys(localStorage).filter(k => k.endsWith('.pending')).length") == 0

    # The kitchen moves it on: the status reaches the page through the relay's event stream.
    box.advance(order_id, OrderStatus.ACCEPTED)
    page.locator(".order .status", has_text="Accepted").wait_for(timeout=15_000)
    box.advance(order_id, OrderStatus.PREPARING)
    page.locator(".order .status", has_text="Being prepared").wait_for(timeout=15_000)
    page.wait_for_timeout(500)
    assert box.tickets() == 1 and len(box.orders(client_key)) == 1

    # Calling the waiter through the relay: the page says it was sent (not that someone is coming) and the
    # box's console gets the call.
    page.locator("#waiter").click()
    page.locator("#notice", has_text="Sent to the restaurant").wait_for(timeout=10_000)
    wait_for(
        lambda: (
            box.db.execute(
                "SELECT count(*) FROM service_requests r JOIN tables t ON t.id = r.table_id"
                " WHERE t.name = 'A1' AND r.kind = 'waiter'"
            ).fetchone()[0]
            == 1
        ),
        "the waiter call on the box",
    )
    assert errors == []


def test_offline_restaurant_and_old_stickers_are_told_on_the_relay_page(stack, database_url, browser):  # noqa: F811
    relay = Relay(stack, database_url).start(offline_after_seconds="5")
    box = Box(stack, relay).start()
    phone_api = Phone(relay, box.token)
    menu_on_relay(box, phone_api)

    # An old sticker: the table was re-keyed on the box; the relay hears it with the next menu push.
    old_url = sticker_url(box, relay, "A2")
    with write_transaction(box.db):
        rekey_table(box.db, box.db.execute("SELECT id FROM tables WHERE name = 'A2'").fetchone()[0])
    menu_on_relay(box, phone_api)
    refused = httpx.get(old_url, headers={"Accept-Language": "en"}, timeout=5)
    assert refused.status_code == 410 and "out of date" in refused.text
    assert httpx.get(sticker_url(box, relay, "A2"), timeout=5).status_code == 200

    # The box goes away: the page says so, and an order is not taken by the relay (nobody would see it) ...
    assert box.syncd.terminate(20) == 0
    wait_for(lambda: httpx.get(phone_api.base, timeout=5).json()["online"] is False, "the relay to mark it offline")
    context, page, errors = phone(browser, "en-US")
    stack.cleanups.append(context.close)
    page.goto(sticker_url(box, relay, "A1"))
    page.locator("#notice", has_text="join the store Wi-Fi").wait_for(timeout=10_000)
    add_to_cart(page, "Crystal shrimp")
    page.locator("#open-cart").click()
    page.locator("#submit").click()
    page.locator("#cart [role=alert]", has_text="The restaurant is offline").wait_for(timeout=10_000)
    page.wait_for_timeout(1_500)
    storage = open_storage(database_url, pool_size=1)
    try:
        assert storage.inbox_after(relay.store_id, 0) == []  # nothing queued for a box that is away
    finally:
        storage.close()
    assert box.db.execute("SELECT count(*) FROM orders").fetchone()[0] == 0

    # ... and when the box is back, the page's own retry (same client_key) gets it taken, once.
    box.start_syncd()
    page.locator(".order").wait_for(timeout=60_000)
    (count,) = box.db.execute("SELECT count(*) FROM orders WHERE channel = 'relay'").fetchone()
    assert count == 1
    wait_for(lambda: box.tickets() == 1, "the kitchen ticket")
    assert errors == []
