"""The small pages a refused table code gets instead of the menu, in the diner's language with a switch (zh, en, ja).

An old sticker (410 `table_rekeyed`: the table was re-keyed and new stickers printed) is the common case: the diner
is sitting at a real table with a sticker staff forgot to replace. Its page names the store and the table, says
what to do, and offers a button that calls a waiter to that table (POST `old-sticker-call` beside the table's API;
the box marks the call as coming from an old sticker so staff bring the new code). Every other refusal (a forged
code, another store's, a removed table) gets one sentence saying why. No asset from the internet: styles and the
script are inline, and without script the page still says what to do (the language links reload with ?lang=)."""

from __future__ import annotations

import json
from html import escape

LANGS = ("zh", "en", "ja")
LANG_NAMES = {"zh": "中文", "en": "English", "ja": "日本語"}

# What the old-sticker page says. {table} is the table's name.
OLD_STICKER_TEXTS: dict[str, dict[str, str]] = {
    "zh": {
        "title": "此二维码已失效",
        "table": "桌号 {table}",
        "what": "这张桌的二维码已经换新。请向服务员索取本桌的新二维码，或点下面的按钮请服务员过来。",
        "ask": "请向服务员索取本桌的新二维码。",
        "call": "呼叫服务员",
        "calling": "正在呼叫…",
        "sent": "已通知服务员，请稍候。",
        "already": "服务员已收到呼叫，请稍候。",
        "wait": "刚刚已经呼叫过，请稍后再试。",
        "failed": "呼叫没有发出，请直接向服务员示意。",
        "lang": "语言",
    },
    "en": {
        "title": "This QR code is out of date",
        "table": "Table {table}",
        "what": "This table has a new code. Please ask a staff member for it, or tap the button below and a waiter "
        "will come to your table.",
        "ask": "Please ask a staff member for this table's new code.",
        "call": "Call a waiter",
        "calling": "Calling…",
        "sent": "A waiter has been called. Please wait a moment.",
        "already": "A waiter has already been called. Please wait a moment.",
        "wait": "You called a moment ago. Please try again shortly.",
        "failed": "The call did not go through. Please wave to a staff member.",
        "lang": "Language",
    },
    "ja": {
        "title": "このQRコードは古くなっています",
        "table": "テーブル {table}",
        "what": "このテーブルのコードは新しくなりました。スタッフに新しいコードをお尋ねいただくか、下のボタンで"
        "スタッフをお呼びください。",
        "ask": "このテーブルの新しいコードをスタッフにお尋ねください。",
        "call": "スタッフを呼ぶ",
        "calling": "呼び出し中…",
        "sent": "スタッフを呼びました。少々お待ちください。",
        "already": "すでにスタッフを呼んでいます。少々お待ちください。",
        "wait": "先ほど呼び出したばかりです。しばらくしてからお試しください。",
        "failed": "呼び出しできませんでした。お近くのスタッフにお声がけください。",
        "lang": "言語",
    },
}

_STYLE = (
    "*{box-sizing:border-box}"
    "body{font:17px/1.5 system-ui,-apple-system,'PingFang SC','Hiragino Sans','Noto Sans CJK SC',sans-serif;"
    "margin:0;color:#1d1d1f;background:#f6f4f1}"
    "main{max-width:30em;margin:0 auto;padding:1.25em 1em 2em}"
    "nav{display:flex;gap:.5em;justify-content:flex-end;flex-wrap:wrap;margin-bottom:1em}"
    "nav a{display:inline-flex;align-items:center;min-height:44px;min-width:44px;padding:0 .8em;border-radius:22px;"
    "border:1px solid #c9c4bd;color:#1d1d1f;text-decoration:none;background:#fff}"
    "nav a[aria-current=true]{background:#1d1d1f;color:#fff;border-color:#1d1d1f}"
    ".store{font-size:1.35em;font-weight:700;margin:0;overflow-wrap:anywhere}"
    ".table{color:#5b5650;margin:.1em 0 1.2em}"
    "h1{font-size:1.15em;margin:0 0 .4em;color:#a33a12}"
    ".card{background:#fff;border-radius:14px;padding:1.1em 1em;box-shadow:0 1px 3px rgba(0,0,0,.08)}"
    "p{margin:0 0 1em}"
    "button{font:inherit;font-weight:600;width:100%;min-height:48px;border:0;border-radius:24px;background:#c8461b;"
    "color:#fff;padding:.6em 1em;cursor:pointer}"
    "button:disabled{background:#8d8a86;cursor:default}"
    "[role=status]{min-height:1.5em;margin:.8em 0 0;font-weight:600}"
)

