"""The diner's menu in one language, rendered once per menu version and cached as JSON bytes with an ETag."""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from appliance.db.orders import Snapshot
from appliance.domain.menu import Item, translate


def render_item(item: Item, lang: str, minute_of_day: int) -> dict[str, Any]:
    prices = [v.price_minor for v in item.variants] or [item.price_minor or 0]
    return {
        "id": item.id,
        "name": translate(item.names, lang),
        "description": translate(item.descriptions, lang),
        "price_minor": item.price_minor,
        "from_price_minor": min(prices),
        "variants": [{"id": v.id, "name": translate(v.names, lang), "price_minor": v.price_minor} for v in item.variants],
        "option_groups": [
            {
                "id": g.id, "name": translate(g.names, lang), "min_choices": g.min_choices, "max_choices": g.max_choices,
                "options": [{"id": o.id, "name": translate(o.names, lang), "price_delta_minor": o.price_delta_minor,
                             "sold_out": o.sold_out} for o in g.options],
            }
            for g in item.option_groups
        ],
        "allergens": list(item.allergens),
        "image": f"/images/{item.image}" if item.image else None,
        "prep_minutes": item.prep_minutes,
        "sold_out": item.sold_out,
        "available_now": item.available_at(minute_of_day),
        "available_hours": str(item.window) if item.window else None,
    }


def render_menu(snap: Snapshot, lang: str, minute_of_day: int) -> dict[str, Any]:
    settings = snap.settings
    items = snap.menu.items
    return {
        "version": snap.version,
        "lang": lang,
        "languages": list(settings.languages),
        "currency": settings.currency,
        "currency_exponent": settings.money.exponent,
        "service_charge_bp": settings.service_charge_bp,
        "categories": [
            {"id": c.id, "name": translate(c.names, lang),
             "items": [render_item(items[i], lang, minute_of_day) for i in c.item_ids]}
            for c in snap.menu.categories
        ],
    }


class MenuRenderCache:
    """(version, language, which windowed dishes are closed now) -> (ETag, JSON bytes)."""

    def __init__(self, store_id: str) -> None:
        self.store_id = store_id
        self._version = -1
        self._entries: dict[tuple[str, frozenset[int]], tuple[str, bytes]] = {}
        self.renders = 0

    def get(self, snap: Snapshot, lang: str, minute_of_day: int) -> tuple[str, bytes]:
        if snap.version != self._version:
            self._entries.clear()
            self._version = snap.version
        closed = snap.menu.unavailable_at(minute_of_day)
        key = (lang, closed)
        entry = self._entries.get(key)
        if entry is None:
            body = msgspec.json.encode(render_menu(snap, lang, minute_of_day))
            digest = hashlib.sha256(body).hexdigest()[:16]
            entry = (f'"{self.store_id}-{snap.version}-{lang}-{digest}"', body)
            if len(self._entries) > 64:
                self._entries.clear()
            self._entries[key] = entry
            self.renders += 1
        return entry
