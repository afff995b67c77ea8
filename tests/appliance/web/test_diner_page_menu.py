"""The diner's menu page in real headless Chromium at a phone's size: the categories' rail, dish rows with a photo or
a drawn placeholder and a + button, the counts, the loading state, the original dish name under a translation and
the language cookie. Each test here would fail on the page before issue 16."""

from __future__ import annotations

import re

import httpx

from appliance.cli.menu import set_demo_photos
from appliance.db.connection import write_transaction
from tests.appliance.web.conftest import token_for
from tests.appliance.web.test_diner_page_browser import browser, close, phone, shop, shot  # noqa: F401 (fixtures)

# Adds up every layout shift the page makes without the diner's input (the figure Chromium calls CLS).
SHIFTS = """window.__shift = 0;
new PerformanceObserver((list) => { for (const e of list.getEntries()) if (!e.hadRecentInput) window.__shift += e.value; })
    .observe({type: "layout-shift", buffered: true});"""


def open_page(browser, server, settings, locale, table="A1", **kw):  # noqa: F811 (the fixture)
    context, page, errors = phone(browser, locale, **kw)
    page.goto(f"{server.url}/t/{token_for(settings, table)}")
    drawn(page)
    return context, page, errors


def drawn(page):
    """Every dish row is in the page (the first screen's come first, the rest in the frames after)."""
    page.wait_for_selector('#menu[data-drawn="all"]', state="attached")


def row(page, name):
    return page.locator(".item", has=page.locator(".name", has_text=name)).first


def cart(page):
    return page.evaluate(
        "JSON.parse(localStorage.getItem(Object.keys(localStorage).find(k => k.endsWith('.cart'))) || '[]')"
    )


def test_the_loading_state_cannot_be_tapped_and_nothing_shifts(browser, shop):  # noqa: F811 (the fixture)
    """Before the store and menu are in: every control disabled yet labelled, the language button does not throw
    (it did: `Cannot read properties of null (reading 'store')`), no waiter call leaves, and the page does not move
    when the menu arrives (it shifted by 0.107)."""
    settings, server, conn = shop
    token = token_for(settings, "A1")
    context, page, errors = phone(browser, "zh-CN", service_workers="block")  # every request meets page.route
    context.add_init_script(SHIFTS)
    held, release = [], []

    def hold(route):
        if release:
            route.continue_()
        else:
            held.append(route)

    def without_boot(route):  # the page as a box without embedded data sends it: the script asks the API
        response = route.fetch()
        body = re.sub(
            r'(<script id="tb-boot" type="application/json">).*?(</script>)', r"\1null\2", response.text(), flags=re.S
        )
        route.fulfill(status=response.status, headers={"content-type": "text/html; charset=utf-8"}, body=body)

    page.route(f"**/t/{token}", without_boot)
    page.route("**/api/v1/tables/**", hold)
    page.goto(f"{server.url}/t/{token}")
    while not held:
        page.wait_for_timeout(20)
    page.wait_for_timeout(100)
    controls = ["lang", "search", "waiter", "bill", "open-cart"]
    assert [c for c in controls if page.locator(f"#{c}").is_enabled()] == []
    labels = {c: page.locator(f"#{c}").inner_text() for c in ["waiter", "bill", "open-cart"]}
    assert labels == {"waiter": "呼叫服务员", "bill": "结账", "open-cart": "购物车"}
    assert page.locator("#search").get_attribute("placeholder") == "搜索菜品"
    assert page.locator("#main").get_attribute("aria-busy") == "true"
    shot(page, "menu-loading-zh-CN")
    page.evaluate("for (const id of ['lang', 'waiter', 'bill', 'open-cart']) document.getElementById(id).click()")
    page.wait_for_timeout(100)
    assert errors == []
    assert [r.request.method for r in held if r.request.method != "GET"] == []
    assert not page.evaluate("document.getElementById('cart').open")
    release.append(True)
    for route in held:
        route.continue_()
    page.wait_for_selector(".item")
    assert [c for c in controls if not page.locator(f"#{c}").is_enabled()] == ["open-cart"]  # the cart is empty
    drawn(page)  # the rows below the first screen came a frame later: they moved nothing either
    page.wait_for_timeout(200)
    assert page.evaluate("window.__shift") == 0
    assert page.locator("#main").get_attribute("aria-busy") is None
    assert conn.execute("SELECT count(*) FROM service_requests").fetchone()[0] == 0
    close(context)


