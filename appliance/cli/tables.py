"""`tablebox tables [add NAME]`: the tables with their ordering URLs (on the port the store is served on right now,
when a server of this data folder runs: appliance.served; else the port setting); add a table."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from appliance.cli.common import add_command, box_settings, web_options
from appliance.db.connection import write_transaction
from appliance.db.tables import add_table
from appliance.served import served_now
from appliance.store import store_connection, table_urls


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "tables",
        parents=[web_options()],
        help="one line per table: its name and its ordering URL; add a table",
        description="List the tables with their full ordering URLs, or add one. Without --port or a "
        "public_base_url, the URLs use the port a server of this data folder (tablebox serve or demo) is answering on "
        "now, else the port setting.",
        examples=[
            "tablebox tables",
            "tablebox tables --public-base-url https://order.example.com",
            "tablebox tables add A1 --area '大厅 Hall' --seats 4",
        ],
    )
    p.set_defaults(func=cmd_tables, tables_command=None)
    tsub = p.add_subparsers(dest="tables_command", metavar="COMMAND")
    a = add_command(
        tsub,
        "add",
        help="add a table",
        examples=[
            "tablebox tables add A1 --area '大厅 Hall' --seats 4",
            "tablebox --data-dir /var/lib/tablebox tables add B2",
        ],
    )
    a.add_argument("name", help="as printed on its sticker, e.g. A1")
    a.add_argument("--area", help="e.g. 大厅 Hall (tables are grouped by area on the console)")
    a.add_argument("--seats", type=int)


def cmd_tables(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    if args.tables_command == "add":
        with store_connection(settings) as conn, write_transaction(conn):
            table = add_table(conn, args.name, args.area or "", args.seats)
        print(
            f"added table {table.name}"
            + (f" ({table.area})" if table.area else "")
            + ": print its sticker with tablebox stickers --table "
            + table.name
        )
        return 0
    if not hasattr(args, "port") and not settings.public_base_url:
        served = served_now(settings)  # a server of this store running now: its port, not the setting's
        if served is not None and served.port != settings.port:
            print(
                f"(the store is being served on port {served.port}, process {served.pid}; the port setting says"
                f" {settings.port})",
                file=sys.stderr,
            )
            settings = replace(settings, port=served.port)
    lines = table_urls(settings)
    if not lines:
        print("no tables yet: tablebox tables add NAME --area AREA, or tablebox menu import FILE", file=sys.stderr)
    width = max((len(line.name) for line in lines), default=0)
    for line in lines:
        print(f"{line.name:<{width}}  {line.url}")
    return 0
