"""The diner's page in real headless Chromium at a phone's size, against a real server process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from appliance.db.connection import open_connection, write_transaction
from appliance.db.orders import change_status
from appliance.demo import ensure_demo_store
from appliance.domain.orders import Actor, OrderStatus
from tests.appliance.test_crash import ServerProcess
from tests.appliance.web.conftest import token_for
from tests.conftest import make_settings

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("TABLEBOX_TEST_ARTIFACTS", Path(__file__).resolve().parents[3] / "test-artifacts"))
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `./run test` installs it (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture
def shop(tmp_path):
    settings = make_settings(tmp_path / "data")
    ensure_demo_store(settings)
    server = ServerProcess(settings.data_dir, tmp_path / "server.log")
    conn = open_connection(settings.db_path)
    try:
        yield settings, server, conn
    finally:
        conn.close()
        server.stop()


def phone(browser, locale, **options):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale=locale, is_mobile=True, has_touch=True, **options
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return context, page, errors


def close(context):
    """Close a phone whose page.route handlers may still be at work: a handler fetching from the box when the
    context closes fails with "Response has been disposed", and Playwright raises that from the next call to the
    driver, which is the next test's (it failed a CI run so). Unrouting with ignoreErrors first keeps it here."""
    for page in context.pages:
        page.unroute_all(behavior="ignoreErrors")
    context.unroute_all(behavior="ignoreErrors")
    context.close()


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


TEXT = {
    "zh-CN": {
        "noodles": "担担面",
        "mild": "微辣",
        "egg": "加蛋",
        "beef": "红烧牛肉面",
        "accepted": "已接单",
        "cart": "购物车",
    },
    "en-US": {
        "noodles": "Dan dan noodles",
        "mild": "Mild",
        "egg": "Add fried egg",
        "beef": "Braised beef noodle soup",
        "accepted": "Accepted",
        "cart": "Cart",
    },
}


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_the_whole_flow(browser, shop, locale):
    settings, server, conn = shop
    words = TEXT[locale]
    context, page, errors = phone(browser, locale)
    page.goto(f"{server.url}/t/{token_for(settings, 'A1')}")
    page.locator(".item", has_text=words["noodles"]).first.locator(".open").click()
    page.locator("#dish label.choice", has_text=words["mild"]).click()
    page.locator("#dish label.choice", has_text=words["egg"]).click()
    page.locator("#dish .qty button[aria-label='+1']").click()
    page.locator("#dish button.primary").click()
    page.locator(".item", has_text=words["beef"]).first.locator(".open").click()
    page.locator("#dish label.choice").nth(1).click()  # the large bowl
    page.locator("#dish button.primary").click()
    shot(page, f"menu-{locale}")
    page.locator("#open-cart").click()
    assert "¥108.00" in page.locator("#cart .total").inner_text()  # (28 + 3) x 2 + 46
    shot(page, f"cart-{locale}")
    page.locator("#submit").click()
    page.wait_for_selector(".order")
    order_id, total = conn.execute("SELECT id, total_minor FROM orders").fetchone()
    assert total == 10800
    assert conn.execute("SELECT count(*) FROM order_lines WHERE order_id = ?", (order_id,)).fetchone()[0] == 2
    with write_transaction(conn):
        change_status(conn, order_id, OrderStatus.ACCEPTED, Actor.STAFF)
    page.locator(".order .status", has_text=words["accepted"]).wait_for(timeout=5000)
    page.locator("#orders").scroll_into_view_if_needed()
    shot(page, f"status-{locale}")
    assert errors == []
    context.close()


def test_a_double_tap_makes_one_order(browser, shop):
    settings, server, conn = shop
    context, page, _errors = phone(browser, "en-US")
    page.goto(f"{server.url}/t/{token_for(settings, 'A2')}")
    page.locator(".item", has_text="Crystal shrimp").first.locator(".open").click()
    page.locator("#dish button.primary").click()
    page.locator("#open-cart").click()
    page.locator("#submit").dblclick()
    page.wait_for_selector(".order")
    page.wait_for_timeout(300)
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    context.close()


