"""What each refusal says to a diner, in Chinese and English, keyed by the error's stable code."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from appliance.domain.menu import translate

# {placeholders} are filled from the error's details (and `item`, the dish's name in the diner's language).
MESSAGES: dict[str, dict[str, str]] = {
    "forged_token": {"en": "This QR code is not valid here.", "zh": "此二维码无效。"},
    "other_store": {"en": "This QR code belongs to another restaurant.", "zh": "此二维码属于其他餐厅。"},
    "table_rekeyed": {
        "en": "This QR code is out of date. Please ask staff for the table's new code.",
        "zh": "此二维码已失效，请向服务员索取新的桌码。",
    },
    "table_gone": {
        "en": "This table no longer takes orders. Please ask staff.",
        "zh": "此桌已停止点餐，请咨询服务员。",
    },
    "table_not_open": {
        "en": "This table is not open for orders yet. Please ask staff to seat you.",
        "zh": "此桌尚未开台，请联系服务员。",
    },
    "store_closed": {"en": "The restaurant is not taking orders right now.", "zh": "餐厅当前不接受点餐。"},
    "price_changed": {"en": "Prices have changed. The new total is {total}.", "zh": "价格已更新，新的合计为 {total}。"},
    "sold_out": {"en": "Line {line}: {item} is sold out.", "zh": "第 {line} 项：{item} 已售罄。"},
    "not_enough_stock": {
        "en": "Line {line}: only {available} of {item} left.",
        "zh": "第 {line} 项：{item} 仅剩 {available} 份。",
    },
    "unknown_item": {"en": "Line {line}: this dish is no longer on the menu.", "zh": "第 {line} 项：该菜品已下架。"},
    "unavailable_now": {
        "en": "Line {line}: {item} is served only {window}.",
        "zh": "第 {line} 项：{item} 仅在 {window} 供应。",
    },
    "variant_required": {"en": "Line {line}: choose a size for {item}.", "zh": "第 {line} 项：请为 {item} 选择规格。"},
    "unknown_variant": {
        "en": "Line {line}: that size is not offered for {item}.",
        "zh": "第 {line} 项：{item} 没有该规格。",
    },
    "invalid_option": {
        "en": "Line {line}: the choices for {item} are not valid ({reason}).",
        "zh": "第 {line} 项：{item} 的选项无效（{reason}）。",
    },
    "invalid_quantity": {
        "en": "Line {line}: the quantity must be between 1 and 99.",
        "zh": "第 {line} 项：数量须在 1 到 99 之间。",
    },
    "empty_order": {"en": "The order has no dishes.", "zh": "订单中没有菜品。"},
    "too_many_lines": {"en": "An order can have at most {max_lines} lines.", "zh": "每单最多 {max_lines} 项。"},
    "text_too_long": {
        "en": "The {field} is too long (at most {max_chars} characters).",
        "zh": "备注过长（最多 {max_chars} 个字）。",
    },
    "idempotency_key_reused": {
        "en": "This order key was already used for a different order.",
        "zh": "该订单标识已用于另一笔订单。",
    },
    "invalid_body": {"en": "The request is not valid: {problem}", "zh": "请求无效：{problem}"},
    "malformed_json": {"en": "The request is not valid JSON.", "zh": "请求不是有效的 JSON。"},
    "body_too_large": {"en": "The request is too large.", "zh": "请求过大。"},
    "rate_limited": {
        "en": "Too many requests. Please wait a moment and try again.",
        "zh": "操作过于频繁，请稍后再试。",
    },
    "no_open_visit": {"en": "There is nothing to pay at this table yet.", "zh": "此桌还没有需要结账的订单。"},
    "not_allowed": {"en": "That is not allowed now.", "zh": "当前不允许此操作。"},
    "illegal_transition": {"en": "That change is not possible for this order.", "zh": "该订单不能进行此操作。"},
    "not_found": {"en": "Not found.", "zh": "未找到。"},
    "method_not_allowed": {"en": "Method not allowed.", "zh": "不支持该请求方法。"},
    "bad_request": {"en": "The request is not valid.", "zh": "请求无效。"},
    "unsupported_media_type": {"en": "Send the body as application/json.", "zh": "请以 application/json 发送请求。"},
    "storage_unavailable": {
        "en": "The order was NOT taken: the restaurant's system could not save it. Please try again.",
        "zh": "订单未提交成功：系统暂时无法保存，请重试。",
    },
    "disk_full": {
        "en": "NOT sent: the restaurant's system is out of storage space. Please tell staff.",
        "zh": "未能提交：餐厅系统存储空间已满，请告知服务员。",
    },
    "shutting_down": {
        "en": "The restaurant's system is restarting. Please try again in a moment.",
        "zh": "系统正在重启，请稍后再试。",
    },
    "internal_error": {
        "en": "Something went wrong on our side. Please try again or ask staff.",
        "zh": "系统出错，请重试或联系服务员。",
    },
}

OPTION_REASONS = {
    "below_min": {"en": "too few chosen", "zh": "选择太少"},
    "above_max": {"en": "too many chosen", "zh": "选择太多"},
    "not_offered": {"en": "not offered for this dish", "zh": "该菜品不提供此选项"},
    "duplicate": {"en": "chosen twice", "zh": "重复选择"},
    "negative_price": {"en": "price below zero", "zh": "价格无效"},
}


class _Missing(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def message_for(code: str, lang: str, details: Mapping[str, Any], fallback: str, money: Any = None) -> str:
    """The diner-facing sentence for an error, in `lang` (zh or en; anything else falls back to English)."""
    texts = MESSAGES.get(code)
    if texts is None:
        return fallback
    text = texts.get(lang) or texts["en"]
    values = _Missing(details)
    names = details.get("item_names")
    if isinstance(names, Mapping):
        values["item"] = translate(names, lang)
    if "reason" in details and details["reason"] in OPTION_REASONS:
        values["reason"] = translate(OPTION_REASONS[details["reason"]], lang)
    if "total_minor" in details and money is not None:
        values["total"] = money(details["total_minor"])
    return text.format_map(values)


def choose_lang(explicit: str | None, accept_language: str) -> str:
    """The diner's language (the same rule on the box and on the relay): ?lang=, else the browser's
    Accept-Language, else Chinese."""
    if explicit:
        return "zh" if explicit.lower().startswith("zh") else explicit.lower()[:2]
    for part in accept_language.split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("zh"):
            return "zh"
        if tag[:2] in {"en", "ja"}:
            return tag[:2]
    return "zh"


# Our code for the web framework's own refusals, by HTTP status (anything else: internal_error / bad_request).
CODE_BY_HTTP_STATUS = {
    400: "malformed_json",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
}


def code_for_http_status(status: int) -> str:
    return CODE_BY_HTTP_STATUS.get(status) or ("internal_error" if status >= 500 else "bad_request")
