"""The outbox engine against a small scripted adapter. If these failed, a restaurant's ERP would get an order twice
(two workers, or a worker that crashed mid-delivery), a status change before its order, or nothing at all behind one
order the ERP refused; and a dead ERP would be hammered instead of backed off from."""

from __future__ import annotations

import json
import random
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from appliance.db.connection import open_connection, write_transaction
from appliance.db.orders import change_status, void_line
from appliance.db.outbox import queue_row
from appliance.db.sync_state import SyncState, retry_now, target_status
from appliance.domain.orders import Actor, OrderStatus
from sync.adapters.base import Capability, OrderChange, Rejected, Retryable
from sync.outbox import Backoff, OutboxEngine, parse_stamp, stamp
from tests.appliance.web.conftest import item_id, key, variant_id


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


class ScriptedAdapter:
    """Records what reaches 'the ERP'; `failures[order_ref]` lists what the next attempts raise (None: succeed)."""

    name = "test"
    capabilities = frozenset({Capability.CATALOG_PULL})

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.failures: dict[str, list[Exception | None]] = {}
        self.lock = threading.Lock()
        self.closed = False
        self.down: Exception | None = None  # every call raises it (the whole ERP down)
        self.attempts = 0

    def _maybe_fail(self, ref: str) -> None:
        with self.lock:
            self.attempts += 1
        if self.down is not None:
            raise self.down
        script = self.failures.get(ref)
        if script:
            outcome = script.pop(0)
            if outcome is not None:
                raise outcome

    def push_order(self, order: Any) -> str:
        self._maybe_fail(order.order_ref)
        with self.lock:
            self.calls.append(("order", order))
            return f"SO-{len(self.calls)}"

    def push_status(self, order_ref: str, status: str, reason: str | None) -> None:
        self._maybe_fail(f"{order_ref}:{status}")
        with self.lock:
            self.calls.append(("status", (order_ref, status, reason)))

    def push_payment(self, payment: Any) -> str:
        self._maybe_fail(payment.payment_ref)
        with self.lock:
            self.calls.append(("payment", payment))
        return "PAY-1"

    def pull_catalog(self) -> Any:
        raise NotImplementedError

    def pull_stock(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        self.closed = True

    def order_refs(self) -> list[str]:
        return [doc.order_ref for kind, doc in self.calls if kind == "order"]


@pytest.fixture
def erp(db):
    with write_transaction(db):
        db.execute("INSERT INTO sync_targets (name, kind) VALUES ('erp', 'rest')")
        db.execute("UPDATE items SET erp_code = 'ERP-' || upper(key) WHERE key IN ('har_gow', 'xiaolongbao')")
    return db


def place(client, token, db, lines=(("har_gow", 2),)) -> dict[str, Any]:
    body = {"client_key": key(), "lines": [{"item_id": item_id(db, k), "quantity": q} for k, q in lines]}
    r = client.post(f"/api/v1/tables/{token}/orders", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def engine(db_or_path, adapter, clock, worker="box:erp", **kw) -> OutboxEngine:
    return OutboxEngine(
        db_or_path,
        "erp",
        adapter,
        worker_id=worker,
        clock=clock,
        backoff=kw.pop("backoff", Backoff(rng=random.Random(1))),
        **kw,
    )


def outbox(db) -> list[tuple]:
    return db.execute(
        "SELECT id, kind, attempts, delivered_at IS NOT NULL, parked_at IS NOT NULL, claimed_by,"
        " last_error FROM outbox WHERE target = 'erp' ORDER BY id"
    ).fetchall()


def drain(eng: OutboxEngine, rounds: int = 20) -> None:
    for _ in range(rounds):
        if not eng.run_once().claimed:
            return


def test_an_order_reaches_the_erp_with_codes_names_and_totals(client, token, erp):
    order = place(client, token, erp, [("har_gow", 2), ("mineral_water", 1)])
    body = {
        "client_key": key(),
        "lines": [
            {
                "item_id": item_id(erp, "xiaolongbao"),
                "quantity": 1,
                "variant_id": variant_id(erp, "xiaolongbao", "twelve"),
            }
        ],
    }
    second = client.post(f"/api/v1/tables/{token}/orders", json=body).json()
    adapter, clock = ScriptedAdapter(), Clock()
    done = engine(erp, adapter, clock).run_once()
    assert (done.claimed, done.delivered) == (2, 2)
    (_, doc), (_, doc2) = adapter.calls
    assert doc.order_ref == order["client_key"] and doc.order_id == order["id"]
    day = erp.execute("SELECT ticket_day FROM orders WHERE id = ?", (order["id"],)).fetchone()[0]
    assert doc.ticket == f"{day}#{order['ticket_no']}" and doc.table == "A1"
    assert (doc.currency, doc.subtotal_minor, doc.total_minor, doc.tax_minor) == (
        "CNY",
        order["subtotal_minor"],
        order["total_minor"],
        order["tax_minor"],
    )
    assert [
        (line.code, line.key, line.quantity, line.unit_price_minor, line.line_total_minor) for line in doc.lines
    ] == [("ERP-HAR_GOW", "har_gow", 2, 3200, 6400), (None, "mineral_water", 1, 800, 800)]
    assert sum(line.line_total_minor for line in doc.lines) == doc.subtotal_minor
    zh = json.loads(erp.execute("SELECT names FROM items WHERE key = 'har_gow'").fetchone()[0])["zh"]
    assert doc.lines[0].name == zh  # in the store's first language
    assert doc2.lines[0].code == "ERP-XIAOLONGBAO" and "(" in doc2.lines[0].name  # the variant named
    assert doc2.total_minor == second["total_minor"]
    rows = outbox(erp)
    assert [(r[2], r[3], r[5]) for r in rows] == [(1, 1, None), (1, 1, None)]  # delivered, one attempt, unclaimed
    assert target_status(erp, "erp").state == SyncState.OK


def test_status_changes_and_voided_lines_follow_their_order(client, token, erp, settings):
    order = place(client, token, erp, [("har_gow", 1), ("mineral_water", 1)])
    with erp:
        void_line(erp, order["id"], 2, "out of stock")
        change_status(erp, order["id"], OrderStatus.CANCELLED, Actor.STAFF, "guest left")
    with erp:
        erp.execute(
            "INSERT INTO outbox (target, kind, idempotency_key, payload, created_at)"
            " VALUES ('erp', 'table.moved', 'table.moved:1', '{}', '2026-11-21T12:00:00.000000Z')"
        )
    adapter = ScriptedAdapter()
    done = engine(erp, adapter, Clock()).run_once()
    assert (done.delivered, done.skipped) == (3, 1)
    assert [kind for kind, _ in adapter.calls] == ["order", "status", "status"]
    assert adapter.calls[1][1] == (order["client_key"], "line_voided", "line 2 voided: out of stock")
    assert adapter.calls[2][1] == (order["client_key"], "cancelled", "guest left")
    note = erp.execute("SELECT last_error, delivered_at IS NOT NULL FROM outbox WHERE kind = 'table.moved'").fetchone()
    assert note == ("not sent: the ERP adapters have no call for 'table.moved' rows", 1)


def test_two_engines_on_two_connections_never_hold_the_same_rows(client, token, erp, settings):
    placed = [place(client, token, erp) for _ in range(4)]
    refs = [o["client_key"] for o in placed]
    with erp:  # the first order's cancellation, queued behind everything
        change_status(erp, placed[0]["id"], OrderStatus.CANCELLED, Actor.STAFF, "guest left")
    clock = Clock()
    other = open_connection(settings.db_path)
    try:
        a, b = engine(erp, ScriptedAdapter(), clock, "box-a:erp"), engine(other, ScriptedAdapter(), clock, "box-b:erp")
        mine = a.claim(limit=2)
        assert [json.loads(r.payload)["client_key"] for r in mine] == refs[:2]
        # b takes the other orders, but not the cancellation of an order in a's hands (it must follow its order)
        theirs = b.claim()
        assert [json.loads(r.payload)["client_key"] for r in theirs] == refs[2:]
        assert [r.kind for r in theirs] == ["order.submitted"] * 2
        assert [b.deliver(row) for row in theirs] == ["delivered"] * 2
        assert b.claim() == [] and b.seconds_until_ready() == pytest.approx(120.0)  # a's lease on the first order
        for row in mine:
            assert a.deliver(row) == "delivered"
        (cancel,) = b.claim()
        assert (cancel.kind, json.loads(cancel.payload)["client_key"]) == ("order.status", refs[0])
        assert a.claim() == []
        assert {r[5] for r in outbox(erp) if not r[3]} == {"box-b:erp"}
    finally:
        other.close()


def test_two_workers_racing_deliver_every_row_once_and_in_order(client, token, erp, settings):
    placed = [place(client, token, erp) for _ in range(40)]
    refs = [o["client_key"] for o in placed]
    with erp:
        for order in placed[::3]:
            change_status(erp, order["id"], OrderStatus.ACCEPTED, Actor.STAFF)
        for order in placed[::3]:
            change_status(erp, order["id"], OrderStatus.CANCELLED, Actor.STAFF, "test")
    adapter = ScriptedAdapter()
    connections = [open_connection(settings.db_path) for _ in range(2)]
    try:
        engines = [
            OutboxEngine(c, "erp", adapter, worker_id=f"w{n}:erp", batch_size=3) for n, c in enumerate(connections)
        ]

        def work(eng: OutboxEngine) -> None:
            idle = 0
            while idle < 50:
                idle = 0 if eng.run_once().claimed else idle + 1

        threads = [threading.Thread(target=work, args=(e,)) for e in engines]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
    finally:
        for c in connections:
            c.close()
    assert sorted(adapter.order_refs()) == sorted(refs)  # each once
    sequence = [(kind, doc.order_ref if kind == "order" else doc[:2]) for kind, doc in adapter.calls]
    for order in placed[::3]:  # each order's own rows in the order they were queued
        ref = order["client_key"]
        mine = [
            s for s in sequence if s in (("order", ref), ("status", (ref, "accepted")), ("status", (ref, "cancelled")))
        ]
        assert mine == [("order", ref), ("status", (ref, "accepted")), ("status", (ref, "cancelled"))]
    assert all(r[3] for r in outbox(erp))


def test_a_crashed_workers_claims_are_taken_over_after_the_lease(client, token, erp, settings):
    refs = [place(client, token, erp)["client_key"] for _ in range(3)]
    clock = Clock()
    crashed = open_connection(settings.db_path)
    assert len(engine(crashed, ScriptedAdapter(), clock, "box-a:erp").claim()) == 3
    crashed.close()  # kill -9: the claims stay in the table
    other = engine(erp, ScriptedAdapter(), clock, "box-b:erp")
    clock.advance(60)
    assert other.claim() == [] and other.seconds_until_ready() == pytest.approx(60.0)
    clock.advance(60.001)
    assert other.seconds_until_ready() == 0.0
    drain(other)
    assert other.adapter.order_refs() == refs


def test_the_same_worker_restarted_takes_its_claims_back_at_once(client, token, erp, settings):
    refs = [place(client, token, erp)["client_key"] for _ in range(3)]
    clock = Clock()
    crashed = open_connection(settings.db_path)
    engine(crashed, ScriptedAdapter(), clock).claim()
    crashed.close()
    clock.advance(1)
    restarted = engine(erp, ScriptedAdapter(), clock)  # same worker id (host:target)
    assert restarted.seconds_until_ready() == 0.0
    drain(restarted)
    assert restarted.adapter.order_refs() == refs


def test_backoff_doubles_from_one_second_with_full_jitter_up_to_the_cap():
    backoff = Backoff(cap=300.0, rng=random.Random(42))
    assert [backoff.ceiling(n) for n in range(1, 12)] == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    same = random.Random(42)
    assert [backoff.delay(n) for n in range(1, 12)] == [
        same.uniform(0, c) for c in (1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300)
    ]
    assert Backoff(cap=300.0).ceiling(10_000) == 300.0


def test_a_failing_erp_is_retried_on_the_backoff_schedule(client, token, erp):
    ref = place(client, token, erp)["client_key"]
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.failures[ref] = [Retryable("ERP busy", status=503)] * 6
    eng = engine(erp, adapter, clock, backoff=Backoff(cap=10.0, rng=random.Random(5)))
    expected = random.Random(5)
    for attempt in range(1, 7):
        assert eng.run_once().retrying == 1
        attempts, next_at, error, claimed = erp.execute(
            "SELECT attempts, next_attempt_at, last_error, claimed_by FROM outbox"
        ).fetchone()
        wait = (parse_stamp(next_at) - clock.now).total_seconds()
        assert (attempts, error, claimed) == (attempt, "HTTP 503: ERP busy", None)
        assert wait == pytest.approx(expected.uniform(0, min(10.0, 2.0 ** (attempt - 1))), abs=1e-5)
        assert eng.run_once().claimed == 0  # not before its time
        status = target_status(erp, "erp")
        assert (status.state, status.last_error) == (SyncState.RETRYING, "HTTP 503: ERP busy")
        clock.advance(wait + 0.001)
    assert eng.run_once().delivered == 1
    assert adapter.order_refs() == [ref]
    assert erp.execute("SELECT attempts, next_attempt_at FROM outbox").fetchone() == (7, None)
    assert target_status(erp, "erp").state == SyncState.OK


@pytest.mark.parametrize("asked,expected", [(7.0, 7.0), (3600.0, 10.0), (0.0, None)])
def test_a_targets_retry_after_is_waited_out_up_to_the_cap(client, token, erp, asked, expected):
    """Retry-After: 7 holds the row 7 s (the jittered backoff alone would be under 1 s); an hour is cut to the
    cap; 0 leaves the backoff as it is."""
    ref = place(client, token, erp)["client_key"]
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.failures[ref] = [Retryable("429 Too Many Requests", status=429, retry_after=asked)]
    eng = engine(erp, adapter, clock, backoff=Backoff(cap=10.0, rng=random.Random(5)))
    assert eng.run_once().retrying == 1
    wait = (parse_stamp(erp.execute("SELECT next_attempt_at FROM outbox").fetchone()[0]) - clock.now).total_seconds()
    backoff = random.Random(5).uniform(0, 1.0)
    assert wait == pytest.approx(expected if expected is not None else backoff, abs=1e-5)
    clock.advance(wait - 0.01)
    assert eng.run_once().claimed == 0  # not before the time it asked for
    clock.advance(0.02)
    assert eng.run_once().delivered == 1 and adapter.order_refs() == [ref]


def test_a_retrying_row_holds_up_its_own_orders_rows_and_no_other_orders(client, token, erp):
    """Before issue 15 one failing row stopped the whole line: through an ERP answering 30 % of calls 503 about 2
    rows a second went out while 15 came in."""
    placed = [place(client, token, erp) for _ in range(3)]
    refs = [o["client_key"] for o in placed]
    with erp:
        change_status(erp, placed[0]["id"], OrderStatus.CANCELLED, Actor.STAFF, "guest left")
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.failures[refs[0]] = [Retryable("HTTP 503: busy", status=503)]
    eng = engine(erp, adapter, clock)
    done = eng.run_once()
    assert (done.claimed, done.retrying, done.delivered, done.released) == (4, 1, 2, 1)
    assert adapter.order_refs() == refs[1:]  # the other orders went on
    rows = outbox(erp)
    assert [(r[1], r[3], r[5]) for r in rows] == [
        ("order.submitted", 0, None),  # waits out its backoff
        ("order.submitted", 1, None),
        ("order.submitted", 1, None),
        ("order.status", 0, None),  # its cancellation was handed back unsent: it must not overtake the order
    ]
    assert eng.run_once().claimed == 0 and eng.seconds_until_ready() > 0
    clock.advance(eng.seconds_until_ready() + 0.001)
    drain(eng)
    assert adapter.order_refs() == [*refs[1:], refs[0]]
    assert adapter.calls[-1] == ("status", (refs[0], "cancelled", "guest left"))


def test_a_rejected_row_is_parked_and_the_rows_behind_it_go_on(client, token, erp):
    refs = [place(client, token, erp)["client_key"] for _ in range(3)]
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.failures[refs[1]] = [Rejected("Item ERP-HAR_GOW not found", status=417)]
    eng = engine(erp, adapter, clock)
    done = eng.run_once()
    assert (done.delivered, done.parked) == (2, 1)
    assert adapter.order_refs() == [refs[0], refs[2]]
    parked = [r for r in outbox(erp) if r[4]]
    assert [(r[2], r[6]) for r in parked] == [(1, "HTTP 417: Item ERP-HAR_GOW not found")]
    status = target_status(erp, "erp")
    assert (status.state, status.parked, status.last_error) == (
        SyncState.FAILING,
        1,
        "HTTP 417: Item ERP-HAR_GOW not found",
    )
    assert eng.run_once().claimed == 0  # parked rows are out of the line until a person acts
    with erp:
        assert retry_now(erp, "erp") == {"unparked": 1, "hurried": 0}
    assert eng.run_once().delivered == 1
    assert adapter.order_refs() == [refs[0], refs[2], refs[1]]
    assert target_status(erp, "erp").parked == 0 and all(r[3] for r in outbox(erp))


def test_retry_now_wakes_a_row_waiting_out_its_backoff(client, token, erp):
    ref = place(client, token, erp)["client_key"]
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.failures[ref] = [Retryable("timeout")]
    eng = engine(erp, adapter, clock, backoff=Backoff(base=100.0, cap=300.0, rng=random.Random(3)))
    eng.run_once()
    assert eng.seconds_until_ready() > 0
    with erp:
        assert retry_now(erp, "erp") == {"unparked": 0, "hurried": 1}
    assert eng.seconds_until_ready() == 0.0 and eng.run_once().delivered == 1


def test_stopping_mid_batch_hands_the_rest_back(client, token, erp):
    refs = [place(client, token, erp)["client_key"] for _ in range(4)]
    stop = threading.Event()
    adapter = ScriptedAdapter()
    original = adapter.push_order

    def push_then_stop(order):
        stop.set()  # SIGTERM arrives while the first row is with the ERP
        return original(order)

    adapter.push_order = push_then_stop  # type: ignore[method-assign]
    done = engine(erp, adapter, Clock(), stop=stop).run_once()
    assert (done.claimed, done.delivered, done.released) == (4, 1, 3)
    assert adapter.order_refs() == refs[:1]
    assert [(r[3], r[5]) for r in outbox(erp)] == [(1, None), (0, None), (0, None), (0, None)]


def test_an_unexpected_adapter_error_is_retried_and_an_unreadable_row_parked(client, token, erp):
    ref = place(client, token, erp)["client_key"]
    with erp:
        erp.execute(
            "INSERT INTO outbox (target, kind, idempotency_key, payload, created_at)"
            " VALUES ('erp', 'order.submitted', 'order.submitted:broken', '{\"lines\": []}', ?)",
            (stamp(Clock().now),),
        )
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.failures[ref] = [RuntimeError("adapter bug")]
    eng = engine(erp, adapter, clock)
    done = eng.run_once()
    assert (done.retrying, done.parked) == (1, 1)
    assert outbox(erp)[0][6] == "unexpected error: RuntimeError('adapter bug')"
    assert outbox(erp)[1][6] == "cannot read this outbox row: UnreadableRow: the order has no lines"
    clock.advance(2)
    assert eng.run_once().delivered == 1


def test_a_slow_batch_keeps_its_lease(client, token, erp, settings):
    for _ in range(4):
        place(client, token, erp)
    clock = Clock()
    adapter = ScriptedAdapter()
    original = adapter.push_order

    def slow(order):
        clock.advance(50)  # each delivery takes 50 s: the batch of 4 outlives the 120 s lease
        return original(order)

    adapter.push_order = slow  # type: ignore[method-assign]
    seen: list[float | None] = []
    other = open_connection(settings.db_path)
    try:
        rival = engine(other, ScriptedAdapter(), clock, "box-b:erp")
        eng = engine(erp, adapter, clock, heartbeat=lambda: seen.append(rival.seconds_until_ready()))
        assert eng.run_once().delivered == 4
    finally:
        other.close()
    assert all(s is not None and s > 0 for s in seen)  # the rival never found a claim it could take


def test_times_written_by_a_clock_that_ran_ahead_do_not_hold_rows_up(client, token, erp, settings):
    """A box without a battery clock can boot with the time hours ahead; NTP then sets it back. Backoffs and
    claims written meanwhile must not block the line until the real time catches up."""
    refs = [place(client, token, erp)["client_key"] for _ in range(2)]
    clock = Clock()
    with erp:
        erp.execute(
            "UPDATE outbox SET attempts = 1, next_attempt_at = ? WHERE id = 1", (stamp(clock.now + timedelta(hours=5)),)
        )
        erp.execute(
            "UPDATE outbox SET claimed_by = 'box-a:erp', claimed_at = ? WHERE id = 2",
            (stamp(clock.now + timedelta(hours=5)),),
        )
    eng = engine(erp, ScriptedAdapter(), clock, "box-b:erp", backoff=Backoff(cap=300.0))
    assert eng.seconds_until_ready() == 0.0
    drain(eng)
    assert eng.adapter.order_refs() == refs


class SlowAdapter(ScriptedAdapter):
    """Each call takes a moment, and the adapter notes how many calls were in the air at once, and for which
    orders: rows of different orders may overlap, rows of one order never."""

    def __init__(self) -> None:
        super().__init__()
        self.in_air: dict[str, int] = {}
        self.most_at_once = 0
        self.overlapping_same_order = 0
        self.release = threading.Event()

    def _enter(self, ref: str) -> None:
        with self.lock:
            self.in_air[ref] = self.in_air.get(ref, 0) + 1
            self.overlapping_same_order += self.in_air[ref] > 1
            self.most_at_once = max(self.most_at_once, sum(self.in_air.values()))

    def _leave(self, ref: str) -> None:
        with self.lock:
            self.in_air[ref] -= 1

    def push_order(self, order: Any) -> str:
        self._enter(order.order_ref)
        try:
            threading.Event().wait(0.02)
            return super().push_order(order)
        finally:
            self._leave(order.order_ref)

    def push_status(self, order_ref: str, status: str, reason: str | None) -> None:
        self._enter(order_ref)
        try:
            threading.Event().wait(0.02)
            super().push_status(order_ref, status, reason)
        finally:
            self._leave(order_ref)


def test_rows_of_different_orders_go_out_together_but_an_orders_own_rows_in_order(client, token, erp):
    placed = [place(client, token, erp) for _ in range(6)]
    with erp:
        for order in placed[:3]:  # three orders also get a status change, queued behind their order
            change_status(erp, order["id"], OrderStatus.CANCELLED, Actor.STAFF, "test")
    adapter = SlowAdapter()
    eng = engine(erp, adapter, Clock(), in_flight=4)
    try:
        drain(eng)
    finally:
        eng.close()
    assert all(row[3] for row in outbox(erp))  # everything delivered
    assert adapter.most_at_once > 1  # really several at once
    assert adapter.overlapping_same_order == 0  # never two rows of one order at the same time
    sequence = [(kind, doc.order_ref if kind == "order" else doc[0]) for kind, doc in adapter.calls]
    for order in placed[:3]:  # each cancellation reached the ERP after its order
        ref = order["client_key"]
        assert sequence.index(("order", ref)) < sequence.index(("status", ref))
    assert sorted(adapter.order_refs()) == sorted(o["client_key"] for o in placed)  # each once


def test_a_retrying_row_in_a_wave_leaves_its_neighbours_recorded(client, token, erp):
    placed = [place(client, token, erp) for _ in range(4)]
    adapter = SlowAdapter()
    adapter.failures[placed[1]["client_key"]] = [Retryable("ERP busy")]
    eng = engine(erp, adapter, Clock(), in_flight=4)
    try:
        result = eng.run_once()
    finally:
        eng.close()
    assert (result.delivered, result.retrying) == (3, 1)
    rows = {
        json.loads(p)["client_key"]: (d, a)
        for p, d, a in erp.execute(
            "SELECT payload, delivered_at IS NOT NULL, attempts FROM outbox WHERE kind = 'order.submitted'"
        )
    }
    assert rows[placed[1]["client_key"]] == (0, 1)  # waits at the head of the line, once tried
    assert [rows[o["client_key"]][0] for o in (placed[0], placed[2], placed[3])] == [1, 1, 1]


# -- issue 15: per-order backoff, payments and refunds in their orders' line, the target's pause, AMENDS --------------


def queue_payment(db, refs: list[str], *, kind: str = "payment.recorded", **extra: Any) -> str:
    key = f"{kind}:{len(db.execute('SELECT id FROM outbox').fetchall())}"
    payload = {
        "order_refs": refs,
        "table": "A1",
        "method": "cash",
        "amount_minor": 6400,
        "currency": "CNY",
        "paid_at": "2026-11-21T12:30:00.000000Z",
        **extra,
    }
    with write_transaction(db):
        assert queue_row(db, "erp", kind, key, payload)
    return key


def sequence(adapter: ScriptedAdapter) -> list[tuple[str, str]]:
    """What reached the ERP, in order: ("order", ref), ("status", "ref:status"), ("payment", payment_ref)."""
    out = []
    for kind, doc in adapter.calls:
        if kind == "order":
            out.append(("order", doc.order_ref))
        elif kind == "status":
            out.append(("status", f"{doc[0]}:{doc[1]}"))
        else:
            out.append((kind, doc.payment_ref))
    return out


def test_an_order_the_erp_keeps_failing_does_not_stall_the_others(client, token, erp):
    placed = [place(client, token, erp) for _ in range(8)]
    refs = [o["client_key"] for o in placed]
    with erp:
        change_status(erp, placed[0]["id"], OrderStatus.ACCEPTED, Actor.STAFF)
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.failures[refs[0]] = [Retryable("HTTP 503", status=503)] * 3
    eng = engine(erp, adapter, clock, in_flight=4)
    try:
        for _ in range(3):
            drain(eng)
            assert ("status", f"{refs[0]}:accepted") not in sequence(adapter)  # never before its order
            clock.advance(eng.seconds_until_ready() or 0.0)
        assert sorted(adapter.order_refs()) == sorted(refs[1:])  # everyone else went in the first pass
        assert eng.paused_until is None  # an ERP that answers is not paused for one order's failures
        drain(eng)
    finally:
        eng.close()
    assert sequence(adapter)[-2:] == [("order", refs[0]), ("status", f"{refs[0]}:accepted")]
    assert all(r[3] for r in outbox(erp))


def test_a_payment_waits_for_every_order_it_pays_for_and_the_orders_later_rows_wait_for_it(client, token, erp):
    a, b = place(client, token, erp), place(client, token, erp)
    pay = queue_payment(erp, [a["client_key"], b["client_key"]], change_minor=600)
    with erp:
        change_status(erp, a["id"], OrderStatus.ACCEPTED, Actor.STAFF)  # queued after the payment
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.failures[a["client_key"]] = [Retryable("HTTP 503", status=503)]
    eng = engine(erp, adapter, clock, in_flight=4)
    try:
        done = eng.run_once()
        assert (done.delivered, done.retrying) == (1, 1)
        assert sequence(adapter) == [("order", b["client_key"])]  # the payment waits for order a
        clock.advance(eng.seconds_until_ready() or 0.0)
        drain(eng)
    finally:
        eng.close()
    assert sequence(adapter)[1:] == [
        ("order", a["client_key"]),
        ("payment", pay),
        ("status", f"{a['client_key']}:accepted"),
    ]
    doc = adapter.calls[2][1]
    assert (doc.kind, doc.order_refs, doc.amount_minor, doc.method, doc.refund_of) == (
        "payment",
        [a["client_key"], b["client_key"]],
        6400,
        "cash",
        None,
    )
    assert doc.extra == {"change_minor": 600}


def test_a_refund_follows_its_payment_and_reaches_the_erp_as_a_refund(client, token, erp):
    order = place(client, token, erp)
    other = place(client, token, erp)
    pay = queue_payment(erp, [order["client_key"]])
    # the refund names no order here (the order's line alone would keep them in order): its payment must hold it
    refund = queue_payment(erp, [], kind="payment.refunded", refund_of=pay, reason="soup was cold", amount_minor=1200)
    stray = queue_payment(erp, [other["client_key"]], kind="payment.refunded", reason="no payment named")
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.failures[pay] = [Retryable("HTTP 502", status=502)]
    eng = engine(erp, adapter, clock)
    done = eng.run_once()
    assert (done.delivered, done.retrying, done.parked) == (2, 1, 1)
    assert ("payment", refund) not in sequence(adapter)  # not before the payment it gives money back from
    clock.advance(eng.seconds_until_ready() or 0.0)
    drain(eng)
    assert sequence(adapter)[-2:] == [("payment", pay), ("payment", refund)]
    doc = adapter.calls[-1][1]
    assert (doc.kind, doc.refund_of, doc.reason, doc.amount_minor, doc.extra) == (
        "refund",
        pay,
        "soup was cold",
        1200,
        {},
    )
    parked = erp.execute("SELECT last_error FROM outbox WHERE idempotency_key = ?", (stray,)).fetchone()[0]
    assert "refund_of" in parked


def test_an_order_the_erp_refused_holds_its_changes_and_payments_until_a_person_acts(client, token, erp):
    a, b = place(client, token, erp), place(client, token, erp)
    with erp:
        change_status(erp, a["id"], OrderStatus.CANCELLED, Actor.STAFF, "guest left")
    pay = queue_payment(erp, [a["client_key"], b["client_key"]])
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.failures[a["client_key"]] = [Rejected("Item ERP-HAR_GOW not found", status=417)]
    eng = engine(erp, adapter, clock)
    drain(eng)
    assert sequence(adapter) == [("order", b["client_key"])]  # a's cancellation and the payment wait for a
    assert eng.seconds_until_ready() is None  # nothing the worker could send: the rest needs a person
    status = target_status(erp, "erp")
    assert (status.state, status.parked, status.backlog) == (SyncState.FAILING, 1, 2)
    with erp:
        retry_now(erp, "erp")
    drain(eng)
    assert sequence(adapter)[1:] == [
        ("order", a["client_key"]),
        ("status", f"{a['client_key']}:cancelled"),
        ("payment", pay),
    ]


def test_a_down_erp_is_paused_for_not_tried_once_per_order(client, token, erp):
    refs = [place(client, token, erp)["client_key"] for _ in range(10)]
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.down = Retryable("erp: cannot reach REST at http://erp: connection refused")  # no answer: no status
    eng = engine(erp, adapter, clock, in_flight=4, backoff=Backoff(cap=300.0, rng=random.Random(2)))
    try:
        done = eng.run_once()
        assert (adapter.attempts, done.retrying, done.released) == (4, 4, 6)  # one wave, not ten orders
        first = eng.seconds_until_ready()
        assert first is not None and 0.5 <= first <= 1.0
        assert eng.run_once().claimed == 0
        pauses = [first]
        for _ in range(4):  # each pause: one row probes; still down: the next pause is longer
            clock.advance(pauses[-1] + 0.001)
            done = eng.run_once()
            assert (done.claimed, done.retrying) == (1, 1)
            pauses.append(eng.seconds_until_ready() or 0.0)
        assert adapter.attempts == 8
        assert [round(p / c, 2) >= 0.5 for p, c in zip(pauses, (1, 2, 4, 8, 16), strict=True)] == [True] * 5
        assert pauses[-1] > 8.0
        adapter.down = None  # the ERP is back: the probe goes through, then everything at full speed
        clock.advance(pauses[-1] + 0.001)
        assert eng.run_once().claimed == 1
        clock.advance(300)
        drain(eng)
    finally:
        eng.close()
    assert sorted(adapter.order_refs()) == sorted(refs) and all(r[3] for r in outbox(erp))


def test_an_erp_answering_503_to_everything_is_paused_too_but_a_flaky_one_is_not(client, token, erp):
    refs = [place(client, token, erp)["client_key"] for _ in range(20)]
    adapter, clock = ScriptedAdapter(), Clock()
    for ref in refs[::3]:  # a third of the calls fail: the target goes on
        adapter.failures[ref] = [Retryable("HTTP 503", status=503)]
    eng = engine(erp, adapter, clock, in_flight=8)
    try:
        done = eng.run_once()
        assert (done.delivered, done.retrying, eng.paused_until) == (13, 7, None)
        adapter.down = Retryable("HTTP 503: maintenance", status=503)
        clock.advance(300)
        done = eng.run_once()
        assert (done.claimed, done.retrying, done.released) == (7, 7, 0)  # seven in a row: goes on
        assert eng.paused_until is None
        for _ in range(3):
            place(client, token, erp)
        clock.advance(300)
        done = eng.run_once()
        # a wave of eight (15 failures in a row) goes on; the next two make 17: the target waits
        assert (done.retrying, done.released) == (10, 0) and eng.paused_until is not None
        assert eng.run_once().claimed == 0
    finally:
        eng.close()


def test_retry_after_holds_the_whole_target_not_only_the_row(client, token, erp):
    refs = [place(client, token, erp)["client_key"] for _ in range(3)]
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.failures[refs[0]] = [Retryable("HTTP 429: slow down", status=429, retry_after=7.0)]
    eng = engine(erp, adapter, clock)
    done = eng.run_once()
    assert (done.retrying, done.delivered, done.released) == (1, 0, 2)
    assert eng.seconds_until_ready() == pytest.approx(7.0)  # the other orders wait too: the ERP asked for a break
    clock.advance(6.9)
    assert eng.run_once().claimed == 0 and adapter.calls == []
    clock.advance(0.2)
    assert eng.run_once().claimed == 1  # one row first
    drain(eng)
    assert sorted(adapter.order_refs()) == sorted(refs)


def test_sync_retry_ends_a_pause(client, token, erp):
    for _ in range(3):
        place(client, token, erp)
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.down = Retryable("connection refused")
    eng = engine(erp, adapter, clock, backoff=Backoff(base=100.0, cap=300.0, rng=random.Random(3)))
    assert eng.run_once().retrying == 3
    assert eng.paused_until is not None and (eng.seconds_until_ready() or 0.0) >= 50.0
    adapter.down = None
    with erp:
        retry_now(erp, "erp")  # the technician fixed the ERP and says so
    assert eng.seconds_until_ready() == 0.0
    drain(eng)
    assert len(adapter.order_refs()) == 3 and all(r[3] for r in outbox(erp))


class AmendingAdapter(ScriptedAdapter):
    capabilities = frozenset({Capability.AMENDS})

    def push_change(self, change: OrderChange) -> None:
        with self.lock:
            self.calls.append(("change", change))


def test_an_amending_adapter_gets_cancels_and_voids_with_the_order_as_it_is_now(client, token, erp):
    order = place(client, token, erp, [("har_gow", 2), ("mineral_water", 1)])
    gone = place(client, token, erp, [("har_gow", 1)])
    with erp:
        void_line(erp, order["id"], 2, "out of stock")
        change_status(erp, order["id"], OrderStatus.CANCELLED, Actor.STAFF, "guest left")
        void_line(erp, gone["id"], 1, "sent back")
    adapter = AmendingAdapter()
    drain(engine(erp, adapter, Clock()))
    changes = [doc for kind, doc in adapter.calls if kind == "change"]
    assert [kind for kind, _ in adapter.calls if kind != "change"] == ["order", "order"]  # no push_status at all
    void, cancel, emptied = changes
    keys = [k for (k,) in erp.execute("SELECT idempotency_key FROM outbox WHERE kind != 'order.submitted' ORDER BY id")]
    assert (void.event, void.line_no, void.reason, void.status, void.change_ref) == (
        "line_voided",
        2,
        "out of stock",
        "cancelled",  # the order's status as the store has it at delivery
        keys[0],
    )
    assert (cancel.event, cancel.status, cancel.reason, cancel.line_no, cancel.change_ref) == (
        "status",
        "cancelled",
        "guest left",
        None,
        keys[1],
    )
    for change in (void, cancel):  # the order now: the water voided, totals without it
        assert change.order_ref == order["client_key"] and change.order is not None
        assert [(line.key, line.quantity) for line in change.order.lines] == [("har_gow", 2)]
        assert change.order.subtotal_minor == 6400 and change.order.order_ref == order["client_key"]
    assert (emptied.order_ref, emptied.event, emptied.order) == (gone["client_key"], "line_voided", None)


def test_an_order_failing_while_others_get_through_is_not_left_for_minutes(client, token, erp):
    """A flaky ERP fails some calls at random: an unlucky order's backoff stops doubling at 16 s while the others get
    through (before, ten failures in a row left it 5 minutes behind); when every call fails it grows on to the cap."""
    unlucky = place(client, token, erp)["client_key"]
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.failures[unlucky] = [Retryable("HTTP 503", status=503)] * 9
    eng = engine(erp, adapter, clock, backoff=Backoff(cap=300.0, rng=random.Random(11)))
    waits = []
    for _ in range(9):
        place(client, token, erp)  # another order, which goes through
        drain(eng)
        waits.append(eng.seconds_until_ready() or 0.0)
        clock.advance(waits[-1] + 0.001)
    assert max(waits) <= 16.0 and sum(w > 8.0 for w in waits) >= 1  # the ceiling is reached, never passed
    drain(eng)
    assert adapter.order_refs()[-1] == unlucky
    adapter.down = Retryable("HTTP 503", status=503)  # now everything fails: the waits grow past 16 s
    alone = place(client, token, erp)["client_key"]
    waits = []
    for _ in range(24):
        drain(eng)
        waits.append(eng.seconds_until_ready() or 0.0)
        clock.advance(waits[-1] + 0.001)
    assert max(waits) > 32.0
    assert alone not in adapter.order_refs()


def test_an_order_the_erp_refuses_alone_cannot_keep_the_target_paused(client, token, erp):
    """The probe after a pause is the ready row tried least often: an order failing on its own (here: always 503)
    would otherwise be the probe every time and keep the whole target paused (seen in a 30-minute bench run)."""
    refs = [place(client, token, erp)["client_key"] for _ in range(20)]
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.down = Retryable("HTTP 503: maintenance", status=503)
    eng = engine(erp, adapter, clock, in_flight=8, backoff=Backoff(cap=60.0, rng=random.Random(4)))
    try:
        done = eng.run_once()
        assert (done.retrying, done.released) == (16, 4) and eng.paused_until is not None
        adapter.down = None  # the ERP is back, except for the oldest order
        adapter.failures[refs[0]] = [Retryable("HTTP 503", status=503)] * 100
        clock.advance(60)
        done = eng.run_once()
        assert (done.claimed, done.delivered) == (1, 1)  # a fresh order probed, not the oldest one
        assert eng.paused_until is None
        drain(eng)
    finally:
        eng.close()
    assert sorted(adapter.order_refs()) == sorted(refs[1:])


def test_the_probe_after_a_pause_is_never_a_payment_ahead_of_its_order(client, token, erp):
    """Seen in the soak: the ERP down, the order's row failed once, and the probe after the pause was the payment
    (tried fewer times than its order), which the ERP refused as naming an order it did not have."""
    order = place(client, token, erp)
    pay = queue_payment(erp, [order["client_key"]])
    adapter, clock = ScriptedAdapter(), Clock()
    adapter.down = Retryable("erp: cannot reach REST at http://erp: connection refused")
    eng = engine(erp, adapter, clock, in_flight=4, backoff=Backoff(cap=60.0, rng=random.Random(3)))
    try:
        for _ in range(4):  # the order fails until the target pauses; the payment is never tried
            eng.run_once()
            clock.advance(eng.seconds_until_ready() or 0.0)
        assert eng.paused_until is not None or eng._probe
        adapter.down = None
        clock.advance(120)
        done = eng.run_once()
        assert done.claimed == 1
        assert sequence(adapter) == [("order", order["client_key"])]  # the probe: the order, not its payment
        drain(eng)
    finally:
        eng.close()
    assert sequence(adapter) == [("order", order["client_key"]), ("payment", pay)]


def test_a_parked_payment_does_not_hold_the_order_it_was_for(client, token, erp):
    """A payment refused for good waits for a person; the order ahead of it (still waiting out a failure) goes on."""
    order = place(client, token, erp)
    pay = queue_payment(erp, [order["client_key"]])
    later = place(client, token, erp)  # the line goes on past the parked payment
    with write_transaction(erp):
        erp.execute(
            "UPDATE outbox SET parked_at = '2026-11-21T12:00:00.000000Z', last_error = 'refused' WHERE idempotency_key = ?",
            (pay,),
        )
    adapter, clock = ScriptedAdapter(), Clock()
    eng = engine(erp, adapter, clock)
    try:
        drain(eng)
    finally:
        eng.close()
    assert sequence(adapter) == [("order", order["client_key"]), ("order", later["client_key"])]
    assert eng.seconds_until_ready() is None
