"""What a diner reads about the store and its menu, in one language: the store block of GET /api/v1/tables/{token}
and the menu of GET .../menu. Pure: the store's menu (`appliance.domain.menu.Menu`) and settings in, the API's
shapes out. The box's web process serves it (cached per version, `appliance/web/menu_render.py`) and the box's relay
link pushes the very same to the relay (`sync/relay_link.py`), which answers phones with it byte for byte."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from appliance.contract.diner import CategoryOut, ItemOut, MenuOut, OptionGroupOut, OptionOut, StoreOut, VariantOut
from appliance.domain.menu import Item, Menu, translate
from appliance.domain.money import Currency

IMAGE_PATH = "/images/"  # a dish's photo as the API names it: /images/NAME (the box and the relay serve it there)


class StoreFacts(Protocol):
    """What the rendering needs of the store's settings (`appliance.db.store_settings.StoreSettings` has it)."""

    @property
    def store_name(self) -> str: ...

    @property
    def currency(self) -> str: ...

    @property
    def money(self) -> Currency: ...

    @property
    def languages(self) -> Sequence[str]: ...

    @property
    def opening_hours(self) -> Sequence[str]: ...

    @property
    def service_charge_bp(self) -> int: ...

    @property
    def tax_rate_bp(self) -> int: ...


def render_store(store: StoreFacts, open_now: bool) -> StoreOut:
    """The restaurant as the diner's page shows it (name, currency, languages, open now?)."""
    return StoreOut(
        name=store.store_name,
        currency=store.currency,
        currency_exponent=store.money.exponent,
        languages=list(store.languages),
        open_now=open_now,
        opening_hours=list(store.opening_hours),
        service_charge_bp=store.service_charge_bp,
        tax_rate_bp=store.tax_rate_bp,
    )


def render_item(item: Item, lang: str, minute_of_day: int, original_lang: str | None = None) -> ItemOut:
    """The dish in `lang`; `original_name` is its name in `original_lang` (the menu's first language) where that
    differs, so a diner reading a translation can show the staff the dish as the kitchen knows it."""
    prices = [v.price_minor for v in item.variants] or [item.price_minor or 0]
    name = translate(item.names, lang)
    original = translate(item.names, original_lang) if original_lang and original_lang != lang else None
    return ItemOut(
        id=item.id,
        name=name,
        original_name=original if original and original != name else None,
        description=translate(item.descriptions, lang),
        price_minor=item.price_minor,
        from_price_minor=min(prices),
        variants=[VariantOut(id=v.id, name=translate(v.names, lang), price_minor=v.price_minor) for v in item.variants],
        option_groups=[
            OptionGroupOut(
                id=g.id,
                name=translate(g.names, lang),
                min_choices=g.min_choices,
                max_choices=g.max_choices,
                options=[
                    OptionOut(
                        id=o.id,
                        name=translate(o.names, lang),
                        price_delta_minor=o.price_delta_minor,
                        sold_out=o.sold_out,
                    )
                    for o in g.options
                ],
            )
            for g in item.option_groups
        ],
        allergens=list(item.allergens),
        image=f"{IMAGE_PATH}{item.image}" if item.image else None,
        prep_minutes=item.prep_minutes,
        sold_out=item.sold_out,
        available_now=item.available_at(minute_of_day),
        available_hours=str(item.window) if item.window else None,
    )


def render_menu(menu: Menu, store: StoreFacts, lang: str, minute_of_day: int, *, version: int) -> MenuOut:
    """The whole menu in `lang` at `minute_of_day` (which windowed dishes are available now), as menu `version`;
    in a language other than the store's first, each dish also carries its name in the first (`original_name`)."""
    items = menu.items
    first = store.languages[0] if store.languages else None
    return MenuOut(
        version=version,
        lang=lang,
        languages=list(store.languages),
        currency=store.currency,
        currency_exponent=store.money.exponent,
        service_charge_bp=store.service_charge_bp,
        categories=[
            CategoryOut(
                id=c.id,
                name=translate(c.names, lang),
                items=[render_item(items[i], lang, minute_of_day, first) for i in c.item_ids],
            )
            for c in menu.categories
        ],
    )
