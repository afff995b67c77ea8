"""The page a QR code opens and its assets: served by the box, nothing from outside; bad codes say so."""

from __future__ import annotations

import re

import pytest

from appliance.diner_page import slim


def test_the_page_and_its_assets_come_from_the_box(client, token):
    r = client.get(f"/t/{token}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assets = [a for a in re.findall(r'(?:src|href)="([^"]+)"', r.text) if a != "data:,"]
    # the first view is one document: styles and script are in it, nothing to fetch before the menu shows
    assert assets == []
    assert "<style>" in r.text and "function readBoot" in r.text
    # no CDN, no outside font or script: nothing loads from an http(s) address (an SVG's xmlns names no download)
    assert (
        re.findall(
            r'(?:src|href|action)\s*=\s*["\']?https?:|url\(\s*["\']?https?:|@import|import\(|fetch\(\s*["\'`]https?:',
            r.text,
        )
        == []
    )


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_the_first_view_is_light(client, token, lang):
    """The issue's target for the 64-dish demo menu: at most 25 KB over the wire for the first view, which is the
    page alone (styles, script and data in it), as a phone first gets it: brotli's quick copy (delivery.py)."""
    with client.stream("GET", f"/t/{token}?lang={lang}", headers={"Accept-Encoding": "gzip, deflate, br"}) as r:
        raw = b"".join(r.iter_raw())
    assert r.headers["content-encoding"] == "br"
    assert len(raw) + sum(len(k) + len(v) + 4 for k, v in r.headers.items()) <= 25_000, len(raw)


@pytest.mark.parametrize(
    "text,js,sent",
    [
        ("  a();\n\n    // why\n  b(); // stays\n", True, "a();\nb(); // stays"),
        ("  .a {\n    color: red;\n  }\n", False, ".a {\ncolor: red;\n}"),
        ("  x = `one\n  two`;\n", True, "  x = `one\n  two`;\n"),  # a template literal over lines: as written
        ('  x = "one \\\n  two";\n', True, '  x = "one \\\n  two";\n'),  # a string continued: as written
        ("  // not a comment in CSS\n", False, "// not a comment in CSS"),
    ],
)
def test_the_parts_are_slimmed_without_changing_a_line(text, js, sent):
    assert slim(text, js) == sent


def test_a_forged_or_old_sticker_says_so_on_the_page(client, token):
    r = client.get(f"/t/{token[:-1]}{'b' if token[-1] != 'b' else 'c'}?lang=en")
    assert r.status_code == 403 and "not valid" in r.text
