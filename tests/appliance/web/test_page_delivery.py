"""How the diner's page reaches a phone (appliance.diner_page.delivery, appliance/web/pages.py): the first view in
one answer carrying the store, the table and the menu in the phone's language; gzip or brotli by Accept-Encoding,
each distinct body compressed once; an ETag over the uncompressed bytes and 304 for a phone whose copy is current;
the service worker and the page's files sent the same way. Every test reads the bytes that went over the wire and
decodes them itself."""

from __future__ import annotations

import gzip
import io
import json
import re
from typing import Any

import brotli
import pytest

from appliance.diner_page import SERVICE_WORKER, STATIC_DIR, boot_json, page, slim
from appliance.diner_page import delivery as d
from appliance.web import pages
from tests.appliance.web.conftest import item_id, key, token_for
from tests.appliance.web.test_diner_page_browser import browser, phone, shop  # noqa: F401 (fixtures)

BOOT = re.compile(rb'<script id="tb-boot" type="application/json">(.*?)</script>', re.S)


def fetch(client: Any, url: str, **headers: str) -> tuple[Any, bytes]:
    """The answer and its body exactly as sent (not decoded by the client)."""
    with client.stream("GET", url, headers=headers) as r:
        return r, b"".join(r.iter_raw())


def decoded(r: Any, raw: bytes) -> bytes:
    coding = r.headers.get("content-encoding")
    if coding == "br":
        return bytes(brotli.decompress(raw))
    if coding == "gzip":
        return gzip.decompress(raw)
    assert coding is None, coding
    return raw


def boot_of(html: bytes) -> Any:
    found = BOOT.search(html)
    assert found is not None
    return json.loads(found.group(1))


@pytest.fixture
def fresh(monkeypatch):
    """A page cache of this test's own (the module's one is shared by every test in the process)."""
    cache = d.CompressedBodies()
    monkeypatch.setattr(pages, "PAGES", cache)
    return cache


# -- one round trip ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_page_carries_the_store_table_and_menu_as_the_api_gives_them(client, token, lang):
    r, raw = fetch(client, f"/t/{token}?lang={lang}", **{"Accept-Encoding": "identity"})
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    boot = boot_of(raw)
    assert boot["lang"] == lang
    assert boot["info"] == client.get(f"/api/v1/tables/{token}").json()
    assert boot["menu"] == client.get(f"/api/v1/tables/{token}/menu", params={"lang": lang}).json()
    assert boot["menu"]["lang"] == lang
    assert f'<html lang="{lang}">'.encode() in raw


@pytest.mark.parametrize(
    "cookie,query,accept_language,expected",
    [
        ("en", "zh", "zh-CN", "en"),  # the diner's own switch wins
        ("fr", "en", "zh-CN", "en"),  # a cookie the store does not offer is passed over
        (None, "en", "zh-CN,zh;q=0.9", "en"),
        (None, None, "ja, en;q=0.8, zh;q=0.5", "en"),  # ja is not offered: the next by q
        (None, None, "zh;q=0.2, en-GB;q=0.9", "en"),  # by q, not by order
        (None, None, "zh-TW", "zh"),
        (None, None, "de, fr;q=0.5", "zh"),  # nothing offered: the store's first language
        (None, None, None, "zh"),
    ],
)
def test_the_pages_language(client, token, cookie, query, accept_language, expected):
    headers = {"Accept-Encoding": "identity"}
    if cookie:
        headers["Cookie"] = f"tb_lang={cookie}"
    if accept_language:
        headers["Accept-Language"] = accept_language
    url = f"/t/{token}" + (f"?lang={query}" if query else "")
    _, raw = fetch(client, url, **headers)
    assert boot_of(raw)["lang"] == expected


def test_embedded_text_cannot_end_its_script_element():
    evil = "</script><script>alert(1)</script><!-- <script>"
    info = json.dumps({"store": {"name": evil}, "table": None}).encode()
    menu = json.dumps({"lang": "en", "categories": [{"name": evil, "items": []}]}).encode()
    html = page(boot_json("en", info, menu), "en")
    assert html.count(b"</script>") == page().count(b"</script>")  # none added
    assert b"<script>alert" not in html and b"<!--" not in BOOT.search(html).group(1)  # type: ignore[union-attr]
    boot = boot_of(html)
    assert boot["info"]["store"]["name"] == evil and boot["menu"]["categories"][0]["name"] == evil


