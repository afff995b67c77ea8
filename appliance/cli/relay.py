"""`tablebox relay [serve | enroll NAME]`: the public relay, a service of its own on a public host (not a box)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

import structlog

from appliance.cli.common import add_command
from appliance.logs import configure_logging
from appliance.settings import SettingsError

if TYPE_CHECKING:
    from sync.relay.settings import RelaySettings


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from sync.relay.settings import relay_settings_help

    p = add_command(
        sub,
        "relay",
        global_opts=False,
        help="the public relay: serve it, enrol a store (runs on a public host, not a box)",
        description="The relay lets phones off the store Wi-Fi order through a public host; each "
        "store's box long-polls it (signed requests). Storage: SQLite or PostgreSQL.",
        examples=[
            "tablebox relay serve --database-url postgresql://relay@localhost/relay",
            "tablebox relay enroll '川味小馆' --base-url https://relay.example.com",
        ],
    )
    p.set_defaults(func=cmd_relay)
    relay_common = argparse.ArgumentParser(add_help=False)
    relay_common.add_argument(
        "--config", dest="relay_config", metavar="FILE", help="relay settings file (overrides $TABLEBOX_RELAY_CONFIG)"
    )
    relay_common.add_argument(
        "--database-url",
        "--relay-db",
        dest="database_url",
        metavar="URL",
        help="sqlite:////PATH or postgresql://USER@HOST/DB (setting: database_url)",
    )
    rsub = p.add_subparsers(dest="relay_command", metavar="ACTION", required=True)
    r = add_command(
        rsub,
        "serve",
        global_opts=False,
        parents=[relay_common],
        help="serve the relay",
        examples=[
            "tablebox relay serve --config /etc/tablebox/relay.toml",
            "tablebox relay serve --database-url sqlite:////var/lib/tablebox-relay/relay.db --port 8443",
        ],
        epilog_more=relay_settings_help(),
    )
    r.add_argument("--host", help="listen address (setting: host)")
    r.add_argument("--port", type=int, help="listen port (setting: port)")
    r = add_command(
        rsub,
        "enroll",
        global_opts=False,
        parents=[relay_common],
        help="enrol a store: prints its store_id and secret",
        examples=["tablebox relay enroll '川味小馆' --base-url https://relay.example.com"],
    )
    r.add_argument("name", help="the store's name (for the relay's records)")
    r.add_argument("--base-url", metavar="URL", help="the relay's public address, for the printed [sync.relay] table")


def cmd_relay(args: argparse.Namespace) -> int:
    from sync.relay.settings import load_relay_settings

    overrides = {name: getattr(args, name, None) for name in ("host", "port", "database_url")}
    settings = load_relay_settings(config_file=args.relay_config).with_overrides(**overrides)
    if args.relay_command == "enroll":
        return _relay_enroll(args, settings.resolved_database_url)
    return _relay_serve(settings)


def _relay_enroll(args: argparse.Namespace, database_url: str) -> int:
    from sync.relay.storage import open_storage

    storage = open_storage(database_url, pool_size=1)  # StorageError: exit 2
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
    print("\nOn the box, add to its settings file (this secret is its key: keep it out of any file others can read):\n")
    print(
        f'[sync.relay]\nkind = "relay"\nbase_url = "{base}"\nstore_id = "{enrolled.store_id}"\n'
        f"pull_minutes = 0\n# api_secret: in /etc/tablebox/sync.env (mode 0600) as\n"
        f'# TABLEBOX_SYNC_RELAY_API_SECRET={enrolled.secret}\n# or here as api_secret = "..." if this '
        "file is mode 0600"
    )
    print(
        f"\nFor table stickers that also work off the store Wi-Fi (mobile data), set at the top of the same "
        f'file:\npublic_base_url = "{base}/s/{enrolled.store_id}"\nthen reprint the stickers '
        "(`tablebox stickers`): the relay serves the diner page there."
    )
    return 0


def _relay_serve(settings: RelaySettings) -> int:
    from sync.relay.app import RelayServer
    from sync.relay.storage import open_storage

    configure_logging(settings.log_format, settings.log_level)
    storage = open_storage(settings.resolved_database_url, pool_size=settings.db_threads)  # StorageError: exit 2
    try:
        server = RelayServer(settings, storage)
        structlog.get_logger("sync.relay").info(
            "relay.started", host=settings.host, port=settings.port, database=storage.dialect
        )
        server.run()
    finally:
        storage.close()
    return 0
