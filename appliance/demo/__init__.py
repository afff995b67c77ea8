"""The demo store: a bilingual Chinese/English menu, two stations, tables in two areas, virtual printers."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import apsw

from appliance.db.connection import write_transaction
from appliance.db.menu import import_menu
from appliance.db.printing import save_printer
from appliance.db.staff import add_staff
from appliance.db.tables import add_table
from appliance.settings import BoxSettings
from appliance.store import init_store, read_secret, store_connection, store_exists

# name, address, paper width (mm), text mode, stations
DEMO_PRINTERS: tuple[tuple[str, str, int, str, list[str]], ...] = (
    ("kitchen", "virtual://kitchen", 80, "gb18030", ["kitchen"]),
    ("bar", "virtual://bar", 58, "gb18030", ["bar"]),
)


# Demo staff and their PINs (printed when the demo starts; a real store adds its own with `tablebox staff add`).
DEMO_STAFF = (("店长 Manager", "manager", "1234"), ("服务员 Waiter", "waiter", "5678"))


def demo_data() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(resources.files("appliance.demo").joinpath("menu.json").read_text("utf-8"))
    return data


def demo_store_values() -> dict[str, Any]:
    store = demo_data()["store"]
    return {
        "store_name": " ".join(store["name"][lang] for lang in ("zh", "en")),
        "currency": store["currency"],
        "languages": store["languages"],
        "timezone": store["timezone"],
        "service_charge_bp": 0,
    }


def load_demo(conn: apsw.Connection, secret: bytes) -> dict[str, int]:
    """Fill an empty store with the demo menu, tables, virtual printers and staff (one transaction, caller's)."""
    data = demo_data()
    for name, role, pin in DEMO_STAFF:
        add_staff(conn, secret, name, role, pin)
    counts = import_menu(conn, data)
    for table in data["tables"]:
        add_table(conn, table["name"], table.get("area", ""), table.get("seats"))
    for name, uri, paper_mm, text_mode, stations in DEMO_PRINTERS:
        save_printer(conn, name, uri, stations=stations, paper_mm=paper_mm, text_mode=text_mode)
    counts["tables"] = len(data["tables"])
    counts["printers"] = len(DEMO_PRINTERS)
    return counts


def ensure_demo_store(settings: BoxSettings) -> bool:
    """Create the demo store in the data folder unless a store is already there. True if created."""
    if store_exists(settings):
        return False
    init_store(settings, demo_store_values())
    with store_connection(settings) as conn, write_transaction(conn):
        load_demo(conn, read_secret(settings.secret_path))
    return True