def test_plus_adds_at_once_and_counts_show_on_the_dish_and_its_category(browser, shop):  # noqa: F811 (the fixture)
    settings, server, conn = shop
    context, page, errors = open_page(browser, server, settings, "en-US")
    har_gow, dumplings = row(page, "Crystal shrimp"), page.locator("#cats a", has_text="Dumplings")
    har_gow.locator("button.add").click()
    har_gow.locator("button.add").click()
    assert not page.evaluate("document.getElementById('dish').open")  # no choice to make: added at once
    assert har_gow.locator(".count").inner_text() == "2"
    assert dumplings.locator(".n [aria-hidden]").inner_text() == "2"
    assert har_gow.locator("button.add").inner_text() == "Add one: Crystal shrimp dumplings (2 in the cart)"  # heard
    assert cart(page) == [{"item_id": int(har_gow.get_attribute("data-id")), "variant_id": None, "option_ids": [],
                           "quantity": 2, "note": ""}]  # fmt: skip
    assert page.locator("#bar-sum").inner_text().startswith("2 items")
    har_gow.locator("button.sub").click()
    assert har_gow.locator(".count").inner_text() == "1" and dumplings.locator(".n [aria-hidden]").inner_text() == "1"
    # A dish with a required choice (spice level) opens its sheet; what is added there counts too.
    noodles = row(page, "Dan dan noodles")
    noodles.locator("button.add").click()
    page.locator("#dish label.choice", has_text="Mild").click()
    page.locator("#dish button.primary").click()
    assert noodles.locator(".count").inner_text() == "1" and not noodles.locator("button.sub").is_visible()
    assert page.locator("#cats a", has_text="Noodles").locator(".n [aria-hidden]").inner_text() == "1"
    # Sold out: no + at all.
    fried_shrimp = row(page, "Crispy fried river shrimp")
    assert fried_shrimp.locator("button.add").count() == 0 and fried_shrimp.locator(".gone").inner_text() == "Sold out"
    shot(page, "menu-counts-en-US")
    page.locator("#open-cart").click()
    page.locator("#submit").click()
    page.wait_for_selector(".order")
    lines = conn.execute(
        "SELECT i.key, l.quantity FROM order_lines l JOIN items i ON i.id = l.item_id ORDER BY l.line_no"
    ).fetchall()
    assert lines == [("har_gow", 1), ("dan_dan_noodles", 1)]
    page.wait_for_function("!document.querySelector('#cats .n')")  # the cart went out: no count left
    assert page.locator(".item .count:not(.hidden)").count() == 0
    assert errors == []
    context.close()


def test_rows_show_a_photo_or_a_drawn_placeholder_without_an_image_request(browser, shop):  # noqa: F811 (the fixture)
    settings, server, conn = shop
    with write_transaction(conn):  # one dish names a photo file that is not there
        conn.execute("UPDATE items SET image = 'greens.jpg' WHERE key = 'seasonal_greens'")
    requested: list[str] = []
    context, page, errors = phone(browser, "zh-CN")
    page.on("request", lambda r: requested.append(r.url) if "/images/" in r.url else None)
    page.goto(f"{server.url}/t/{token_for(settings, 'A1')}")
    drawn(page)
    pictures = """[...document.querySelectorAll('.item')].map(r => {
        const pic = r.querySelector('.pic').getBoundingClientRect(), img = r.querySelector('.pic img');
        return [r.querySelector('.name').firstChild.textContent, Math.round(pic.width), Math.round(pic.height),
                img ? img.getAttribute('src') || img.dataset.src : null, img ? null : r.querySelector('.pic .ph').textContent];
    })"""
    rows = page.evaluate(pictures)
    assert len(rows) == 64 - 1  # the demo's dishes, less the hidden one
    assert {(w, h) for _name, w, h, _src, _ph in rows} == {(84, 84)}  # every row the same picture box
    assert [(name, src) for name, _w, _h, src, _ph in rows if src] == [("清炒时蔬", "/images/greens.jpg?w=192")]
    assert all(ph == name[0] for name, _w, _h, src, ph in rows if not src)  # the dish's first character
    row(page, "清炒时蔬").scroll_into_view_if_needed()
    page.wait_for_function("!document.querySelector('.item .pic img')")  # the missing photo: drawn instead
    assert [r for r in page.evaluate(pictures) if r[0] == "清炒时蔬"] == [["清炒时蔬", 84, 84, None, "清"]]
    assert [u.rsplit("/", 1)[1] for u in requested] == ["greens.jpg?w=192"]  # placeholders cost no request
    shot(page, "menu-rail-zh-CN")
    assert errors == []
    context.close()


