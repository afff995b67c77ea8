"""Reading the menu as one consistent snapshot, importing a menu file, and staff's menu edits."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import apsw

from appliance.db.connection import dumps, scalar
from appliance.domain.errors import DomainError
from appliance.domain.menu import Category, Item, Menu, Option, OptionGroup, Variant, Window


def menu_version(conn: apsw.Connection) -> int:
    return int(scalar(conn, "SELECT version FROM menu_meta"))


def load_menu(conn: apsw.Connection) -> Menu:
    """The whole visible menu (removed items excluded) read in one read transaction."""
    with conn:  # a savepoint: all the reads below see the same snapshot
        version = menu_version(conn)
        options_by_group: dict[int, list[Option]] = defaultdict(list)
        for oid, gid, names, delta, sold_out in conn.execute(
            "SELECT id, group_id, names, price_delta_minor, sold_out FROM options ORDER BY group_id, sort, id"
        ):
            options_by_group[gid].append(Option(oid, gid, _names(names), delta, bool(sold_out)))
        groups = {
            gid: OptionGroup(gid, _names(names), lo, hi, tuple(options_by_group[gid]))
            for gid, names, lo, hi in conn.execute("SELECT id, names, min_choices, max_choices FROM option_groups")
        }
        groups_by_item: dict[int, list[OptionGroup]] = defaultdict(list)
        for item_id, gid in conn.execute(
            "SELECT item_id, group_id FROM item_option_groups ORDER BY item_id, sort, group_id"
        ):
            groups_by_item[item_id].append(groups[gid])
        variants_by_item: dict[int, list[Variant]] = defaultdict(list)
        for vid, item_id, names, price in conn.execute(
            "SELECT id, item_id, names, price_minor FROM variants ORDER BY item_id, sort, id"
        ):
            variants_by_item[item_id].append(Variant(vid, item_id, _names(names), price))
        items: dict[int, Item] = {}
        items_by_category: dict[int, list[int]] = defaultdict(list)
        for row in conn.execute(
            "SELECT id, category_id, names, descriptions, price_minor, image, allergens, station, prep_minutes,"
            " available_from, available_until, sold_out, hidden FROM items WHERE removed_at IS NULL"
            " ORDER BY category_id, sort, id"
        ):
            (iid, cid, names, descs, price, image, allergens, station, prep, a_from, a_until, sold_out, hidden) = row
            window = Window.parse(a_from, a_until) if a_from and a_until else None
            items[iid] = Item(
                id=iid,
                category_id=cid,
                names=_names(names),
                descriptions=_names(descs),
                price_minor=price,
                variants=tuple(variants_by_item[iid]),
                option_groups=tuple(groups_by_item[iid]),
                station=station,
                allergens=tuple(json.loads(allergens)),
                image=image,
                prep_minutes=prep,
                window=window,
                sold_out=bool(sold_out),
                hidden=bool(hidden),
            )
            if not hidden:
                items_by_category[cid].append(iid)
        categories = tuple(
            Category(cid, _names(names), tuple(items_by_category[cid]))
            for cid, names in conn.execute("SELECT id, names FROM categories WHERE hidden = 0 ORDER BY sort, id")
            if items_by_category[cid]
        )
    return Menu(version, categories, MappingProxyType(items))


def _names(text: str) -> Mapping[str, str]:
    return MappingProxyType(json.loads(text))


def counted_stock(conn: apsw.Connection, item_ids: list[int]) -> dict[int, int]:
    """Current stock of those items that have a count (read inside the writer's transaction)."""
    if not item_ids:
        return {}
    marks = ",".join("?" * len(item_ids))
    return dict(conn.execute(f"SELECT id, stock FROM items WHERE stock IS NOT NULL AND id IN ({marks})", item_ids))


def take_stock(conn: apsw.Connection, taken: Mapping[int, int]) -> list[int]:
    """Subtract ordered quantities; a dish reaching zero becomes sold out. Returns the ids that sold out now."""
    sold_out_now = []
    for item_id, quantity in taken.items():
        left = scalar(
            conn,
            "UPDATE items SET stock = stock - ?1, sold_out = CASE WHEN stock - ?1 <= 0 THEN 1 ELSE sold_out END"
            " WHERE id = ?2 RETURNING stock",
            (quantity, item_id),
        )
        if left == 0:
            sold_out_now.append(item_id)
    return sold_out_now


def set_sold_out(conn: apsw.Connection, item_id: int, sold_out: bool) -> None:
    if (
        conn.execute("UPDATE items SET sold_out = ? WHERE id = ? RETURNING id", (int(sold_out), item_id)).fetchone()
        is None
    ):
        raise DomainError("unknown_item", "no such dish", item_id=item_id)


def set_stock(conn: apsw.Connection, item_id: int, stock: int | None) -> None:
    """Set a dish's stock count (None: not counted). A positive count puts a sold-out dish back on."""
    if stock is not None and stock < 0:
        raise DomainError("invalid_stock", "stock cannot be negative", item_id=item_id)
    sold_out_sql = "sold_out" if stock is None else ("1" if stock == 0 else "0")
    row = conn.execute(
        f"UPDATE items SET stock = ?, sold_out = {sold_out_sql} WHERE id = ? RETURNING id", (stock, item_id)
    ).fetchone()
    if row is None:
        raise DomainError("unknown_item", "no such dish", item_id=item_id)


def set_image(conn: apsw.Connection, item_key: str, image: str | None) -> int:
    """Attach a prepared photo (see appliance.images) to a dish, by its key or id. Returns the dish id."""
    row = conn.execute(
        "UPDATE items SET image = ? WHERE key = ? OR CAST(id AS TEXT) = ? RETURNING id", (image, item_key, item_key)
    ).fetchone()
    if row is None:
        raise DomainError("unknown_item", f"no dish with key or id {item_key!r}", item=item_key)
    return int(row[0])


def set_price(conn: apsw.Connection, item_id: int, price_minor: int, variant_id: int | None = None) -> None:
    if not isinstance(price_minor, int) or price_minor < 0:
        raise DomainError("invalid_price", "a price is a whole, non-negative number of minor units")
    if variant_id is None:
        row = conn.execute(
            "UPDATE items SET price_minor = ? WHERE id = ? AND NOT EXISTS (SELECT 1 FROM variants WHERE item_id = ?)"
            " RETURNING id",
            (price_minor, item_id, item_id),
        ).fetchone()
    else:
        row = conn.execute(
            "UPDATE variants SET price_minor = ? WHERE id = ? AND item_id = ? RETURNING id",
            (price_minor, variant_id, item_id),
        ).fetchone()
    if row is None:
        raise DomainError(
            "unknown_item",
            "no such dish or variant (dishes with variants are priced per variant)",
            item_id=item_id,
            variant_id=variant_id,
        )


def import_menu(conn: apsw.Connection, data: Mapping[str, Any]) -> dict[str, int]:
    """Load a menu file (the demo's format: stations, option_groups, categories with items) into an
    empty store; keys become stable references. Returns counts of what was created."""
    if scalar(conn, "SELECT count(*) FROM items"):
        raise DomainError("menu_not_empty", "this store already has a menu")
    for sort, station in enumerate(data.get("stations", [])):
        conn.execute(
            "INSERT INTO stations (key, names, sort) VALUES (?, ?, ?)",
            (station["key"], dumps(station.get("name", {})), sort),
        )
    group_ids: dict[str, int] = {}
    for group in data.get("option_groups", []):
        group_ids[group["key"]] = scalar(
            conn,
            "INSERT INTO option_groups (key, names, min_choices, max_choices) VALUES (?, ?, ?, ?) RETURNING id",
            (group["key"], dumps(group["name"]), group.get("min", 0), group.get("max", 1)),
        )
        for sort, option in enumerate(group["options"]):
            conn.execute(
                "INSERT INTO options (group_id, key, names, price_delta_minor, sold_out, sort) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    group_ids[group["key"]],
                    option["key"],
                    dumps(option["name"]),
                    option.get("price_delta_minor", 0),
                    int(option.get("sold_out", False)),
                    sort,
                ),
            )
    counts = {"categories": 0, "items": 0, "variants": 0}
    for csort, category in enumerate(data.get("categories", [])):
        cid = scalar(
            conn,
            "INSERT INTO categories (key, names, sort) VALUES (?, ?, ?) RETURNING id",
            (category["key"], dumps(category["name"]), csort),
        )
        counts["categories"] += 1
        for isort, item in enumerate(category["items"]):
            window = item.get("available") or {}
            if window:
                Window.parse(window["from"], window["until"])  # refuse a malformed window now
            has_variants = bool(item.get("variants"))
            if has_variants == ("price_minor" in item):
                raise DomainError("invalid_menu", f"item {item['key']}: give either price_minor or variants")
            stock = item.get("stock")
            iid = scalar(
                conn,
                "INSERT INTO items (key, category_id, names, descriptions, price_minor, image, allergens, station,"
                " prep_minutes, available_from, available_until, sold_out, stock, hidden, sort)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
                (
                    item["key"],
                    cid,
                    dumps(item["name"]),
                    dumps(item.get("description", {})),
                    item.get("price_minor"),
                    item.get("image"),
                    dumps(item.get("allergens", [])),
                    item["station"],
                    item.get("prep_minutes"),
                    window.get("from"),
                    window.get("until"),
                    int(item.get("sold_out", False) or stock == 0),
                    stock,
                    int(item.get("hidden", False)),
                    isort,
                ),
            )
            counts["items"] += 1
            for vsort, variant in enumerate(item.get("variants", [])):
                conn.execute(
                    "INSERT INTO variants (item_id, key, names, price_minor, sort) VALUES (?, ?, ?, ?, ?)",
                    (iid, variant["key"], dumps(variant["name"]), variant["price_minor"], vsort),
                )
                counts["variants"] += 1
            for gsort, gkey in enumerate(item.get("option_groups", [])):
                if gkey not in group_ids:
                    raise DomainError("invalid_menu", f"item {item['key']}: unknown option group {gkey!r}")
                conn.execute(
                    "INSERT INTO item_option_groups (item_id, group_id, sort) VALUES (?, ?, ?)",
                    (iid, group_ids[gkey], gsort),
                )
    return counts


