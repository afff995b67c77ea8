"""`tablebox init`, `tablebox demo` and `tablebox serve`: a new store, the demo store, the web server."""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sys
from pathlib import Path
from typing import Any

import structlog

from appliance.cli.common import add_command, box_settings, web_options
from appliance.cli.sync import register_sync_targets
from appliance.db.store_settings import load_store_settings
from appliance.demo import DEMO_STAFF, ensure_demo_store
from appliance.logs import configure_logging
from appliance.served import forget_served, serving_here
from appliance.settings import BoxSettings, lan_address
from appliance.store import init_store, read_secret, require_store, store_connection, table_urls


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "init",
        help="create a new store (database and secret) in the data folder",
        description="Create a new, empty store: the database, its first settings and the secret that "
        "signs table QR codes. Refuses if a store is already there.",
        examples=[
            "tablebox init --store-name '川味小馆 Sichuan House' --currency CNY --languages zh,en",
            "tablebox --data-dir /var/lib/tablebox init --timezone Asia/Shanghai",
        ],
    )
    p.add_argument("--store-name", help="the restaurant's name (store setting: store_name)")
    p.add_argument("--currency", help="ISO 4217 code, e.g. CNY or JPY (store setting: currency)")
    p.add_argument("--timezone", help="e.g. Asia/Shanghai (store setting: timezone)")
    p.add_argument("--languages", help="comma-separated menu languages, first is the default, e.g. zh,en")
    p.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing when a sound store is already there (the web unit runs this before every start, so "
        "each box makes its own secret at its first start, never at image build)",
    )
    p.set_defaults(func=cmd_init)

    p = add_command(
        sub,
        "demo",
        parents=[web_options()],
        help="create the demo store if needed, then serve it",
        description="Serve the built-in demo store (bilingual menu, two stations, 14 tables, virtual "
        "printers), creating it in the data folder first if no store is there. Dishes show a drawn placeholder; "
        "--photos gives them pictures drawn by the project (appliance/demo/photos.py) first.",
        examples=["tablebox demo --data-dir /tmp/demo", "tablebox demo --port 8081", "tablebox demo --photos"],
    )
    p.add_argument(
        "--photos",
        action="store_true",
        help="give the demo's dishes without a photo the pictures the project draws (64, ~1 MB in all)",
    )
    p.set_defaults(func=cmd_demo, check_database=True)  # quick_check first (main)

    p = add_command(
        sub,
        "serve",
        parents=[web_options()],
        help="serve an existing store",
        description="Serve the diner API of the store in the data folder.",
        examples=["tablebox serve --urls", "tablebox serve --host 127.0.0.1 --port 8080"],
    )
    p.add_argument("--urls", action="store_true", help="print every table's ordering URL at start")
    p.set_defaults(func=cmd_serve, check_database=True)


def cmd_init(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    values: dict[str, Any] = {}
    for name in ("store_name", "currency", "timezone"):
        if getattr(args, name) is not None:
            values[name] = getattr(args, name)
    if args.languages is not None:
        values["languages"] = [part.strip() for part in args.languages.split(",") if part.strip()]
    if args.if_missing and settings.db_path.exists():
        require_store(settings)  # a damaged or foreign file still refuses (exit 2), as `init` does
        read_secret(settings.secret_path)
        print(f"a store is already in {settings.data_dir}: nothing to do")
        return 0
    store = init_store(settings, values)
    print(f"created store {store.store_name!r} ({store.currency}) in {settings.data_dir}")
    print(f"  database: {settings.db_path}")
    print(f"  secret:   {settings.secret_path} (keep it private: it signs every table's QR code)")
    print("next: add a manager for the console: tablebox staff add NAME --role manager")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    require_store(settings, hint=" or `tablebox demo` first")
    return serve(settings, banner=args.urls)


def cmd_demo(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    created = ensure_demo_store(settings)
    print(
        ("created the demo store in " if created else "using the store already in ") + str(settings.data_dir),
        flush=True,
    )
    if args.photos:
        from appliance.cli.menu import set_demo_photos

        print(f"demo photos: drew and set {set_demo_photos(settings)}", flush=True)
    return serve(settings, banner=True, printing=True)


def serve(settings: BoxSettings, banner: bool, printing: bool = False) -> int:
    """The web server (and, for the demo, the print worker with virtual printers) until Ctrl-C or SIGTERM."""
    from appliance import serving
    from appliance.web.app import create_app

    configure_logging(settings.log_format, settings.log_level)
    # Refuse here, with one line and exit 2, what the web app would otherwise meet while starting (inside the
    # server's lifespan, where it becomes an ExceptionGroup traceback and exit 3 that systemd restarts forever).
    read_secret(settings.secret_path)
    if settings.db_path.exists():  # the [sync.NAME] targets of the settings: orders queue a row for each
        registered = register_sync_targets(settings)
        if any(registered.values()):
            structlog.get_logger("appliance.cli").info("sync.targets", **registered)
    if banner:
        print_banner(settings, printing)
    app = create_app(settings)
    server = serving.build_server(
        app,
        host=settings.host,
        port=settings.port,
        limits=serving.Limits.from_settings(settings),
        on_exit=lambda: forget_served(settings),  # a stop asked for: `tablebox tables` no longer shows this port
    )
    if printing:
        from printers.host import PrintingHost

        host: contextlib.AbstractContextManager[Any] = PrintingHost(settings)
    else:
        host = contextlib.nullcontext()
    with host, serving_here(settings):  # `tablebox tables` prints this port while the server runs
        server.run()
    return 0


def print_banner(settings: BoxSettings, demo: bool) -> None:
    with store_connection(settings, readonly=True) as conn:
        name = load_store_settings(conn).store_name
    print(f"\n{name}: order from a phone at these addresses (one per table):\n", flush=True)
    lines = table_urls(settings)
    width = max((len(line.name) for line in lines), default=0)
    for line in lines:
        print(f"  {line.name:<{width}}  {line.url}    ({line.area})", flush=True)
    print(
        f"\nAPI description: http://{display_host(settings.host)}:{settings.port}/schema   "
        f"health: /healthz   stop: Ctrl-C",
        flush=True,
    )
    if demo:
        pins = ", ".join(f"{person} PIN {pin}" for person, _, pin in DEMO_STAFF)
        command = "tablebox" if shutil.which("tablebox") else str(Path(sys.executable).parent / "tablebox")
        print(
            f"console (in another terminal): {command} console --data-dir {settings.data_dir}   ({pins})\n", flush=True
        )


def display_host(host: str) -> str:
    return lan_address() if host in {"0.0.0.0", "::", ""} else host