def test_the_rail_marks_the_category_in_view_and_a_tap_jumps_to_it(browser, shop):  # noqa: F811 (the fixture)
    settings, server, _conn = shop
    context, page, errors = open_page(browser, server, settings, "zh-CN")
    rail, menu = page.locator("#cats").bounding_box(), page.locator("#menu").bounding_box()
    assert rail["x"] == 0 and rail["width"] < 100 and rail["height"] > 600  # a rail on the left ...
    assert menu["x"] >= rail["width"]  # ... beside the dishes
    assert page.locator("#cats a.on").inner_text() == "凉菜"
    page.locator("#cats a", has_text="甜品").click()
    page.wait_for_function("document.querySelector('#cats a.on').textContent.startsWith('甜品')")
    top = page.evaluate("document.querySelector('#menu section:nth-of-type(8)').getBoundingClientRect().top")
    assert abs(top) <= 1
    assert page.locator("#cats a.on").get_attribute("aria-current") == "true"
    assert page.locator("#cats").bounding_box()["y"] == 0  # the rail stays while the list scrolls
    page.locator("#cats a", has_text="酒水").click()  # the last category cannot reach the top: still marked
    page.wait_for_timeout(150)
    assert page.locator("#cats a.on").inner_text() == "酒水"
    shot(page, "menu-rail-jump-zh-CN")
    context.close()
    # On a 320 px phone the rail would leave the dishes too little room: the categories are a bar above them.
    context = browser.new_context(
        viewport={"width": 320, "height": 640}, locale="en-US", is_mobile=True, has_touch=True
    )
    page = context.new_page()
    page.goto(f"{server.url}/t/{token_for(settings, 'A1')}")
    drawn(page)
    bar = page.locator("#cats").bounding_box()
    assert bar["width"] == 320 and bar["height"] < 60
    page.locator("#cats a", has_text="Soups").click()
    page.wait_for_function("document.querySelector('#cats a.on').textContent.startsWith('Soups')")
    top = page.evaluate("document.querySelector('#menu section:nth-of-type(6)').getBoundingClientRect().top")
    assert abs(top - bar["height"]) <= 1  # just under the bar, not hidden by it
    assert errors == []
    context.close()


def test_english_shows_the_original_name_under_the_translation(browser, shop):  # noqa: F811 (the fixture)
    settings, server, _conn = shop
    token = token_for(settings, "A1")
    en = httpx.get(f"{server.url}/api/v1/tables/{token}/menu?lang=en").json()
    zh = httpx.get(f"{server.url}/api/v1/tables/{token}/menu?lang=zh").json()
    names = {i["name"]: i["original_name"] for c in en["categories"] for i in c["items"]}
    assert names["Dan dan noodles"] == "担担面"
    assert {i["original_name"] for c in zh["categories"] for i in c["items"]} == {None}  # the first language
    context, page, errors = open_page(browser, server, settings, "en-US")
    noodles = row(page, "Dan dan noodles")
    assert noodles.locator(".orig").inner_text() == "担担面"
    assert noodles.locator(".orig").get_attribute("lang") == "zh"
    # The tourist can find a dish by the name the staff said, too.
    page.fill("#search", "担担")
    assert page.locator(".item:not(.hidden) .name").all_inner_texts() == ["Dan dan noodles"]
    page.fill("#search", "no such dish")
    assert page.locator("#menu .none").inner_text() == "No dish matches"
    assert page.locator("#cats a:not(.hidden)").count() == 0
    page.fill("#search", "")
    shot(page, "menu-rail-en-US")
    context.close()
    context, page, errors = open_page(browser, server, settings, "zh-CN")
    assert page.locator(".item .orig").count() == 0
    assert errors == []
    context.close()


