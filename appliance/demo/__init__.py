"""The demo store: a bilingual Chinese/English menu, two stations, tables in two areas, virtual printers."""

from __future__ import annotations

import json
from importlib import resources
from typing import Any

import apsw

from appliance.db.connection import dumps
from appliance.db.menu import import_menu
from appliance.db.tables import add_table

DEMO_PRINTERS = (
    {"name": "kitchen", "uri": "virtual://kitchen", "paper_mm": 80, "text_mode": "gb18030", "stations": ["kitchen"]},
    {"name": "bar", "uri": "virtual://bar", "paper_mm": 58, "text_mode": "gb18030", "stations": ["bar"]},
)


def demo_data() -> dict[str, Any]:
    return json.loads(resources.files("appliance.demo").joinpath("menu.json").read_text("utf-8"))


def demo_store_values() -> dict[str, Any]:
    store = demo_data()["store"]
    return {
        "store_name": " ".join(store["name"][lang] for lang in ("zh", "en")),
        "currency": store["currency"],
        "languages": store["languages"],
        "timezone": store["timezone"],
        "service_charge_bp": 0,
    }


def load_demo(conn: apsw.Connection) -> dict[str, int]:
    """Fill an empty store with the demo menu, tables and virtual printers (one transaction, caller's)."""
    data = demo_data()
    counts = import_menu(conn, data)
    for table in data["tables"]:
        add_table(conn, table["name"], table.get("area", ""), table.get("seats"))
    for printer in DEMO_PRINTERS:
        conn.execute(
            "INSERT INTO printers (name, uri, paper_mm, text_mode, stations) VALUES (?, ?, ?, ?, ?)",
            (printer["name"], printer["uri"], printer["paper_mm"], printer["text_mode"], dumps(printer["stations"])),
        )
    counts["tables"] = len(data["tables"])
    counts["printers"] = len(DEMO_PRINTERS)
    return counts
