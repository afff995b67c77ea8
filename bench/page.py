"""How the diner's page does with a big menu on a slow phone: prints figures, never asserts.

    .venv/bin/python bench/page.py [--dishes 200] [--cpu-slowdown 4]

Builds a store with N dishes (variants, option groups, long bilingual names), serves it, opens the page in
Debian's headless Chromium at 390x844 with the CPU slowed down (Chrome's CPU throttling, like an old
phone), and prints: the first view's size compressed, the time until the menu is on screen, and frame
times while scrolling the whole menu from top to bottom.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.db.connection import open_connection
from appliance.db.menu import import_menu
from appliance.db.store_settings import load_store_settings
from appliance.db.tables import add_table, table_token
from appliance.diner_page import STATIC_DIR
from appliance.settings import BoxSettings
from appliance.store import init_store, read_secret
from bench.procs import PYTHON, Child, free_port, wait_first_answer


def big_menu(dishes: int) -> dict:
    groups = [
        {
            "key": "spice",
            "name": {"zh": "辣度", "en": "Spice"},
            "min": 1,
            "max": 1,
            "options": [
                {"key": k, "name": {"zh": z, "en": k}} for k, z in (("none", "不辣"), ("mild", "微辣"), ("hot", "特辣"))
            ],
        },
        {
            "key": "addons",
            "name": {"zh": "加料", "en": "Add-ons"},
            "min": 0,
            "max": 3,
            "options": [
                {"key": f"a{i}", "name": {"zh": f"加料{i}", "en": f"Extra {i}"}, "price_delta_minor": 100 * i}
                for i in range(1, 6)
            ],
        },
    ]
    per = 20
    categories = []
    for c in range((dishes + per - 1) // per):
        items = []
        for i in range(min(per, dishes - c * per)):
            n = c * per + i
            item = {
                "key": f"d{n}",
                "name": {"zh": f"招牌红烧菜品第{n}号", "en": f"House braised dish number {n}"},
                "description": {
                    "zh": "慢火细炖，酱香浓郁，配时令蔬菜。",
                    "en": "Slow-braised, rich soy glaze, seasonal greens.",
                },
                "allergens": ["soybeans", "gluten"],
                "station": "kitchen",
                "option_groups": ["spice", "addons"][: n % 3],
            }
            if n % 4 == 0:
                item["variants"] = [
                    {"key": "s", "name": {"zh": "小", "en": "Small"}, "price_minor": 2800},
                    {"key": "l", "name": {"zh": "大", "en": "Large"}, "price_minor": 3800},
                ]
            else:
                item["price_minor"] = 1800 + 100 * (n % 50)
            items.append(item)
        categories.append({"key": f"c{c}", "name": {"zh": f"分类{c}", "en": f"Category {c}"}, "items": items})
    return {
        "stations": [{"key": "kitchen", "name": {"zh": "厨房", "en": "Kitchen"}}],
        "option_groups": groups,
        "categories": categories,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dishes", type=int, default=200)
    parser.add_argument("--cpu-slowdown", type=float, default=4.0, help="Chrome CPU throttling rate (1 = none)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    first_view = sum(
        len(gzip.compress((STATIC_DIR / n).read_bytes(), 9)) for n in ("diner.html", "diner.css", "diner.js")
    )
    tmp = Path(tempfile.mkdtemp(prefix="tablebox-page-bench-"))
    server = None
    try:
        settings = BoxSettings(data_dir=tmp / "store")
        init_store(settings, {"store_name": "Bench 大菜单"})
        conn = open_connection(settings.db_path)
        with conn:
            import_menu(conn, big_menu(args.dishes))
            table = add_table(conn, "A1")
        token = table_token(read_secret(settings.secret_path), load_store_settings(conn).store_id, table)
        conn.close()
        port = free_port()
        server = Child(
            "server",
            [
                PYTHON,
                "-m",
                "appliance",
                "serve",
                "--data-dir",
                str(settings.data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            log_path=tmp / "server.log",
        )
        wait_first_answer(server, port, "/healthz")
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=shutil.which("chromium") or "/usr/bin/chromium",
                args=[
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--no-first-run",
                ],
            )
            page = browser.new_page(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
            cdp = page.context.new_cdp_session(page)
            cdp.send("Emulation.setCPUThrottlingRate", {"rate": args.cpu_slowdown})
            page.goto(f"http://127.0.0.1:{port}/t/{token}")
            page.wait_for_selector(".item")
            page.wait_for_function("performance.getEntriesByName('tb-menu-rendered').length > 0")
            rendered = page.evaluate("performance.getEntriesByName('tb-menu-rendered')[0].startTime")
            dcl = page.evaluate("performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd")
            items = page.locator(".item").count()
            frames = page.evaluate("""() => new Promise(done => {
                const times = []; let last = performance.now();
                const step = () => {
                    const now = performance.now(); times.push(now - last); last = now;
                    window.scrollBy(0, 120);
                    if (window.innerHeight + window.scrollY >= document.body.scrollHeight - 2 || times.length > 2000) done(times);
                    else requestAnimationFrame(step);
                };
                requestAnimationFrame(step);
            })""")
            browser.close()
        frames = sorted(frames[1:])
        pct = lambda q: frames[min(len(frames) - 1, int(q * len(frames)))]  # noqa: E731
        print(f"dishes on the page          {items}")
        print(f"CPU slowdown                x{args.cpu_slowdown:g}")
        print(f"first view (html+css+js)    {first_view / 1024:.1f} KB gzipped   (target < 100 KB)")
        print(f"DOM content loaded          {dcl:.0f} ms")
        print(f"menu on screen              {rendered:.0f} ms after navigation start")
        print(
            f"scroll frames               {len(frames)}: p50 {pct(0.5):.1f} ms, p95 {pct(0.95):.1f} ms, "
            f"max {frames[-1]:.1f} ms, over 50 ms: {sum(f > 50 for f in frames)}"
        )
    finally:
        if server is not None:
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
