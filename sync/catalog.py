"""Pulling the ERP's catalog and stock and applying them to the local menu in one transaction.

The network comes first: catalog and stock are both fetched before anything is written, so an ERP that is
unreachable, slow or failing halfway leaves the menu exactly as it was. Then, in one transaction:

- dishes are matched by `items.erp_code`; the ERP's price replaces `price_minor` (a dish priced by sizes
  locally, i.e. with variants, keeps its own prices and is reported so); the ERP's names are merged over
  the local ones, so a translation only the box has (a zh name when the ERP speaks English) survives;
- a code the ERP has and the box does not becomes a new dish: key derived from the code, names from the
  ERP, in the local category whose name matches the ERP's category (or a new category named after it),
  cooked at the store's first station, shown to diners;
- a code that is gone from the ERP, or disabled there, marks the dish removed (`removed_at`): it leaves the
  diners' menu but stays in the table, so orders already placed keep their lines and bills; it comes back
  if the ERP lists it again;
- stock: `items.stock` becomes the ERP's count less what the box sold that the ERP has not received yet
  (orders still in this target's outbox), assuming, as stock syncing must, that the ERP's count goes down
  with the orders it receives. Zero sells the dish out; a positive count puts back on only a dish that
  was sold out *because its stock was 0*, never one a manager switched off by hand. Dishes the ERP does
  not count keep their local count.

Everything else is local and survives a pull: photos, descriptions, allergens, options, variants,
stations, sort order, categories of existing dishes, hours and the hidden flag.

Every change a diner can see moves the menu version through the schema's triggers (price, names, removed,
sold out, new dishes); stock counts alone do not, by design, and do not need to (the count is checked on
submit, and sold out, which diners see, does move it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import apsw
import structlog

from appliance.db import catalog as menu_db
from appliance.db.catalog import LinkedDish
from appliance.db.connection import utc_now, write_transaction
from appliance.db.menu import menu_version
from appliance.db.store_settings import load_store_settings
from appliance.domain.money import Currency, format_money
from sync.adapters.base import Adapter, Catalog, CatalogItem, DeliveryError, Rejected

log = structlog.get_logger("sync.catalog")

UNCATEGORISED_KEY = "erp_new"  # where a new dish the ERP files under no category goes
UNCATEGORISED_NAMES = {"zh": "新菜", "en": "New dishes"}


@dataclass
class CatalogChanges:
    """What one pull changed, by ERP item code (lists keep the ERP's codes; `dishes` maps code -> dish key)."""

    target: str
    price_changed: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)  # back on the menu: the ERP lists them again
    renamed: list[str] = field(default_factory=list)
    stock_changed: list[str] = field(default_factory=list)
    sold_out: list[str] = field(default_factory=list)  # sold out by this pull (stock 0)
    back_on: list[str] = field(default_factory=list)  # sold out for lack of stock, now stocked again
    kept_local: list[str] = field(default_factory=list)  # the ERP's price not applied (priced by sizes locally)
    notes: list[str] = field(default_factory=list)  # one human sentence per thing worth knowing
    prices: dict[str, tuple[int | None, int]] = field(default_factory=dict)  # code -> (old, new) minor units
    stock: dict[str, tuple[int | None, int]] = field(default_factory=dict)  # code -> (old, new)
    dishes: dict[str, str | None] = field(default_factory=dict)  # code -> local dish key
    menu_version: tuple[int, int] = (0, 0)  # before, after

    @property
    def changed(self) -> bool:
        return self.menu_version[0] != self.menu_version[1] or bool(self.stock_changed)

    def counts(self) -> dict[str, int]:
        return {
            name: len(getattr(self, name))
            for name in (
                "price_changed",
                "added",
                "removed",
                "restored",
                "renamed",
                "stock_changed",
                "sold_out",
                "back_on",
                "kept_local",
            )
        }

    def lines(self, currency: Currency) -> list[str]:
        """What changed, one line each, for `tablebox sync pull` and the console."""

        def dish(code: str) -> str:
            return f"{code} ({self.dishes[code]})" if code in self.dishes else code

        def money(minor: int | None) -> str:
            return "-" if minor is None else format_money(minor, currency)

        out = [
            f"price   {dish(c)}: {money(self.prices[c][0])} -> {money(self.prices[c][1])}" for c in self.price_changed
        ]
        out += [f"new     {dish(c)}" for c in self.added]
        out += [f"removed {dish(c)} (gone from the menu; past orders keep it)" for c in self.removed]
        out += [f"back    {dish(c)} (listed by the ERP again)" for c in self.restored]
        out += [f"renamed {dish(c)}" for c in self.renamed]
        out += [
            f"stock   {dish(c)}: {self.stock[c][0] if self.stock[c][0] is not None else '-'} -> {self.stock[c][1]}"
            for c in self.stock_changed
        ]
        out += [f"sold out {dish(c)} (stock 0)" for c in self.sold_out]
        out += [f"on sale {dish(c)} (in stock again)" for c in self.back_on]
        return out + [f"note    {n}" for n in self.notes]


