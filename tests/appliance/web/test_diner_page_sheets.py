"""The diner page's sheets in real headless Chromium at a phone's size (390 x 844), in Chinese and English: the dish
sheet, the cart, the notices and the order cards. Screenshots go to test-artifacts/sheets-*.png."""

from __future__ import annotations

import json

import httpx
import pytest

from appliance.contract.relay import for_phone, order_view
from appliance.db.connection import write_transaction
from appliance.db.orders import order_view as stored_order
from appliance.web.localize import localize_order
from tests.appliance.web.conftest import item_id, key, option_id, token_for
from tests.appliance.web.test_diner_page_browser import browser, phone, shop, shot  # noqa: F401 (fixtures)

WIDTH, HEIGHT = 390, 844
LOCALES = ["zh-CN", "en-US"]
WORDS = {
    "zh-CN": {
        "noodles": "担担面",
        "har_gow": "水晶虾饺",
        "softer": "软一点",
        "firmer": "硬一点",
        "none": "不选",
        "mild": "微辣",
        "egg": "加蛋",
        "waiter": "已通知服务员",
    },
    "en-US": {
        "noodles": "Dan dan noodles",
        "har_gow": "Crystal shrimp dumplings",
        "softer": "Softer",
        "firmer": "Firmer",
        "none": "None",
        "mild": "Mild",
        "egg": "Add fried egg",
        "waiter": "A waiter is on the way",
    },
}

# Is the element's centre the element itself (or inside it), i.e. not covered by anything?
HIT = """(e) => { const r = e.getBoundingClientRect();
    const h = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2); return e === h || e.contains(h); }"""
# The right edge of the rightmost piece of text inside an element (text that overflows its box counts).
TEXT_RIGHT = """(root) => { let max = 0; const r = document.createRange();
    const w = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (w.nextNode()) { r.selectNodeContents(w.currentNode); for (const b of r.getClientRects()) max = Math.max(max, b.right); }
    return max; }"""
# Controls inside a sheet smaller than a finger (44 x 44 px), by their text or label.
SMALL = """(root) => [...root.querySelectorAll('button, label.choice, textarea')].filter((e) => e.getClientRects().length)
    .filter((e) => { const r = e.getBoundingClientRect(); return r.height < 44 || r.width < 44; })
    .map((e) => e.getAttribute('aria-label') || e.textContent)"""
# The page's own controls (not the bar's, not a sheet's) that are shown, each tagged with its index.
CONTROLS = """() => [...document.querySelectorAll('button, a[href], input, textarea, select')]
    .filter((e) => !e.closest('#bar, dialog') && e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden')
    .map((e, i) => { e.dataset.probe = i; const r = e.getBoundingClientRect(); return [i, r.top, r.bottom]; })"""


def open_table(browser, server, settings, locale, table="A1"):  # noqa: F811 (the fixture, passed on)
    context, page, errors = phone(browser, locale)
    page.goto(f"{server.url}/t/{token_for(settings, table)}")
    page.wait_for_selector(".item")
    return context, page, errors


def open_dish(page, name):
    page.get_by_text(name, exact=True).first.click()
    page.locator("#dish[open]").wait_for()


def add_dish(page, name, *choices, note=None):
    open_dish(page, name)
    for choice in choices:
        page.locator("#dish label.choice", has_text=choice).first.click()
    if note is not None:
        page.locator("#dish-note").fill(note)
    page.locator("#dish button.primary").click()
    page.locator("#dish:not([open])").wait_for(state="attached")


def submit_cart(page):
    page.locator("#open-cart").click()
    page.locator("#submit").click()
    page.wait_for_selector(".order")


def link_four_groups(conn):
    """担担面 gets a fourth option group (dipping sauces) beside spice, noodle firmness and add-ons."""
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO item_option_groups (item_id, group_id, sort) SELECT i.id, g.id, 9 FROM items i, option_groups g"
            " WHERE i.key = 'dan_dan_noodles' AND g.key = 'dips'"
        )


def bar_top(page):
    return page.evaluate("document.querySelector('#bar').getBoundingClientRect().top")


@pytest.mark.parametrize("locale", LOCALES)
def test_the_dish_sheet_keeps_its_add_button_in_reach_with_four_option_groups(browser, shop, locale):  # noqa: F811
    settings, server, conn = shop
    link_four_groups(conn)
    words = WORDS[locale]
    context, page, errors = open_table(browser, server, settings, locale)
    open_dish(page, words["noodles"])
    assert page.locator("#dish fieldset").count() == 4
    add = page.locator("#dish button.primary")
    box = add.bounding_box()
    assert box is not None and box["y"] >= 0 and box["y"] + box["height"] <= HEIGHT  # on screen without scrolling
    assert add.evaluate(HIT)
    assert page.locator("#dish").evaluate(SMALL) == []
    shot(page, f"sheets-dish-{locale}")
    page.locator("#dish fieldset").last.locator("label.choice").last.scroll_into_view_if_needed()
    assert add.bounding_box() == box and add.evaluate(HIT)  # the choices scroll, the button stays
    page.locator("#dish .qty button[aria-label='+1']").click()
    assert "¥56.00" in add.inner_text()  # (28 + 0) x 2, the price follows the quantity
    add.click()
    assert page.locator("#bar-sum").inner_text().startswith("2")
    assert errors == []
    context.close()


