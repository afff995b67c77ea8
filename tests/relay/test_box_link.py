"""The box's side of the relay (sync/relay_link.py): each inbox message applied in one transaction with its
inbox_seen row, refusals handed back exactly as the box's own API words them, the menu pushed as GET /menu answers
it, and the link's threads under syncd. If these failed, a phone ordering through the relay could get an order
cooked twice, lost, or "accepted" for something the box refused."""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from dataclasses import replace as replace_settings
from typing import Any

import msgspec
import pytest
from msgspec.structs import replace

from appliance.contract.relay import InboxMessage
from appliance.db.connection import write_transaction
from appliance.db.menu import set_price, set_sold_out
from appliance.db.orders import change_status
from appliance.db.store_settings import load_store_settings
from appliance.domain.orders import Actor, OrderStatus
from appliance.store import read_secret
from sync.adapters.base import Capability, Retryable
from sync.config import Target
from sync.outbox import OutboxEngine
from sync.relay_link import InboxApplier, RelayLink, last_applied_seq, menu_document
from sync.worker import SyncWorker
from tests.appliance.web.conftest import item_id, option_id
from tests.conftest import token_for
from tests.relay.conftest import wait_until

SECRET = "ab" * 32


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def targets(db):
    with write_transaction(db):
        db.execute(
            "INSERT INTO sync_targets (name, kind, inbox_source) VALUES ('erp', 'erp', NULL), ('relay', 'relay', 'relay:relay@')"
        )


@pytest.fixture
def applier(settings, db, targets):
    return InboxApplier(db, "relay", read_secret(settings.secret_path), load_store_settings(db).store_id)


def inbox_message(
    seq: int, kind: str, token: str, body: Any, *, client_key: str | None = None, key: str | None = None
) -> InboxMessage:
    """A message as the box's client reads it from GET /v1/box/inbox."""
    return InboxMessage(
        seq=seq,
        kind=kind,
        client_key=client_key,
        key=key,
        token=token,
        body=msgspec.Raw(msgspec.json.encode(body)),
        received_at="2026-11-21T12:00:00.000000Z",
    )


def order_message(
    seq: int, token: str, lines: list[dict[str, Any]], client_key: str | None = None, **extra: Any
) -> InboxMessage:
    client_key = client_key or key()
    body = {
        "client_key": client_key,
        "lines": lines,
        "note": "",
        "diners": None,
        "expected_total_minor": None,
        "lang": "en",
        **extra,
    }
    return inbox_message(seq, "order", token, body, client_key=client_key, key=client_key)


def har_gow(db, quantity=2):
    return {"item_id": item_id(db, "har_gow"), "quantity": quantity, "variant_id": None, "option_ids": [], "note": ""}


def count(db, sql, *params):
    return db.execute(sql, params).fetchone()[0]


def outbox(db):
    return db.execute("SELECT target, kind, idempotency_key, payload FROM outbox ORDER BY id").fetchall()


def test_an_order_is_stored_once_with_its_tickets_and_its_accepted_row_for_the_relay(applier, db, token):
    message = order_message(1, token, [har_gow(db)], note="生日\x1b快乐")
    assert applier.apply(message) == "accepted"
    order = db.execute("SELECT id, channel, status, total_minor, note, lang FROM orders").fetchall()
    assert len(order) == 1 and order[0][1:] == ("relay", "submitted", 6400, "生日快乐", "en")
    assert count(db, "SELECT count(*) FROM print_jobs WHERE order_id = ?", order[0][0]) == 1
    assert db.execute("SELECT source, message_id, seq FROM inbox_seen").fetchall() == [
        ("relay:relay@", message.client_key, 1)
    ]
    rows = outbox(db)
    assert [(t, k, i) for t, k, i, _ in rows] == [
        ("erp", "order.submitted", f"order.submitted:{message.client_key}"),
        ("relay", "order.submitted", f"order.submitted:{message.client_key}"),
    ]
    assert json.loads(rows[1][3])["channel"] == "relay"
    assert last_applied_seq(db, "relay") == 1

    # the same message again (a relay that re-sends it, a poll answered twice): nothing new
    assert applier.apply(message) == "duplicate"
    # the same client key under another seq, or another key under the same seq: also already applied
    assert applier.apply(replace(message, seq=2)) == "duplicate"
    assert applier.apply(order_message(1, token, [har_gow(db)])) == "duplicate"
    assert count(db, "SELECT count(*) FROM orders") == 1 and count(db, "SELECT count(*) FROM print_jobs") == 1
    assert len(outbox(db)) == 2
    assert last_applied_seq(db, "relay") == 2  # seq 2 is applied (as nothing), so the next poll moves past it


