"""Sync drain rate: how fast a backlog of orders reaches the ERP once it is back.

    .venv/bin/python bench/sync_drain.py [--orders 1000] [--latency-ms 0] [--sd-card] [--batch 50]

A demo store gets --orders orders (through the web API, in-process) while the generic REST fake ERP is down;
then the fake comes back and the sync worker (the same SyncWorker threads `tablebox syncd` runs) delivers the
backlog. Prints rows/s from the fake's comeback to the last delivered_at, and the ERP's request count per
order (a lookup and a create each). --latency-ms adds a delay to every ERP answer (an ERP across the
internet); --sd-card puts the store on the `slowsync` VFS (10 ms per fsync). Prints figures, never asserts.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

# bench/ comes first on the path when this runs as a script: put the repository first, as every bench script does.
sys.path[0] = str(Path(__file__).resolve().parents[1])

from appliance.db.connection import open_connection  # noqa: E402
from appliance.demo import ensure_demo_store  # noqa: E402
from appliance.settings import BoxSettings  # noqa: E402
from sync.config import register_targets  # noqa: E402
from tests.fakes.erp_rest import FakeRestERP  # noqa: E402

DISHES = ("har_gow", "century_egg_tofu", "mineral_water", "seasonal_greens", "tsingtao_draft")


def queue_orders(settings: BoxSettings, count: int) -> None:
    from litestar.testing import TestClient

    from appliance.db.store_settings import load_store_settings
    from appliance.db.tables import list_tables, table_token
    from appliance.store import read_secret
    from appliance.web.app import create_app

    conn = open_connection(settings.db_path)
    store_id = load_store_settings(conn).store_id
    secret = read_secret(settings.secret_path)
    tokens = [table_token(secret, store_id, t) for t in list_tables(conn)]
    ids = [conn.execute("SELECT id FROM items WHERE key = ?", (k,)).fetchone()[0] for k in DISHES]
    conn.close()
    with TestClient(create_app(settings)) as client:
        for n in range(count):
            body = {
                "client_key": uuid.uuid4().hex,
                "lines": [
                    {"item_id": ids[n % len(ids)], "quantity": 1 + n % 3},
                    {"item_id": ids[(n + 2) % len(ids)], "quantity": 1},
                ],
            }
            r = client.post(f"/api/v1/tables/{tokens[n % len(tokens)]}/orders", json=body)
            assert r.status_code == 201, r.text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--sd-card", action="store_true", help="the store on a simulated SD card (10 ms fsync)")
    parser.add_argument("--batch", type=int, default=50, help="rows claimed per transaction")
    parser.add_argument(
        "--in-flight", type=int, default=8, help="rows of different orders sent at once (max_in_flight)"
    )
    args = parser.parse_args()

    vfs = ""
    if args.sd_card:
        from bench import slow_vfs

        slow_vfs.register()
        vfs = slow_vfs.NAME
    from appliance.logs import configure_logging

    configure_logging("json", "warning")
    folder = Path(tempfile.mkdtemp(prefix="tbx-bench-sync-"))
    fake = FakeRestERP().start()
    try:
        settings = BoxSettings(
            data_dir=folder / "data",
            rate_limit_table_per_minute=0,
            rate_limit_address_per_minute=0,
            log_level="warning",
            log_format="json",
        )
        ensure_demo_store(settings)
        conn = open_connection(settings.db_path)
        with conn:
            conn.execute("UPDATE items SET erp_code = key")
        for key, names, price in conn.execute(
            "SELECT key, names, price_minor FROM items WHERE price_minor IS NOT NULL"
        ):
            fake.add_item(key, json.loads(names), price)
        config = {
            **fake.target_config(),
            "enabled": True,
            "pull_minutes": 0,
            "retry_cap_seconds": 1,
            "max_in_flight": args.in_flight,
        }
        settings = dataclasses.replace(settings, sqlite_vfs=vfs, sync_targets={"erp": config})
        register_targets(conn, settings)
        fake.go_down()
        started = time.perf_counter()
        queue_orders(dataclasses.replace(settings, sqlite_vfs="", sync_targets={"erp": config}), args.orders)
        print(f"queued {args.orders} orders while the ERP was down ({time.perf_counter() - started:.1f} s)")

        from sync.worker import SyncWorker

        fake.slow_seconds = args.latency_ms / 1000
        worker = SyncWorker(settings, poll_seconds=0.05, batch_size=args.batch)
        fake.come_back()
        before = fake.requests
        came_back = time.perf_counter()
        worker.start()
        try:
            while conn.execute("SELECT count(*) FROM outbox WHERE delivered_at IS NULL").fetchone()[0]:
                time.sleep(0.05)
            elapsed = time.perf_counter() - came_back
        finally:
            worker.stop()
        counts = fake.order_counts()
        print(
            f"drained {args.orders} orders in {elapsed:.2f} s: {args.orders / elapsed:.0f} rows/s "
            f"(ERP latency {args.latency_ms:g} ms, {'SD card' if vfs else 'local disk'}, batch {args.batch}, "
            f"{args.in_flight} in flight)"
        )
        print(
            f"ERP requests per order: {(fake.requests - before) / args.orders:.2f}; documents: {len(counts)}, "
            f"duplicates: {sum(n - 1 for n in counts.values())}"
        )
        conn.close()
    finally:
        fake.stop()
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
