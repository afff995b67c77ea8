"""`tablebox sync status | retry | pull` and target registration by `tablebox serve`. If these failed, a technician
would not see why orders stop reaching the ERP, could not put refused orders back in line after fixing the cause,
or could not fetch a changed price list now; and a newly configured ERP would never get an order."""

from __future__ import annotations

import json

import httpx
import pytest

from appliance.cli import main
from appliance.cli.sync import register_sync_targets
from appliance.db.connection import open_connection
from tests.appliance.test_crash import ServerProcess
from tests.appliance.web.conftest import item_id, key
from tests.conftest import token_for
from tests.fakes.erp_rest import FakeRestERP
from tests.sync.syncd import seed_catalog, write_settings


@pytest.fixture(autouse=True)
def restore_logging():
    """The commands run in process here configure logging onto pytest's captured stream, which closes after the
    test: later tests (and their threads) must not log into it."""
    yield
    import logging

    import structlog

    structlog.reset_defaults()
    logging.getLogger().handlers.clear()


def tablebox(capsys, settings, *args: str, config=None) -> tuple[int, str, str]:
    extra = ["--config", str(config)] if config else []
    code = main([*args[:1], "--data-dir", str(settings.data_dir), *extra, *args[1:]])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def erp():
    fake = FakeRestERP()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def rows(db):
    with db:
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'erpnext'), ('books', 'odoo')")
        for target, k, attempts, delivered, parked, error in [
            ("erp", "a", 1, "2026-11-21T11:00:01.000000Z", None, None),
            ("erp", "b", 4, None, "2026-11-21T11:30:00.000000Z", "Item Price for har_gow not found"),
            ("erp", "c", 0, None, None, None),
            ("books", "a", 2, None, None, "HTTP 503: Odoo is restarting"),
        ]:
            db.execute(
                "INSERT INTO outbox (target, kind, idempotency_key, payload, attempts, delivered_at, parked_at,"
                " last_error, next_attempt_at, created_at) VALUES (?, 'order.submitted', ?, '{}', ?, ?, ?, ?,"
                " '2099-01-01T00:00:00.000000Z', '2026-11-21T11:00:00.000000Z')",
                (target, k, attempts, delivered, parked, error),
            )
    return db


def test_status_shows_each_targets_state_backlog_and_last_error(capsys, settings, rows):
    code, out, _ = tablebox(capsys, settings, "sync", "status")
    assert code == 0
    assert out.splitlines() == [
        "books  (odoo)  retrying since 2026-11-21 11:00:00Z",
        "    backlog 1, parked 0, oldest waiting 2026-11-21 11:00:00Z, last success -",
        "    last error: HTTP 503: Odoo is restarting",
        "erp  (erpnext)  failing since 2026-11-21 11:30:00Z",
        "    backlog 1, parked 1, oldest waiting 2026-11-21 11:00:00Z, last success 2026-11-21 11:00:01Z",
        "    last error: Item Price for har_gow not found",
        "    the ERP refused 1 row(s): fix the cause, then `tablebox sync retry erp`",
    ]
    assert tablebox(capsys, settings, "sync")[1] == out  # status is the default


def test_status_names_each_targets_last_check_and_how_to_run_it(capsys, settings, rows):
    from datetime import UTC, datetime

    from appliance.db.sync_checks import CheckLine, CheckOutcome, save_check

    with rows:
        save_check(
            rows,
            "erp",
            [
                CheckLine("reachable", CheckOutcome.OK),
                CheckLine("custom field", CheckOutcome.FAIL, "missing", "add it"),
                CheckLine("tax", CheckOutcome.WARN, "not checked"),
            ],
            ran_at=datetime(2026, 11, 21, 11, 45, tzinfo=UTC),
            ran_by="cli",
        )
    code, out, _ = tablebox(capsys, settings, "sync", "status")
    assert code == 0
    assert out.splitlines()[-1] == (
        "    last check 2026-11-21 11:45:00Z: 1 failed, 1 to look at, 1 ok (`tablebox sync check erp`)"
    )
    assert "last check" not in out.split("erp  (erpnext)")[0]  # books was never checked: no line