def pull_and_apply(conn: apsw.Connection, adapter: Adapter, *, now: datetime | str | None = None) -> CatalogChanges:
    """Fetch the catalog and stock from the ERP, then apply both to the menu in one transaction.

    Raises the adapter's `Retryable`/`Rejected` (with "the menu is unchanged" in the message) when the ERP
    cannot be read, and `Rejected` for a catalog the box refuses (another currency; no items at all while
    dishes are linked to the ERP); in every such case nothing was written."""
    started = utc_now()
    try:
        catalog = adapter.pull_catalog()
        stock = adapter.pull_stock()
    except DeliveryError as exc:
        log.warning("sync.catalog.failed", target=adapter.name, error=exc.message)
        raise type(exc)(f"catalog not pulled, the menu is unchanged: {exc.message}", status=exc.status) from exc
    stamp = (
        now if isinstance(now, str) else (now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if now else utc_now())
    )
    try:
        # The write lock up front (BEGIN IMMEDIATE): a read upgraded to a write later could be refused at once.
        with write_transaction(conn):
            changes = apply_catalog(conn, adapter.name, catalog, stock, now=stamp, sold_since=started)
    except Rejected as exc:
        log.warning("sync.catalog.refused", target=adapter.name, error=exc.message)
        raise
    log.info("sync.catalog", target=adapter.name, **changes.counts(), menu_version=changes.menu_version[1])
    return changes


def apply_catalog(
    conn: apsw.Connection,
    target: str,
    catalog: Catalog,
    stock: Mapping[str, int],
    *,
    now: str,
    sold_since: str | None = None,
) -> CatalogChanges:
    """Apply a fetched catalog and stock inside the caller's transaction (see the module docstring).
    `sold_since`: orders this target delivered since then may be missing from the ERP's stock figures."""
    settings = load_store_settings(conn)
    if catalog.currency and catalog.currency != settings.currency:
        raise Rejected(
            f"{target}: the ERP's catalog is in {catalog.currency} but the store sells in"
            f" {settings.currency}; refusing it (nothing changed)"
        )
    changes = CatalogChanges(target)
    before = menu_version(conn)
    items: dict[str, CatalogItem] = {}
    for item in catalog.items:
        if item.code in items:
            changes.notes.append(f"{item.code}: listed twice by the ERP; the first one was used")
            continue
        items[item.code] = item
    linked = menu_db.linked_dishes(conn)
    live_linked = sum(1 for dishes in linked.values() for d in dishes if d.removed_at is None)
    if live_linked and not any(i.active for i in items.values()):
        raise Rejected(
            f"{target}: the ERP's catalog has no active items; refusing to remove {live_linked}"
            " dishes from the menu (check items_key and the catalog path)"
        )

    for code, item in sorted(items.items()):
        dishes = linked.get(code)
        if dishes:
            if item.active:
                for dish in dishes:
                    _update_dish(conn, dish, item, changes)
        elif item.active:
            _new_dish(conn, item, settings.languages[0], changes)
    for code, dishes in sorted(linked.items()):
        if code in items and items[code].active:
            continue
        for dish in dishes:
            if dish.removed_at is None:
                menu_db.set_removed(conn, dish.id, now)
                _add(changes.removed, code)
                changes.dishes[code] = dish.key
    _apply_stock(conn, target, stock, sold_since, changes)
    changes.menu_version = (before, menu_version(conn))
    return changes