def test_sold_out_while_in_the_cart(browser, shop):
    settings, server, conn = shop
    context, page, _errors = phone(browser, "en-US")
    page.goto(f"{server.url}/t/{token_for(settings, 'A3')}")
    page.locator(".item", has_text="Crystal shrimp").first.locator(".open").click()
    page.locator("#dish button.primary").click()
    with write_transaction(conn):
        conn.execute("UPDATE items SET sold_out = 1 WHERE key = 'har_gow'")
    page.locator("#open-cart").click()
    page.locator("#submit").click()
    page.locator("#cart .msg", has_text="sold out").wait_for(timeout=5000)
    assert page.locator("#cart .line.bad").count() == 1
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    context.close()


def add_har_gow(page):
    page.locator(".item", has_text="Crystal shrimp").first.locator(".open").click()
    page.locator("#dish button.primary").click()


def open_en(browser, server, settings, table="A1", **kw):
    context, page, errors = phone(browser, "en-US", **kw)
    page.goto(f"{server.url}/t/{token_for(settings, table)}")
    page.wait_for_selector('#menu[data-drawn="all"]', state="attached")  # every row (the first screen's come first)
    return context, page, errors


def test_a_dropped_response_is_retried_into_one_order(browser, shop):
    settings, server, conn = shop
    context, page, _errors = open_en(browser, server, settings)
    dropped = []

    def drop_first_answer(route):
        if route.request.method == "POST" and not dropped:
            route.fetch()  # the box takes the order ...
            dropped.append(True)
            route.abort()  # ... but the answer never reaches the phone
        else:
            route.continue_()

    page.route("**/orders*", drop_first_answer)
    add_har_gow(page)
    page.locator("#open-cart").click()
    page.locator("#submit").click()
    page.wait_for_selector(".order", timeout=10_000)
    assert dropped and conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    close(context)


def test_price_changed_shows_the_new_total_and_one_tap_orders(browser, shop):
    settings, server, conn = shop
    context, page, _errors = open_en(browser, server, settings)
    add_har_gow(page)
    with write_transaction(conn):
        conn.execute("UPDATE items SET price_minor = 3500 WHERE key = 'har_gow'")
    page.locator("#open-cart").click()
    page.locator("#submit").click()
    notice = page.locator("#cart .msg", has_text="Prices have changed")  # shown where the diner is looking
    notice.wait_for(timeout=5000)
    assert "¥35.00" in notice.inner_text()
    notice.locator("button").click()
    page.wait_for_selector(".order", timeout=5000)
    assert conn.execute("SELECT total_minor FROM orders").fetchall() == [(3500,)]
    context.close()


def test_an_outdated_sticker_says_ask_staff(browser, shop):
    settings, server, conn = shop
    old = token_for(settings, "A4")
    with write_transaction(conn):
        conn.execute("UPDATE tables SET token_version = token_version + 1 WHERE name = 'A4'")
    context, page, _errors = phone(browser, "zh-CN")
    response = page.goto(f"{server.url}/t/{old}")
    assert response.status == 410
    assert "已失效" in page.inner_text("body") and "服务员" in page.inner_text("body")
    context.close()


def test_box_gone_then_back_the_order_goes_through_once(browser, shop, tmp_path):
    settings, server, conn = shop
    context, page, _errors = open_en(browser, server, settings)
    add_har_gow(page)
    page.locator("#open-cart").click()
    server.stop()
    page.locator("#submit").click()
    page.locator("#cart .msg", has_text="retrying").wait_for(timeout=5000)
    assert "failed" not in page.locator("#cart .msg").inner_text().lower()
    back = ServerProcess(settings.data_dir, tmp_path / "again.log", port=server.port)
    try:
        page.wait_for_selector(".order", timeout=20_000)
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    finally:
        back.stop()
    context.close()