# -- encodings -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "accept,coding",
    [
        ("gzip, deflate, br, zstd", "br"),  # Chromium over https and on 127.0.0.1
        ("gzip, deflate", "gzip"),  # Chromium over plain http on the store Wi-Fi
        ("br;q=0.5, gzip", "gzip"),
        ("br;q=0, *", "gzip"),
        ("*", "br"),
        ("BR", "br"),
        ("identity", None),
        ("deflate", None),
        ("gzip;q=0, br;q=0", None),
        ("identity;q=0, gzip;q=0.1", "gzip"),
    ],
)
def test_the_encoding_follows_accept_encoding(client, token, accept, coding):
    plain, plain_raw = fetch(client, f"/t/{token}", **{"Accept-Encoding": "identity"})
    r, raw = fetch(client, f"/t/{token}", **{"Accept-Encoding": accept})
    assert r.headers.get("content-encoding") == coding
    assert decoded(r, raw) == plain_raw
    assert int(r.headers["content-length"]) == len(raw)
    if coding:
        assert len(raw) * 3 < len(plain_raw)
    # one validator for the page whatever its encoding: it names the bytes the phone decodes
    assert r.headers["etag"] == plain.headers["etag"] == d.etag_of(plain_raw)
    assert r.headers["vary"] == "Accept-Encoding, Accept-Language, Cookie"
    assert r.headers["cache-control"] == "no-cache"


def test_no_accept_encoding_gets_the_bytes_as_they_are(client, token):
    request = client.build_request("GET", f"/t/{token}")  # httpx offers encodings by itself: take them away
    del request.headers["accept-encoding"]
    r = client.send(request, stream=True)
    raw = b"".join(r.iter_raw())
    r.close()
    assert "content-encoding" not in r.headers and boot_of(raw)["lang"] == "zh"


@pytest.mark.parametrize(
    "header,coding",
    [
        (None, "identity"),
        ("", "identity"),
        ("gzip;q=0.9, br;q=0.9", "br"),
        ("gzip;q=1.0, br;q=0.999", "gzip"),
        ("br;q=abc, gzip", "gzip"),
        ("*;q=0", "identity"),
        ("compress, x-gzip", "identity"),
    ],
)
def test_choose_encoding(header, coding):
    assert d.choose_encoding(header) == coding


# -- validators ----------------------------------------------------------------------------------------------------


def test_a_repeat_visit_costs_a_304(client, token, db):
    first, raw = fetch(client, f"/t/{token}", **{"Accept-Encoding": "br"})
    etag = first.headers["etag"]
    assert re.fullmatch(r'"[0-9a-f]{32}"', etag)  # strong
    for validator in (etag, f"W/{etag}", f'"other", {etag}', "*"):
        again, body = fetch(client, f"/t/{token}", **{"Accept-Encoding": "br", "If-None-Match": validator})
        assert again.status_code == 304 and body == b""
        assert again.headers["etag"] == etag and "content-encoding" not in again.headers
        assert again.headers["vary"] == first.headers["vary"] and again.headers["cache-control"] == "no-cache"
    stale, body = fetch(client, f"/t/{token}", **{"Accept-Encoding": "br", "If-None-Match": '"other"'})
    assert stale.status_code == 200 and body == raw

    # another language is another page
    en, _ = fetch(client, f"/t/{token}?lang=en", **{"If-None-Match": etag})
    assert en.status_code == 200 and en.headers["etag"] != etag

    # the table's visit opens with its first order: the page's data changed, so the phone's copy is stale
    order = {"client_key": key(), "lines": [{"item_id": item_id(db, "har_gow"), "quantity": 1}]}
    assert client.post(f"/api/v1/tables/{token}/orders", json=order).status_code == 201
    after, raw_after = fetch(client, f"/t/{token}", **{"Accept-Encoding": "identity", "If-None-Match": etag})
    assert after.status_code == 200 and after.headers["etag"] != etag
    assert boot_of(raw_after)["info"] == client.get(f"/api/v1/tables/{token}").json()
    assert boot_of(raw_after)["info"]["table"]["session"] is not None


# -- compressed once -------------------------------------------------------------------------------------------------