def set_hidden(conn: apsw.Connection, item_id: int, hidden: bool) -> None:
    """Hide a dish from diners (it stays on the console and in past orders) or show it again."""
    if conn.execute("UPDATE items SET hidden = ? WHERE id = ? RETURNING id", (int(hidden), item_id)).fetchone() is None:
        raise DomainError("unknown_item", "no such dish", item_id=item_id)


def set_window(conn: apsw.Connection, item_id: int, window: Window | None) -> None:
    """When a dish is served each day (local time; None: all day)."""
    if window is not None and window.start == window.until:
        raise DomainError("invalid_window", "start and end are the same: leave it empty for all day", item_id=item_id)
    start, _, until = str(window).partition("-") if window else (None, None, None)
    row = conn.execute(
        "UPDATE items SET available_from = ?, available_until = ? WHERE id = ? RETURNING id", (start, until, item_id)
    ).fetchone()
    if row is None:
        raise DomainError("unknown_item", "no such dish", item_id=item_id)


# -- The menu as staff run it (the console): every dish, hidden ones too --------------------------------------------


@dataclass(frozen=True, slots=True)
class DishVariant:
    id: int
    names: Mapping[str, str]
    price_minor: int


@dataclass(frozen=True, slots=True)
class Dish:
    id: int
    key: str  # the item's key, or its id when it has none
    category_id: int
    category: Mapping[str, str]  # the category's names
    names: Mapping[str, str]
    price_minor: int | None  # None: priced by its variants
    variants: tuple[DishVariant, ...]
    stock: int | None  # None: not counted
    sold_out: bool
    hidden: bool
    window: Window | None  # None: served all day