def test_a_box_enrolled_again_under_the_same_target_name_starts_at_its_new_stores_first_message(
    settings, db, targets, token
):
    """Sequence numbers are per relay store: the new store's seq 1..3 are new orders, not 'already applied'."""
    secret, store_id = read_secret(settings.secret_path), load_store_settings(db).store_id
    with write_transaction(db):
        db.execute("""UPDATE sync_targets SET config = '{"store_id": "oldStore1"}' WHERE name = 'relay'""")
    old = InboxApplier(db, "relay", secret, store_id, relay_store="oldStore1")
    assert [old.apply(order_message(seq, token, [har_gow(db)])) for seq in (1, 2, 3, 4, 5)] == ["accepted"] * 5
    assert last_applied_seq(db, "relay", "oldStore1") == 5

    with write_transaction(db):  # `tablebox relay enroll` again, the new store_id in [sync.relay]
        db.execute("""UPDATE sync_targets SET config = '{"store_id": "newStore2"}' WHERE name = 'relay'""")
    assert last_applied_seq(db, "relay", "newStore2") == 0  # the next poll asks the new store from its start
    new = InboxApplier(db, "relay", secret, store_id, relay_store="newStore2")
    fresh = [order_message(seq, token, [har_gow(db)]) for seq in (1, 2, 3)]
    assert [new.apply(m) for m in fresh] == ["accepted"] * 3
    assert count(db, "SELECT count(*) FROM orders WHERE channel = 'relay'") == 8
    assert last_applied_seq(db, "relay", "newStore2") == 3
    # their status goes to the relay they came through: the relay target's rows follow the new store's orders
    relay_keys = {i for t, _, i, _ in outbox(db) if t == "relay"}
    assert all(f"order.submitted:{m.client_key}" in relay_keys for m in fresh)
    assert new.apply(fresh[0]) == "duplicate"


def test_lan_orders_and_their_status_changes_are_not_sent_to_the_relay(client, token, db, applier):
    lan = client.post(
        f"/api/v1/tables/{token}/orders",
        json={"client_key": key(), "lines": [{"item_id": item_id(db, "har_gow"), "quantity": 1}]},
    ).json()
    with write_transaction(db):
        change_status(db, lan["id"], OrderStatus.ACCEPTED, Actor.STAFF)
    assert {t for t, _, _, _ in outbox(db)} == {"erp"}

    relayed = order_message(1, token, [har_gow(db)])
    assert applier.apply(relayed) == "accepted"
    order_id = count(db, "SELECT id FROM orders WHERE client_key = ?", relayed.client_key)
    with write_transaction(db):
        change_status(db, order_id, OrderStatus.ACCEPTED, Actor.STAFF)
    relay_rows = [(k, i) for t, k, i, _ in outbox(db) if t == "relay"]
    assert [k for k, _ in relay_rows] == ["order.submitted", "order.status"]
    assert all(relayed.client_key in i for _, i in relay_rows)


def test_a_phone_that_retries_its_lan_order_through_the_relay_gets_the_same_order(client, token, db, applier):
    """It left the Wi-Fi after sending: the LAN order is the one, and the relay gets its accepted event."""
    body = {"client_key": key(), "lines": [{"item_id": item_id(db, "har_gow"), "quantity": 2}]}
    lan = client.post(f"/api/v1/tables/{token}/orders", json=body)
    assert lan.status_code == 201
    message = order_message(1, token, [har_gow(db)], client_key=body["client_key"])
    assert applier.apply(message) == "repeated"
    assert count(db, "SELECT count(*) FROM orders") == 1 and count(db, "SELECT count(*) FROM print_jobs") == 1
    relay_rows = [(k, json.loads(p)) for t, k, _, p in outbox(db) if t == "relay"]
    assert [(k, p["id"]) for k, p in relay_rows] == [("order.submitted", lan.json()["id"])]
    # and the other way round: a relayed order retried on the LAN is the same order, not a reused key
    other = order_message(2, token, [har_gow(db, 1)])
    assert applier.apply(other) == "accepted"
    again = client.post(
        f"/api/v1/tables/{token}/orders",
        json={"client_key": other.client_key, "lines": [{"item_id": item_id(db, "har_gow"), "quantity": 1}]},
    )
    assert again.status_code == 200 and again.json()["channel"] == "relay"


