"""`tablebox prune`, `tablebox support-bundle` and `tablebox factory-reset`: keeping a box for years, asking for
help, and starting it afresh."""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from appliance.cli.common import add_command, box_settings, plural
from appliance.db.connection import open_connection
from appliance.db.integrity import inspect_store_file
from appliance.db.retention import (
    INCREMENTAL,
    auto_vacuum,
    cutoff_for,
    file_bytes,
    give_back_space,
    prunable,
    prune,
    switch_to_incremental,
    vacuum_room_needed,
)
from appliance.diskspace import MB, free_bytes
from appliance.doctor import run_checks
from appliance.errors import UsageError
from appliance.store import require_store
from appliance.support import factory_reset, reset_confirmed, support_bundle


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "prune",
        help="delete delivered sync rows, status events and printed tickets older than retention_days",
        description="The retention policy (run nightly by tablebox-prune.timer): delete outbox rows "
        "delivered, order status events (not cancellations: their reasons are in the reports) "
        "and print jobs printed more than retention_days ago (90 by default), then give the "
        "space back to the SD card (PRAGMA incremental_vacuum). Never deleted: a row not "
        "delivered yet or parked, a ticket not printed, orders, their lines and payments. A "
        "store from before migration 0009 is rewritten once (VACUUM) to hand space back "
        "from then on, when there is room for it.",
        examples=["tablebox prune", "tablebox prune --days 30 --dry-run"],
    )
    p.add_argument("--days", type=int, metavar="N", help="keep this many days instead of retention_days")
    p.add_argument("--dry-run", action="store_true", help="only say how many rows would go")
    p.set_defaults(func=cmd_prune)

    p = add_command(
        sub,
        "support-bundle",
        help="logs, doctor, versions and settings (no secrets) in one file to send for help",
        description="Write a .tar.gz (readable only by its owner) with `tablebox doctor`'s checklist, "
        "the versions (Tablebox, Python, SQLite, OS, releases installed), the settings (sync "
        "secrets only as set/not set), the store's settings and row counts, free space and "
        "backups, the last 7 days of the services' journal and the kernel log (when journalctl "
        "is there) and provision.log. Never the database, a backup, store.secret or the "
        "settings file; secrets, PINs, passwords and table codes in the logs are removed. "
        "Default place: the USB stick when one is mounted (backup_usb_dir), else this folder.",
        examples=["sudo tablebox support-bundle", "sudo tablebox support-bundle --out /tmp/box.tar.gz"],
    )
    p.add_argument("--out", metavar="FILE", help="the file (or folder) to write")
    p.set_defaults(func=cmd_support_bundle)

    p = add_command(
        sub,
        "factory-reset",
        help="back the store up, then remove it (and its secret and photos) to start afresh",
        description="Asks you to type the store's name (or RESET). Then makes a checked backup of the "
        "store with a copy of store.secret in <backup_dir>/factory-reset-<time>/ (never "
        "rotated; also copied to the USB stick when one is mounted) and only then removes the "
        "store database, store.secret, the menu photos and the off-card note. Settings, "
        "network and technician access stay. Stop the services first; their next start (or "
        "`tablebox init`) makes a new, empty store with a new secret: print new stickers.",
        examples=["sudo systemctl stop tablebox-web tablebox-printd tablebox-console && sudo tablebox factory-reset"],
    )
    p.add_argument("--confirm", metavar="TEXT", help="the store's name or RESET, instead of typing it when asked")
    p.add_argument("--force", action="store_true", help="reset even while something has the store open")
    p.set_defaults(func=cmd_factory_reset)


def cmd_prune(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    require_store(settings)
    days = args.days if args.days is not None else settings.retention_days
    if days < 1:
        raise UsageError("--days must be at least 1")
    cutoff = cutoff_for(datetime.now(UTC), days)
    conn = open_connection(settings.db_path, vfs=settings.sqlite_vfs or None)
    try:
        if args.dry_run:
            counts = prunable(conn, cutoff)
            print(
                f"older than {days} days ({cutoff}) would go: "
                + ", ".join(f"{n} from {table}" for table, n in counts.items())
            )
            return 0
        started = time.monotonic()
        before = file_bytes(conn)
        done = prune(conn, cutoff)
        print(
            f"pruned what is older than {days} days: {plural(done.outbox, 'delivered sync row')}, "
            f"{plural(done.order_events, 'status event')}, {plural(done.print_jobs, 'printed ticket')}"
        )
        if auto_vacuum(conn) != INCREMENTAL:
            need = vacuum_room_needed(conn) + settings.min_free_mb * MB
            free = free_bytes(settings.data_dir)
            if free < need:
                print(
                    f"! the store is not switched to incremental vacuum yet (migration 0009): the one-time "
                    f"rewrite needs {-(-need // MB)} MB free, {free // MB} MB are: free some space; the "
                    "space pruned is reused by new orders meanwhile",
                    file=sys.stderr,
                )
            else:
                switch_to_incremental(conn)
                print(f"switched the store to incremental vacuum (one VACUUM, {time.monotonic() - started:.1f} s)")
        given = give_back_space(conn)
        print(
            f"store: {before / MB:.1f} MB before, {given.bytes_after / MB:.1f} MB now"
            + (f" ({given.free_pages_left} free pages kept inside)" if given.free_pages_left else "")
        )
        return 0
    finally:
        conn.close()


def cmd_support_bundle(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    if args.out:
        out = Path(args.out)
    elif settings.backup_usb_dir and os.path.ismount(settings.backup_usb_dir):
        out = Path(settings.backup_usb_dir)
    else:
        out = Path.cwd()
    doctor = [check.line() for check in run_checks(settings)]
    bundle = support_bundle(settings, out, doctor)
    size = bundle.path.stat().st_size
    print(f"support bundle: {bundle.path} ({-(-size // 1024)} KB: {', '.join(bundle.members)})")
    print("no database, backup, store secret or settings file is in it; secrets in the logs are removed")
    return 0


def cmd_factory_reset(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    require_store(settings)
    info = inspect_store_file(settings.db_path)
    typed = args.confirm
    if typed is None:
        if not sys.stdin.isatty():
            raise UsageError("factory-reset asks for a typed confirmation: run it in a terminal, or give --confirm")
        print(
            f"This removes the store {info.store_name!r} ({info.orders} orders), its secret (every printed sticker "
            "stops working) and its menu photos. A checked backup is kept first."
        )
        typed = input(f"Type the store's name ({info.store_name}) or RESET to go on: ")
    if not reset_confirmed(typed, info.store_name):
        print("not confirmed: nothing was changed", file=sys.stderr)
        return 1
    done = factory_reset(settings, force=args.force)
    print(f"kept: {done.backup} ({done.info.orders} orders; integrity_check ok) and the secret, in {done.kept}")
    if done.usb_copy is not None:
        print(f"copy on the USB stick: {done.usb_copy}")
    for path in done.removed:
        print(f"removed: {path}")
    print(
        "next: start the services (`systemctl start tablebox-web tablebox-printd tablebox-console`) or run "
        "`tablebox init`: a new, empty store with a new secret. To undo: "
        f"`tablebox restore {done.backup}` and copy {done.kept / 'store.secret'} back to {settings.secret_path}"
    )
    return 0
