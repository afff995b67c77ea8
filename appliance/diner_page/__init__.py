"""The diner's page as files: the static shell, its CSS and JS (no asset from the internet), and the small page a
refused table code gets. Served by the box at /t/{token} and, for phones off the store Wi-Fi, by the relay at the
same paths, so one sticker URL works on either; the script finds its API beside the page it was loaded from."""

from __future__ import annotations

from html import escape
from importlib import resources
from pathlib import Path

STATIC_DIR = Path(str(resources.files("appliance.diner_page").joinpath("static")))
FILES = ("diner.html", "diner.css", "diner.js")
SHELL = (STATIC_DIR / "diner.html").read_bytes()
HTML = "text/html; charset=utf-8"


def refusal_html(text: str, lang: str) -> bytes:
    """A page with one sentence: why this table code does not open the menu (forged, re-keyed, offline...)."""
    return (
        f'<!doctype html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1"><title>Tablebox</title>'
        "<style>body{font:18px/1.5 system-ui,sans-serif;margin:2em auto;max-width:30em;padding:1em}</style>"
        f"</head><body><h1>{escape(text)}</h1></body></html>"
    ).encode()
