"""The store's own orders, voids, cancels, payments and refunds, through the outbox engine, to the ERPNext adapter and
a fake ERPNext, for each document an integrator can choose. If this failed, what staff did at the till (a line sent
back, an order cancelled, a bill split between WeChat and cash, a refund) would not reach ERPNext as its own
documents, or would reach it twice."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appliance.db.connection import write_transaction
from appliance.db.orders import MenuCache, OrderRequest, change_status, submit_order, void_line
from appliance.db.payments import record_payment, refund_payment
from appliance.db.tables import list_tables
from appliance.domain.orders import Actor, OrderStatus
from appliance.domain.pricing import CartLine
from sync.adapters import make_adapter
from sync.adapters.erpnext import ERPNextAdapter
from sync.outbox import Backoff, OutboxEngine
from tests.fakes.erpnext import FakeERPNext

CODES = {"har_gow": "HG", "mineral_water": "MW"}


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(params=["sales_order", "sales_invoice", "pos_invoice"])
def erpnext(request: pytest.FixtureRequest, db: Any) -> Iterator[tuple[FakeERPNext, ERPNextAdapter]]:
    server = FakeERPNext(document=request.param).start()
    with write_transaction(db):
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'erpnext')")
        for key, code in CODES.items():
            db.execute("UPDATE items SET erp_code = ? WHERE key = ?", (code, key))
            server.add_item(code, {"zh": key}, 100)
    adapter = make_adapter("erp", server.target_config())
    assert isinstance(adapter, ERPNextAdapter)
    try:
        yield server, adapter
    finally:
        adapter.close()
        server.stop()


def order(db: Any, key: str, items: tuple[tuple[str, int], ...]) -> dict[str, Any]:
    tables = {t.name: t for t in list_tables(db)}
    lines = tuple(CartLine(db.execute("SELECT id FROM items WHERE key = ?", (k,)).fetchone()[0], q) for k, q in items)
    with db:
        placed: dict[str, Any] = submit_order(
            db, tables["A1"], OrderRequest(client_key=f"{key}-xxxxxxxx", lines=lines), MenuCache()
        ).order
    return placed


def drain(db: Any, adapter: ERPNextAdapter) -> None:
    clock = Clock()
    engine = OutboxEngine(db, "erp", adapter, worker_id="box:erp", clock=clock, backoff=Backoff(rng=random.Random(1)))
    for _ in range(50):
        done = engine.run_once()
        if not done.claimed:
            wait = engine.seconds_until_ready()
            if wait is None:
                return
            clock.now += timedelta(seconds=wait + 0.01)


def test_what_the_till_does_reaches_erpnext_as_its_own_documents(db: Any, erpnext: Any) -> None:
    server, adapter = erpnext
    first = order(db, "first", (("har_gow", 2), ("mineral_water", 1)))
    order(db, "second", (("har_gow", 3),))
    dropped = order(db, "dropped", (("har_gow", 1),))
    with db:
        void_line(db, first["id"], 2, "sent back warm")
        change_status(db, dropped["id"], OrderStatus.CANCELLED, Actor.STAFF, "guest left")
    total = db.execute(
        "SELECT sum(total_minor) FROM orders WHERE session_id = ? AND status != 'cancelled'", (first["session_id"],)
    ).fetchone()[0]
    with db:
        wechat = record_payment(db, first["session_id"], "wechat", 5000)
        cash = record_payment(db, first["session_id"], "cash", total - 5000 + 1000)  # 10.00 change
        refund = refund_payment(db, cash.payment_id, 300, "tea was cold", "staff")
    drain(db, adapter)

    refs = {name: f"{name}-xxxxxxxx" for name in ("first", "second", "dropped")}
    ours = dict(db.execute("SELECT client_key, total_minor FROM orders"))
    assert server.order_counts() == dict.fromkeys(refs.values(), 1)
    assert server.cancelled(refs["dropped"]) and not server.cancelled(refs["first"])
    # the voided line is off ERPNext's document too (amended, or the draft edited), so the totals agree
    assert server.order_total_minor(refs["first"]) == ours[refs["first"]] != first["total_minor"]
    assert server.order_total_minor(refs["second"]) == ours[refs["second"]]
    assert server.payments() == {
        f"payment.recorded:{wechat.payment_key}": [("payment", "wechat", 5000)],
        f"payment.recorded:{cash.payment_key}": [("payment", "cash", total - 5000)],  # what was kept
        f"payment.refunded:{refund.refund_key}": [("refund", "cash", 300)],
    }
    assert server.comments() == []
    if server.document != "sales_order":  # paid in full: the invoices are submitted
        assert {server.current(refs[n])["docstatus"] for n in ("first", "second")} == {1}  # type: ignore[index]
    states = dict(db.execute("SELECT kind, count(*) FROM outbox WHERE delivered_at IS NULL GROUP BY kind"))
    assert states == {}
