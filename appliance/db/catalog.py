"""Applying a catalog pulled from an ERP to the menu: the reads and writes on items and categories that
`sync.catalog` (which decides what changes: the ERP-to-menu mapping) asks for. Every function runs inside the
caller's transaction (`connection.write_transaction`); none commits on its own."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import apsw

from appliance.db.connection import dumps, scalar


@dataclass(frozen=True, slots=True)
class LinkedDish:
    """A dish linked to an ERP item (`items.erp_code`), removed ones included."""

    id: int
    key: str | None
    erp_code: str
    names: Mapping[str, str]
    price_minor: int | None  # None: priced by sizes (variants)
    removed_at: str | None
    stock: int | None
    sold_out: bool
    has_variants: bool  # priced by sizes locally


@dataclass(frozen=True, slots=True)
class CategoryNames:
    id: int
    names: Mapping[str, str]


def linked_dishes(conn: apsw.Connection) -> dict[str, list[LinkedDish]]:
    """Every dish with an ERP code, by code (a code may name several dishes), each list by id."""
    linked: dict[str, list[LinkedDish]] = {}
    for item_id, key, code, names, price, removed_at, stock, sold_out, has_variants in conn.execute(
        "SELECT id, key, erp_code, names, price_minor, removed_at, stock, sold_out,"
        " EXISTS (SELECT 1 FROM variants v WHERE v.item_id = items.id)"
        " FROM items WHERE erp_code IS NOT NULL ORDER BY id"
    ):
        linked.setdefault(code, []).append(
            LinkedDish(
                int(item_id),
                key,
                code,
                json.loads(names),
                None if price is None else int(price),
                removed_at,
                None if stock is None else int(stock),
                bool(sold_out),
                bool(has_variants),
            )
        )
    return linked


def set_removed(conn: apsw.Connection, item_id: int, removed_at: str | None) -> None:
    """Off the diners' menu since `removed_at` (the row stays for past orders), or back on it (None)."""
    conn.execute("UPDATE items SET removed_at = ? WHERE id = ?", (removed_at, item_id))


def set_names(conn: apsw.Connection, item_id: int, names: Mapping[str, str]) -> None:
    conn.execute("UPDATE items SET names = ? WHERE id = ?", (dumps(dict(names)), item_id))


def set_price(conn: apsw.Connection, item_id: int, price_minor: int) -> None:
    conn.execute("UPDATE items SET price_minor = ? WHERE id = ?", (price_minor, item_id))


def set_stock(conn: apsw.Connection, item_id: int, stock: int, sold_out: bool) -> None:
    conn.execute("UPDATE items SET stock = ?, sold_out = ? WHERE id = ?", (stock, int(sold_out), item_id))


def first_station(conn: apsw.Connection) -> str | None:
    """The kitchen station new dishes go to: the store's first."""
    station = scalar(conn, "SELECT key FROM stations ORDER BY sort, key LIMIT 1")
    return None if station is None else str(station)


def category_by_key(conn: apsw.Connection, key: str) -> int | None:
    found = scalar(conn, "SELECT id FROM categories WHERE key = ?", (key,))
    return None if found is None else int(found)


def categories(conn: apsw.Connection) -> list[CategoryNames]:
    """Every category with its names, shown ones first, in menu order."""
    return [
        CategoryNames(int(cid), json.loads(names))
        for cid, names in conn.execute("SELECT id, names FROM categories ORDER BY hidden, sort, id")
    ]


def unused_key(conn: apsw.Connection, table: Literal["items", "categories"], base: str) -> str:
    """`base`, or `base_2`, `base_3`... : the first key no row of `table` has."""
    key, n = base, 1
    while scalar(conn, f"SELECT 1 FROM {table} WHERE key = ?", (key,)) is not None:
        n += 1
        key = f"{base}_{n}"
    return key


def add_category(conn: apsw.Connection, base_key: str, names: Mapping[str, str]) -> int:
    """A new category at the end of the menu, keyed `base_key` (made unique); its id."""
    key = unused_key(conn, "categories", base_key)
    sort = scalar(conn, "SELECT coalesce(max(sort), -1) + 1 FROM categories")
    return int(
        scalar(
            conn,
            "INSERT INTO categories (key, names, sort) VALUES (?, ?, ?) RETURNING id",
            (key, dumps(dict(names)), sort),
        )
    )


def add_dish(
    conn: apsw.Connection,
    base_key: str,
    category_id: int,
    names: Mapping[str, str],
    price_minor: int,
    station: str,
    erp_code: str,
) -> str:
    """A new dish shown to diners, last in its category, keyed `base_key` (made unique); its key."""
    key = unused_key(conn, "items", base_key)
    sort = scalar(conn, "SELECT coalesce(max(sort), -1) + 1 FROM items WHERE category_id = ?", (category_id,))
    conn.execute(
        "INSERT INTO items (key, category_id, names, price_minor, station, sort, erp_code, hidden)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 0)",
        (key, category_id, dumps(dict(names)), price_minor, station, sort, erp_code),
    )
    return key


def sold_not_delivered(conn: apsw.Connection, target: str, since: str | None) -> dict[int, int]:
    """Portions per dish in the target's submitted orders that were not delivered to it, or were delivered at or
    after `since` (None: only those not delivered); voided lines do not count."""
    since = since or "9999"
    return {
        int(item_id): int(qty)
        for item_id, qty in conn.execute(
            "SELECT json_extract(l.value, '$.item_id'), sum(json_extract(l.value, '$.quantity'))"
            " FROM outbox o, json_each(o.payload, '$.lines') l"
            " WHERE o.target = ? AND o.kind = 'order.submitted' AND (o.delivered_at IS NULL OR o.delivered_at >= ?)"
            " AND coalesce(json_extract(l.value, '$.status'), 'active') = 'active'"
            " GROUP BY 1",
            (target, since),
        )
        if item_id is not None
    }