def test_cancelled_with_the_reason(browser, shop):
    settings, server, conn = shop
    context, page, _errors = open_en(browser, server, settings)
    add_har_gow(page)
    page.locator("#open-cart").click()
    page.locator("#submit").click()
    page.wait_for_selector(".order")
    order_id = conn.execute("SELECT id FROM orders").fetchone()[0]
    with write_transaction(conn):
        change_status(conn, order_id, OrderStatus.ACCEPTED, Actor.STAFF)
        change_status(conn, order_id, OrderStatus.CANCELLED, Actor.STAFF, "the steamer broke")
    page.locator(".order .reason", has_text="the steamer broke").wait_for(timeout=5000)
    assert page.locator(".order .status").inner_text() == "Cancelled"
    context.close()


def test_narrow_phone_big_targets_and_text_never_html(browser, shop):
    settings, server, conn = shop
    with write_transaction(conn):
        conn.execute(
            """UPDATE items SET names = '{"zh": "<img src=x onerror=window.pwned=1>", "en": "<b>bold</b>"}'"""
            " WHERE key = 'har_gow'"
        )
    context = browser.new_context(viewport={"width": 320, "height": 640}, locale="en-US")
    page = context.new_page()
    page.goto(f"{server.url}/t/{token_for(settings, 'A5')}")
    page.wait_for_selector('#menu[data-drawn="all"]', state="attached")
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 320
    assert page.locator(".item", has_text="<b>bold</b>").count() == 1
    assert page.evaluate("window.pwned") is None
    small = page.evaluate("""[...document.querySelectorAll('button, nav a, input')]
        .filter(e => e.offsetParent !== null)
        .map(e => [e.textContent || e.id, e.getBoundingClientRect().height])
        .filter(([, h]) => h < 44)""")
    assert small == []
    unlabelled = page.evaluate("""[...document.querySelectorAll('input, textarea')]
        .filter(e => !e.labels?.length && !e.getAttribute('aria-label')).map(e => e.outerHTML)""")
    assert unlabelled == []
    context.close()


def test_japanese_where_the_menu_has_it(browser, shop):
    settings, server, conn = shop
    with write_transaction(conn):
        conn.execute("""UPDATE settings SET value = '["zh","en","ja"]' WHERE key = 'languages'""")
        conn.execute("""UPDATE items SET names = json_set(names, '$.ja', 'エビ餃子') WHERE key = 'har_gow'""")
    context, page, _errors = phone(browser, "ja-JP")
    page.goto(f"{server.url}/t/{token_for(settings, 'A6')}")
    page.wait_for_selector(".item")
    assert page.locator(".item", has_text="エビ餃子").count() == 1
    assert page.locator("#open-cart").inner_text() == "カート"
    page.locator("#lang").click()  # cycles to the next language and remembers it
    page.locator(".item .name", has_text="水晶虾饺").wait_for(timeout=5000)
    page.reload()
    page.locator(".item .name", has_text="水晶虾饺").wait_for(timeout=5000)
    context.close()


def test_the_category_bar_follows_scrolling_and_search_filters(browser, shop):
    settings, server, _conn = shop
    context, page, errors = open_en(browser, server, settings)
    assert page.locator("nav a.on").inner_text() == "Cold dishes"
    page.evaluate("""() => {  // the rail sits beside the list: scroll Desserts to the top of the window
        const sec = [...document.querySelectorAll('main section')].find(s => s.querySelector('h2').textContent === 'Desserts');
        window.scrollTo(0, sec.getBoundingClientRect().top + window.scrollY);
    }""")
    page.locator("nav a.on", has_text="Desserts").wait_for(timeout=3000)
    page.fill("#search", "tofu")
    visible = page.locator(".item:not(.hidden) .txt").all_inner_texts()  # name and description
    assert "Mapo tofu" in "".join(visible) and all("tofu" in v.lower() for v in visible)
    assert page.locator(".item:not(.hidden)", has_text="Kung pao chicken").count() == 0
    assert errors == []
    context.close()


