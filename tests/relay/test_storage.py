"""The relay's storage, on SQLite and on PostgreSQL: enrolment, gap-free sequences under concurrent writers,
one message per idempotency key, nonces, menus, events and the purge."""

from __future__ import annotations

import threading
import time

import pytest

from sync.relay.storage import NewEvent, StorageError, UnknownStore, open_storage


def test_enrolment_makes_a_store_with_a_url_safe_id_and_a_32_byte_secret(storage):
    enrolled = storage.enroll("小笼天下 Dumpling House")
    assert len(enrolled.store_id) >= 8 and enrolled.store_id.isalnum()
    assert len(enrolled.secret) == 64 and len(bytes.fromhex(enrolled.secret)) == 32
    assert storage.secret_of(enrolled.store_id) == bytes.fromhex(enrolled.secret)
    assert storage.secret_of("nosuchstore") is None
    row = storage.store(enrolled.store_id)
    assert row.name == "小笼天下 Dumpling House" and row.next_seq == 1 and row.last_poll_at is None
    other = storage.enroll("Noodle Bar")
    assert other.store_id != enrolled.store_id and other.secret != enrolled.secret


def test_sequences_are_gap_free_per_store_under_concurrent_writers(storage):
    """Eight threads append to two stores at once: each store's seqs are exactly 1..N, none twice."""
    a, b = storage.enroll("A").store_id, storage.enroll("B").store_id
    errors: list[BaseException] = []

    def write(n: int) -> None:
        try:
            for i in range(25):
                store = a if (n + i) % 2 else b
                storage.put_message(store, "order", f"key-{n}-{i}", "t" * 32, "{}", "h", time.time())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for store in (a, b):
        seqs = [m.seq for m in storage.inbox_after(store, 0, limit=1000)]
        assert seqs == list(range(1, 101))
        assert storage.store(store).next_seq == 101


def test_a_key_is_stored_once_and_a_repeat_returns_the_first_message(storage):
    store = storage.enroll("A").store_id
    first, created = storage.put_message(store, "order", "k" * 16, "t" * 32, '{"n":1}', "h1", 1.0)
    again, created_again = storage.put_message(store, "order", "k" * 16, "t" * 32, '{"n":2}', "h2", 2.0)
    assert created and not created_again
    assert again == first and again.body == '{"n":1}'
    assert storage.store(store).next_seq == 2  # the repeat took no seq
    with pytest.raises(UnknownStore):
        storage.put_message("nosuchstore", "order", "x" * 16, "t" * 32, "{}", "h", 1.0)


def test_a_poll_acknowledges_up_to_after_and_marks_the_store_polling_while_it_waits(storage):
    store = storage.enroll("A").store_id
    for n in range(3):
        storage.put_message(store, "order", f"key{n:013d}", "t" * 32, "{}", "h", 1.0)
    assert [m.seq for m in storage.begin_poll(store, 1, now=100.0)] == [2, 3]
    row = storage.store(store)
    assert not row.polling and row.last_poll_at == 100.0 and row.acked_seq == 1  # answered at once: no wait
    assert storage.begin_poll(store, 3, now=101.0) == []
    row = storage.store(store)
    assert row.polling and row.last_poll_at == 101.0 and row.acked_seq == 3  # waiting for the next message
    storage.end_poll(store, now=125.0)
    row = storage.store(store)
    assert not row.polling and row.last_poll_at == 125.0
    storage.begin_poll(store, 0, now=130.0)  # an older after= does not un-acknowledge
    assert storage.store(store).acked_seq == 3


def test_a_box_ahead_of_the_relay_moves_the_counter_so_new_messages_are_not_skipped(storage):
    """The relay's database came back from an older copy: the box has applied up to 40, the relay counts from 3."""
    store = storage.enroll("A").store_id
    storage.put_message(store, "order", "a" * 16, "t" * 32, "{}", "h", 1.0)
    storage.put_message(store, "order", "b" * 16, "t" * 32, "{}", "h", 1.0)
    assert storage.begin_poll(store, 40, now=1.0) == []
    message, _ = storage.put_message(store, "order", "c" * 16, "t" * 32, "{}", "h", 1.0)
    assert message.seq == 41
    assert [m.seq for m in storage.begin_poll(store, 40, now=2.0)] == [41]


