"""GET /healthz: the database answers, and the print and sync queues are counted."""

from __future__ import annotations

from tests.appliance.web.conftest import item_id, key


def test_health_counts_queues_and_degrades_on_stuck_work(client, token, db):
    first = client.get("/healthz").json()
    from appliance.db.migrate import available

    newest = available()[-1][0]
    assert first["status"] == "ok" and first["database"] == {"ok": True, "schema_version": newest, "error": None}
    assert first["printers"]["pending_jobs"] == 0 and first["sync"] == []
    with db:
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'erp')")
    lines = [
        {"item_id": item_id(db, "har_gow"), "quantity": 1},
        {
            "item_id": item_id(db, "cola"),
            "quantity": 1,
            "option_ids": [
                db.execute(
                    "SELECT o.id FROM options o JOIN option_groups g ON g.id = o.group_id WHERE g.key = 'ice' LIMIT 1"
                ).fetchone()[0]
            ],
        },
    ]
    assert client.post(f"/api/v1/tables/{token}/orders", json={"client_key": key(), "lines": lines}).status_code == 201
    report = client.get("/healthz").json()
    assert report["status"] == "ok"
    assert report["printers"]["pending_jobs"] == 2 and report["printers"]["oldest_pending_at"]
    assert report["sync"] == [
        {
            "name": "erp",
            "kind": "erp",
            "state": "ok",
            "since": None,
            "pending": 1,
            "parked": 0,
            "last_success": None,
            "last_error": None,
        }
    ]
    with db:
        db.execute("UPDATE outbox SET parked_at = 'now', last_error = 'HTTP 417: item code unknown'")
        db.execute("UPDATE print_jobs SET state = 'failed' WHERE station = 'bar'")
    report = client.get("/healthz").json()
    assert report["status"] == "degraded"
    assert report["printers"]["failed_jobs"] == 1
    assert report["sync"][0] == {
        "name": "erp",
        "kind": "erp",
        "state": "failing",
        "since": "now",
        "pending": 0,
        "parked": 1,
        "last_success": None,
        "last_error": "HTTP 417: item code unknown",
    }


def test_health_says_when_a_target_is_retrying_and_since_when(client, token, db):
    """An ERP that is down is not a fault of the box (status stays ok), but /healthz says which target waits,
    since when and why."""
    with db:
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'erpnext'), ('old', 'odoo')")
        db.execute("UPDATE sync_targets SET enabled = 0 WHERE name = 'old'")
    body = {"client_key": key(), "lines": [{"item_id": item_id(db, "har_gow"), "quantity": 1}]}
    assert client.post(f"/api/v1/tables/{token}/orders", json=body).status_code == 201
    with db:
        db.execute("UPDATE outbox SET attempts = 3, last_error = 'HTTP 503: ERP busy', next_attempt_at = '2099-01-01'")
    created = db.execute("SELECT created_at FROM outbox").fetchone()[0]
    report = client.get("/healthz").json()
    assert report["status"] == "ok"
    assert [(t["name"], t["state"], t["since"], t["pending"], t["last_error"]) for t in report["sync"]] == [
        ("erp", "retrying", created, 1, "HTTP 503: ERP busy")
    ]