def test_table_not_open_and_too_many_requests_are_explained(browser, shop):
    settings, server, conn = shop
    with write_transaction(conn):
        conn.execute("UPDATE settings SET value = 'true' WHERE key = 'tables_need_staff_open'")
    context, page, _errors = open_en(browser, server, settings)
    add_har_gow(page)
    page.locator("#open-cart").click()
    page.locator("#submit").click()
    page.locator("#cart .msg", has_text="not open for orders yet").wait_for(timeout=5000)
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    context.close()


def test_too_many_requests_are_explained(browser, tmp_path):
    settings = make_settings(tmp_path / "data")
    ensure_demo_store(settings)
    server = ServerProcess(
        settings.data_dir, tmp_path / "server.log", env={"TABLEBOX_RATE_LIMIT_TABLE_PER_MINUTE": "1"}
    )
    try:
        context, page, _errors = open_en(browser, server, settings, table="A7")
        page.locator("#waiter").click()
        page.locator("#notice", has_text="waiter is on the way").wait_for(timeout=5000)
        page.locator("#bill").click()  # a second request within the minute
        page.locator("#notice", has_text="Too many requests").wait_for(timeout=5000)
        context.close()
    finally:
        server.stop()


def test_photos_are_lazy_and_phone_sized(browser, shop, tmp_path):
    from PIL import Image

    from appliance.cli import main

    settings, server, _conn = shop
    Image.new("RGB", (3000, 2000), (120, 160, 60)).save(tmp_path / "greens.jpg", quality=95)
    assert main(["photo", "--data-dir", str(settings.data_dir), "seasonal_greens", str(tmp_path / "greens.jpg")]) == 0
    context, page, _errors = open_en(browser, server, settings)
    img = page.locator(".item img")
    assert img.count() == 1 and img.get_attribute("loading") == "lazy"
    img.scroll_into_view_if_needed()
    page.wait_for_function(
        "document.querySelector('.item img').complete && document.querySelector('.item img').naturalWidth > 0"
    )
    assert page.evaluate("document.querySelector('.item img').naturalWidth") == 192  # the list-size copy (?w=192)
    context.close()


def test_the_cart_survives_a_reload_and_belongs_to_its_table(browser, shop):
    settings, server, _conn = shop
    context, page, _errors = open_en(browser, server, settings, table="A1")
    add_har_gow(page)
    add_har_gow(page)
    page.reload()
    page.wait_for_selector(".item")
    assert page.locator("#bar-sum").inner_text().startswith("2 items")
    page.goto(f"{server.url}/t/{token_for(settings, 'A2')}")
    page.wait_for_selector(".item")
    assert page.locator("#bar-sum").inner_text() == "Your cart is empty"
    context.close()


def test_a_reload_during_submission_makes_one_order(browser, shop):
    settings, server, conn = shop
    context, page, _errors = open_en(browser, server, settings, table="A3")
    taken = []

    def take_then_lose(route):
        if route.request.method == "POST" and not taken:
            route.fetch()  # the box stores the order; the phone reloads before it hears back
            taken.append(True)
            route.abort()
        else:
            route.continue_()

    page.route("**/orders*", take_then_lose)
    add_har_gow(page)
    page.locator("#open-cart").click()
    page.locator("#submit").click()
    while not taken:
        page.wait_for_timeout(20)
    page.reload()  # before the page's own retry timer fires
    page.wait_for_selector(".order", timeout=10_000)
    # The order list can arrive before the page's re-sent submission (same client key) is answered and the cart
    # cleared: wait for the cart to say so, then count the orders.
    page.wait_for_function("document.querySelector('#bar-sum').innerText === 'Your cart is empty'", timeout=10_000)
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    assert page.locator("#bar-sum").inner_text() == "Your cart is empty"
    close(context)