def _add(codes: list[str], code: str) -> None:
    if code not in codes:
        codes.append(code)


def _update_dish(conn: apsw.Connection, dish: LinkedDish, item: CatalogItem, changes: CatalogChanges) -> None:
    code = item.code
    changes.dishes.setdefault(code, dish.key)
    if dish.removed_at is not None:
        menu_db.set_removed(conn, dish.id, None)
        _add(changes.restored, code)
    local_names = dict(dish.names)
    merged = {**local_names, **{lang: text for lang, text in item.names.items() if text}}
    if merged != local_names:
        menu_db.set_names(conn, dish.id, merged)
        _add(changes.renamed, code)
    if item.price_minor is None:
        changes.notes.append(f"{code}: the ERP gives no price; the local one is kept")
    elif dish.has_variants:
        _add(changes.kept_local, code)
        changes.notes.append(f"{code} ({dish.key}): priced by sizes locally; the ERP's price is not applied")
    elif dish.price_minor != item.price_minor:
        menu_db.set_price(conn, dish.id, item.price_minor)
        _add(changes.price_changed, code)
        changes.prices[code] = (dish.price_minor, item.price_minor)


def _new_dish(conn: apsw.Connection, item: CatalogItem, language: str, changes: CatalogChanges) -> None:
    if item.price_minor is None:
        changes.notes.append(f"{item.code}: new in the ERP but without a price; not added")
        return
    station = menu_db.first_station(conn)
    if station is None:
        raise Rejected("the store has no kitchen station to send new dishes to (add one, then pull again)")
    category_id = _category_for(conn, item.category, language)
    key = menu_db.add_dish(conn, _slug(item.code), category_id, item.names, item.price_minor, station, item.code)
    _add(changes.added, item.code)
    changes.dishes[item.code] = key
    changes.prices[item.code] = (None, item.price_minor)


def _category_for(conn: apsw.Connection, name: str | None, language: str) -> int:
    """The local category named like the ERP's (any language, case and spaces aside; shown ones first), or
    a new one named after it."""
    if name is None:
        key, names = UNCATEGORISED_KEY, UNCATEGORISED_NAMES
        found = menu_db.category_by_key(conn, key)
    else:
        wanted = " ".join(name.split()).casefold()
        found = next(
            (
                c.id
                for c in menu_db.categories(conn)
                if any(" ".join(str(v).split()).casefold() == wanted for v in c.names.values())
            ),
            None,
        )
        key, names = "erp_" + _slug(name), {language: name}
    if found is not None:
        return found
    return menu_db.add_category(conn, key, names)


def _slug(code: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", code.lower(), flags=re.ASCII).strip("_") or "item"


def _apply_stock(
    conn: apsw.Connection, target: str, stock: Mapping[str, int], sold_since: str | None, changes: CatalogChanges
) -> None:
    if not stock:
        return
    # Portions per dish in this target's orders the ERP may not have counted: not delivered yet, or delivered after
    # the pull started (counted twice at worst: we would rather sell out early than oversell).
    not_yet_in_erp = menu_db.sold_not_delivered(conn, target, sold_since)
    for code, dishes in sorted(menu_db.linked_dishes(conn).items()):
        if code not in stock:
            continue
        for dish in dishes:
            if dish.removed_at is not None:
                continue
            new = max(0, int(stock[code]) - not_yet_in_erp.get(dish.id, 0))
            old, sold_out = dish.stock, dish.sold_out
            if new == 0:
                set_sold_out = True
            elif sold_out and old == 0:
                set_sold_out = False  # it ran out of stock (not a manager's choice): back on sale
            else:
                set_sold_out = sold_out
            if old == new and set_sold_out == sold_out:
                continue
            menu_db.set_stock(conn, dish.id, new, set_sold_out)
            changes.dishes.setdefault(code, dish.key)
            if old != new:
                _add(changes.stock_changed, code)
                changes.stock[code] = (old, new)
            if set_sold_out and not sold_out:
                _add(changes.sold_out, code)
            elif sold_out and not set_sold_out:
                _add(changes.back_on, code)