def test_each_distinct_body_is_compressed_once(client, token, fresh):
    _, plain = fetch(client, f"/t/{token}", **{"Accept-Encoding": "identity"})
    assert fresh.compressions == 0
    sizes = []
    for _ in range(5):
        _, raw = fetch(client, f"/t/{token}", **{"Accept-Encoding": "gzip"})
        assert gzip.decompress(raw) == plain
        sizes.append(len(raw))
    assert fresh.compressions == 1 and len(set(sizes)) == 1

    _, quick = fetch(client, f"/t/{token}", **{"Accept-Encoding": "br"})
    assert brotli.decompress(quick) == plain and fresh.compressions == 2
    fresh.settle()
    assert fresh.compressions == 2  # a body asked for once keeps its quick copy
    _, again = fetch(client, f"/t/{token}", **{"Accept-Encoding": "br"})
    assert again == quick  # asked for again: sent as it is, and its best copy made once, in the background
    fresh.settle()
    assert fresh.compressions == 3
    for _ in range(5):
        _, best = fetch(client, f"/t/{token}", **{"Accept-Encoding": "br"})
        assert best == brotli.compress(plain, quality=d.BROTLI_QUALITY)  # the best copy, decoding to the page
    assert len(best) < len(quick) and fresh.compressions == 3
    assert len(fresh) == 1

    fetch(client, f"/t/{token}?lang=en", **{"Accept-Encoding": "gzip"})  # another body: once more
    assert fresh.compressions == 4 and len(fresh) == 2


def test_the_cache_is_bounded_by_bodies_and_bytes():
    cache = d.CompressedBodies(max_bodies=3, max_bytes=10**9)
    bodies = [bytes([65 + i]) * 2000 + b"x" * i for i in range(5)]
    tags = [d.etag_of(b) for b in bodies]
    for tag, body in zip(tags, bodies, strict=True):
        assert gzip.decompress(cache.encoded(tag, body, "gzip")) == body
    assert len(cache) == 3 and cache.cached(tags[0], "gzip") is None and cache.cached(tags[4], "gzip") is not None
    cache.encoded(tags[2], bodies[2], "gzip")  # used again: now the most recent
    cache.encoded(tags[0], bodies[0], "gzip")
    assert cache.cached(tags[2], "gzip") is not None and cache.cached(tags[3], "gzip") is None
    assert cache.compressions == 6

    small = d.CompressedBodies(max_bodies=100, max_bytes=100)
    sizes = [len(small.encoded(tag, body, "gzip")) for tag, body in zip(tags, bodies, strict=True)]
    assert len(small) == max(n for n in range(1, 6) if sum(sizes[-n:]) <= 100)  # the newest that fit in 100 bytes
    one = d.CompressedBodies(max_bodies=100, max_bytes=1)
    assert one.encoded(tags[0], bodies[0], "br") and len(one) == 1  # larger than the budget, still kept