def test_a_nonce_is_new_once_per_store(storage):
    a, b = storage.enroll("A").store_id, storage.enroll("B").store_id
    assert storage.record_nonce(a, "n" * 20, 1000)
    assert not storage.record_nonce(a, "n" * 20, 1000)
    assert storage.record_nonce(b, "n" * 20, 1000)


def test_an_older_menu_never_replaces_a_newer_one(storage):
    store = storage.enroll("A").store_id
    assert storage.menu(store) is None
    assert storage.put_menu(store, 5, '{"v":5}') == 5
    assert storage.put_menu(store, 4, '{"v":4}') == 5
    assert storage.menu(store) == (5, '{"v":5}')
    assert storage.put_menu(store, 6, '{"v":6}') == 6
    with pytest.raises(UnknownStore):
        storage.put_menu("nosuchstore", 1, "{}")


def test_events_are_stored_once_and_carry_the_token_of_their_order(storage):
    store = storage.enroll("A").store_id
    token = "t" * 32
    storage.put_message(store, "order", "k" * 16, token, "{}", "h", 1.0)
    first = [
        NewEvent("accepted:" + "k" * 16, "k" * 16, "accepted", '{"order":{}}', "at"),
        NewEvent("accepted:lan-order", "lan-order", "accepted", '{"order":{}}', "at"),
    ]
    assert storage.put_events(store, first, now=2.0) == 2
    assert storage.put_events(store, first[:1], now=3.0) == 0  # a retried batch stores nothing twice
    events = storage.events_for_key(store, "k" * 16)
    assert [(e.event_id, e.token, e.type) for e in events] == [("accepted:" + "k" * 16, token, "accepted")]
    assert storage.events_for_key(store, "lan-order")[0].token == ""  # a LAN order: no phone of ours to tell
    later = NewEvent("status:1:ready", "k" * 16, "status", '{"order":{}}', "at")
    storage.put_events(store, [later], now=4.0)
    position = storage.event_position(store, "accepted:" + "k" * 16)
    assert [e.event_id for e in storage.events_for_token(store, token, position)] == ["status:1:ready"]


def test_purge_forgets_old_nonces_and_acknowledged_messages_but_never_unacknowledged_ones(storage):
    store = storage.enroll("A").store_id
    now = 1_000_000.0
    storage.record_nonce(store, "o" * 16, int(now) - 700)
    storage.record_nonce(store, "n" * 16, int(now) - 10)
    for n in range(4):
        storage.put_message(store, "order", f"key{n:013d}", "t" * 32, "{}", "h", now - 10 * 86400)
    storage.put_events(store, [NewEvent("accepted:x", "key0000000000000", "accepted", "{}", "at")], now - 10 * 86400)
    storage.begin_poll(store, 2, now)  # the box applied 1 and 2, not 3 and 4
    counts = storage.purge(now, keep_seconds=3 * 86400)
    assert counts == {"nonces": 1, "inbox": 2, "events": 1}
    assert [m.seq for m in storage.inbox_after(store, 0)] == [3, 4]
    assert not storage.record_nonce(store, "n" * 16, int(now))  # the recent nonce is still remembered


def test_migrations_apply_once_and_reopening_keeps_the_data(database_url):
    first = open_storage(database_url)
    store = first.enroll("A").store_id
    first.put_message(store, "order", "k" * 16, "t" * 32, "{}", "h", 1.0)
    first.close()
    again = open_storage(database_url)
    try:
        assert again.store(store).next_seq == 2
        assert [m.idempotency_key for m in again.inbox_after(store, 0)] == ["k" * 16]
    finally:
        again.close()


def test_a_bad_url_is_refused_with_what_to_write(tmp_path):
    with pytest.raises(StorageError, match="sqlite:/// or postgresql://"):
        open_storage("mysql://relay@localhost/relay")
    with pytest.raises(StorageError, match="sqlite:///PATH"):
        open_storage("sqlite://relay.db")
    with pytest.raises(StorageError, match="cannot connect") as caught:
        open_storage("postgresql://relay:hunter2@127.0.0.1:1/relay")
    assert "hunter2" not in str(caught.value)