# The page's script: the language switch in place (no reload; remembered in the tb_lang cookie for the page's
# base path, like the menu's switch) and the waiter call. Strings come from the embedded JSON.
_SCRIPT = """(function(){
var data=JSON.parse(document.getElementById('tb-refusal').textContent);var T=data.texts;var lang=data.lang;
var btn=document.getElementById('call');var status=document.getElementById('status');var said=null;
function t(k){return (T[lang]||T.en)[k].replace('{table}',data.table||'');}
function apply(){document.documentElement.lang=lang;document.title=t('title');
document.querySelectorAll('[data-t]').forEach(function(el){el.textContent=t(el.getAttribute('data-t'));});
document.querySelectorAll('nav a').forEach(function(a){a.setAttribute('aria-current',a.dataset.lang===lang?'true':'false');});
document.querySelector('nav').setAttribute('aria-label',t('lang'));
if(btn&&!btn.disabled){btn.textContent=t('call');}if(said){status.textContent=t(said);}}
document.querySelectorAll('nav a').forEach(function(a){a.addEventListener('click',function(e){e.preventDefault();
lang=a.dataset.lang;var base=location.pathname.replace(/t\\/[^/]*$/,'');
document.cookie='tb_lang='+lang+';path='+base+';max-age=31536000;samesite=lax';
try{history.replaceState(null,'','?lang='+lang);}catch(err){}apply();});});
if(!btn){return;}
btn.addEventListener('click',function(){btn.disabled=true;btn.textContent=t('calling');said=null;status.textContent='';
fetch(data.call,{method:'POST',headers:{'Content-Type':'application/json','Accept-Language':lang},body:'{"kind":"waiter"}'})
.then(function(r){said=r.status===201||r.status===202?'sent':r.status===200?'already':r.status===429?'wait':'failed';})
.catch(function(){said='failed';}).then(function(){status.textContent=t(said);btn.textContent=t('call');
if(said!=='sent'&&said!=='already'){btn.disabled=false;}});});
})();"""


def _lang(lang: str) -> str:
    return lang if lang in LANGS else "en"


def _document(lang: str, title: str, body: str) -> bytes:
    return (
        f'<!doctype html><html lang="{escape(lang)}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{escape(title)}</title><style>{_STYLE}</style></head>'
        f"<body><main>{body}</main></body></html>"
    ).encode()


def _switch(lang: str, label: str) -> str:
    links = "".join(
        f'<a href="?lang={code}" lang="{code}" hreflang="{code}" data-lang="{code}"'
        f' aria-current="{"true" if code == lang else "false"}">{LANG_NAMES[code]}</a>'
        for code in LANGS
    )
    return f'<nav aria-label="{escape(label)}">{links}</nav>'


def old_sticker_html(lang: str, store_name: str, table: str | None, call_url: str | None) -> bytes:
    """The page an old sticker (410 `table_rekeyed`) opens: the store's name, the table's, what to do, and a button
    calling a waiter to that table (`call_url`, relative to the page; None where no call can be made: the page then
    only says to ask staff). The box answers the call 201 (or 200: one already waiting), the relay 202 (in the
    store's inbox for its box). `lang` is the phone's language (zh, en, ja; else English)."""
    lang = _lang(lang)
    texts = OLD_STICKER_TEXTS[lang]
    table_line = (
        f'<p class="table" data-t="table">{escape(texts["table"].format(table=table))}</p>'
        if table
        else '<p class="table"></p>'
    )
    if call_url:
        action = (
            f'<p data-t="what">{escape(texts["what"])}</p>'
            f'<button type="button" id="call">{escape(texts["call"])}</button>'
            '<p id="status" role="status" aria-live="polite"></p>'
        )
    else:
        action = f'<p data-t="ask">{escape(texts["ask"])}</p>'
    data = json.dumps(
        {"lang": lang, "table": table, "call": call_url, "texts": OLD_STICKER_TEXTS}, ensure_ascii=False
    ).replace("</", "<\\/")
    body = (
        _switch(lang, texts["lang"])
        + f'<p class="store">{escape(store_name)}</p>'
        + table_line
        + f'<div class="card"><h1 data-t="title">{escape(texts["title"])}</h1>{action}</div>'
        + f'<script id="tb-refusal" type="application/json">{data}</script><script>{_SCRIPT}</script>'
    )
    return _document(lang, texts["title"], body)


def refusal_html(text: str, lang: str, store_name: str | None = None) -> bytes:
    """A page with one sentence: why this table code does not open the menu (forged, another store's, a removed
    table...), under the store's name when it is known."""
    store = f'<p class="store">{escape(store_name)}</p>' if store_name else ""
    return _document(lang, text, f'{store}<div class="card"><h1>{escape(text)}</h1></div>')


def refusal_page(
    code: str,
    lang: str,
    text: str,
    *,
    store_name: str | None = None,
    table: str | None = None,
    call_url: str | None = None,
) -> bytes:
    """The page for a refused table code: the old-sticker page for `table_rekeyed` (when the store is known), else
    `text` (the refusal's sentence in `lang`). `call_url` is where the old-sticker page's waiter button posts."""
    if code == "table_rekeyed" and store_name:
        return old_sticker_html(lang, store_name, table, call_url)
    return refusal_html(text, lang, store_name)


def old_sticker_call_url(token: str) -> str:
    """Where an old sticker's page (at .../t/TOKEN) calls a waiter: the table's API beside the page, on the box
    (/api/v1/tables/TOKEN/old-sticker-call) and under /s/STORE/ on the relay alike."""
    return f"../api/v1/tables/{token}/old-sticker-call"
