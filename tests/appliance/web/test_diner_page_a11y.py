"""The diner's page checked by axe-core in real headless Chromium: no violation on the first view, the dish sheet and
the cart, in Chinese and in English.

axe-core comes from the npm registry at a pinned version, checked against the registry's published sha512
integrity, and is kept in a cache outside the repository (`$AXE_CORE_CACHE`, else `$XDG_CACHE_HOME/tablebox`,
else `~/.cache/tablebox`), so a fresh machine downloads it once (700 kB) and never again. Playwright injects it into
the page (a script element), the way the axe browser extensions do; nothing of it is served by the box.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import re
import tarfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from appliance.demo import ensure_demo_store
from tests.appliance.test_crash import ServerProcess
from tests.appliance.web.test_diner_page_browser import ARGS, CHROMIUM, close
from tests.conftest import make_settings, token_for

playwright_api = pytest.importorskip("playwright.sync_api")

AXE_VERSION = "4.14.1"
AXE_TARBALL = f"https://registry.npmjs.org/axe-core/-/axe-core-{AXE_VERSION}.tgz"
# `npm view axe-core@4.14.1 dist.integrity`: the registry's sha512 of the tarball.
AXE_INTEGRITY = "sha512-FHfa+lmNjQZfJz1q8wKqIDwC6DExcHt/pkjNQb09a3NPjCKg2rhu5qb2S4r76ASyFNNtuFooJpZe37OgudVGtQ=="
# A dish with three option groups (the most in the demo) and a required choice, per language.
DISH = {"zh-CN": "担担面", "en-US": "Dan dan noodles"}
MENU_MARK = "tb-menu-rendered"  # performance.mark the page sets once the menu is drawn
BOOT = re.compile(r'(<script id="tb-boot" type="application/json">)(.*?)(</script>)', re.S)


def axe_cache() -> Path:
    if os.environ.get("AXE_CORE_CACHE"):
        return Path(os.environ["AXE_CORE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tablebox"


def integrity_of(data: bytes) -> str:
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def axe_source() -> str:
    """axe.min.js of AXE_VERSION out of its npm tarball, which is downloaded once into the cache and checked against
    AXE_INTEGRITY every time it is used (a tarball that does not match is refused, and a download that does not
    match is not kept)."""
    cached = axe_cache() / f"axe-core-{AXE_VERSION}.tgz"
    tarball = cached.read_bytes() if cached.exists() else b""
    if integrity_of(tarball) != AXE_INTEGRITY:
        with urllib.request.urlopen(AXE_TARBALL, timeout=60) as answer:
            tarball = answer.read()
        got = integrity_of(tarball)
        if got != AXE_INTEGRITY:
            pytest.fail(f"{AXE_TARBALL}: integrity {got}, the registry published {AXE_INTEGRITY}; not used")
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.part")
        partial.write_bytes(tarball)
        partial.replace(cached)  # whole or not at all: two test runs at once each write their own part
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as tar:
        member = tar.extractfile("package/axe.min.js")
        assert member is not None
        return member.read().decode("utf-8")


@pytest.fixture(scope="module")
def axe() -> str:
    return axe_source()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail("Chromium is missing: `./run test` installs it (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def page_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One demo store and server for the module: the checks only read the menu (the cart lives in the phone)."""
    tmp = tmp_path_factory.mktemp("a11y")
    settings = make_settings(tmp / "data")
    ensure_demo_store(settings)
    server = ServerProcess(settings.data_dir, tmp / "server.log")
    try:
        yield f"{server.url}/t/{token_for(settings, 'A1')}"
    finally:
        server.stop()


@dataclass
class Phone:
    page: Any
    locale: str
    url: str

    def show_menu(self) -> None:
        self.page.goto(self.url)
        self.page.wait_for_function(f"performance.getEntriesByName('{MENU_MARK}').length > 0")


@pytest.fixture(params=["zh-CN", "en-US"])
def phone(request: pytest.FixtureRequest, browser: Any, page_url: str) -> Iterator[Phone]:
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, locale=request.param, is_mobile=True, has_touch=True
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        yield Phone(page, request.param, page_url)
        assert errors == []
    finally:
        close(context)


def violations(page: Any, axe: str) -> list[dict[str, Any]]:
    """axe-core's violations on the page as it is now (its default rules: WCAG 2.x A/AA and best practices)."""
    if not page.evaluate("typeof window.axe === 'object'"):
        page.add_script_tag(content=axe)
    result: list[dict[str, Any]] = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ['violations']})).violations.map((v) => ({
            id: v.id, impact: v.impact, help: v.help,
            nodes: v.nodes.map((n) => n.target.join(' ') + ': ' + (n.failureSummary.split('\\n')[1] || '').trim())}))"""
    )
    return result


def explain(found: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']}; {len(v['nodes'])} nodes, e.g. " + " | ".join(v["nodes"][:3])
        for v in found
    )


def open_dish(page: Any, locale: str) -> None:
    row = page.locator(".item", has_text=DISH[locale]).first
    opener = row.locator("button.open")  # the row's own button since B1's rows (the whole row before)
    (opener if opener.count() else row).click()
    page.locator("#dish[open]").wait_for()


def test_first_view_has_no_axe_violation(phone: Phone, axe: str) -> None:
    phone.show_menu()
    found = violations(phone.page, axe)
    assert found == [], explain(found)


def test_loading_state_has_no_axe_violation(phone: Phone, axe: str) -> None:
    """The page before its data is in (no embedded data, the API not answering yet): what a diner sees on a slow
    network when the server could not embed the menu. The old page showed an unlabelled search box and two
    unlabelled buttons here."""
    page = phone.page
    held: list[Any] = []
    page.route("**/api/v1/tables/**", lambda route: held.append(route))  # not answered while axe looks

    def without_boot(route: Any) -> None:
        html = route.fetch().text()
        stripped, replaced = BOOT.subn(r"\1null\3", html, count=1)
        assert replaced == 1, "the page's <script id=tb-boot> was not found: update BOOT"
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=stripped)

    page.route(phone.url, without_boot)
    page.goto(phone.url)
    page.wait_for_function("document.readyState === 'complete'")
    assert page.evaluate(f"performance.getEntriesByName('{MENU_MARK}').length") == 0  # still loading
    found = violations(page, axe)
    for route in held:
        route.abort()
    assert found == [], explain(found)


def test_dish_sheet_has_no_axe_violation(phone: Phone, axe: str) -> None:
    phone.show_menu()
    page, locale = phone.page, phone.locale
    open_dish(page, locale)
    found = violations(page, axe)
    assert found == [], explain(found)


def test_cart_has_no_axe_violation(phone: Phone, axe: str) -> None:
    phone.show_menu()
    page, locale = phone.page, phone.locale
    open_dish(page, locale)
    page.locator("#dish button.primary").click()  # the sheet starts with the required choices made
    page.locator("#dish[open]").wait_for(state="hidden")
    page.locator("#open-cart").click()
    page.locator("#cart[open]").wait_for()
    found = violations(page, axe)
    assert found == [], explain(found)
