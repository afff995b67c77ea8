"""`tablebox menu import FILE` and `tablebox photo DISH FILE`: a new store's menu, and dishes' photos."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import apsw

from appliance.cli.common import add_command, box_settings
from appliance.db.connection import write_transaction
from appliance.db.menu import import_menu, set_image
from appliance.db.tables import add_table
from appliance.errors import DomainError
from appliance.images import prepare_image
from appliance.store import require_store, store_connection


def register_menu(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "menu",
        help="import a menu file into a new store",
        description="Import a menu file (JSON in the demo's format, appliance/demo/menu.json: stations, "
        "option groups, categories with dishes, optionally tables) into a store that has no "
        "menu yet. One transaction: a bad file changes nothing.",
        examples=["tablebox menu import menu.json"],
    )
    msub = p.add_subparsers(dest="menu_command", metavar="COMMAND", required=True)
    i = add_command(
        msub,
        "import",
        help="import FILE",
        examples=[
            "tablebox menu import menu.json",
            "tablebox --data-dir /var/lib/tablebox menu import /media/usb/menu.json",
        ],
    )
    i.add_argument("file")
    i.set_defaults(func=cmd_menu)


def register_photo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "photo",
        help="give a dish a photo (resized for phones)",
        description="Shrink a photo to phone size (at most 640 px a side, JPEG), store it in the data "
        "folder and show it with the dish on diners' menus at once.",
        examples=["tablebox photo har-gow har-gow.jpg", "tablebox photo 12 /media/usb/dish12.png"],
    )
    p.add_argument("dish", help="the dish's key (as in the menu file) or id")
    p.add_argument("file", help="a JPEG, PNG or WebP picture")
    p.set_defaults(func=cmd_photo)


def cmd_menu(args: argparse.Namespace) -> int:
    """A menu file (the demo's JSON format) into a store that has no menu yet, with its tables if the file lists
    them; one transaction, so a bad file leaves nothing behind."""
    settings = box_settings(args)
    require_store(settings)
    try:
        data = json.loads(Path(args.file).read_text("utf-8"))
    except FileNotFoundError:
        raise DomainError("invalid_menu", f"no file {args.file}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DomainError("invalid_menu", f"{args.file} is not a JSON menu file: {exc}") from None
    if not isinstance(data, dict):
        raise DomainError("invalid_menu", f"{args.file}: a menu file is a JSON object (see appliance/demo/menu.json)")
    with store_connection(settings) as conn, write_transaction(conn):
        try:
            counts = import_menu(conn, data)
            tables = [add_table(conn, t["name"], t.get("area", ""), t.get("seats")) for t in data.get("tables", [])]
        except (KeyError, TypeError, AttributeError, apsw.ConstraintError) as exc:
            what = (
                f"missing {exc}"
                if isinstance(exc, KeyError)
                else "a dish names a station, or a table a name, that is missing or repeated"
                if isinstance(exc, apsw.ConstraintError)
                else str(exc)
            )
            raise DomainError(
                "invalid_menu", f"{args.file} does not follow the menu format ({what}); see appliance/demo/menu.json"
            ) from None
    print(
        f"imported {counts['items']} dishes in {counts['categories']} categories"
        f" ({counts['variants']} sizes) and {len(tables)} tables"
    )
    return 0


def cmd_photo(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    require_store(settings)
    name = prepare_image(Path(args.file), settings.data_dir)
    with store_connection(settings) as conn, write_transaction(conn):
        set_image(conn, args.dish, name)
    print(f"{args.dish}: photo {name} ({(settings.data_dir / 'images' / name).stat().st_size // 1024} KB)")
    return 0