def refused_row(db, client_key):
    rows = [(t, json.loads(p)) for t, k, i, p in outbox(db) if i == f"order.refused:{client_key}"]
    assert [t for t, _ in rows] == ["relay"], "a refusal goes to the relay target only"
    assert rows[0][1]["client_key"] == client_key
    return rows[0][1]["error"]


@pytest.mark.parametrize(
    "case",
    ["sold_out", "price_changed", "invalid_body", "text_too_long", "forged_token", "unknown_item", "invalid_option"],
)
def test_a_refusal_is_what_the_boxs_own_api_answers_and_nothing_is_stored(case, client, token, db, applier):
    lines = [har_gow(db)]
    extra: dict[str, Any] = {}
    path_token = token
    if case == "sold_out":
        with write_transaction(db):
            set_sold_out(db, item_id(db, "har_gow"), True)
    elif case == "price_changed":
        extra["expected_total_minor"] = 5000
    elif case == "invalid_body":
        lines[0]["quantity"] = "2"
    elif case == "text_too_long":
        lines[0]["note"] = "辣" * 141
    elif case == "forged_token":
        path_token = token[:-4] + ("aaaa" if not token.endswith("aaaa") else "bbbb")
    elif case == "unknown_item":
        lines[0]["item_id"] = 99999
    elif case == "invalid_option":
        lines[0]["option_ids"] = [option_id(db, "spice", "mild")]
    message = order_message(7, path_token, lines, **extra)
    assert applier.apply(message) == "refused"
    assert count(db, "SELECT count(*) FROM orders") == 0 and count(db, "SELECT count(*) FROM print_jobs") == 0
    assert count(db, "SELECT count(*) FROM table_sessions") == 0
    error = refused_row(db, message.client_key)
    assert last_applied_seq(db, "relay") == 7  # refused is applied too: the line moves on

    # the box's own API, asked the same in the same language, says exactly the same
    lan_body = {k: v for k, v in msgspec.json.decode(message.body).items() if k not in ("lang",) and v is not None}
    lan = client.post(f"/api/v1/tables/{path_token}/orders?lang=en", json=lan_body)
    assert lan.status_code >= 400 and lan.json()["error"] == error
    assert error["code"] == case


def test_the_refusal_speaks_the_diners_language(applier, db, token):
    with write_transaction(db):
        set_sold_out(db, item_id(db, "har_gow"), True)
    zh = order_message(1, token, [har_gow(db)], lang="zh")
    en = order_message(2, token, [har_gow(db)], lang="en")
    assert applier.apply(zh) == applier.apply(en) == "refused"
    assert refused_row(db, zh.client_key)["message"] == "第 1 项：水晶虾饺 已售罄。"
    assert "Line 1:" in next(
        json.loads(p)["error"]["message"] for _, k, i, p in outbox(db) if i == f"order.refused:{en.client_key}"
    )


def test_a_price_change_hands_back_the_fresh_total(applier, db, token):
    with write_transaction(db):
        set_price(db, item_id(db, "har_gow"), 3000)
    message = order_message(1, token, [har_gow(db)], expected_total_minor=5600)
    assert applier.apply(message) == "refused"
    error = refused_row(db, message.client_key)
    assert error["code"] == "price_changed" and error["details"]["total_minor"] == 6000
    assert error["message"] == "Prices have changed. The new total is ¥60.00."


def test_a_box_killed_between_the_submit_and_the_commit_keeps_nothing(settings, db, targets, token):
    class Crash(BaseException):
        """As good as the process dying there: nothing after it runs."""

    def crash(result):
        assert result.created  # the order, its tickets and outbox rows exist, uncommitted
        raise Crash()

    secret, store_id = read_secret(settings.secret_path), load_store_settings(db).store_id
    message = order_message(3, token, [har_gow(db)])
    with pytest.raises(Crash):
        InboxApplier(db, "relay", secret, store_id, after_submit=crash).apply(message)
    for table in ("orders", "order_lines", "order_events", "print_jobs", "outbox", "inbox_seen", "table_sessions"):
        assert count(db, f"SELECT count(*) FROM {table}") == 0, table
    assert db.getautocommit() and last_applied_seq(db, "relay") == 0  # the next poll asks for it again

    # the restarted box gets it again and applies it, once
    again = InboxApplier(db, "relay", secret, store_id)
    assert again.apply(message) == "accepted" and again.apply(message) == "duplicate"
    assert count(db, "SELECT count(*) FROM orders") == 1 and count(db, "SELECT count(*) FROM print_jobs") == 1


