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

import apsw

from appliance.db.connection import open_connection, write_transaction
from appliance.db.floor import close_visit
from appliance.db.orders import change_status, visit_orders, void_line
from appliance.db.payments import amount_due, payment_ref, payments_of, record_payment, refund_payment, refund_ref
from appliance.db.tables import live_session
from appliance.domain.orders import FINAL, Actor, OrderStatus
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


# Each (kind, method, amount_minor) the ERP must hold for one outbox key: "payment" with what it kept, "refund" with
# what went back.
Booked = tuple[str, str, int]


class Cashier(threading.Thread):
    """Staff at the till while diners order: every `every` seconds the next table's visit is settled in one
    transaction through the store's own functions (what the console calls): now and then an order is cancelled or a
    line voided first; then the bill is paid part by card and the rest in cash with change (or by Alipay); every few
    visits part of the card payment goes back (a refund) and is paid again by WeChat, or a dish is sent back after
    paying (voided, and what the bill was overpaid refunded from the payments); then the table is closed. It records
    what the ERP must end up holding: each payment and refund by its outbox key, the orders cancelled and those with
    a line voided. Anything but a busy database is a failure the soak reports."""

    def __init__(
        self, db_path: Path, tables: tuple[str, ...], every: float = 0.1, *, void_after_paying: bool = True
    ) -> None:
        super().__init__(name="cashier", daemon=True)
        self.db_path, self.tables, self.every = db_path, tables, every
        self.void_after_paying = void_after_paying
        self.booked: dict[str, Booked] = {}
        self.cancelled: set[str] = set()
        self.voided: set[str] = set()
        self.visits = 0
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        conn = open_connection(self.db_path)
        turn = 0
        try:
            while not self.stop.wait(self.every):
                table = self.tables[turn % len(self.tables)]
                try:
                    with write_transaction(conn):
                        booked, cancelled, voided = self.settle(conn, table, turn, self.void_after_paying)
                except apsw.BusyError:
                    continue
                except Exception as exc:  # the soak reports it
                    self.errors.append(f"{table}: {type(exc).__name__}: {exc}")
                    continue
                finally:
                    turn += 1
                self.booked.update(booked)
                self.cancelled |= cancelled
                self.voided |= voided
                self.visits += bool(booked)
        finally:
            conn.close()

    @staticmethod
    def settle(
        conn: Any, table: str, turn: int, void_after_paying: bool = True
    ) -> tuple[dict[str, Booked], set[str], set[str]]:
        table_id = conn.execute("SELECT id FROM tables WHERE name = ?", (table,)).fetchone()[0]
        visit = live_session(conn, table_id)
        if visit is None:
            return {}, set(), set()
        booked: dict[str, Booked] = {}
        cancelled: set[str] = set()
        voided: set[str] = set()
        live = [o for o in visit_orders(conn, visit.id) if o.status not in FINAL]
        if turn % 3 == 0 and live:
            change_status(conn, live[-1].id, OrderStatus.CANCELLED, Actor.STAFF, "soak: the guest left")
            cancelled.add(live[-1].client_key)
            live.pop()
        after_paying = void_after_paying and turn % 5 == 2
        if turn % 2 == 0 and not after_paying:
            voided |= Cashier.void_one(conn, live)
        due = amount_due(conn, visit.id)
        if due > 0:
            card = max(due // 2, 1)
            by_card = record_payment(conn, visit.id, "card", card, "soak")
            booked[payment_ref(by_card.payment_key)] = ("payment", "card", card)
            if due > card and turn % 7 == 3:
                by_alipay = record_payment(conn, visit.id, "alipay", due - card, "soak")
                booked[payment_ref(by_alipay.payment_key)] = ("payment", "alipay", due - card)
            elif due > card:
                by_cash = record_payment(conn, visit.id, "cash", due - card + 500, "soak")  # 5.00 change
                booked[payment_ref(by_cash.payment_key)] = ("payment", "cash", due - card)
            back = card // 3
            if turn % 4 == 1 and back:
                refund = refund_payment(conn, by_card.payment_id, back, "soak: a cold dish", "soak")
                booked[refund_ref(refund.refund_key)] = ("refund", "card", back)
                again = record_payment(conn, visit.id, "wechat", back, "soak")
                booked[payment_ref(again.payment_key)] = ("payment", "wechat", back)
        if after_paying and booked and (after := Cashier.void_one(conn, live)):
            # a dish sent back after the bill was paid: off the bill, and the money back from the payments
            voided |= after
            over = -amount_due(conn, visit.id)
            for payment in payments_of(conn, visit.id):
                back = min(over, payment.refundable_minor)
                if back > 0:
                    refund = refund_payment(conn, payment.id, back, "soak: sent back after paying", "soak")
                    booked[refund_ref(refund.refund_key)] = ("refund", payment.method, back)
                    over -= back
        close_visit(conn, visit.id, "soak", confirm_unpaid=False)
        return booked, cancelled, voided

    @staticmethod
    def void_one(conn: Any, live: list[Any]) -> set[str]:
        """Void the first line of the first order with two or more lines still on it; the order's key, if any."""
        for order in live:
            active = [line for line in order.lines if line.status == "active"]
            if len(active) >= 2:
                void_line(conn, order.id, active[0].line_no, "soak: sent back")
                return {order.client_key}
        return set()