def test_the_language_button_sets_the_tb_lang_cookie_at_the_page_base(browser, shop):  # noqa: F811 (the fixture)
    settings, server, _conn = shop
    token = token_for(settings, "A1")
    context, page, errors = open_page(browser, server, settings, "zh-CN", service_workers="block")
    page.locator("#lang").click()
    row(page, "Dan dan noodles").wait_for()
    cookies = [(c["name"], c["value"], c["path"]) for c in context.cookies()]
    assert cookies == [("tb_lang", "en", "/")]
    sent = []
    page.on("request", lambda r: sent.append(r) if r.resource_type == "document" else None)
    page.reload()
    row(page, "Dan dan noodles").wait_for()
    assert [r.all_headers().get("cookie") for r in sent] == ["tb_lang=en"]  # the server can embed English next time
    close(context)
    # Through the relay the page is /s/STORE/t/TOKEN: the cookie belongs to that store's pages only.
    context, page, errors = phone(browser, "zh-CN", service_workers="block")

    def as_relay(route):
        url = route.request.url.replace("/s/demo/", "/")
        if "/events" in url:
            route.abort()
            return
        response = route.fetch(url=url)
        headers = {"content-type": response.headers.get("content-type", "text/plain")}
        route.fulfill(status=response.status, headers=headers, body=response.body())

    page.route("**/s/demo/**", as_relay)
    page.goto(f"{server.url}/s/demo/t/{token}")
    drawn(page)
    page.locator("#lang").click()
    row(page, "Dan dan noodles").wait_for()
    assert [(c["name"], c["value"], c["path"]) for c in context.cookies()] == [("tb_lang", "en", "/s/demo/")]
    assert page.evaluate("localStorage.getItem('tb.lang')") == "en"
    assert errors == []
    context.close()


# At the page's "menu on screen" mark: how many rows are drawn, where the last one ends; then window.__onMark (a test's
# tap or search at that very moment, before the rest of the rows are drawn).
AT_MARK = """(() => {
  const mark = performance.mark.bind(performance);
  performance.mark = (name, ...rest) => {
    if (name === "tb-menu-rendered" && !window.__atMark) {
      const rows = [...document.querySelectorAll("#menu .item")];
      window.__atMark = {rows: rows.length, screen: innerHeight, rail: document.querySelectorAll("#cats a").length,
                         bottom: rows.length ? rows[rows.length - 1].getBoundingClientRect().bottom : 0};
      if (window.__onMark) window.__onMark();
    }
    return mark(name, ...rest);
  };
})();"""


def shown_rows(page):
    return page.evaluate(
        "[...document.querySelectorAll('#menu .item:not(.hidden)')].map(r => r.querySelector('.name').firstChild.textContent)"
    )


def test_the_first_screen_is_drawn_first_and_the_rest_follows_without_a_shift(browser, shop):  # noqa: F811
    """The first screen's rows (and the whole rail) are in the page when it marks the menu on screen, the rest come in
    the frames after, in the menu's order and moving nothing; a tap in the rail, a search or the counts at that very
    moment work on rows that were not drawn yet."""
    settings, server, _conn = shop
    token = token_for(settings, "A1")
    menu = httpx.get(f"{server.url}/api/v1/tables/{token}/menu?lang=zh").json()
    names = [i["name"] for c in menu["categories"] for i in c["items"]]
    assert len(names) == 63
    last = menu["categories"][-1]
    plain = next(
        i
        for i in last["items"]
        if len(i["variants"]) <= 1 and not any(g["min_choices"] for g in i["option_groups"]) and not i["sold_out"]
    )
    context, page, errors = phone(browser, "zh-CN")
    context.add_init_script(SHIFTS)
    context.add_init_script(AT_MARK)
    page.goto(f"{server.url}/t/{token}")
    drawn(page)
    first = page.evaluate("window.__atMark")
    assert first["rail"] == len(menu["categories"])  # the whole rail at once
    assert 0 < first["rows"] < len(names) // 2  # a part of the rows ...
    assert first["bottom"] > first["screen"]  # ... enough to fill the screen
    assert shown_rows(page) == names  # then all of them, in the menu's order
    page.wait_for_timeout(200)
    assert page.evaluate("window.__shift") == 0
    # A count on a dish of the last category, drawn frames after the mark: its row and rail entry show it.
    row(page, plain["name"]).locator(".add").click()
    page.goto(page.url)  # a new visit (a reload draws all at once: the browser puts the diner back where they were)
    drawn(page)
    assert page.evaluate("window.__atMark.rows") < len(names) - len(last["items"])  # not drawn at the mark
    assert row(page, plain["name"]).locator(".count").inner_text() == "1"
    assert page.locator("#cats a", has_text=last["name"]).locator(".n").inner_text().startswith("1")
    # A reload half-way down: drawn all at once, so the browser can put the diner back where they were.
    page.locator("#cats a", has_text=menu["categories"][5]["name"]).click()
    y = page.evaluate("scrollY")
    assert y > 2000
    page.reload()
    drawn(page)
    page.wait_for_function(f"Math.abs(scrollY - {y}) <= 2")
    assert page.evaluate("window.__atMark.rows") == len(names)
    page.close()
    # A tap in the rail on a category not drawn yet, at the mark: the page draws up to it and lands on it.
    page = context.new_page()
    sweets = menu["categories"][7]
    page.add_init_script(
        f"window.__onMark = () => document.querySelector('#cats a[data-cat=\"{sweets['id']}\"]').click();"
    )
    page.goto(f"{server.url}/t/{token}")
    drawn(page)
    assert page.evaluate("window.__atMark.rows") < sum(len(c["items"]) for c in menu["categories"][:7])
    page.wait_for_timeout(200)
    top = page.evaluate(f"document.getElementById('c{sweets['id']}').getBoundingClientRect().top")
    assert abs(top) <= 1
    assert page.locator("#cats a.on").inner_text().startswith(sweets["name"])
    page.close()
    # A search typed at the mark finds a dish of the last category.
    page = context.new_page()
    query = plain["name"]
    page.add_init_script(
        "window.__onMark = () => { const s = document.getElementById('search');"
        f" s.value = {query!r}; s.dispatchEvent(new Event('input')); }};"
    )
    page.goto(f"{server.url}/t/{token}")
    drawn(page)
    assert shown_rows(page) == [n for n in names if query in n]
    assert page.locator("#cats a:not(.hidden)").all_inner_texts()[0].startswith(last["name"])
    assert errors == []
    context.close()


