"""Fixtures of the printer tests: two virtual printers (kitchen and bar) and the demo store pointed at them."""

from __future__ import annotations

import pytest

from appliance.db.connection import open_connection, write_transaction
from printers.virtual import VirtualPrinter


@pytest.fixture
def printers():
    kitchen, bar = VirtualPrinter("kitchen").start(), VirtualPrinter("bar").start()
    try:
        yield {"kitchen": kitchen, "bar": bar}
    finally:
        kitchen.stop()
        bar.stop()


@pytest.fixture
def shop(settings, printers):
    conn = open_connection(settings.db_path)
    with write_transaction(conn):  # point the demo's virtual printers at the ones this test controls
        for name, printer in printers.items():
            conn.execute("UPDATE printers SET uri = ? WHERE name = ?", (printer.uri, name))
    yield conn
    conn.close()
