"""kill -9 the real server in the middle of a rush: every order that got its 201 is still there, whole,
with its kitchen tickets and ERP deliveries, and no order exists twice (also after the phones retry)."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest

from appliance.db.connection import open_connection
from appliance.demo import ensure_demo_store
from tests.appliance.web.conftest import token_for
from tests.conftest import make_settings

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    def __init__(self, data_dir: Path, log: Path, port: int | None = None, env: dict[str, str] | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "TABLEBOX_RATE_LIMIT_TABLE_PER_MINUTE": "0",
            "TABLEBOX_RATE_LIMIT_ADDRESS_PER_MINUTE": "0",
            "TABLEBOX_LOG_FORMAT": "json",
            "TABLEBOX_PUBLIC_BASE_URL": "http://box.test",
            **(env or {}),
        }
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "appliance",
                "serve",
                "--data-dir",
                str(data_dir),
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=self.log,
            stderr=self.log,
        )
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"server did not start; see {log}")
            time.sleep(0.05)

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()


def test_kill_9_mid_load_loses_no_acknowledged_order(tmp_path):
    settings = make_settings(tmp_path / "data")
    ensure_demo_store(settings)
    conn = open_connection(settings.db_path)
    with conn:
        conn.execute(
            "INSERT INTO sync_targets (name, kind, inbox_source) VALUES ('erp', 'erp', NULL), ('relay', 'relay', 'relay:relay@')"
        )
    ids = {
        k: conn.execute("SELECT id FROM items WHERE key = ?", (k,)).fetchone()[0]
        for k in ("har_gow", "seasonal_greens", "mineral_water", "tsingtao_draft")
    }
    station = {
        ids["har_gow"]: "kitchen",
        ids["seasonal_greens"]: "kitchen",
        ids["mineral_water"]: "bar",
        ids["tsingtao_draft"]: "bar",
    }
    tokens = [token_for(settings, name) for name in ("A1", "A2", "A3", "T1", "T2")]
    conn.close()

    server = ServerProcess(settings.data_dir, tmp_path / "server.log")
    acked: dict[str, dict] = {}  # client_key -> what the phone got back with 201/200
    sent: dict[str, dict] = {}  # client_key -> the request body, for every attempt
    lock = threading.Lock()
    stop = threading.Event()

    def phone(seed: int) -> None:
        rnd = random.Random(seed)
        with httpx.Client(base_url=server.url, timeout=5) as client:
            while not stop.is_set():
                items = rnd.sample(sorted(ids.values()), rnd.randint(1, 3))
                body = {
                    "client_key": uuid.uuid4().hex,
                    "lines": [{"item_id": i, "quantity": rnd.randint(1, 3)} for i in items],
                }
                token = rnd.choice(tokens)
                with lock:
                    sent[body["client_key"]] = {"token": token, "body": body}
                try:
                    r = client.post(f"/api/v1/tables/{token}/orders", json=body)
                except httpx.TransportError:
                    return  # the server died under us: this order is in flight, not acknowledged
                if r.status_code in (200, 201):
                    with lock:
                        acked[body["client_key"]] = r.json()

    try:
        phones = [threading.Thread(target=phone, args=(n,)) for n in range(12)]
        for p in phones:
            p.start()
        deadline = time.monotonic() + 30
        while len(acked) < 300 and time.monotonic() < deadline:
            time.sleep(0.01)
        server.kill9()  # mid-load: phones are still sending
        stop.set()
        for p in phones:
            p.join(10)
        assert len(acked) >= 300, "the load did not get going"
        in_flight = set(sent) - set(acked)
        assert in_flight, "the kill came between requests: nothing was in flight"

        conn = open_connection(settings.db_path)
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = dict(conn.execute("SELECT client_key, id FROM orders"))
        missing = [k for k in acked if k not in stored]
        assert missing == [], f"{len(missing)} acknowledged orders were lost"
        for key, order in acked.items():
            assert stored[key] == order["id"]
        # every stored order (acknowledged or not) is whole: lines, tickets per station, ERP rows
        for key, oid in stored.items():
            body = sent[key]["body"]
            lines = conn.execute(
                "SELECT item_id, quantity FROM order_lines WHERE order_id = ? ORDER BY line_no", (oid,)
            ).fetchall()
            assert lines == [(line["item_id"], line["quantity"]) for line in body["lines"]]
            jobs = sorted(s for (s,) in conn.execute("SELECT station FROM print_jobs WHERE order_id = ?", (oid,)))
            assert jobs == sorted({station[line["item_id"]] for line in body["lines"]})
            targets = sorted(
                t
                for (t,) in conn.execute(
                    "SELECT target FROM outbox WHERE idempotency_key = ?", (f"order.submitted:{key}",)
                )
            )
            assert targets == ["erp"]  # the relay target only gets the orders that came through the relay
            assert conn.execute("SELECT count(*) FROM order_events WHERE order_id = ?", (oid,)).fetchone()[0] == 1
        conn.close()
    finally:
        stop.set()
        server.stop()

    # the phones retry everything they sent, after the box comes back: no second order, ever
    server = ServerProcess(settings.data_dir, tmp_path / "server.log")
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            retried = list(in_flight) + random.Random(1).sample(sorted(acked), 50)
            for key in retried:
                r = client.post(f"/api/v1/tables/{sent[key]['token']}/orders", json=sent[key]["body"])
                if key in stored:
                    assert (r.status_code, r.json()["id"]) == (200, stored[key])
                else:
                    assert r.status_code == 201
    finally:
        server.stop()
    conn = open_connection(settings.db_path)
    assert conn.execute("SELECT count(*) FROM orders").fetchone()[0] == len(set(stored) | in_flight)
    assert (
        conn.execute(
            "SELECT count(*) FROM (SELECT order_id, station, kind FROM print_jobs GROUP BY 1, 2, 3 HAVING count(*) > 1)"
        ).fetchone()[0]
        == 0
    )
    conn.close()