@pytest.mark.parametrize("locale", LOCALES)
def test_an_optional_single_choice_can_be_taken_back(browser, shop, locale):  # noqa: F811
    settings, server, conn = shop
    words = WORDS[locale]
    context, page, errors = open_table(browser, server, settings, locale)
    open_dish(page, words["noodles"])
    softer = page.locator("#dish label.choice", has_text=words["softer"]).locator("input")
    none = page.locator("#dish fieldset", has_text=words["softer"]).locator("label.choice", has_text=words["none"])
    assert none.locator("input").is_checked()  # nothing chosen yet, and it says so
    page.locator("#dish label.choice", has_text=words["softer"]).click()
    assert softer.is_checked()
    none.click(timeout=5000)  # changed my mind: no preference after all
    assert not softer.is_checked() and none.locator("input").is_checked()
    page.locator("#dish button.primary").click()
    add_dish(page, words["noodles"], words["firmer"])
    submit_cart(page)
    lines = conn.execute("SELECT options FROM order_lines ORDER BY line_no").fetchall()
    chosen = [{o["id"] for o in json.loads(row[0])} for row in lines]
    texture = {option_id(conn, "noodle_texture", k) for k in ("soft", "regular", "firm")}
    assert chosen[0] & texture == set()
    assert chosen[1] & texture == {option_id(conn, "noodle_texture", "firm")}
    assert errors == []
    context.close()


@pytest.mark.parametrize("locale", LOCALES)
def test_the_cart_has_minus_quantity_plus_per_line_and_a_prominent_total(browser, shop, locale):  # noqa: F811
    settings, server, _conn = shop
    words = WORDS[locale]
    context, page, errors = open_table(browser, server, settings, locale)
    add_dish(page, words["har_gow"])
    add_dish(page, words["noodles"], words["mild"], words["egg"])
    page.locator("#open-cart").click()
    line = page.locator("#cart .line", has_text=words["har_gow"])
    minus, plus = line.locator("button", has_text="−"), line.locator("button", has_text="+")
    quantity = line.locator("output")
    assert quantity.inner_text() == "1"
    left = [b.bounding_box()["x"] for b in (minus, quantity, plus)]
    assert left == sorted(left)  # − quantity +
    plus.click()
    assert quantity.inner_text() == "2" and "¥64.00" in line.inner_text()
    total = page.locator("#cart .total")
    assert "¥95.00" in total.inner_text()  # 2 x 32 + (28 + 3)
    sizes = page.evaluate("""[document.querySelector('#cart .total strong'), document.querySelector('#cart .line .name')]
        .map((e) => parseFloat(getComputedStyle(e).fontSize))""")
    assert sizes[0] >= 1.3 * sizes[1]  # the total stands out
    assert total.evaluate(HIT) and page.locator("#submit").evaluate(HIT)
    assert page.locator("#cart").evaluate(SMALL) == []
    shot(page, f"sheets-cart-{locale}")
    minus.click()
    assert quantity.inner_text() == "1" and "¥63.00" in total.inner_text()
    minus.click()  # − on the last one takes the line out
    assert page.locator("#cart .line").count() == 1 and "¥31.00" in total.inner_text()
    assert page.locator("#bar-sum").inner_text().startswith("1")
    assert errors == []
    context.close()


def test_a_long_cart_keeps_its_total_and_order_button_in_reach(browser, shop):  # noqa: F811
    settings, server, conn = shop
    token = token_for(settings, "A2")
    keys = ("har_gow", "scallion_pancake", "mapo_tofu", "kung_pao_chicken", "cola", "watermelon_juice", "craft_ipa")
    lines = []
    for k in keys:
        row = conn.execute("SELECT id FROM variants WHERE item_id = ? ORDER BY sort LIMIT 1", (item_id(conn, k),))
        variant = row.fetchone()
        lines.append(
            {
                "item_id": item_id(conn, k),
                "variant_id": variant[0] if variant else None,
                "option_ids": [],
                "quantity": 1,
                "note": "",
            }
        )
    context, page, errors = phone(browser, "en-US")
    page.goto(f"{server.url}/t/{token}")
    page.evaluate("([k, v]) => localStorage.setItem(k, v)", [f"tb.{token}.cart", json.dumps(lines)])
    page.reload()
    page.wait_for_selector(".item")
    page.locator("#open-cart").click()
    assert page.locator("#cart .line").count() == len(keys)
    assert page.locator("#cart .total").evaluate(HIT) and page.locator("#submit").evaluate(HIT)
    assert page.evaluate("document.querySelector('#cart').getBoundingClientRect().bottom") <= HEIGHT
    assert errors == []
    context.close()


