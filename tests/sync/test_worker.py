"""The sync worker, in process and as `tablebox syncd`. If these failed, stopping or restarting the box's sync
service would lose an order on its way to the ERP or send it twice, a hung worker would never be restarted by
systemd (or a healthy one would be), and a bad settings file would start a worker that silently does nothing."""

from __future__ import annotations

import time
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.db.connection import open_connection
from appliance.settings import SettingsError
from appliance.web.app import create_app
from sync.adapters.base import Catalog, CatalogItem, Retryable
from sync.worker import STUCK_AFTER_SECONDS, SyncWorker
from tests.appliance.test_sdnotify import is_ping
from tests.conftest import token_for
from tests.fakes.erp_rest import FakeRestERP
from tests.sync.syncd import Syncd, order_bodies, outbox_counts, seed_catalog, wait_until, write_settings
from tests.sync.test_outbox import ScriptedAdapter, place

TARGET = {
    "kind": "rest",
    "base_url": "http://127.0.0.1:9",
    "enabled": True,
    "timeout_seconds": 1,
    "pull_minutes": 0,
    "retry_cap_seconds": 1,
}


class CatalogAdapter(ScriptedAdapter):
    """Also answers pulls: the ERP knows har_gow at 32.00."""

    def __init__(self) -> None:
        super().__init__()
        self.pulls = 0
        self.pull_fails = False

    def pull_catalog(self) -> Catalog:
        self.pulls += 1
        if self.pull_fails:
            raise Retryable("ERP unreachable")
        return Catalog([CatalogItem("har_gow", {"zh": "虾饺", "en": "Har gow"}, 3600)], currency="CNY")

    def pull_stock(self) -> dict[str, int]:
        return {}


def with_targets(settings, **targets: dict[str, Any]):
    from dataclasses import replace

    return replace(settings, sync_targets={name: {**TARGET, **config} for name, config in targets.items()})


def test_the_worker_delivers_each_target_in_its_own_thread_and_stops_cleanly(settings, client, token, db):
    settings = with_targets(settings, erp={}, books={})
    from sync.config import register_targets

    register_targets(db, settings)
    refs = [place(client, token, db)["client_key"] for _ in range(5)]
    adapters: dict[str, ScriptedAdapter] = {}

    def factory(name, config):
        adapters[name] = ScriptedAdapter()
        return adapters[name]

    worker = SyncWorker(settings, adapter_factory=factory, poll_seconds=0.01).start()
    try:
        wait_until(
            lambda: (
                outbox_counts(settings.db_path, "erp")["delivered"] == 5
                and outbox_counts(settings.db_path, "books")["delivered"] == 5
            )
        )
        assert worker.health() is None
    finally:
        worker.stop()
    assert adapters["erp"].order_refs() == refs and adapters["books"].order_refs() == refs
    assert all(not loop.thread.is_alive() for loop in worker.loops)
    assert adapters["erp"].closed and adapters["books"].closed


def test_health_names_a_dead_or_stuck_target_thread(settings, db):
    settings = with_targets(settings, erp={})
    worker = SyncWorker(settings, adapter_factory=lambda n, c: ScriptedAdapter(), poll_seconds=0.01)
    assert worker.health() == "the thread of sync target erp has stopped"  # not started
    worker.start()
    try:
        wait_until(lambda: worker.health() is None)
        assert worker.health(now=time.monotonic() + STUCK_AFTER_SECONDS + 5).startswith(
            "sync target erp has been stuck for "
        )
    finally:
        worker.stop()
    assert worker.health() == "the thread of sync target erp has stopped"


def test_an_adapter_refusing_its_settings_is_a_settings_error_naming_the_target(settings):
    def refuse(name, config):
        raise ValueError("database is required")

    with pytest.raises(SettingsError, match=r"\[sync\.erp\]: database is required"):
        SyncWorker(with_targets(settings, erp={}), adapter_factory=refuse)


def test_the_catalog_is_pulled_at_start_and_a_failed_pull_does_not_stop_deliveries(settings, client, token, db):
    settings = with_targets(settings, erp={"pull_minutes": 60})
    from sync.config import register_targets

    register_targets(db, settings)
    with db:
        db.execute("UPDATE items SET erp_code = 'har_gow' WHERE key = 'har_gow'")
    adapter = CatalogAdapter()
    worker = SyncWorker(settings, adapter_factory=lambda n, c: adapter, poll_seconds=0.01).start()
    try:
        wait_until(lambda: db.execute("SELECT price_minor FROM items WHERE key = 'har_gow'").fetchone()[0] == 3600)
    finally:
        worker.stop()
    assert adapter.pulls == 1  # once at start, the next in an hour
    adapter = CatalogAdapter()
    adapter.pull_fails = True
    ref = place(client, token, db)["client_key"]
    worker = SyncWorker(settings, adapter_factory=lambda n, c: adapter, poll_seconds=0.01).start()
    try:
        wait_until(lambda: adapter.order_refs() == [ref])
    finally:
        worker.stop()
    assert adapter.pulls == 1


# --- tablebox syncd, a real process against the generic REST fake ERP ----------------------------------------


@pytest.fixture
def erp():
    fake = FakeRestERP()
    fake.start()
    try:
        yield fake
    finally:
        fake.stop()


