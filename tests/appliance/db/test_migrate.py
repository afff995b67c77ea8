"""Migrations that move data, checked on a database made by the migrations before them."""

from __future__ import annotations

import json

from appliance.db.connection import open_connection
from appliance.db.migrate import available, current_version, migrate


def test_0008_gives_existing_relay_targets_their_inbox_source(tmp_path):
    """A box updated from before 0008 keeps routing: its relay target gets only the orders it brought in (its
    inbox_seen source, relay:NAME@RELAY_STORE), its ERP targets every order (NULL)."""
    conn = open_connection(tmp_path / "store.db")
    conn.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
    )
    for number, name, sql in available():
        if number < 8:
            conn.execute(sql)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?, '2026-01-01T00:00:00Z')", (number, name))
    conn.execute(
        "INSERT INTO sync_targets (name, kind, config) VALUES ('cloud', 'relay', ?), ('old', 'relay', '{}'),"
        " ('erp', 'erpnext', '{}')",
        (json.dumps({"store_id": "s-42", "base_url": "https://relay.example.com"}),),
    )
    assert current_version(conn) == 7
    assert 8 in migrate(conn)
    assert dict(conn.execute("SELECT name, inbox_source FROM sync_targets")) == {
        "cloud": "relay:cloud@s-42",
        "old": "relay:old@",
        "erp": None,
    }