@pytest.mark.parametrize("locale", LOCALES)
def test_a_long_unbroken_note_cannot_widen_the_cart_or_the_order_card(browser, shop, locale):  # noqa: F811
    settings, server, _conn = shop
    words = WORDS[locale]
    note = "https://example.com/" + "x" * 120
    context, page, errors = open_table(browser, server, settings, locale)
    add_dish(page, words["har_gow"], note=note)
    page.locator("#open-cart").click()
    cart = page.locator("#cart")
    assert cart.locator(".line", has_text="example.com").count() == 1
    assert cart.bounding_box()["width"] <= WIDTH
    assert cart.evaluate(TEXT_RIGHT) <= WIDTH
    shot(page, f"sheets-cart-note-{locale}")
    page.locator("#submit").click()
    page.wait_for_selector(".order")
    page.locator("#cart").evaluate("(d) => d.open && d.close()")
    card = page.locator(".order").first
    page.evaluate("document.querySelector('.order').scrollIntoView()")
    assert card.evaluate(TEXT_RIGHT) <= WIDTH and "example.com" in card.inner_text()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= WIDTH
    assert errors == []
    context.close()


def test_the_note_counts_an_emoji_as_one_character_as_the_box_does(browser, shop):  # noqa: F811
    settings, server, conn = shop
    context, page, errors = open_table(browser, server, settings, "en-US")
    note = "x" * 130 + "😀" * 10  # 140 characters; 150 UTF-16 units
    open_dish(page, WORDS["en-US"]["har_gow"])
    page.locator("#dish-note").fill("x" * 130)
    page.locator("#dish-note").press("End")
    page.keyboard.insert_text("😀" * 10)
    assert page.locator("#dish-note").input_value() == note
    assert page.locator("#dish .note-count").inner_text() == "140/140"
    page.keyboard.insert_text("y")  # one too many: said, and the dish cannot go in like that
    assert "141/140" in page.locator("#dish .note-count").inner_text()
    assert page.locator("#dish button.primary").is_disabled()
    page.locator("#dish-note").press("Backspace")
    page.locator("#dish button.primary").click()
    submit_cart(page)
    assert conn.execute("SELECT note FROM order_lines").fetchall() == [(note,)]
    # The box's own limit is the same: 140 code points pass, 141 are refused.
    api = f"{server.url}/api/v1/tables/{token_for(settings, 'A1')}/orders?lang=en"
    line = {"item_id": item_id(conn, "har_gow"), "quantity": 1}
    ok = httpx.post(api, json={"client_key": key(), "lines": [{**line, "note": "😀" * 140}]})
    too_long = httpx.post(api, json={"client_key": key(), "lines": [{**line, "note": "😀" * 141}]})
    assert ok.status_code == 201 and too_long.status_code == 422
    assert too_long.json()["error"]["code"] == "text_too_long"
    assert errors == []
    context.close()


@pytest.mark.parametrize("locale", LOCALES)
def test_a_notice_goes_away_by_itself_and_never_covers_a_control(browser, shop, locale):  # noqa: F811
    settings, server, _conn = shop
    context, page, errors = phone(browser, locale)
    page.clock.install()
    page.goto(f"{server.url}/t/{token_for(settings, 'A3')}")
    page.wait_for_selector(".item")
    page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight)")
    waiter = page.locator("#waiter")
    waiter.scroll_into_view_if_needed()
    top = bar_top(page)
    shown = [i for i, t, b in page.evaluate(CONTROLS) if t >= 0 and b <= top]  # whole, above the bar
    waiter.click()
    notice = page.locator("#notice", has_text=WORDS[locale]["waiter"])
    notice.wait_for(timeout=5000)
    shot(page, f"sheets-notice-{locale}")
    # The notice is part of the bar, and the bar covers none of the controls the diner could see whole before.
    inside = page.evaluate("""() => { const n = document.querySelector('#notice').getBoundingClientRect(),
        b = document.querySelector('#bar').getBoundingClientRect();
        return n.top >= b.top && n.bottom <= b.bottom && n.left >= b.left && n.right <= b.right; }""")
    assert inside
    top = page.evaluate(
        "Math.min(...['#bar', '#notice'].map((s) => document.querySelector(s).getBoundingClientRect().top))"
    )
    covered = page.evaluate(
        """([ids, top]) => ids.map((i) => document.querySelector(`[data-probe="${i}"]`))
            .filter((e) => e.getBoundingClientRect().bottom > top).map((e) => e.textContent || e.id)""",
        [shown, top],
    )
    assert covered == []
    assert waiter.evaluate(HIT)
    # It goes away by itself, and nothing moves when it does (no shift under a finger).
    before = page.evaluate("[scrollY, document.querySelector('#waiter').getBoundingClientRect().top]")
    page.clock.run_for(10_000)
    notice.wait_for(state="hidden", timeout=5000)
    assert page.evaluate("[scrollY, document.querySelector('#waiter').getBoundingClientRect().top]") == before
    # At the end of the page, the last control is above the bar.
    page.evaluate("window.scrollTo(0, document.scrollingElement.scrollHeight)")
    lowest = max(b for _i, _t, b in page.evaluate(CONTROLS))
    assert lowest <= bar_top(page)
    assert errors == []
    context.close()