# -- the other files -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path,name", [("/sw.js", SERVICE_WORKER), ("/static/diner.css", "diner.css")])
def test_the_service_worker_and_the_pages_files(client, path, name):
    if not (STATIC_DIR / name).is_file():
        pytest.fail(f"{name} is missing")
    want = slim((STATIC_DIR / name).read_text(), name.endswith(".js")).encode()  # slimmed as the page's parts are
    assert len(want) < (STATIC_DIR / name).stat().st_size
    r, raw = fetch(client, path, **{"Accept-Encoding": "gzip, br"})
    assert r.status_code == 200 and decoded(r, raw) == want
    kind = "text/javascript" if name.endswith(".js") else "text/css"
    assert r.headers["content-type"] == f"{kind}; charset=utf-8"
    assert r.headers["cache-control"] == "no-cache" and r.headers["vary"] == "Accept-Encoding"
    if len(want) > 1000:
        assert r.headers["content-encoding"] == "br" and len(raw) < len(want)
    again, body = fetch(client, path, **{"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304 and body == b""


@pytest.mark.parametrize("path", ["/static/diner.html", "/static/..%2Fapp.py", "/static/nope.js", "/static/sw.jsx"])
def test_nothing_else_is_served_beside_the_page(client, path):
    assert client.get(path).status_code == 404


# -- in Chromium ---------------------------------------------------------------------------------------------------

MENU_SHOWN = "performance.getEntriesByName('tb-menu-rendered').length > 0"


def first_view(page: Any) -> dict[str, Any]:
    """What the page's own timing says about its load: how the document came (status, encoding, bytes over the wire
    and decoded) and every request that started before the menu was on screen."""
    page.wait_for_function(MENU_SHOWN)
    return page.evaluate(
        """() => {
            const shown = performance.getEntriesByName('tb-menu-rendered')[0].startTime;
            const nav = performance.getEntriesByType('navigation')[0];
            return {
                status: nav.responseStatus, encoding: nav.contentEncoding, transfer: nav.transferSize,
                encoded: nav.encodedBodySize, decoded: nav.decodedBodySize,
                before: performance.getEntriesByType('resource').filter((e) => e.startTime < shown).map((e) => e.name),
            };
        }"""
    )


@pytest.mark.slow
@pytest.mark.parametrize("locale,lang", [("zh-CN", "zh"), ("en-US", "en")])
def test_chromium_shows_the_menu_from_one_compressed_answer_and_revalidates_it(browser, shop, locale, lang):  # noqa: F811
    settings, server, _ = shop
    # the service worker's own keeping is the offline tests'; here the browser's HTTP cache alone
    context, tab, errors = phone(browser, locale, service_workers="block")
    try:
        url = f"{server.url}/t/{token_for(settings, 'A1')}"
        tab.goto(url)
        view = first_view(tab)
        assert view["before"] == []  # no script, style, table or menu request: the menu came with the page
        assert (view["status"], view["encoding"]) == (200, "br")  # Chromium offers br on 127.0.0.1
        assert view["encoded"] * 3 < view["decoded"]
        assert tab.locator("html").get_attribute("lang") == lang
        assert tab.locator(".item").count() > 10 and tab.locator("#store").inner_text() != "…"

        tab.goto(url)  # a second visit: Chromium revalidates its copy, the box answers 304 (headers only)
        again = first_view(tab)
        assert again["before"] == [] and again["decoded"] == view["decoded"]
        assert again["transfer"] < 1000 < again["encoded"]
        assert errors == []
    finally:
        context.close()


# -- photos --------------------------------------------------------------------------------------------------------


def test_a_list_size_photo_is_made_once_and_kept_like_the_photo(settings, client, token, tmp_path, capsys):
    from PIL import Image

    from appliance.cli import main
    from tests.appliance.test_images import camera_photo

    photo = camera_photo(tmp_path / "dumplings.jpg", (2000, 1500))
    assert main(["photo", "--data-dir", str(settings.data_dir), "har_gow", str(photo)]) == 0
    capsys.readouterr()
    items = [i for c in client.get(f"/api/v1/tables/{token}/menu").json()["categories"] for i in c["items"]]
    url = next(i["image"] for i in items if i["image"])
    full = client.get(url)
    small = client.get(url, params={"w": "192"})
    assert small.status_code == 200 and small.headers["content-type"] == "image/jpeg"
    assert small.headers["cache-control"] == full.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert Image.open(io.BytesIO(small.content)).size == (192, 192)
    assert Image.open(io.BytesIO(full.content)).size == (640, 480)
    assert len(small.content) * 3 < len(full.content)
    name = url.rsplit("/", 1)[1]
    kept = settings.data_dir / "images" / f"{name[:-4]}-192.jpg"
    assert kept.read_bytes() == small.content  # made once, then served from the disk
    assert client.get(url, params={"w": "192"}).content == small.content
    for bad in ({"w": "640"}, {"w": "abc"}, {"w": "-192"}, {"w": "1" * 40}):
        assert client.get(url, params=bad).status_code == 404
    assert client.get("/images/0123456789abcdef.jpg", params={"w": "192"}).status_code == 404
    assert client.get("/images/..%2Fstore.db", params={"w": "192"}).status_code == 404


def test_a_refused_code_speaks_the_language_the_diner_chose(client, token):
    forged = token[:-1] + ("b" if token[-1] != "b" else "c")
    for headers, lang in (
        ({"Cookie": "tb_lang=ja", "Accept-Language": "en"}, "ja"),  # the switch's cookie first
        ({"Accept-Language": "fr, en;q=0.5"}, "en"),
        ({}, "zh"),
    ):
        r = client.get(f"/t/{forged}", headers=headers)
        assert r.status_code == 403 and f'<html lang="{lang}">' in r.text
        assert r.headers["content-type"] == "text/html; charset=utf-8" and r.headers["cache-control"] == "no-cache"