def test_retry_puts_parked_rows_back_and_wakes_waiting_ones(capsys, settings, rows):
    code, out, _ = tablebox(capsys, settings, "sync", "retry", "erp")
    assert (code, out) == (0, "erp: 1 parked row(s) back in line, 1 waiting row(s) sent at the worker's next pass\n")
    assert (
        rows.execute(
            "SELECT count(*) FROM outbox WHERE target = 'erp' AND (parked_at IS NOT NULL"
            " OR next_attempt_at IS NOT NULL) AND delivered_at IS NULL"
        ).fetchone()[0]
        == 0
    )
    assert rows.execute("SELECT next_attempt_at FROM outbox WHERE target = 'books'").fetchone()[0] is not None
    code, out, _ = tablebox(capsys, settings, "sync", "retry")  # every enabled target
    assert (
        code == 0
        and out.splitlines()[0]
        == "books: 0 parked row(s) back in line, 1 waiting row(s) sent at the worker's next pass"
    )
    code, _, err = tablebox(capsys, settings, "sync", "retry", "sap")
    assert code == 2 and "no sync target called 'sap'" in err


def test_pull_applies_the_erps_prices_now_and_leaves_the_menu_alone_when_it_is_down(
    capsys, settings, db, erp, tmp_path
):
    seed_catalog(settings.db_path, erp)
    erp.set_price("har_gow", 3500)
    config = write_settings(tmp_path / "t.toml", {"erp": {**erp.target_config(), "pull_minutes": 0}})
    code, out, err = tablebox(capsys, settings, "sync", "pull", "erp", config=config)
    assert code == 0, err
    assert out.splitlines()[:2] == ["erp: 1 change(s) to the menu", "  price   har_gow (har_gow): ¥32.00 -> ¥35.00"]
    assert db.execute("SELECT price_minor FROM items WHERE key = 'har_gow'").fetchone()[0] == 3500
    erp.set_price("har_gow", 3900)
    erp.go_down()
    code, out, err = tablebox(capsys, settings, "sync", "pull", config=config)
    assert code == 1 and any(line.startswith("erp: pull failed, the menu is unchanged:") for line in err.splitlines())
    assert db.execute("SELECT price_minor FROM items WHERE key = 'har_gow'").fetchone()[0] == 3500


def test_registering_targets_at_start_makes_orders_queue_for_them(settings, erp, tmp_path):
    config = write_settings(tmp_path / "t.toml", {"erp": erp.target_config()})
    from appliance.settings import load_settings

    box = load_settings(environ={}, data_dir=settings.data_dir, config_file=config)
    assert register_sync_targets(box) == {"enabled": ["erp"], "disabled": []}
    conn = open_connection(settings.db_path)
    try:
        stored = json.loads(conn.execute("SELECT config FROM sync_targets WHERE name = 'erp'").fetchone()[0])
    finally:
        conn.close()
    assert stored["base_url"] == erp.url and "auth_header" not in stored


@pytest.mark.slow
def test_serve_registers_the_settings_targets_so_its_orders_queue_for_the_erp(settings, erp, tmp_path):
    config = write_settings(tmp_path / "t.toml", {"erp": erp.target_config()})
    server = ServerProcess(settings.data_dir, tmp_path / "server.log", env={"TABLEBOX_CONFIG": str(config)})
    conn = open_connection(settings.db_path)
    try:
        body = {"client_key": key(), "lines": [{"item_id": item_id(conn, "har_gow"), "quantity": 1}]}
        r = httpx.post(f"{server.url}/api/v1/tables/{token_for(settings, 'A1')}/orders", json=body, timeout=10)
        assert r.status_code == 201, r.text
        health = httpx.get(f"{server.url}/healthz", timeout=10).json()
    finally:
        server.stop()
    assert conn.execute("SELECT target, kind, idempotency_key FROM outbox").fetchall() == [
        ("erp", "order.submitted", f"order.submitted:{body['client_key']}")
    ]
    conn.close()
    assert [(t["name"], t["kind"], t["state"], t["pending"]) for t in health["sync"]] == [("erp", "rest", "ok", 1)]
