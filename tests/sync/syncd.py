"""What the sync tests share: a settings file with [sync.NAME] tables, `tablebox syncd` as a real process (with a
systemd notification socket, so a test can await READY=1 instead of sleeping), orders through the web API, and
waiting on the outbox."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from appliance.db.connection import open_connection, write_transaction
from appliance.settings import BoxSettings
from tests.appliance.test_sdnotify import NotifySocket, is_ready

REPO = Path(__file__).resolve().parents[2]
# Dishes without required options, so an order is just (dish, quantity).
SIMPLE_DISHES = (
    "har_gow",
    "century_egg_tofu",
    "mineral_water",
    "seasonal_greens",
    "tsingtao_draft",
    "jellyfish_vinegar",
)


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))} = {toml_value(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"no TOML for {value!r}")


def write_settings(path: Path, targets: Mapping[str, Mapping[str, Any]], *, mode: int = 0o600, top: str = "") -> Path:
    """A settings file with one [sync.NAME] table per target (secrets inline: hence mode 0600 by default)."""
    text = top
    for name, config in targets.items():
        text += f"\n[sync.{name}]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in config.items())
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, every: float = 0.02) -> Any:
    """Poll `predicate` (a database count, a fake's state) until it is truthy; its value, or AssertionError."""
    pause = threading.Event()
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still not true after {timeout} s: {getattr(predicate, '__doc__', '') or predicate}")
        pause.wait(every)


def outbox_counts(db_path: Path, target: str = "erp") -> dict[str, int]:
    conn = open_connection(db_path, readonly=True)
    try:
        total, delivered, parked, claimed = conn.execute(
            "SELECT count(*), count(delivered_at), count(parked_at), count(claimed_by) FROM outbox WHERE target = ?",
            (target,),
        ).fetchone()
    finally:
        conn.close()
    return {
        "total": total,
        "delivered": delivered,
        "parked": parked,
        "claimed": claimed,
        "waiting": total - delivered - parked,
    }


class Syncd:
    """`python -m appliance syncd` in its own process, logging JSON to a file."""

    def __init__(
        self,
        settings: BoxSettings,
        config: Path,
        log: Path,
        env: Mapping[str, str] | None = None,
        wait_ready: bool = True,
        watchdog_usec: int | None = None,
    ) -> None:
        self.notify = NotifySocket()
        self.log_path = log
        self.log = log.open("ab")
        # WATCHDOG_USEC only when a test reads the pings: unread, they fill the socket and every send times out
        watchdog = {"WATCHDOG_USEC": str(watchdog_usec)} if watchdog_usec else {}
        environment = {
            **os.environ,
            "TABLEBOX_LOG_FORMAT": "json",
            "NOTIFY_SOCKET": self.notify.address,
            **watchdog,
            **(env or {}),
        }
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "appliance", "syncd", "--data-dir", str(settings.data_dir), "--config", str(config)],
            env=environment,
            stdout=self.log,
            stderr=self.log,
            cwd=REPO,
        )
        if wait_ready:
            try:
                self.notify.wait_for(is_ready, timeout=30)
            except AssertionError:
                self.kill9()
                raise AssertionError(f"syncd did not become ready: {self.tail()}") from None

    def tail(self, chars: int = 3000) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def terminate(self, timeout: float = 30) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        finally:
            self.close()

    def kill9(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        if not self.log.closed:
            self.log.close()
        self.notify.close()


def dish_ids(db_path: Path) -> dict[str, int]:
    conn = open_connection(db_path, readonly=True)
    try:
        return {k: conn.execute("SELECT id FROM items WHERE key = ?", (k,)).fetchone()[0] for k in SIMPLE_DISHES}
    finally:
        conn.close()


def order_bodies(db_path: Path, count: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    import random

    rnd = random.Random(seed)
    ids = sorted(dish_ids(db_path).values())
    for _ in range(count):
        yield {
            "client_key": uuid.uuid4().hex,
            "lines": [{"item_id": i, "quantity": rnd.randint(1, 3)} for i in rnd.sample(ids, rnd.randint(1, 3))],
        }


def seed_catalog(db_path: Path, fake: Any) -> None:
    """Every dish gets its key as ERP code, and the fake ERP the same codes, names and prices (a dish priced by
    sizes gets its cheapest size's price)."""
    conn = open_connection(db_path)
    try:
        with write_transaction(conn):
            conn.execute("UPDATE items SET erp_code = key")
        for key, names, price in conn.execute(
            "SELECT i.key, i.names, coalesce(i.price_minor, (SELECT min(v.price_minor) FROM variants v"
            " WHERE v.item_id = i.id)) FROM items i WHERE i.removed_at IS NULL"
        ):
            stored = json.loads(names)  # the store's languages first: a fake ERP with one name field gives the first
            fake.add_item(key, {lang: stored[lang] for lang in ("zh", "en", *stored) if lang in stored}, int(price))
    finally:
        conn.close()