def test_an_error_that_needs_the_diner_stays_until_acted_on(browser, shop):  # noqa: F811
    settings, server, conn = shop
    context, page, errors = phone(browser, "en-US")
    page.clock.install()
    page.goto(f"{server.url}/t/{token_for(settings, 'A4')}")
    page.wait_for_selector(".item")
    add_dish(page, WORDS["en-US"]["har_gow"])
    add_dish(page, WORDS["en-US"]["noodles"])
    with write_transaction(conn):
        conn.execute("UPDATE items SET sold_out = 1 WHERE key = 'har_gow'")
    page.locator("#open-cart").click()
    page.locator("#submit").click()
    refusal = page.locator("#cart .msg", has_text="sold out")
    refusal.wait_for(timeout=5000)
    page.clock.run_for(30_000)
    assert refusal.is_visible() and page.locator("#cart .line.bad").count() == 1
    page.locator("#cart .line.bad button", has_text="−").click()  # the diner takes the sold-out dish out
    refusal.wait_for(state="detached", timeout=5000)
    page.locator("#submit").click()
    page.wait_for_selector(".order")
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
    assert errors == []
    context.close()


@pytest.mark.parametrize("locale", LOCALES)
def test_order_cards_show_what_the_kitchen_got_under_a_heading_in_line(browser, shop, locale):  # noqa: F811
    settings, server, _conn = shop
    words = WORDS[locale]
    context, page, errors = open_table(browser, server, settings, locale)
    add_dish(page, words["noodles"], words["mild"], words["egg"], note="no peanuts please")
    submit_cart(page)
    page.locator("#cart").evaluate("(d) => d.open && d.close()")
    card = page.locator(".order").first
    page.evaluate("document.querySelector('.order').scrollIntoView()")
    text = card.inner_text()
    assert words["noodles"] in text and words["mild"] in text and words["egg"] in text
    assert "no peanuts please" in text
    original = card.locator(".orig")
    if locale == "en-US":  # a translation: the name the staff know, small, under it
        assert original.inner_text() == "担担面" and original.get_attribute("lang") == "zh"
        sizes = card.evaluate("""(c) => [c.querySelector('.orig'), c.querySelector('.name')]
            .map((e) => parseFloat(getComputedStyle(e).fontSize))""")
        assert sizes[0] < sizes[1]
    else:
        assert original.count() == 0
    lefts = page.evaluate(
        """['#orders h2', '.order'].map((s) => document.querySelector(s).getBoundingClientRect().left)"""
    )
    assert abs(lefts[0] - lefts[1]) <= 1  # the heading lines up with its cards
    page.evaluate("document.querySelector('#orders h2').scrollIntoView()")
    shot(page, f"sheets-orders-{locale}")
    assert errors == []
    context.close()


def test_order_lines_name_the_dish_in_the_menus_first_language(client, token, db):
    """`original_name` on an order line: the name in the store's first language when the diner reads another."""
    noodles = item_id(db, "dan_dan_noodles")
    spice = option_id(db, "spice", "mild")
    r = client.post(
        f"/api/v1/tables/{token}/orders?lang=en",
        json={"client_key": key(), "lines": [{"item_id": noodles, "quantity": 1, "option_ids": [spice]}]},
    )
    assert r.status_code == 201
    order = stored_order(db, r.json()["id"])
    en, zh = localize_order(order, "en", "zh"), localize_order(order, "zh", "zh")
    assert (en["lines"][0]["name"], en["lines"][0]["original_name"]) == ("Dan dan noodles", "担担面")
    assert zh["lines"][0]["original_name"] is None  # the same name: nothing to add
    assert localize_order(order, "en")["lines"][0]["original_name"] is None  # no first language given
    relayed = for_phone(order_view(order), "en", "zh")  # the relay answers phones in the same shape
    assert relayed["lines"][0]["original_name"] == "担担面"
    assert for_phone(order_view(order), "en")["lines"][0]["original_name"] is None
