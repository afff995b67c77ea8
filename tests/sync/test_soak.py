"""The soak test per ERP: 1,000 orders through the web API while the fake ERP goes down, flaps, answers slowly,
commits and then drops the connection, and `tablebox syncd` (a real process) is killed with SIGKILL and
restarted twice. At the end the ERP holds every order exactly once with its total, and nothing is left in the
outbox. If this failed, a restaurant's books would miss orders taken during an outage, or count some twice."""

from __future__ import annotations

import importlib
import threading
from typing import Any

import pytest
from litestar.testing import TestClient

from appliance.cli.sync import register_sync_targets
from appliance.db.connection import open_connection
from appliance.settings import load_settings
from appliance.web.app import create_app
from tests.conftest import token_for
from tests.sync.syncd import Syncd, order_bodies, outbox_counts, seed_catalog, wait_until, write_settings

ORDERS = 1000
FAKES = ["tests.fakes.erp_rest:FakeRestERP", "tests.fakes.erpnext:FakeERPNext", "tests.fakes.odoo:FakeOdoo"]


def fake_class(path: str) -> Any:
    module, name = path.split(":")
    try:
        return getattr(importlib.import_module(module), name)
    except ModuleNotFoundError as exc:
        if exc.name != module:
            raise
        pytest.skip(f"{module} does not exist yet (its fake ERP is written separately)")


class Submitter(threading.Thread):
    """A stream of diners' orders through the web API, about `rate` a second, whatever the ERP does."""

    def __init__(self, settings: Any, count: int, rate: float = 80.0) -> None:
        super().__init__(name="diners", daemon=True)
        self.settings = settings
        self.bodies = list(order_bodies(settings.db_path, count, seed=11))
        self.tokens = [token_for(settings, name) for name in ("A1", "A2", "A3", "T1", "T2")]
        self.pause = 1.0 / rate
        self.keys: list[str] = []
        self.refused: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with TestClient(create_app(self.settings)) as client:
            for n, body in enumerate(self.bodies):
                if self.stop.is_set():
                    return
                r = client.post(f"/api/v1/tables/{self.tokens[n % len(self.tokens)]}/orders", json=body)
                if r.status_code == 201:
                    self.keys.append(body["client_key"])
                else:
                    self.refused.append(f"{r.status_code} {r.text[:200]}")
                self.stop.wait(self.pause)


@pytest.mark.slow
@pytest.mark.parametrize("fake_path", FAKES, ids=["rest", "erpnext", "odoo"])
def test_every_order_reaches_the_erp_exactly_once_through_outages_and_crashes(fake_path, settings, tmp_path):
    fake = fake_class(fake_path)()
    fake.start()
    procs: list[Syncd] = []
    diners: Submitter | None = None

    def start_syncd() -> Syncd:
        procs.append(Syncd(settings, config, tmp_path / "syncd.log"))
        return procs[-1]

    def delivered() -> int:
        return outbox_counts(settings.db_path)["delivered"]

    def attempts() -> int:
        conn = open_connection(settings.db_path, readonly=True)
        try:
            return conn.execute("SELECT total(attempts) FROM outbox").fetchone()[0]
        finally:
            conn.close()

    try:
        seed_catalog(settings.db_path, fake)
        # short backoff so the soak takes seconds, not hours; a catalog pull at each start
        config = write_settings(
            tmp_path / "tablebox.toml",
            {"erp": {**fake.target_config(), "timeout_seconds": 2, "pull_minutes": 1, "retry_cap_seconds": 0.05}},
        )
        box = load_settings(environ={}, data_dir=settings.data_dir, config_file=config)
        assert register_sync_targets(box)["enabled"] == ["erp"]

        fake.go_down()  # the internet is out when service starts
        diners = Submitter(settings, ORDERS)  # the web app as the tests run it (no rate limits)
        diners.start()
        syncd = start_syncd()
        wait_until(lambda: len(diners.keys) >= 150, timeout=30)
        assert delivered() == 0

        fake.come_back()  # back, but flapping: 503s
        fake.error_rate = 0.25
        wait_until(lambda: delivered() >= 100, timeout=30)
        syncd.kill9()  # crash 1, mid-delivery

        fake.error_rate = 0.1
        fake.drop_after_commit_rate = 0.15  # committed, then the answer is lost
        fake.slow_seconds = 0.02  # and slow, for a while
        syncd = start_syncd()
        wait_until(lambda: delivered() >= 150, timeout=30)
        fake.slow_seconds = 0.0
        wait_until(lambda: delivered() >= 300, timeout=30)
        fake.go_down()  # out again, until the worker has tried a few times
        tried = attempts()
        wait_until(lambda: attempts() >= tried + 3, timeout=30)
        fake.come_back()
        wait_until(lambda: delivered() >= 400, timeout=30)
        syncd.kill9()  # crash 2

        syncd = start_syncd()
        diners.join(60)
        assert not diners.is_alive() and diners.refused == []
        fake.error_rate = fake.drop_after_commit_rate = 0.0
        wait_until(lambda: delivered() == ORDERS, timeout=40)
        assert syncd.terminate() == 0, syncd.tail()

        counts = fake.order_counts()
        assert len(diners.keys) == ORDERS
        twice = {k: n for k, n in counts.items() if n != 1}
        missing = set(diners.keys) - set(counts)
        assert (twice, missing, len(counts)) == ({}, set(), ORDERS)
        conn = open_connection(settings.db_path, readonly=True)
        try:
            ours = dict(conn.execute("SELECT client_key, total_minor FROM orders"))
        finally:
            conn.close()
        assert {k: fake.order_total_minor(k) for k in diners.keys} == {k: ours[k] for k in diners.keys}
        assert outbox_counts(settings.db_path) == {
            "total": ORDERS,
            "delivered": ORDERS,
            "parked": 0,
            "claimed": 0,
            "waiting": 0,
        }
        log = (tmp_path / "syncd.log").read_text()
        assert log.count('"event": "sync.started"') == 3 and '"event": "sync.retrying"' in log
    finally:
        if diners is not None:
            diners.stop.set()
            diners.join(30)
        for proc in procs:
            proc.close()
        fake.stop()