def test_waiter_and_bill_requests(applier, db, token):
    waiter = inbox_message(1, "request", token, {"kind": "waiter", "lang": "en"})
    assert applier.apply(waiter) == "request"
    assert applier.apply(waiter) == "duplicate"
    bill = inbox_message(2, "request", token, {"kind": "bill", "lang": "zh"})
    assert applier.apply(bill) == "request_refused"  # no visit yet: nothing to pay (the box's no_open_visit)
    odd = inbox_message(3, "request", token, {"kind": "dance"})
    assert applier.apply(odd) == "request_refused"
    unknown = inbox_message(4, "telegram", token, {})
    assert applier.apply(unknown) == "skipped"
    assert db.execute("SELECT kind FROM service_requests").fetchall() == [("waiter",)]
    assert last_applied_seq(db, "relay") == 4 and count(db, "SELECT count(*) FROM outbox") == 0


def test_a_refused_request_goes_back_to_the_relay_in_the_diners_language(applier, db, token):
    """The relay's key for the call comes with the message; the refusal is queued for this relay target only, in
    the same transaction as the message's sequence."""
    bill = inbox_message(1, "request", token, {"kind": "bill", "lang": "en"}, key="request:abc123")
    assert applier.apply(bill) == "request_refused"
    assert applier.apply(bill) == "duplicate"
    ((target, kind, idempotency_key, payload),) = outbox(db)
    assert (target, kind, idempotency_key) == ("relay", "request.refused", "request.refused:request:abc123")
    error = json.loads(payload)
    assert error["client_key"] == "request:abc123" and error["error"]["code"] == "no_open_visit"
    assert error["error"]["message"] == "There is nothing to pay at this table yet."
    waiter = inbox_message(2, "request", token, {"kind": "waiter", "lang": "en"}, key="request:def456")
    assert applier.apply(waiter) == "request" and len(outbox(db)) == 1  # taken: nothing to say back


def test_a_message_failing_again_and_again_is_refused_with_internal_error(applier, db, token):
    message = order_message(5, token, [har_gow(db)])
    assert applier.give_up(message, "KeyError('x')") == "refused"
    assert refused_row(db, message.client_key)["code"] == "internal_error"
    assert count(db, "SELECT count(*) FROM orders") == 0 and last_applied_seq(db, "relay") == 5


# -- the outbox engine and the relay target -------------------------------------------------------------------------
class RecordingRelay:
    """Stands in for the relay adapter: records what the engine hands it."""

    capabilities = frozenset({Capability.ORDER_VIEW, Capability.REFUSALS, Capability.INBOX})
    name = "relay"

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def push_order(self, order):
        self.calls.append(("order", order.order_ref, dict(order.view or {})))
        return "accepted:" + order.order_ref

    def push_status(self, ref, status, reason, order=None):
        self.calls.append(("status", ref, status, reason, dict(order) if order else None))

    def close(self):
        pass


def test_the_engine_routes_refusals_and_hands_the_relay_the_order_as_it_is(settings, db, applier, token):
    with write_transaction(db):
        set_sold_out(db, item_id(db, "seasonal_greens"), True)
    ok = order_message(1, token, [har_gow(db)])
    refused = order_message(2, token, [{**har_gow(db), "item_id": item_id(db, "seasonal_greens")}])
    applier.apply(ok)
    applier.apply(refused)
    order_id = count(db, "SELECT id FROM orders")
    with write_transaction(db):
        change_status(db, order_id, OrderStatus.ACCEPTED, Actor.STAFF)
        change_status(db, order_id, OrderStatus.PREPARING, Actor.STAFF)
    relay = RecordingRelay()
    engine = OutboxEngine(db, "relay", relay, worker_id="t")
    passed = engine.run_once()
    assert (passed.delivered, passed.parked, passed.retrying) == (4, 0, 0)
    kinds = [c[0] for c in relay.calls]
    assert kinds == ["order", "status", "status", "status"]
    assert relay.calls[0][1] == ok.client_key and relay.calls[0][2]["lines"][0]["names"]["zh"] == "水晶虾饺"
    _, ref, status, reason, order = relay.calls[1]
    assert (ref, status, order) == (refused.client_key, "refused", None)
    assert json.loads(reason)["code"] == "sold_out"
    # each status row carries the order with the status of that row, so the phone ends on the real one
    assert [(c[2], c[4]["status"], c[4]["id"]) for c in relay.calls[2:]] == [
        ("accepted", "accepted", order_id),
        ("preparing", "preparing", order_id),
    ]