def staff_dishes(conn: apsw.Connection) -> list[Dish]:
    """Every dish on the menu, hidden ones too (removed ones not), in menu order (one read transaction)."""
    with conn:
        variants: dict[int, list[DishVariant]] = defaultdict(list)
        for vid, item_id, names, price in conn.execute(
            "SELECT id, item_id, names, price_minor FROM variants ORDER BY item_id, sort, id"
        ):
            variants[item_id].append(DishVariant(vid, _names(names), price))
        dishes = [
            Dish(
                iid,
                key or str(iid),
                cid,
                _names(cnames),
                _names(names),
                price,
                tuple(variants[iid]),
                stock,
                bool(sold_out),
                bool(hidden),
                Window.parse(a_from, a_until) if a_from and a_until else None,
            )
            for iid, key, cid, cnames, names, price, stock, sold_out, hidden, a_from, a_until in conn.execute(
                "SELECT i.id, i.key, c.id, c.names, i.names, i.price_minor, i.stock, i.sold_out, i.hidden,"
                " i.available_from, i.available_until FROM items i JOIN categories c ON c.id = i.category_id"
                " WHERE i.removed_at IS NULL ORDER BY c.sort, c.id, i.sort, i.id"
            )
        ]
    return dishes  # noqa: RET504 - outside the `with`: apsw's __exit__ may swallow, for the type checker


def station_keys(conn: apsw.Connection) -> list[str]:
    """The kitchen stations' keys, in their order."""
    return [key for (key,) in conn.execute("SELECT key FROM stations ORDER BY sort, key")]
