"""The diner's page as files: the shell, its CSS and JS (no asset from the internet), joined into one document
that carries its first view's data (`page`, `boot_json`); how it travels (compression, validators, the page's
language) is in `delivery`, the small page a refused table code gets in `refusal`. Served by the box at /t/{token}
and, for phones off the store Wi-Fi, by the relay at the same paths under /s/{store}/, so one sticker URL works on
either; the script finds its API beside the page it was loaded from."""

from __future__ import annotations

import json
import re
from functools import cache
from html import escape
from importlib import resources
from pathlib import Path

STATIC_DIR = Path(str(resources.files("appliance.diner_page").joinpath("static")))
# The script's parts, joined in this order inside one function (they share its variables).
SCRIPT_PARTS = ("diner.core.js", "diner.net.js", "diner.sheets.js", "diner.js")
STYLE_PARTS = ("diner.css", "diner.sheets.css")
FILES = ("diner.html", *STYLE_PARTS, *SCRIPT_PARTS)
SERVICE_WORKER = "sw.js"  # served at /sw.js on the box, /s/{store}/sw.js on the relay (the page's ../sw.js)
HTML = "text/html; charset=utf-8"
JS = "text/javascript; charset=utf-8"
CSS = "text/css; charset=utf-8"
_HTML_LANG = re.compile(r'<html lang="[^"]*"')


def slim(text: str, js: bool) -> str:
    """A part as the phone gets it: no indentation, no blank line and (JS) no line that is only a `//` comment,
    which takes a sixth off the compressed page. Line breaks stay (no statement changes meaning), and code is never
    touched inside a line. A part where a line ends inside a string (a template literal or a string spanning lines,
    where leading blanks are text) is sent as written."""
    lines = text.split("\n")
    if any((js and line.count("`") % 2) or line.endswith("\\") for line in lines):
        return text
    kept = (line.strip() for line in lines)
    return "\n".join(line for line in kept if line and not (js and line.startswith("//")))


def _read(names: tuple[str, ...], js: bool) -> str:
    return "\n".join(slim((STATIC_DIR / name).read_text(encoding="utf-8"), js) for name in names)


def script() -> str:
    """The page's script: its parts (slimmed) inside one strict-mode function."""
    return '"use strict";\n(function () {\n' + _read(SCRIPT_PARTS, js=True) + "\n})();\n"


@cache
def _template() -> tuple[str, str]:
    """The page before and after its embedded data, styles and script in place (read once per process)."""
    html = (STATIC_DIR / "diner.html").read_text(encoding="utf-8")
    css = _read(STYLE_PARTS, js=False)
    whole = html.replace("/*TB-CSS*/", css).replace("/*TB-JS*/", script().replace("</script", "<\\/script"))
    before, _, after = whole.partition("/*TB-BOOT*/")
    return before, after


def page(boot_json: str = "null", lang: str | None = None) -> bytes:
    """The whole first view as one document: styles, script and the embedded data (`boot_json`, any JSON: its
    every `<`, which JSON only has inside strings, is written \\u003c, so no `</script>` or `<!--` in a dish name can
    end or confuse its script element). `lang` becomes the document's language (<html lang>)."""
    before, after = _template()
    if lang:
        before = _HTML_LANG.sub(f'<html lang="{escape(lang)}"', before, count=1)
    return (before + boot_json.replace("<", "\\u003c") + after).encode()


def boot_json(lang: str, info: bytes, menu: bytes) -> str:
    """The page's embedded data, as the script's readBoot() takes it: the language it is in, the table's answer
    (GET /api/v1/tables/T) and the menu's (GET .../menu?lang=), both given as the JSON the API sends."""
    return '{"lang":' + json.dumps(lang) + ',"info":' + info.decode() + ',"menu":' + menu.decode() + "}"
