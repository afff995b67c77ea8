"""A disk that refuses to sync: the diner is told the order was NOT taken, and a retry takes it exactly once."""

from __future__ import annotations

from litestar.testing import TestClient

from appliance.db.connection import open_connection
from appliance.demo import ensure_demo_store
from appliance.store import Store
from appliance.web.app import create_app
from tests.appliance.web.conftest import item_id, key, token_for
from tests.conftest import make_settings
from tests.faults import FaultyVFS


def test_a_failed_commit_is_503_and_the_retry_makes_one_order(tmp_path):
    vfs = FaultyVFS("faulty-api")
    try:
        settings = make_settings(tmp_path / "d", sqlite_vfs=vfs.name)
        ensure_demo_store(settings)
        token = token_for(settings, "A1")
        conn = open_connection(settings.db_path)
        body = {"client_key": key(), "lines": [{"item_id": item_id(conn, "har_gow"), "quantity": 1}]}
        store = Store.open(settings)
        with TestClient(create_app(settings, store)) as client:
            vfs.fail_sync = True
            r = client.post(f"/api/v1/tables/{token}/orders?lang=en", json=body)
            vfs.fail_sync = False
            assert r.status_code == 503
            assert r.json()["error"]["code"] == "storage_unavailable"
            assert "NOT taken" in r.json()["error"]["message"]
            assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 0
            assert conn.execute("SELECT count(*) FROM print_jobs").fetchone()[0] == 0
            retry = client.post(f"/api/v1/tables/{token}/orders", json=body)
            assert retry.status_code == 201
        store.close()
        assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == 1
        conn.close()
    finally:
        vfs.unregister()
