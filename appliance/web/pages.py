"""GET /t/{token}: what a diner's phone opens from the QR sticker. For now a read-only menu preview
rendered on the server (no script, no asset from outside); the ordering page replaces it (issue #3)."""

from __future__ import annotations

from html import escape
from typing import Any

from litestar import Request, Response, get
from litestar.params import FromPath

from appliance.db.tables import resolve_token
from appliance.domain.errors import DomainError
from appliance.domain.menu import translate
from appliance.domain.money import format_money
from appliance.web.errors import STATUS_BY_CODE, request_lang
from appliance.web.messages import message_for

STYLE = ("body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:40em;padding:1em;color:#222}"
         "h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;border-bottom:1px solid #ccc;margin-top:1.5em}"
         "li{display:flex;justify-content:space-between;gap:1em;padding:.3em 0}ul{list-style:none;padding:0}"
         ".out{color:#888;text-decoration:line-through}.note{background:#fff6d6;padding:.6em;border-radius:.4em}")


def _page(title: str, body: str, lang: str, status: int = 200) -> Response[str]:
    html = (f'<!doctype html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1"><title>{escape(title)}</title>'
            f"<style>{STYLE}</style></head><body>{body}</body></html>")
    return Response(content=html, status_code=status, media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})


@get("/t/{token:str}", operation_id="dinerPage", summary="The page a table's QR code opens", tags=["diner"],
     include_in_schema=False)
async def diner_page(request: Request[Any, Any, Any], token: FromPath[str]) -> Response[str]:
    state = request.app.state
    store = state.store
    lang = request_lang(request)
    try:
        table = resolve_token(state.read_cache.get(store.read).tables.get, store.secret, store.store_id, token)
    except DomainError as exc:
        text = message_for(exc.code, lang, exc.details, exc.message)
        return _page("Tablebox", f"<h1>{escape(text)}</h1>", lang, STATUS_BY_CODE.get(exc.code, 403))
    snap = state.read_cache.get(store.read)
    settings = snap.settings
    if lang not in settings.languages:
        lang = settings.languages[0]
    minute = settings.minute_of_day()
    money = settings.money
    parts = [f"<h1>{escape(settings.store_name)}</h1>",
             f"<p>{'桌号' if lang == 'zh' else 'Table'} <strong>{escape(table.name)}</strong></p>",
             '<p class="note">' + ("菜单预览：手机点餐页面即将上线，请向服务员点餐。" if lang == "zh" else
                                  "Menu preview: ordering from this page is coming soon; please order with staff.")
             + "</p>"]
    for category in snap.menu.categories:
        parts.append(f"<h2>{escape(translate(category.names, lang))}</h2><ul>")
        for item_id in category.item_ids:
            item = snap.menu.items[item_id]
            prices = [v.price_minor for v in item.variants] or [item.price_minor or 0]
            price = format_money(min(prices), money) + ("+" if len(set(prices)) > 1 else "")
            unavailable = item.sold_out or not item.available_at(minute)
            label = ("售罄" if lang == "zh" else "sold out") if item.sold_out else (
                ("暂不供应" if lang == "zh" else "not now") if unavailable else price)
            css = ' class="out"' if unavailable else ""
            parts.append(f"<li{css}><span>{escape(translate(item.names, lang))}</span><span>{escape(label)}</span></li>")
        parts.append("</ul>")
    return _page(settings.store_name, "".join(parts), lang)