# -- the link's threads -------------------------------------------------------------------------------------------
class FakeRelay:
    """An in-memory relay for the link's threads: an inbox the test fills, menus it records, polls that wait."""

    def __init__(self) -> None:
        self.inbox: list[InboxMessage] = []
        self.menus: list[dict[str, Any]] = []
        self.version = 0
        self.afters: list[int] = []
        self.changed = threading.Condition()
        self.fail_polls = 0
        self.block_polls = threading.Event()  # while set, a poll hangs (a long-poll in progress)...
        self.release = threading.Event()  # ...until this is set
        self.closed = 0

    def client(self, name, config):
        return self

    def poll(self, after, wait):
        if self.block_polls.is_set():
            self.release.wait(60)
        if self.fail_polls:
            self.fail_polls -= 1
            raise Retryable("relay: cannot reach the relay")
        with self.changed:
            self.afters.append(after)
            self.changed.notify_all()
            self.changed.wait_for(lambda: any(m.seq > after for m in self.inbox), timeout=min(wait, 0.2))
            return [m for m in self.inbox if m.seq > after]

    def push_menu(self, document):
        with self.changed:
            self.menus.append(msgspec.to_builtins(document))
            self.version = max(self.version, document.version)
            self.changed.notify_all()
            return self.version

    def add(self, message):
        with self.changed:
            self.inbox.append(message)
            self.changed.notify_all()

    def wait_for(self, predicate, timeout=10.0):
        wait_until(predicate, timeout, getattr(predicate, "__doc__", None) or "the fake relay")

    def close(self):
        self.closed += 1


def relay_target(**config: Any) -> Target:
    return Target(
        "relay",
        "relay",
        True,
        5,
        0,
        0.05,
        {
            "kind": "relay",
            "base_url": "http://relay.test",
            "store_id": "storeid1",
            "api_secret": SECRET,
            "menu_check_seconds": 0.02,
            **config,
        },
    )


def test_the_link_applies_what_it_polls_and_asks_after_the_last_applied_seq(settings, db, targets, token):
    fake = FakeRelay()
    fake.fail_polls = 2  # the relay unreachable at first: the link backs off and comes back
    stop = threading.Event()
    link = RelayLink(settings, relay_target(), stop, client_factory=fake.client).start()
    try:
        fake.wait_for(lambda: fake.afters and fake.afters[-1] == 0)
        first, second = order_message(1, token, [har_gow(db)]), order_message(2, token, [har_gow(db, 1)])
        fake.add(first)
        fake.add(second)
        fake.wait_for(lambda: fake.afters and fake.afters[-1] == 2)
        assert count(db, "SELECT count(*) FROM orders") == 2
        fake.add(replace(first, seq=3))  # the same order delivered again under a new seq
        fake.wait_for(lambda: fake.afters and fake.afters[-1] == 3)
        assert count(db, "SELECT count(*) FROM orders") == 2 and link.health(time.monotonic(), 300) is None
    finally:
        stop.set()
        link.join(5)  # the poll in progress is left to end on its own
        for thread in link.threads:
            thread.join(5)
    assert not any(t.is_alive() for t in link.threads)


