"""The page a QR code opens and its assets: served by the box, nothing from outside; bad codes say so."""

from __future__ import annotations

import re
from urllib.parse import urljoin


def test_the_page_and_its_assets_come_from_the_box(client, token):
    r = client.get(f"/t/{token}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assets = [a for a in re.findall(r'(?:src|href)="([^"]+)"', r.text) if a != "data:,"]
    # relative to the page, so the same page works at the relay's /s/STORE/t/TOKEN: here they are /static/...
    assert assets == ["../static/diner.css", "../static/diner.js"]
    for asset in assets:
        body = client.get(urljoin(f"/t/{token}", asset))
        assert body.status_code == 200 and len(body.content) > 100
        assert "http://" not in body.text and "https://" not in body.text  # no CDN, no outside font


def test_the_first_view_is_light():
    import gzip

    from appliance.diner_page import STATIC_DIR

    size = sum(len(gzip.compress((STATIC_DIR / name).read_bytes())) for name in ("diner.html", "diner.css", "diner.js"))
    assert size < 100_000, size


def test_a_forged_or_old_sticker_says_so_on_the_page(client, token):
    r = client.get(f"/t/{token[:-1]}{'b' if token[-1] != 'b' else 'c'}?lang=en")
    assert r.status_code == 403 and "not valid" in r.text
