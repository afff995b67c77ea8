"""`tablebox relay enroll` and `tablebox relay serve` as real processes, on SQLite and PostgreSQL: a store is
enrolled from the command line, and the relay's inbox and events survive the relay being stopped (or killed)
and started again on the same database."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync.relay.storage import open_storage
from tests.edge import free_port, wait_until_healthy
from tests.relay.conftest import Box, Phone, accepted, wait_until

pytestmark = pytest.mark.slow


def tablebox(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "appliance", *args], capture_output=True, text=True, timeout=60)


def enroll(database_url: str, name: str = "小笼天下") -> tuple[str, str, str]:
    done = tablebox("relay", "enroll", name, "--database-url", database_url, "--base-url", "https://relay.test")
    assert done.returncode == 0, done.stderr
    store_id = re.search(r"store_id: (\S+)", done.stdout).group(1)
    secret = re.search(r"secret:\s+([0-9a-f]{64})", done.stdout).group(1)
    return store_id, secret, done.stdout


class RelayProcess:
    def __init__(self, database_url: str, log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "TABLEBOX_RELAY_LOG_FORMAT": "json", "TABLEBOX_RELAY_RATE_LIMIT_ADDRESS_PER_MINUTE": "0"}
        self.log_path = log
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "appliance",
                "relay",
                "serve",
                "--database-url",
                database_url,
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=self.log,
            stderr=self.log,
        )
        wait_until_healthy(self.url, self.proc, self.stop, log.read_text, "relay")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.log.close()
        return self.proc.returncode

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.log.close()


def test_enroll_prints_the_store_id_the_secret_and_the_boxs_settings(database_url):
    store_id, secret, out = enroll(database_url)
    assert len(store_id) >= 8
    assert '[sync.relay]\nkind = "relay"\nbase_url = "https://relay.test"' in out
    assert f'store_id = "{store_id}"' in out and f"TABLEBOX_SYNC_RELAY_API_SECRET={secret}" in out
    storage = open_storage(database_url)
    try:
        assert storage.secret_of(store_id) == bytes.fromhex(secret)
        assert storage.store(store_id).name == "小笼天下"
    finally:
        storage.close()


def test_a_bad_database_url_is_refused_with_exit_status_2():
    done = tablebox("relay", "enroll", "x", "--database-url", "mysql://x")
    assert done.returncode == 2 and "sqlite:/// or postgresql://" in done.stderr


def test_inbox_and_events_survive_the_relay_being_stopped_and_killed(database_url, tmp_path):
    store_id, secret, _ = enroll(database_url)
    log = tmp_path / "relay.log"
    relay = RelayProcess(database_url, log)
    box = Box(relay.url, store_id, secret, time.time)
    phone = Phone(relay.url, store_id)
    try:
        assert box.poll(0, 0).status_code == 200
        assert box.push_menu(5).status_code == 200
        first, second = uuid.uuid4().hex, uuid.uuid4().hex
        assert phone.order(first).status_code == 202
        assert phone.order(second).status_code == 202
        assert box.post_events(accepted(first)).json() == {"stored": 1, "new": 1}
        # a long-poll in progress when the relay stops is answered empty (or cut): nothing is lost either way
        out: dict[str, Any] = {}

        def long_poll() -> None:
            try:
                out["answer"] = box.poll(2, 20)
            except httpx.TransportError as exc:
                out["error"] = exc

        waiting = threading.Thread(target=long_poll)
        waiting.start()
        storage = open_storage(database_url)
        try:
            wait_until(lambda: storage.store(store_id).polling, what="the long-poll to start")
        finally:
            storage.close()
        assert relay.stop() in (0, -signal.SIGTERM)  # uvicorn re-raises SIGTERM after a graceful stop
        waiting.join(30)
        assert out["answer"].status_code == 200 and out["answer"].json() == {"messages": []}

        relay = RelayProcess(database_url, log, port=relay.port)
        messages = box.poll(0, 0).json()["messages"]
        assert [(m["seq"], m["client_key"]) for m in messages] == [(1, first), (2, second)]
        assert phone.order(first).status_code == 200  # the box's "accepted" survived
        listing = phone.get("/orders").json()
        assert [o["client_key"] for o in listing["orders"]] == [first] and listing["pending"] == [second]
        assert phone.get("/menu").json()["version"] == 5

        third = uuid.uuid4().hex
        assert phone.order(third).status_code == 202  # acknowledged by its 202 ...
        relay.kill9()  # ... then the relay dies at once
        relay = RelayProcess(database_url, log, port=relay.port)
        messages = box.poll(2, 0).json()["messages"]
        assert [(m["seq"], m["client_key"]) for m in messages] == [(3, third)]
    finally:
        relay.stop()
        box.close()
        phone.close()
    lines = log.read_text()
    assert "relay.started" in lines and secret not in lines