def test_the_menu_pushed_is_what_get_menu_answers_and_moves_when_the_menu_does(settings, db, targets, token, client):
    fake = FakeRelay()
    stop = threading.Event()
    link = RelayLink(settings, relay_target(), stop, client_factory=fake.client).start()
    try:
        # at start the version moves past whatever the relay held from before, then that one is pushed
        fake.wait_for(lambda: len(fake.menus) >= 2)
        pushed = fake.menus[-1]
        assert pushed["version"] == fake.menus[0]["version"] + 1
        for lang in ("zh", "en"):
            assert pushed["menus"][lang] == client.get(f"/api/v1/tables/{token}/menu?lang={lang}").json()
        assert pushed["store"] == client.get(f"/api/v1/tables/{token}").json()["store"]
        assert set(pushed["store"]) >= {"name", "currency", "languages", "open_now"}

        with write_transaction(db):
            set_sold_out(db, item_id(db, "har_gow"), True)
        fake.wait_for(lambda: fake.menus[-1]["version"] > pushed["version"])
        dishes = {i["id"]: i for c in fake.menus[-1]["menus"]["en"]["categories"] for i in c["items"]}
        assert dishes[item_id(db, "har_gow")]["sold_out"] is True
        assert fake.menus[-1]["menus"]["en"] == client.get(f"/api/v1/tables/{token}/menu?lang=en").json()
        pushes = len(fake.menus)
        # A quiet menu is not pushed again: let the menu loop come round several whole passes (each pass stamps
        # menu_beat when it starts, so the third new stamp means two passes ran to the end) and count the pushes.
        for _ in range(3):
            fake.wait_for(lambda beat=link.menu_beat: link.menu_beat > beat)
        assert len(fake.menus) == pushes
    finally:
        stop.set()
        link.join(5)


def test_a_restored_box_moves_its_menu_version_past_the_relays(settings, db, targets):
    fake = FakeRelay()
    fake.version = 500  # the relay holds a newer menu than this (restored) box has
    stop = threading.Event()
    link = RelayLink(settings, relay_target(), stop, client_factory=fake.client).start()
    try:
        fake.wait_for(lambda: fake.menus and fake.menus[-1]["version"] == 501)
        assert count(db, "SELECT version FROM menu_meta") == 501
    finally:
        stop.set()
        link.join(5)


def test_menu_document_and_settings_checks(settings, db):
    from appliance.contract.relay import table_code_hash
    from appliance.db.orders import MenuCache
    from appliance.db.tables import rekey_table

    snap = MenuCache().get(db)
    secret = read_secret(settings.secret_path)
    document = menu_document(snap, 12 * 60, secret)
    assert document.version == snap.version and sorted(document.menus) == ["en", "zh"]
    # each table's current code travels only as its SHA-256: the relay can check a code, not make one
    a1 = token_for(settings, "A1")
    (pushed,) = [t for t in document.tables or [] if t.name == "A1"]
    assert pushed.code_hash == table_code_hash(a1) == hashlib.sha256(a1.encode()).hexdigest()
    assert a1 not in msgspec.json.encode(document).decode()
    assert len({t.code_hash for t in document.tables or []}) == len(document.tables or []) > 1
    with write_transaction(db):
        rekey_table(db, pushed.id)
    (after,) = [t for t in menu_document(MenuCache().get(db), 12 * 60, secret).tables or [] if t.name == "A1"]
    assert after.version == pushed.version + 1 and after.code_hash == table_code_hash(token_for(settings, "A1"))
    assert after.code_hash != pushed.code_hash
    with pytest.raises(ValueError, match="poll_wait_seconds"):
        RelayLink(settings, relay_target(poll_wait_seconds=60), threading.Event(), client_factory=FakeRelay().client)


def test_syncd_runs_a_link_beside_the_relay_targets_outbox_and_stops_without_waiting_for_a_poll(settings, db, targets):
    fake = FakeRelay()
    box = replace_settings(
        settings,
        sync_targets={
            "relay": dict(
                relay_target().config, enabled=True, timeout_seconds=5, pull_minutes=15, retry_cap_seconds=0.05
            )
        },
    )
    worker = SyncWorker(
        box,
        adapter_factory=lambda name, config: RecordingRelay(),
        link_factory=lambda s, t, stop: RelayLink(s, t, stop, client_factory=fake.client),
    )
    assert [loop.target.kind for loop in worker.loops] == ["relay"] and len(worker.links) == 1
    worker.start()
    try:
        fake.wait_for(lambda: fake.afters)
        assert worker.health() is None
        link = worker.links[0]
        assert (
            link.health(link.inbox_beat + 301, 300)
            == "the relay inbox thread of sync target relay has been stuck for 301 s"
        )
        fake.block_polls.set()  # a long-poll in progress when SIGTERM comes
        fake.wait_for(
            lambda: (
                fake.block_polls.is_set()
                and link.polling_since is not None
                and time.monotonic() - link.polling_since > 0.3
            )
        )
    finally:
        started = time.monotonic()
        worker.stop(timeout=2)
        stopped_after = time.monotonic() - started
        fake.release.set()
    assert stopped_after < 1.5  # the poll was abandoned, not awaited
    assert not worker.loops[0].thread.is_alive() and not link.menu_thread.is_alive()
