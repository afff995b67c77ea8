"""The `tablebox` command line (also `python -m appliance`): the composition root of the appliance."""

from __future__ import annotations

import argparse
import os
import socket
import sys
from typing import Any, Sequence

from appliance import __version__
from appliance.settings import BoxSettings, SettingsError, load_settings, settings_help


def lan_address() -> str:
    """This box's address on the store network (the interface of the default route); 127.0.0.1 if none.
    A UDP connect() only picks a route: no packet is sent."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere, nothing is sent
            return probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"


def public_base_url(settings: BoxSettings) -> str:
    if settings.public_base_url:
        return settings.public_base_url.rstrip("/")
    return f"http://{lan_address()}:{settings.port}"


def _settings(args: argparse.Namespace) -> BoxSettings:
    base = load_settings(data_dir=args.data_dir, config_file=args.config)
    overrides: dict[str, Any] = {}
    for name in ("host", "port", "public_base_url"):
        if getattr(args, name, None) is not None:
            overrides[name] = getattr(args, name)
    return base.with_overrides(**overrides)


def _require_store(settings: BoxSettings) -> None:
    from appliance.store import StoreError

    if not settings.db_path.exists():
        raise StoreError(f"no store at {settings.db_path}: run `tablebox init --data-dir {settings.data_dir}`")


def cmd_init(args: argparse.Namespace) -> int:
    from appliance.store import init_store

    settings = _settings(args)
    values: dict[str, Any] = {}
    for name in ("store_name", "currency", "timezone"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.languages is not None:
        values["languages"] = [part.strip() for part in args.languages.split(",") if part.strip()]
    store = init_store(settings, values)
    print(f"created store {store.store_name!r} ({store.currency}) in {settings.data_dir}")
    print(f"  database: {settings.db_path}")
    print(f"  secret:   {settings.secret_path} (keep it private: it signs every table's QR code)")
    print("next: add a manager for the console: tablebox staff add NAME --role manager")
    return 0


def ensure_demo_store(settings: BoxSettings) -> bool:
    """Create the demo store in the data folder unless a store is already there. True if created."""
    from appliance.db.connection import open_connection, write_transaction
    from appliance.demo import demo_store_values, load_demo
    from appliance.store import init_store, read_secret, store_exists

    if store_exists(settings):
        return False
    init_store(settings, demo_store_values())
    conn = open_connection(settings.db_path)
    try:
        with write_transaction(conn):
            load_demo(conn, read_secret(settings.secret_path))
    finally:
        conn.close()
    return True


def table_lines(settings: BoxSettings) -> list[tuple[str, str, str]]:
    """(area, table name, ordering URL) for every active table."""
    from appliance.db.connection import open_connection
    from appliance.db.store_settings import load_store_settings
    from appliance.db.tables import list_tables, table_token, table_url
    from appliance.store import read_secret

    _require_store(settings)
    secret = read_secret(settings.secret_path)
    conn = open_connection(settings.db_path, readonly=True)
    try:
        store_id = load_store_settings(conn).store_id
        base = public_base_url(settings)
        return [(t.area, t.name, table_url(base, table_token(secret, store_id, t))) for t in list_tables(conn)]
    finally:
        conn.close()


def cmd_tables(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if getattr(args, "tables_command", None) == "add":
        from appliance.db.connection import open_connection, write_transaction
        from appliance.db.tables import add_table

        _require_store(settings)
        conn = open_connection(settings.db_path)
        try:
            with write_transaction(conn):
                table = add_table(conn, args.name, args.area or "", args.seats)
        finally:
            conn.close()
        print(f"added table {table.name}" + (f" ({table.area})" if table.area else "")
              + ": print its sticker with tablebox stickers --table " + table.name)
        return 0
    lines = table_lines(settings)
    if not lines:
        print("no tables yet: tablebox tables add NAME --area AREA, or tablebox menu import FILE", file=sys.stderr)
    width = max((len(name) for _, name, _ in lines), default=0)
    for _, name, url in lines:
        print(f"{name:<{width}}  {url}")
    return 0


class _Printing:
    """The print worker, with in-process virtual printers for `virtual://NAME` addresses (demo, trying out)."""

    def __init__(self, settings: BoxSettings) -> None:
        from printers.virtual import VirtualPrinterPool
        from printers.worker import PrintWorker

        self.pool = VirtualPrinterPool()
        self.worker = PrintWorker(settings.db_path, resolve_virtual=lambda name: self.pool.get_or_start(name).uri,
                                  vfs=settings.sqlite_vfs or None)

    def __enter__(self) -> "_Printing":
        self.worker.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.worker.stop()
        self.pool.stop_all()


def cmd_printers(args: argparse.Namespace) -> int:
    from appliance.db.connection import open_connection, write_transaction
    from printers.admin import (printer_rows, queue_bill, queue_reprint, queue_test_page, remove_printer,
                                save_printer)

    settings = _settings(args)
    _require_store(settings)
    conn = open_connection(settings.db_path)
    try:
        if args.printers_command == "test":
            with write_transaction(conn):
                job = queue_test_page(conn, args.name)
            print(f"test page queued for {args.name} (job {job})")
        elif args.printers_command == "add":
            stations = [x.strip() for x in args.stations.split(",") if x.strip()]
            with write_transaction(conn):
                save_printer(conn, args.name, args.uri, stations=stations, paper_mm=args.paper, text_mode=args.mode,
                             copies=args.copies, cutter=not args.no_cutter, buzzer=args.buzzer, fallback=args.fallback)
            print(f"printer {args.name} saved ({args.uri}, {args.paper} mm, {args.mode}, stations: "
                  f"{', '.join(stations) or 'none'}); restart the print worker to use it")
        elif args.printers_command == "remove":
            with write_transaction(conn):
                remove_printer(conn, args.name)
            print(f"printer {args.name} removed; restart the print worker")
        elif args.printers_command == "bill":
            with write_transaction(conn):
                queue_bill(conn, args.table, args.printer)
            print(f"bill of table {args.table} queued for {args.printer}")
        elif args.printers_command == "reprint":
            with write_transaction(conn):
                jobs = queue_reprint(conn, args.order_id, args.station)
            print(f"reprint of order {args.order_id} queued ({len(jobs)} ticket{'s' if len(jobs) != 1 else ''})")
        else:
            listing = printer_rows(conn)
            if not listing:
                print("no printers configured")
            for p in listing:
                state = p["reason"] + (f" ({p['detail']})" if p["detail"] and not p["stale"] else "")
                waiting = f", waiting: {p['waiting_because']}" if p["waiting_because"] else ""
                print(f"{p['name']:<10} {state:<28} queue {p['queue']:<4} stations {','.join(p['stations']) or '-'}"
                      f"  {p['uri']}{'' if p['enabled'] else '  (disabled)'}{waiting}")
    finally:
        conn.close()
    return 0


def cmd_stickers(args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.db.connection import open_connection, write_transaction
    from appliance.store import StoreError
    from printers.stickers import WifiInfo, store_stickers, write_sheet

    settings = _settings(args)
    _require_store(settings)
    if not (args.pdf or args.png or args.print_on):
        raise StoreError("say where the stickers go: --pdf FILE, --png FILE or --print PRINTER")
    wifi = WifiInfo(args.wifi_ssid, args.wifi_password or "", "WPA" if args.wifi_password else "nopass") \
        if args.wifi_ssid else None
    try:
        stickers = store_stickers(settings, args.table or None)
    except ValueError as exc:
        raise StoreError(str(exc)) from None
    for target in (args.pdf, args.png):
        if target:
            try:
                written_files = write_sheet(stickers, Path(target), wifi=wifi)
            except ValueError as exc:  # a wrong suffix, a Wi-Fi password WPA refuses...
                raise StoreError(str(exc)) from None
            for written in written_files:
                print(f"wrote {written}")
    if args.print_on:
        from printers.admin import queue_stickers

        conn = open_connection(settings.db_path)
        try:
            with write_transaction(conn):
                queue_stickers(conn, args.print_on, stickers, wifi)
        finally:
            conn.close()
        print(f"{len(stickers)} sticker{'s' if len(stickers) != 1 else ''} queued for {args.print_on}")
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    from tui.app import ConsoleApp

    from appliance.store import read_secret

    settings = _settings(args)
    _require_store(settings)
    ConsoleApp(settings.db_path, read_secret(settings.secret_path), public_base_url=public_base_url(settings)).run()
    return 0


def cmd_staff(args: argparse.Namespace) -> int:
    import getpass

    from appliance.db.connection import open_connection, write_transaction
    from appliance.db.staff import add_staff, list_staff, remove_staff
    from appliance.store import read_secret

    settings = _settings(args)
    _require_store(settings)
    conn = open_connection(settings.db_path)
    try:
        if args.staff_command == "add":
            pin = args.pin or os.environ.get("TABLEBOX_PIN") or getpass.getpass(f"PIN for {args.name} (4-8 digits): ")
            with write_transaction(conn):
                added = add_staff(conn, read_secret(settings.secret_path), args.name, args.role, pin)
            print(f"added {added.name} ({added.role}): they log in to the console with their PIN")
        elif args.staff_command == "remove":
            with write_transaction(conn):
                remove_staff(conn, args.name)
            print(f"{args.name} can no longer log in (kept in the audit trail)")
        else:
            people = list_staff(conn)
            if not people:
                print("no staff yet: tablebox staff add NAME --role manager", file=sys.stderr)
            for person in people:
                print(f"{person['name']:<24} {person['role']:<8} {'active' if person['active'] else 'removed'}")
    finally:
        conn.close()
    return 0


def cmd_printd(args: argparse.Namespace) -> int:
    import signal
    import threading

    from appliance.logs import configure_logging
    from appliance.sdnotify import Notifier, feed_watchdog

    settings = _settings(args)
    _require_store(settings)
    configure_logging(settings.log_format, settings.log_level)
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    notifier = Notifier.from_environ()
    with _Printing(settings) as printing:
        notifier.ready(status=f"printing on {len(printing.worker.loops)} printer(s)")
        feed_watchdog(notifier, stop, printing.worker.health)  # until SIGTERM; pings only while healthy
        notifier.stopping()
    return 0


def register_sync_targets(settings: BoxSettings) -> dict[str, list[str]]:
    """The settings' [sync.NAME] targets into the store (migrated first: this may run before the web server has),
    so orders taken from now on queue a row for each enabled one."""
    from appliance.db.connection import open_connection
    from appliance.db.migrate import migrate
    from sync.config import register_targets

    conn = open_connection(settings.db_path, vfs=settings.sqlite_vfs or None)
    try:
        migrate(conn)
        return register_targets(conn, settings)
    finally:
        conn.close()


def cmd_syncd(args: argparse.Namespace) -> int:
    import signal
    import threading

    import structlog

    from appliance.logs import configure_logging
    from appliance.sdnotify import Notifier, feed_watchdog
    from appliance.store import StoreError
    from sync.worker import AlreadyRunning, SyncWorker, hold_lock

    settings = _settings(args)
    _require_store(settings)
    configure_logging(settings.log_format, settings.log_level)
    registered = register_sync_targets(settings)
    if not registered["enabled"]:
        where = settings.config_file or f"{settings.data_dir / 'tablebox.toml'} (there is no settings file)"
        raise SettingsError(f"{where}: no enabled [sync.NAME] target, so there is nothing to deliver to; add one "
                            "(README: Settings, ERP sync targets) or leave tablebox-syncd disabled")
    try:
        lock = hold_lock(settings.data_dir / "syncd.lock")
    except AlreadyRunning as exc:
        raise StoreError(str(exc)) from None
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    notifier = Notifier.from_environ()
    try:
        worker = SyncWorker(settings, stop=stop)
        with worker:
            names = ", ".join(f"{l.target.name} ({l.target.kind})" for l in worker.loops)
            notifier.ready(status=f"delivering to {names}")
            feed_watchdog(notifier, stop, worker.health)  # until SIGTERM; pings only while every target loops
            notifier.stopping()
        structlog.get_logger("sync.worker").info("sync.stopped", delivered=sum(l.delivered for l in worker.loops))
    finally:
        lock.close()
    return 0


def _when(stamp: str | None) -> str:
    return stamp[:19].replace("T", " ") + "Z" if stamp else "-"


def cmd_sync(args: argparse.Namespace) -> int:
    """`tablebox sync status | retry [TARGET] | pull [TARGET]`."""
    from appliance.db.connection import open_connection
    from appliance.db.sync_state import SyncState, retry_now, sync_status
    from appliance.logs import configure_logging
    from sync.config import targets

    settings = _settings(args)
    _require_store(settings)
    configure_logging(settings.log_format, settings.log_level)  # log lines to stderr, the answer on stdout
    configured = targets(settings)
    conn = open_connection(settings.db_path, vfs=settings.sqlite_vfs or None)
    try:
        known = {t.name: t for t in sync_status(conn)}
        if args.sync_command == "pull":  # needs the settings (address, keys), not the store's registration
            return _sync_pull(conn, settings, configured, [args.target] if args.target else
                              [n for n, t in configured.items() if t.enabled])
        wanted = [args.target] if getattr(args, "target", None) else [n for n, t in known.items() if t.enabled]
        for name in wanted:
            if name not in known:
                raise SettingsError(f"no sync target called {name!r} in the store (targets: "
                                    f"{', '.join(known) or 'none'}); targets come from [sync.NAME] tables of the settings")
        if args.sync_command == "retry":
            for name in wanted:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    moved = retry_now(conn, name)
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                print(f"{name}: {moved['unparked']} parked row(s) back in line, {moved['hurried']} waiting row(s)"
                      " sent at the worker's next pass")
            return 0
        if not known and not configured:
            print("no sync targets: add a [sync.NAME] table to the settings file (README: Settings)", file=sys.stderr)
        for t in known.values():
            state = t.state.value + (f" since {_when(t.since)}" if t.since else "")
            print(f"{t.name}  ({t.kind}{'' if t.enabled else ', disabled'})  {state}")
            print(f"    backlog {t.backlog}, parked {t.parked}, oldest waiting {_when(t.oldest_waiting)},"
                  f" last success {_when(t.last_success)}")
            if t.last_error and t.state in (SyncState.RETRYING, SyncState.FAILING):
                print(f"    last error: {t.last_error}")
            if t.state is SyncState.FAILING:
                print(f"    the ERP refused {t.parked} row(s): fix the cause, then `tablebox sync retry {t.name}`")
        for name in configured:
            if name not in known:
                print(f"{name}  in the settings, not registered yet: restart tablebox-web and tablebox-syncd")
        return 0
    finally:
        conn.close()


def _sync_pull(conn: Any, settings: BoxSettings, configured: dict[str, Any], wanted: list[str]) -> int:
    from appliance.db.store_settings import load_store_settings
    from sync.adapters import make_adapter
    from sync.worker import pull_now

    failed = 0
    for name in wanted:
        if name not in configured:
            raise SettingsError(f"{settings.config_file or 'the settings'}: no [sync.{name}] table to pull with")
        try:
            adapter = make_adapter(name, configured[name].config)
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsError(f"{settings.config_file or 'the settings'}: [sync.{name}]: {exc}") from None
        try:
            result = pull_now(conn, adapter)
        except Exception as exc:  # Retryable, Rejected: the menu is left as it was
            print(f"{name}: pull failed, the menu is unchanged: {exc}", file=sys.stderr)
            failed += 1
            continue
        finally:
            adapter.close()
        changed = sum(n for what, n in result.counts().items() if what != "kept_local")
        print(f"{name}: " + (f"{changed} change(s) to the menu" if changed else "the menu is up to date"))
        for line in result.lines(load_store_settings(conn).money):
            print(f"  {line}")
    return 1 if failed else 0


def _serve(settings: BoxSettings, banner: bool, printing: bool = False) -> int:
    import contextlib

    import uvicorn

    from appliance.logs import configure_logging
    from appliance.web.app import create_app

    configure_logging(settings.log_format, settings.log_level)
    if settings.db_path.exists():  # the [sync.NAME] targets of the settings: orders queue a row for each
        registered = register_sync_targets(settings)
        if any(registered.values()):
            import structlog

            structlog.get_logger("appliance.cli").info("sync.targets", **registered)
    if banner:
        from appliance.db.connection import open_connection
        from appliance.db.store_settings import load_store_settings

        conn = open_connection(settings.db_path, readonly=True)
        try:
            name = load_store_settings(conn).store_name
        finally:
            conn.close()
        print(f"\n{name}: order from a phone at these addresses (one per table):\n", flush=True)
        lines = table_lines(settings)
        width = max((len(n) for _, n, _ in lines), default=0)
        for area, table_name, url in lines:
            print(f"  {table_name:<{width}}  {url}    ({area})", flush=True)
        print(f"\nAPI description: http://{_display_host(settings.host)}:{settings.port}/schema   "
              f"health: /healthz   stop: Ctrl-C", flush=True)
        if printing:
            from appliance.demo import DEMO_STAFF

            pins = ", ".join(f"{name} PIN {pin}" for name, _, pin in DEMO_STAFF)
            import shutil
            from pathlib import Path

            command = "tablebox" if shutil.which("tablebox") else str(Path(sys.executable).parent / "tablebox")
            print(f"console (in another terminal): {command} console --data-dir {settings.data_dir}   ({pins})\n",
                  flush=True)
    app = create_app(settings)
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_config=None, access_log=False, lifespan="on",
        timeout_graceful_shutdown=3, server_header=False,
    )
    with _Printing(settings) if printing else contextlib.nullcontext():
        uvicorn.Server(config).run()
    return 0


def _display_host(host: str) -> str:
    return lan_address() if host in {"0.0.0.0", "::", ""} else host


def cmd_serve(args: argparse.Namespace) -> int:
    from appliance.store import StoreError

    settings = _settings(args)
    if not settings.db_path.exists():
        raise StoreError(f"no store at {settings.db_path}: run `tablebox init --data-dir {settings.data_dir}` "
                         f"or `tablebox demo` first")
    return _serve(settings, banner=args.urls)


def cmd_demo(args: argparse.Namespace) -> int:
    settings = _settings(args)
    created = ensure_demo_store(settings)
    print(("created the demo store in " if created else "using the store already in ") + str(settings.data_dir),
          flush=True)
    return _serve(settings, banner=True, printing=True)


def cmd_menu(args: argparse.Namespace) -> int:
    """`tablebox menu import FILE`: a menu file (the demo's JSON format) into a store that has no menu yet,
    with its tables if the file lists them; one transaction, so a bad file leaves nothing behind."""
    import json
    from pathlib import Path

    import apsw

    from appliance.db.connection import open_connection, write_transaction
    from appliance.db.menu import import_menu
    from appliance.db.tables import add_table
    from appliance.domain.errors import DomainError

    settings = _settings(args)
    _require_store(settings)
    try:
        data = json.loads(Path(args.file).read_text("utf-8"))
    except FileNotFoundError:
        raise DomainError("invalid_menu", f"no file {args.file}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DomainError("invalid_menu", f"{args.file} is not a JSON menu file: {exc}") from None
    if not isinstance(data, dict):
        raise DomainError("invalid_menu", f"{args.file}: a menu file is a JSON object (see appliance/demo/menu.json)")
    conn = open_connection(settings.db_path)
    try:
        with write_transaction(conn):
            try:
                counts = import_menu(conn, data)
                tables = [add_table(conn, t["name"], t.get("area", ""), t.get("seats")) for t in data.get("tables", [])]
            except (KeyError, TypeError, AttributeError, apsw.ConstraintError) as exc:
                what = (f"missing {exc}" if isinstance(exc, KeyError) else
                        "a dish names a station, or a table a name, that is missing or repeated"
                        if isinstance(exc, apsw.ConstraintError) else str(exc))
                raise DomainError("invalid_menu", f"{args.file} does not follow the menu format ({what}); "
                                                  "see appliance/demo/menu.json") from None
    finally:
        conn.close()
    print(f"imported {counts['items']} dishes in {counts['categories']} categories"
          f" ({counts['variants']} sizes) and {len(tables)} tables")
    return 0


def cmd_photo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.db.connection import open_connection, write_transaction
    from appliance.db.menu import set_image
    from appliance.images import prepare_image

    settings = _settings(args)
    _require_store(settings)
    name = prepare_image(Path(args.file), settings.data_dir)
    conn = open_connection(settings.db_path)
    try:
        with write_transaction(conn):
            set_image(conn, args.dish, name)
    finally:
        conn.close()
    print(f"{args.dish}: photo {name} ({(settings.data_dir / 'images' / name).stat().st_size // 1024} KB)")
    return 0


def refuse_damaged_store(settings: BoxSettings) -> None:
    """`PRAGMA quick_check` before serving or printing: never start on a damaged database (exit 2, no traceback)."""
    from appliance.backup import SERVICES_HINT, backup_dir, list_backups
    from appliance.db.integrity import check_problems, open_for_check
    from appliance.store import StoreError

    if not settings.db_path.exists():
        return
    try:
        conn = open_for_check(settings.db_path)
    except Exception as exc:  # apsw.CantOpenError and friends
        raise StoreError(f"cannot open the database {settings.db_path}: {exc}") from None
    try:
        problems = check_problems(conn, full=False)
    finally:
        conn.close()
    if problems:
        newest = list_backups(backup_dir(settings))
        hint = (f"`tablebox restore {newest[0][1]}` (the newest; all are in {backup_dir(settings)})"
                if newest else f"`tablebox restore BACKUP` with a backup from {backup_dir(settings)} or a USB stick")
        raise StoreError(f"the database {settings.db_path} is damaged (quick_check: {'; '.join(problems[:2])}).\n"
                         f"  Not starting on it. Stop the services: `{SERVICES_HINT}`,\n"
                         f"  restore the last good backup: {hint},\n"
                         "  then start them again. The restore keeps the damaged file aside.")


PROGRESS_MIN_PAGES = 2_560  # about 10 MB: a smaller store is copied before anyone could read a percentage


def backup_progress(min_pages: int = PROGRESS_MIN_PAGES, stream: Any = None) -> Any:
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
    from datetime import datetime
    from pathlib import Path

    from appliance.backup import run_backup
    from appliance.doctor import EARLIEST_YEAR

    settings = _settings(args)
    _require_store(settings)
    if datetime.now().year < EARLIEST_YEAR:
        print(f"! the clock says {datetime.now():%Y-%m-%d}: this backup is named by it (see `tablebox doctor`)",
              file=sys.stderr)
    report = run_backup(settings, Path(args.dest) if args.dest else None, keep_daily=args.keep_daily,
                        keep_weekly=args.keep_weekly, progress=backup_progress())
    for n, made in enumerate(report.made):
        info = made.info
        what = "backup" if n == 0 else "copy"
        print(f"{what}: {made.path} ({-(-made.path.stat().st_size // (1024 * 1024))} MB, {info.orders} orders, "
              f"schema {info.schema_version}; integrity_check ok)")
        for old in made.removed:
            print(f"  rotated out: {old.name}")
    for note in report.skipped:
        print(f"! {note}", file=sys.stderr)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.backup import restore

    settings = _settings(args)
    done = restore(settings, Path(args.file), force=args.force)
    info = done.info
    print(f"restored {args.file} into {settings.db_path}: store {info.store_name!r} ({info.store_id}), "
          f"{info.orders} orders, newest from {info.newest_order_at or '-'}")
    if done.aside:
        print(f"the database that was there is kept as {done.aside[0]}"
              + (f" (with {', '.join(p.name for p in done.aside[1:])})" if len(done.aside) > 1 else ""))
    if done.previous_store_id and done.previous_store_id != info.store_id:
        print(f"! this backup is of another store ({info.store_id}; the box had {done.previous_store_id}): its "
              f"table stickers are checked with that store's secret, so {settings.secret_path} must be the "
              "store.secret kept from that box", file=sys.stderr)
    if not settings.secret_path.exists():
        print(f"! no store secret at {settings.secret_path}: copy back the store.secret kept from this store",
              file=sys.stderr)
    print("next: start the services again: systemctl start tablebox-web tablebox-printd tablebox-console")
    return 0


def _printer_health(conn: Any, now: Any) -> list[dict[str, Any]]:
    """printer_rows as the doctor needs them (appliance may not import printers; the composition root does)."""
    from printers.admin import printer_rows
    from printers.status import UNABLE_TO_PRINT, PrinterStatus

    out = []
    for row in printer_rows(conn, now):
        status = PrinterStatus(row["status"]) if row["status"] else None
        severity = "ok" if status is PrinterStatus.READY else ("fail" if status in UNABLE_TO_PRINT else "warn")
        reason = row["reason"] + (f" ({row['detail']})" if row["detail"] and severity != "ok" else "")
        out.append({"name": row["name"], "enabled": bool(row["enabled"]), "stale": row["stale"],
                    "severity": severity, "reason": reason})
    return out


def cmd_doctor(args: argparse.Namespace) -> int:
    from pathlib import Path

    from appliance.doctor import Mark, exit_code, run_checks
    from appliance.settings import DATA_DIR_ENV, default_data_dir

    try:
        settings, error = _settings(args), None
    except SettingsError as exc:  # still check the rest, with the defaults
        settings = BoxSettings(data_dir=Path(args.data_dir or os.environ.get(DATA_DIR_ENV) or default_data_dir()))
        error = str(exc)
    checks = run_checks(settings, settings_error=error, printers=_printer_health)
    for check in checks:
        print(check.line())
    failures = sum(c.mark is Mark.FAIL for c in checks)
    warnings = sum(c.mark is Mark.WARN for c in checks)
    print(f"\n{failures} failed, {warnings} to look at, {sum(c.mark is Mark.OK for c in checks)} ok")
    return exit_code(checks)


def cmd_relay(args: argparse.Namespace) -> int:
    """`tablebox relay serve | enroll NAME`: the public relay (a service of its own, on a public host)."""
    from sync.relay.settings import load_relay_settings
    from sync.relay.storage import StorageError, open_storage

    overrides = {name: getattr(args, name, None) for name in ("host", "port", "database_url")}
    settings = load_relay_settings(config_file=args.relay_config).with_overrides(**overrides)
    try:
        if args.relay_command == "enroll":
            storage = open_storage(settings.resolved_database_url, pool_size=1)
            try:
                enrolled = storage.enroll(args.name)
            except ValueError as exc:
                raise SettingsError(str(exc)) from None
            finally:
                storage.close()
            base = (args.base_url or "https://relay.example.com").rstrip("/")
            print(f"enrolled {args.name!r} on the relay")
            print(f"  store_id: {enrolled.store_id}")
            print(f"  secret:   {enrolled.secret}")
            print("\nOn the box, add to its settings file (this secret is its key: keep it out of any file others can "
                  "read):\n")
            print(f"[sync.relay]\nkind = \"relay\"\nbase_url = \"{base}\"\nstore_id = \"{enrolled.store_id}\"\n"
                  f"pull_minutes = 0\n# api_secret: in /etc/tablebox/sync.env (mode 0600) as\n"
                  f"# TABLEBOX_SYNC_RELAY_API_SECRET={enrolled.secret}\n# or here as api_secret = \"...\" if this "
                  "file is mode 0600")
            print(f"\nFor table stickers that also work off the store Wi-Fi (mobile data), set at the top of the same "
                  f"file:\npublic_base_url = \"{base}/s/{enrolled.store_id}\"\nthen reprint the stickers "
                  "(`tablebox stickers`): the relay serves the diner page there.")
            return 0
        return _relay_serve(settings)
    except StorageError as exc:
        print(f"tablebox: {exc}", file=sys.stderr)
        return 2


def _relay_serve(settings: Any) -> int:
    import structlog

    from appliance.logs import configure_logging
    from sync.relay.app import RelayServer
    from sync.relay.storage import open_storage

    configure_logging(settings.log_format, settings.log_level)
    storage = open_storage(settings.resolved_database_url, pool_size=settings.db_threads)
    try:
        server = RelayServer(settings, storage)
        structlog.get_logger("sync.relay").info("relay.started", host=settings.host, port=settings.port,
                                                database=storage.dialect)
        server.run()
    finally:
        storage.close()
    return 0


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", metavar="DIR", help="the store's data folder (overrides $TABLEBOX_DATA_DIR)")
    common.add_argument("--config", metavar="FILE", help="settings file (overrides $TABLEBOX_CONFIG)")
    # For sub-subcommands: the same flags, but an absent one must not overwrite the value given one level up.
    nested = argparse.ArgumentParser(add_help=False)
    nested.add_argument("--data-dir", metavar="DIR", default=argparse.SUPPRESS, help="the store's data folder")
    nested.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="settings file")
    web = argparse.ArgumentParser(add_help=False)
    web.add_argument("--host", help="listen address (setting: host)")
    web.add_argument("--port", type=int, help="listen port (setting: port)")
    web.add_argument("--public-base-url", metavar="URL", help="start of the ordering URLs (setting: public_base_url)")

    parser = argparse.ArgumentParser(
        prog="tablebox",
        description="Tablebox: QR ordering, kitchen tickets and a manager's console for one restaurant, on one box.",
        epilog=settings_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"tablebox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("init", parents=[common], help="create a new store (database and secret) in the data folder",
                       description="Create a new, empty store: the database, its first settings and the secret that "
                                   "signs table QR codes. Refuses if a store is already there.")
    p.add_argument("--store-name", help="the restaurant's name (store setting: store_name)")
    p.add_argument("--currency", help="ISO 4217 code, e.g. CNY or JPY (store setting: currency)")
    p.add_argument("--timezone", help="e.g. Asia/Shanghai (store setting: timezone)")
    p.add_argument("--languages", help="comma-separated menu languages, first is the default, e.g. zh,en")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser("demo", parents=[common, web], help="create the demo store if needed, then serve it",
                       description="Serve the built-in demo store (bilingual menu, two stations, 14 tables, virtual "
                                   "printers), creating it in the data folder first if no store is there.")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("serve", parents=[common, web], help="serve an existing store",
                       description="Serve the diner API of the store in the data folder.")
    p.add_argument("--urls", action="store_true", help="print every table's ordering URL at start")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("console", parents=[common], help="the manager's console: orders, tables, menu, printers, sync, reports, settings",
                       description="The Textual console on the store database, live. Staff log in with their PIN "
                                   "(tablebox staff add). Screens: 1 orders, 2 tables, 3 menu, 4 printers, 5 sync, "
                                   "6 reports, 7 settings (also F1-F7); ctrl+l locks; each screen's keys are in its footer.")
    p.set_defaults(func=cmd_console)

    p = sub.add_parser("staff", parents=[common], help="who may use the console: add, list, remove staff (PIN and role)",
                       description="Staff log in to the console with a PIN. Waiters run service; managers also "
                                   "change prices, re-key tables, see reports and change settings.")
    p.set_defaults(func=cmd_staff, staff_command="list")
    ssub = p.add_subparsers(dest="staff_command", metavar="COMMAND")
    a = ssub.add_parser("add", parents=[nested], help="add a staff member (asks for the PIN unless --pin or $TABLEBOX_PIN)")
    a.add_argument("name")
    a.add_argument("--role", choices=("manager", "waiter"), default="waiter")
    a.add_argument("--pin", help="4-8 digits (visible in the shell history: prefer the prompt)")
    ssub.add_parser("list", parents=[nested], help="list staff")
    r = ssub.add_parser("remove", parents=[nested], help="stop someone logging in (they stay in the audit trail)")
    r.add_argument("name")

    p = sub.add_parser("printd", parents=[common], help="run the print worker (kitchen tickets to the printers)",
                       description="Print every queued kitchen ticket, void ticket and test page on the store's "
                                   "printers, in order, waiting out paper-out, cover-open and unplugged printers. "
                                   "Stops between jobs on SIGTERM.")
    p.set_defaults(func=cmd_printd)

    p = sub.add_parser("syncd", parents=[common], help="run the sync worker (orders to the ERP, catalog and stock from it)",
                       description="Deliver every queued order and status change to each [sync.NAME] target of the "
                                   "settings, oldest first, exactly once in effect, backing off while the ERP fails; "
                                   "pull catalog and stock every pull_minutes. Stops between deliveries on SIGTERM.")
    p.set_defaults(func=cmd_syncd)

    p = sub.add_parser("sync", parents=[common], help="ERP sync: each target's state and backlog; retry; pull now",
                       description="Without a subcommand: each sync target's state (ok, retrying since, failing, "
                                   "idle), backlog, parked rows, last success and last error.")
    p.set_defaults(func=cmd_sync, sync_command="status", target=None)
    ysub = p.add_subparsers(dest="sync_command", metavar="ACTION")
    ysub.add_parser("status", parents=[nested], help="each target's state, backlog, parked rows, last success and error")
    y = ysub.add_parser("retry", parents=[nested], help="put parked rows back in line and send waiting rows now")
    y.add_argument("target", nargs="?", help="only this target (default: every enabled one)")
    y = ysub.add_parser("pull", parents=[nested], help="pull catalog and stock from the ERP now")
    y.add_argument("target", nargs="?", help="only this target (default: every enabled one)")

    p = sub.add_parser("printers", parents=[common], help="the printers with their status and queue; test; reprint",
                       description="Without a subcommand: every printer with what it said last (ready, paper out, "
                                   "cover open, unplugged...), its queue and its stations.")
    p.set_defaults(func=cmd_printers, printers_command=None)
    psub = p.add_subparsers(dest="printers_command", metavar="ACTION")
    t = psub.add_parser("test", parents=[nested], help="print a test page on a printer")
    t.add_argument("name", help="the printer's name")
    r = psub.add_parser("reprint", parents=[nested], help="print an order's tickets again, headed REPRINT")
    r.add_argument("order_id", type=int, help="the order's id")
    r.add_argument("--station", help="only this station's ticket")
    a = psub.add_parser("add", parents=[nested], help="add or change a printer",
                        description="Add a printer (or change the one of that name). Addresses: usb://VID:PID[/SERIAL], "
                                    "serial:///dev/ttyUSB0?baudrate=19200, tcp://HOST:9100, file:///dev/usb/lp0.")
    a.add_argument("name")
    a.add_argument("uri")
    a.add_argument("--stations", default="", help="comma-separated stations it prints for, e.g. kitchen")
    a.add_argument("--paper", type=int, default=80, choices=(58, 80), help="paper width in mm")
    a.add_argument("--mode", default="gb18030", choices=("gb18030", "codepage", "raster"),
                   help="gb18030: the printer's Chinese font; raster: drawn by the box (any printer, any script); "
                        "codepage: Latin menus")
    a.add_argument("--copies", type=int, default=1)
    a.add_argument("--no-cutter", action="store_true", help="the printer has no cutter")
    a.add_argument("--buzzer", action="store_true", help="beep on every ticket")
    a.add_argument("--fallback", metavar="PRINTER", help="print here when this one stays faulty")
    rm = psub.add_parser("remove", parents=[nested], help="remove a printer")
    rm.add_argument("name")
    b = psub.add_parser("bill", parents=[nested], help="print the bill of a table's current visit")
    b.add_argument("table", help="the table's name")
    b.add_argument("printer", help="the printer's name")

    p = sub.add_parser("stickers", parents=[common, web], help="table QR stickers: an A4 sheet (PDF/PNG) or on a receipt printer",
                       description="Each table's ordering URL as a QR code (quiet zone 4 modules, error correction M) "
                                   "with the store's name, the table and 扫码点餐 / Scan to order; optionally the "
                                   "store Wi-Fi's QR code too. Re-keying a table voids its old sticker.")
    p.add_argument("--pdf", metavar="FILE", help="write an A4 sheet of stickers (12 a page) as a PDF")
    p.add_argument("--png", metavar="FILE", help="write the A4 pages as PNG images")
    p.add_argument("--print", dest="print_on", metavar="PRINTER", help="print them on this receipt printer")
    p.add_argument("--table", action="append", metavar="NAME", help="only this table (repeat for several)")
    p.add_argument("--wifi-ssid", metavar="SSID", help="add the store Wi-Fi's QR code")
    p.add_argument("--wifi-password", metavar="PASSWORD", help="the Wi-Fi's password (none: an open network)")
    p.set_defaults(func=cmd_stickers)

    p = sub.add_parser("photo", parents=[common], help="give a dish a photo (resized for phones)",
                       description="Shrink a photo to phone size (at most 640 px a side, JPEG), store it in the data "
                                   "folder and show it with the dish on diners' menus at once.")
    p.add_argument("dish", help="the dish's key (as in the menu file) or id")
    p.add_argument("file", help="a JPEG, PNG or WebP picture")
    p.set_defaults(func=cmd_photo)

    p = sub.add_parser("tables", parents=[common, web], help="one line per table: its name and its ordering URL; add a table",
                       description="List the tables with their full ordering URLs (what the QR stickers carry), "
                                   "or add one.")
    p.set_defaults(func=cmd_tables, tables_command=None)
    tsub = p.add_subparsers(dest="tables_command", metavar="COMMAND")
    a = tsub.add_parser("add", parents=[nested], help="add a table")
    a.add_argument("name", help="as printed on its sticker, e.g. A1")
    a.add_argument("--area", help="e.g. 大厅 Hall (tables are grouped by area on the console)")
    a.add_argument("--seats", type=int)

    p = sub.add_parser("menu", parents=[common], help="import a menu file into a new store",
                       description="Import a menu file (JSON in the demo's format, appliance/demo/menu.json: stations, "
                                   "option groups, categories with dishes, optionally tables) into a store that has no "
                                   "menu yet. One transaction: a bad file changes nothing.")
    msub = p.add_subparsers(dest="menu_command", metavar="COMMAND", required=True)
    i = msub.add_parser("import", parents=[nested], help="import FILE")
    i.add_argument("file")
    i.set_defaults(func=cmd_menu)

    p = sub.add_parser("backup", parents=[common], help="an online backup of the store, checked, kept in rotation",
                       description="Copy the store database while orders keep coming (SQLite's backup API inside "
                                   "one read transaction), check the copy (integrity_check, a store's tables), make "
                                   "it durable and rename it into place as store-YYYYMMDD-HHMMSS.db in backup_dir "
                                   "(default <data_dir>/backups), also on the USB stick mounted at backup_usb_dir if "
                                   "any; then delete older backups beyond the newest per day of the last 7 days "
                                   "and the newest per ISO week of the last 4 weeks. The store secret is not in it.")
    p.add_argument("--dest", metavar="DIR", help="back up into this folder instead (e.g. a mounted USB stick)")
    p.add_argument("--keep-daily", type=int, default=7, metavar="N", help="days to keep the newest backup of (7)")
    p.add_argument("--keep-weekly", type=int, default=4, metavar="N", help="ISO weeks to keep the newest backup of (4)")
    p.set_defaults(func=cmd_backup)

    p = sub.add_parser("restore", parents=[common], help="put a backup in place of the store (the current one is kept aside)",
                       description="Check FILE (a SQLite database, integrity_check, a Tablebox store) and only then "
                                   "replace the store database with it; the database that was there is kept as "
                                   "store.db.before-restore-<time>. Refuses while the web server, print worker or "
                                   "console have the store open: `systemctl stop tablebox-web tablebox-printd "
                                   "tablebox-console` first.")
    p.add_argument("file", metavar="FILE", help="a backup (store-YYYYMMDD-HHMMSS.db)")
    p.add_argument("--force", action="store_true",
                   help="restore even while something has the store open (it keeps writing to the old file)")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("doctor", parents=[common], help="check the box: database, disk, clock, printers, backups, services",
                       description="One line per check (✓ ok, ! look at it, ✗ failed) with what to do about each "
                                   "problem. Exit status 1 when any check failed.")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("relay", help="the public relay: serve it, enrol a store (runs on a public host, not a box)",
                       description="The relay lets phones off the store Wi-Fi order through a public host; each "
                                   "store's box long-polls it (signed requests). Storage: SQLite or PostgreSQL.")
    p.set_defaults(func=cmd_relay)
    relay_common = argparse.ArgumentParser(add_help=False)
    relay_common.add_argument("--config", dest="relay_config", metavar="FILE",
                              help="relay settings file (overrides $TABLEBOX_RELAY_CONFIG)")
    relay_common.add_argument("--database-url", "--relay-db", dest="database_url", metavar="URL",
                              help="sqlite:////PATH or postgresql://USER@HOST/DB (setting: database_url)")
    rsub = p.add_subparsers(dest="relay_command", metavar="ACTION", required=True)
    from sync.relay.settings import relay_settings_help

    r = rsub.add_parser("serve", parents=[relay_common], help="serve the relay",
                        epilog=relay_settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    r.add_argument("--host", help="listen address (setting: host)")
    r.add_argument("--port", type=int, help="listen port (setting: port)")
    r = rsub.add_parser("enroll", parents=[relay_common], help="enrol a store: prints its store_id and secret")
    r.add_argument("name", help="the store's name (for the relay's records)")
    r.add_argument("--base-url", metavar="URL", help="the relay's public address, for the printed [sync.relay] table")

    # The processes that serve or print check the database first (quick_check) and refuse a damaged one.
    for name in ("serve", "demo", "printd", "syncd"):
        sub.choices[name].set_defaults(check_database=True)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from appliance.domain.errors import DomainError
    from appliance.store import StoreError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "check_database", False):
            refuse_damaged_store(_settings(args))
        return args.func(args)
    except (SettingsError, StoreError) as exc:
        print(f"tablebox: {exc}", file=sys.stderr)
        return 2
    except DomainError as exc:
        print(f"tablebox: {exc.message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
