"""The diner's page in real headless Chromium at a phone's size, against a real server process."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from appliance.cli import ensure_demo_store
from appliance.db.connection import open_connection
from appliance.db.orders import change_status
from appliance.domain.orders import Actor, OrderStatus
from tests.appliance.test_crash import ServerProcess
from tests.appliance.web.conftest import token_for
from tests.conftest import make_settings

playwright_api = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("TABLEBOX_TEST_ARTIFACTS", Path(__file__).resolve().parents[3] / "test-artifacts"))
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


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


def phone(browser, locale):
    context = browser.new_context(viewport={"width": 390, "height": 844}, locale=locale, is_mobile=True, has_touch=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    return context, page, errors


def shot(page, name):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


TEXT = {
    "zh-CN": {"noodles": "担担面", "mild": "微辣", "egg": "加蛋", "beef": "红烧牛肉面", "accepted": "已接单", "cart": "购物车"},
    "en-US": {"noodles": "Dan dan noodles", "mild": "Mild", "egg": "Add fried egg", "beef": "Braised beef noodle soup",
              "accepted": "Accepted", "cart": "Cart"},
}


@pytest.mark.parametrize("locale", ["zh-CN", "en-US"])
def test_the_whole_flow(browser, shop, locale):
    settings, server, conn = shop
    words = TEXT[locale]
    context, page, errors = phone(browser, locale)
    page.goto(f"{server.url}/t/{token_for(settings, 'A1')}")
    page.locator(".item", has_text=words["noodles"]).first.click()
    page.locator("#dish label.choice", has_text=words["mild"]).click()
    page.locator("#dish label.choice", has_text=words["egg"]).click()
    page.locator("#dish .qty button[aria-label='+1']").click()
    page.locator("#dish button.primary").click()
    page.locator(".item", has_text=words["beef"]).first.click()
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
    with conn:
        change_status(conn, order_id, OrderStatus.ACCEPTED, Actor.STAFF)
    page.locator(".order .status", has_text=words["accepted"]).wait_for(timeout=5000)
    page.locator("#orders").scroll_into_view_if_needed()
    shot(page, f"status-{locale}")
    assert errors == []
    context.close()


def test_a_double_tap_makes_one_order(browser, shop):
    settings, server, conn = shop
    context, page, errors = phone(browser, "en-US")
    page.goto(f"{server.url}/t/{token_for(settings, 'A2')}")
    page.locator(".item", has_text="Crystal shrimp").first.click()
    page.locator("#dish button.primary").click()
    page.locator("#open-cart").click()
    page.locator("#submit").dblclick()
    page.wait_for_selector(".order")
    page.wait_for_timeout(300)
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    context.close()


def test_sold_out_while_in_the_cart(browser, shop):
    settings, server, conn = shop
    context, page, errors = phone(browser, "en-US")
    page.goto(f"{server.url}/t/{token_for(settings, 'A3')}")
    page.locator(".item", has_text="Crystal shrimp").first.click()
    page.locator("#dish button.primary").click()
    with conn:
        conn.execute("UPDATE items SET sold_out = 1 WHERE key = 'har_gow'")
    page.locator("#open-cart").click()
    page.locator("#submit").click()
    page.locator("#notice", has_text="sold out").wait_for(timeout=5000)
    assert page.locator("#cart .line.bad").count() == 1
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
    context.close()