def post_orders(settings, count: int) -> list[str]:
    token = token_for(settings, "A1")
    keys = []
    with TestClient(create_app(settings)) as client:
        for body in order_bodies(settings.db_path, count):
            r = client.post(f"/api/v1/tables/{token}/orders", json=body)
            assert r.status_code == 201, r.text
            keys.append(body["client_key"])
    return keys


def order_totals(settings) -> dict[str, int]:
    conn = open_connection(settings.db_path, readonly=True)
    try:
        return dict(conn.execute("SELECT client_key, total_minor FROM orders"))
    finally:
        conn.close()


def syncd_config(tmp_path, erp, **overrides):
    return write_settings(
        tmp_path / "tablebox.toml",
        {"erp": {**erp.target_config(), "pull_minutes": 0, "retry_cap_seconds": 1, **overrides}},
    )


@pytest.mark.slow
def test_sigterm_mid_backlog_exits_0_and_a_restart_sends_the_rest_each_once(settings, erp, tmp_path):
    seed_catalog(settings.db_path, erp)
    config = syncd_config(tmp_path, erp)
    from appliance.settings import load_settings
    from sync.config import register_targets

    conn = open_connection(settings.db_path)
    register_targets(conn, load_settings(environ={}, data_dir=settings.data_dir, config_file=config))
    conn.close()
    keys = post_orders(settings, 60)
    erp.slow_seconds = 0.03  # about 16 orders a second: the backlog is still there when SIGTERM comes
    syncd = Syncd(settings, config, tmp_path / "syncd.log", watchdog_usec=1_000_000)
    syncd.notify.wait_for(is_ping)  # the delivery loop comes round: systemd's watchdog is fed
    wait_until(lambda: outbox_counts(settings.db_path)["delivered"] >= 10)
    assert syncd.terminate() == 0, syncd.tail()
    after_stop = outbox_counts(settings.db_path)
    assert 10 <= after_stop["delivered"] < 60 and after_stop["claimed"] == 0  # stopped early, claims handed back
    counts = erp.order_counts()
    assert len(counts) == after_stop["delivered"] and set(counts.values()) == {1}  # each delivered row is there once
    assert '"event": "sync.stopped"' in syncd.tail(100_000)
    erp.slow_seconds = 0
    syncd = Syncd(settings, config, tmp_path / "syncd.log")
    try:
        wait_until(lambda: outbox_counts(settings.db_path)["delivered"] == 60)
    finally:
        assert syncd.terminate() == 0
    assert erp.order_counts() == dict.fromkeys(keys, 1)
    totals = order_totals(settings)
    assert {k: erp.order_total_minor(k) for k in keys} == {k: totals[k] for k in keys}


@pytest.mark.slow
def test_kill_9_mid_delivery_then_restart_delivers_every_order_once(settings, erp, tmp_path):
    seed_catalog(settings.db_path, erp)
    # secrets from the environment this time: the file (mode 0644) holds none
    target = {k: v for k, v in erp.target_config().items() if k != "auth_header"}
    config = write_settings(
        tmp_path / "tablebox.toml", {"erp": {**target, "pull_minutes": 0, "retry_cap_seconds": 1}}, mode=0o644
    )
    env = {"TABLEBOX_SYNC_ERP_AUTH_HEADER": erp.target_config()["auth_header"]}
    syncd = Syncd(settings, config, tmp_path / "syncd.log", env=env)  # registers the target at start
    erp.slow_seconds = 0.03
    keys = post_orders(settings, 80)
    wait_until(lambda: outbox_counts(settings.db_path)["delivered"] >= 15)
    syncd.kill9()
    assert outbox_counts(settings.db_path)["claimed"] > 0  # it died holding rows (one of them maybe in the ERP)
    erp.slow_seconds = 0
    erp.drop_after_commit_rate = 0.2  # and now some orders get in the ERP while the worker never hears back
    syncd = Syncd(settings, config, tmp_path / "syncd.log", env=env)  # same host: takes its claims back at once
    try:
        wait_until(lambda: outbox_counts(settings.db_path)["delivered"] == 80, timeout=30)
    finally:
        assert syncd.terminate() == 0
    assert erp.order_counts() == dict.fromkeys(keys, 1)
    assert outbox_counts(settings.db_path) == {"total": 80, "delivered": 80, "parked": 0, "claimed": 0, "waiting": 0}
    log = (tmp_path / "syncd.log").read_text()
    assert '"event": "sync.retrying"' in log and erp.secret not in log  # the key is never logged


@pytest.mark.slow
def test_syncd_refuses_bad_settings_and_a_second_instance(settings, erp, tmp_path):
    import subprocess
    import sys

    def run(config) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "appliance", "syncd", "--data-dir", str(settings.data_dir), "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    leaky = write_settings(tmp_path / "leaky.toml", {"erp": erp.target_config()}, mode=0o644)
    result = run(leaky)
    assert result.returncode == 2
    assert f"{leaky}: [sync.erp]: auth_header is written in the file" in result.stderr
    assert "TABLEBOX_SYNC_ERP_AUTH_HEADER" in result.stderr and erp.secret not in result.stderr
    empty = tmp_path / "empty.toml"
    empty.write_text("port = 8080\n")
    result = run(empty)
    assert result.returncode == 2 and "no enabled [sync.NAME] target" in result.stderr
    config = syncd_config(tmp_path, erp)
    first = Syncd(settings, config, tmp_path / "syncd.log")
    try:
        result = run(config)
        assert result.returncode == 2 and "another `tablebox syncd` is running" in result.stderr
    finally:
        assert first.terminate() == 0
