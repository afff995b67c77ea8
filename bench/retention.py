"""Disk per order, before and after the retention policy, and a restaurant's year on the SD card.

    .venv/bin/python bench/retention.py [--orders 3000] [--per-day 500] [--days 90] [--lines 3]

Fills a demo store (auto_vacuum INCREMENTAL, migration 0009) with --orders orders taken the way the web server
takes them (appliance.db.orders.submit_order) with one ERP sync target, each then accepted, cooked, ready and
served (four status changes: events, outbox rows), its kitchen tickets printed, every outbox row delivered, its
visit paid in cash and closed. Then prunes everything finished (`tablebox prune` with a cutoff after the last
order: appliance.db.retention) and gives the space back (incremental_vacuum). Prints the store's bytes per order
before and after, per table (SQLite's dbstat), and a year at --per-day orders a day with --days of retention:
  kept for the books: (bytes per order after) x per-day x 365
  prunable rows alive at any time: (bytes per order before - after) x per-day x days
Prints figures, never asserts. The store lives in a temporary folder, removed at the end.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import apsw

from appliance.db import retention
from appliance.db.connection import open_connection, write_transaction
from appliance.db.floor import close_visit
from appliance.db.orders import MenuCache, OrderRequest, advance_order, submit_order
from appliance.db.outbox import mark_delivered
from appliance.db.payments import amount_due, record_payment
from appliance.db.printing import mark_printed
from appliance.db.sync_targets import TargetRow, register_targets
from appliance.db.tables import list_tables
from appliance.demo import ensure_demo_store
from appliance.domain.orders import Channel
from appliance.domain.pricing import CartLine
from appliance.settings import BoxSettings

MB = 1024 * 1024


def orderable_items(conn: apsw.Connection) -> list[int]:
    """Items a diner can order with no variant or option to choose (the demo menu has many)."""
    return [
        int(i)
        for (i,) in conn.execute(
            "SELECT id FROM items WHERE price_minor IS NOT NULL AND NOT hidden AND NOT sold_out AND removed_at IS NULL"
            " AND stock IS NULL AND available_from IS NULL"
            " AND id NOT IN (SELECT item_id FROM item_option_groups)"
        )
    ]


def fill(conn: apsw.Connection, orders: int, lines: int, seed: int = 14) -> None:
    rng = random.Random(seed)
    tables = list_tables(conn)
    items = orderable_items(conn)
    cache = MenuCache()
    now = retention.cutoff_for(datetime.now(UTC), 0)
    for n in range(orders):
        table = tables[n % len(tables)]
        request = OrderRequest(
            client_key=uuid.uuid4().hex,
            lines=tuple(CartLine(item_id=rng.choice(items), quantity=rng.randint(1, 3)) for _ in range(lines)),
            note="",
            diners=None,
            expected_total_minor=None,
            lang="zh",
            channel=Channel.LAN,
        )
        with write_transaction(conn):
            order = submit_order(conn, table, request, cache).order
            for _ in range(4):  # accepted, preparing, ready, served
                advance_order(conn, int(order["id"]))
            session = int(order["session_id"])
            due = amount_due(conn, session)
            if due > 0:
                record_payment(conn, session, "cash", due)
            close_visit(conn, session, "bench")
            for row_id in [int(i) for (i,) in conn.execute("SELECT id FROM outbox WHERE delivered_at IS NULL")]:
                mark_delivered(conn, row_id, now)
        for job_id in [int(i) for (i,) in conn.execute("SELECT id FROM print_jobs WHERE state = 'pending'")]:
            mark_printed(conn, job_id)


def table_bytes(conn: apsw.Connection) -> dict[str, int]:
    """Bytes per table with its indexes (dbstat), the largest first."""
    owner: dict[str, str] = dict(conn.execute("SELECT name, tbl_name FROM sqlite_schema"))
    sizes: dict[str, int] = {}
    for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
        table = owner.get(name, name)
        sizes[table] = sizes.get(table, 0) + int(size)
    return dict(sorted(sizes.items(), key=lambda kv: -kv[1]))


def rows(conn: apsw.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--orders", type=int, default=3000, help="orders to take (3000)")
    parser.add_argument("--lines", type=int, default=3, help="lines per order (3)")
    parser.add_argument("--per-day", type=int, default=500, help="orders a day for the year's figure (500)")
    parser.add_argument("--days", type=int, default=90, help="retention_days for the year's figure (90)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="tablebox-retention-") as tmp:
        settings = BoxSettings(data_dir=Path(tmp), public_base_url="http://box.test:8080")
        ensure_demo_store(settings)
        conn = open_connection(settings.db_path)
        try:
            register_targets(conn, [TargetRow("erp", "rest", True, {})])
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            empty = retention.file_bytes(conn)
            started = time.monotonic()
            fill(conn, args.orders, args.lines)
            took = time.monotonic() - started
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            before = retention.file_bytes(conn)
            before_tables = table_bytes(conn)
            counts = {t: rows(conn, t) for t in ("orders", "order_lines", "order_events", "outbox", "print_jobs")}
            started = time.monotonic()
            pruned = retention.prune(conn, retention.cutoff_for(datetime.now(UTC) + timedelta(days=1), 0))
            given = retention.give_back_space(conn)
            prune_took = time.monotonic() - started
            after = retention.file_bytes(conn)
            after_tables = table_bytes(conn)
            mode = retention.auto_vacuum(conn)
        finally:
            conn.close()
        file_after = settings.db_path.stat().st_size

    n = args.orders
    per_before = (before - empty) / n
    per_after = (after - empty) / n
    year_kept = per_after * args.per_day * 365
    year_prunable = (per_before - per_after) * args.per_day * min(args.days, 365)
    year_without = per_before * args.per_day * 365
    print(f"{n} orders of {args.lines} lines taken in {took:.1f} s ({n / took:.0f}/s); auto_vacuum={mode}")
    print(
        "rows: " + ", ".join(f"{v} {k}" for k, v in counts.items()) + f"; pruned {pruned.rows} "
        f"({pruned.outbox} outbox, {pruned.order_events} events, {pruned.print_jobs} print jobs) in {prune_took:.2f} s"
    )
    print(f"empty demo store: {empty / 1024:.0f} KB")
    print(f"store before pruning: {before / MB:.2f} MB = {per_before:,.0f} bytes per order")
    print(
        f"store after pruning:  {after / MB:.2f} MB = {per_after:,.0f} bytes per order "
        f"(file {file_after / MB:.2f} MB on disk, {given.free_pages_left} free pages left)"
    )
    print("per table, KB before -> after:")
    for table in before_tables:
        print(f"  {table:<22} {before_tables[table] / 1024:>9,.0f} -> {after_tables.get(table, 0) / 1024:>9,.0f}")
    print(
        f"a year at {args.per_day} orders a day: {year_without / MB:,.0f} MB without pruning; with {args.days} days "
        f"of retention {(year_kept + year_prunable + empty) / MB:,.0f} MB "
        f"({year_kept / MB:,.0f} MB of books kept + {year_prunable / MB:,.0f} MB of recent rows)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
