"""What a diner reads about the store and its menu, in one language: the store block of GET /api/v1/tables/{token}
and the menu of GET .../menu. The web process serves it (cached per version in `appliance/web/menu_render.py`) and
the relay link pushes the very same to the public relay (`sync/relay_link.py`)."""

from __future__ import annotations

from typing import Any

from appliance.db.orders import Snapshot
from appliance.db.store_settings import StoreSettings
from appliance.domain.menu import Item, translate


def store_view(settings: StoreSettings, open_now: bool) -> dict[str, Any]:
    """The restaurant as the diner's page shows it (name, currency, languages, open now?)."""
    return {"name": settings.store_name, "currency": settings.currency,
            "currency_exponent": settings.money.exponent, "languages": list(settings.languages),
            "open_now": open_now, "opening_hours": list(settings.opening_hours),
            "service_charge_bp": settings.service_charge_bp, "tax_rate_bp": settings.tax_rate_bp}


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
