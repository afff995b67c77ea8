"""The page a QR code opens and its assets: served by the box, nothing from outside; bad codes say so."""

from __future__ import annotations

import re


def test_the_page_and_its_assets_come_from_the_box(client, token):
    r = client.get(f"/t/{token}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assets = [a for a in re.findall(r'(?:src|href)="([^"]+)"', r.text) if a != "data:,"]
    assert assets and all(a.startswith("/static/") for a in assets)
    for asset in assets:
        body = client.get(asset)
        assert body.status_code == 200 and len(body.content) > 100
        assert "http://" not in body.text and "https://" not in body.text  # no CDN, no outside font


def test_the_first_view_is_light():
    from appliance.web.pages import STATIC_DIR
    import gzip

    size = sum(len(gzip.compress((STATIC_DIR / name).read_bytes())) for name in ("diner.html", "diner.css", "diner.js"))
    assert size < 100_000, size


def test_a_forged_or_old_sticker_says_so_on_the_page(client, token):
    r = client.get(f"/t/{token[:-1]}{'b' if token[-1] != 'b' else 'c'}?lang=en")
    assert r.status_code == 403 and "not valid" in r.text
