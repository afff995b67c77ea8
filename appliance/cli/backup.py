"""`tablebox backup` and `tablebox restore FILE`: online backups of the store, kept in rotation, and putting one
back."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TextIO

from appliance.backup import restore, run_backup
from appliance.cli.common import add_command, box_settings
from appliance.doctor import EARLIEST_YEAR
from appliance.store import require_store

PROGRESS_MIN_PAGES = 2_560  # about 10 MB: a smaller store is copied before anyone could read a percentage


def register_backup(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "backup",
        help="an online backup of the store, checked, kept in rotation",
        description="Copy the store database while orders keep coming (SQLite's backup API inside "
        "one read transaction), check the copy (integrity_check, a store's tables), make "
        "it durable and rename it into place as store-YYYYMMDD-HHMMSS.db in backup_dir "
        "(default <data_dir>/backups), also on the USB stick mounted at backup_usb_dir if "
        "any. A backup you start is named store-...-manual.db and never pushes a nightly one "
        "out: the newest 10 manual ones are kept. The nightly timer's (--automatic) are "
        "rotated among themselves: the newest per day of the last 7 days and the newest per "
        "ISO week of the last 4 weeks. The store secret is not in it.",
        examples=[
            "tablebox backup",
            "tablebox backup --dest /media/tablebox",
            "tablebox backup --automatic --keep-daily 14",
        ],
    )
    p.add_argument(
        "--automatic",
        action="store_true",
        help="the nightly timer's backup: named store-...db and rotated with --keep-daily/--keep-weekly",
    )
    p.add_argument("--keep-manual", type=int, default=10, metavar="N", help="manual backups to keep (10)")
    p.add_argument("--dest", metavar="DIR", help="back up into this folder instead (e.g. a mounted USB stick)")
    p.add_argument(
        "--keep-daily", type=int, default=7, metavar="N", help="days to keep the newest automatic backup of (7)"
    )
    p.add_argument(
        "--keep-weekly", type=int, default=4, metavar="N", help="ISO weeks to keep the newest automatic backup of (4)"
    )
    p.set_defaults(func=cmd_backup)


def register_restore(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "restore",
        help="put a backup in place of the store (the current one is kept aside)",
        description="Check FILE (a SQLite database, integrity_check, a Tablebox store) and only then "
        "replace the store database with it; the database that was there is kept as "
        "store.db.before-restore-<time>. Refuses while the web server, print worker or "
        "console have the store open: `systemctl stop tablebox-web tablebox-printd "
        "tablebox-console` first.",
        examples=[
            "tablebox restore /var/lib/tablebox/backups/store-20250601-040312.db",
            "tablebox restore /media/usb/store-20250601-040312.db --force",
        ],
    )
    p.add_argument("file", metavar="FILE", help="a backup (store-YYYYMMDD-HHMMSS.db)")
    p.add_argument(
        "--force",
        action="store_true",
        help="restore even while something has the store open (it keeps writing to the old file)",
    )
    p.set_defaults(func=cmd_restore)


def backup_progress(min_pages: int = PROGRESS_MIN_PAGES, stream: TextIO | None = None) -> Callable[[int, int], None]:
    """A progress callback printing a line at every tenth of a large copy (readable in the journal too)."""
    shown = -1

    def show(done: int, total: int) -> None:
        nonlocal shown
        if total < min_pages:
            return
        tenth = done * 10 // total
        if tenth > shown:
            shown = tenth
            print(f"backup: {tenth * 10}% ({done} of {total} pages)", file=stream or sys.stderr, flush=True)

    return show


def cmd_backup(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    require_store(settings)
    if datetime.now().year < EARLIEST_YEAR:
        print(
            f"! the clock says {datetime.now():%Y-%m-%d}: this backup is named by it (see `tablebox doctor`)",
            file=sys.stderr,
        )
    report = run_backup(
        settings,
        Path(args.dest) if args.dest else None,
        keep_daily=args.keep_daily,
        keep_weekly=args.keep_weekly,
        progress=backup_progress(),
        automatic=args.automatic,
        keep_manual=args.keep_manual,
    )
    for n, made in enumerate(report.made):
        info = made.info
        what = "backup" if n == 0 else "copy"
        print(
            f"{what}: {made.path} ({-(-made.path.stat().st_size // (1024 * 1024))} MB, {info.orders} orders, "
            f"schema {info.schema_version}; integrity_check ok)"
        )
        for old in made.removed:
            print(f"  rotated out: {old.name}")
    for note in report.skipped:
        print(f"! {note}", file=sys.stderr)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    done = restore(settings, Path(args.file), force=args.force)
    info = done.info
    print(
        f"restored {args.file} into {settings.db_path}: store {info.store_name!r} ({info.store_id}), "
        f"{info.orders} orders, newest from {info.newest_order_at or '-'}"
    )
    if done.aside:
        print(
            f"the database that was there is kept as {done.aside[0]}"
            + (f" (with {', '.join(p.name for p in done.aside[1:])})" if len(done.aside) > 1 else "")
        )
    if done.previous_store_id and done.previous_store_id != info.store_id:
        print(
            f"! this backup is of another store ({info.store_id}; the box had {done.previous_store_id}): its "
            f"table stickers are checked with that store's secret, so {settings.secret_path} must be the "
            "store.secret kept from that box",
            file=sys.stderr,
        )
    if not settings.secret_path.exists():
        print(
            f"! no store secret at {settings.secret_path}: copy back the store.secret kept from this store",
            file=sys.stderr,
        )
    print("next: start the services again: systemctl start tablebox-web tablebox-printd tablebox-console")
    return 0