def test_row_photos_are_fetched_only_near_the_screen(browser, shop):  # noqa: F811 (the fixture)
    """With a photo on every dish (the demo's, `tablebox demo --photos`), a first view fetches the photos of the rows
    within about a screen below the visible part, not 60 of 64 as Chromium's loading="lazy" did; scrolling fetches
    the rest as they come near; no box changes size; the dish sheet shows the full photo as before."""
    settings, server, _conn = shop
    assert set_demo_photos(settings) == 64
    requested: list[str] = []
    context, page, errors = phone(browser, "zh-CN")
    context.add_init_script(SHIFTS)
    page.on("request", lambda r: requested.append(r.url.split("/images/", 1)[1]) if "/images/" in r.url else None)
    page.goto(f"{server.url}/t/{token_for(settings, 'A1')}")
    drawn(page)
    near = """[...document.querySelectorAll('.item .pic img')].filter(img => {
        const r = img.getBoundingClientRect(); return r.top < 2 * innerHeight && r.bottom > -innerHeight;
    })"""
    page.wait_for_function(f"{near}.every(img => img.getAttribute('src') && img.complete)")  # asked for, and in
    page.wait_for_timeout(300)
    expected = page.evaluate(f"{near}.map(img => img.getAttribute('src'))")
    assert all(u.endswith("?w=192") for u in expected)
    assert sorted(requested) == sorted(u.split("/images/", 1)[1] for u in expected)  # those near the screen only
    assert len(requested) < 63 // 3
    sizes = "[...document.querySelectorAll('.item .pic')].map(p => [p.offsetWidth, p.offsetHeight])"
    assert {tuple(s) for s in page.evaluate(sizes)} == {(84, 84)}
    # Scrolled to the end: the last rows' photos come; those scrolled past in one jump were never near.
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    page.wait_for_function("document.querySelector('#menu section:last-of-type .item:last-child .pic img[src]')")
    last = page.evaluate(
        "document.querySelector('#menu section:last-of-type .item:last-child .pic img').getAttribute('src')"
    )
    page.wait_for_timeout(300)
    assert last.split("/images/", 1)[1] in requested
    assert len(requested) < 63 * 2 // 3
    assert page.evaluate("window.__shift") == 0
    # The dish sheet's photo: the full picture, asked for as it opens.
    first = page.locator(".item .open").last
    first.click()
    src = page.locator("#dish img.photo").get_attribute("src")
    assert src is not None and "?w=" not in src
    assert errors == []
    context.close()
