"""Several relay processes on one PostgreSQL wake each other with LISTEN/NOTIFY: a message posted to one process
reaches a box long-polling on another, and a box's event reaches a phone's stream on another, within 100 ms
(real `tablebox relay serve` processes whose database re-check is 25 s, so only a notification can be that
quick). A notification goes out at its write's commit, never after a rollback; the listener reconnects after
its connection is killed and re-reads the database then, so nothing written meanwhile waits. SQLite has no
listener: one process, woken in-process."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import psycopg
import pytest

from sync.relay.storage import LISTENER_NAME, NewEvent, open_storage
from tests.edge import free_port, wait_until_healthy
from tests.relay.conftest import Box, Phone, accepted, wait_until
from tests.relay.postgres import PostgresCluster

DELIVERY_BOUND = 0.1  # the bound: a message posted to one process reaches a box on another within 100 ms


def key() -> str:
    return uuid.uuid4().hex


@pytest.fixture
def pg_url(postgres_cluster: PostgresCluster) -> str:
    return postgres_cluster.create_database()


def listener_pids(cluster: PostgresCluster, database_url: str) -> list[int]:
    dbname = database_url.rsplit("/", 1)[1]
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND application_name = %s ORDER BY pid",
            (dbname, LISTENER_NAME),
        ).fetchall()
    return [row[0] for row in rows]


def admin(cluster: PostgresCluster, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        cur = conn.execute(sql, params)
        return cur.fetchall() if cur.description else []


# -- the storage: notifications and the listener (PostgreSQL) --------------------------------------------------------
class Heard:
    """A listener's callbacks, queued; `on_change` also reads the inbox at that moment (from the listener's thread)."""

    def __init__(self, storage: Any) -> None:
        self.storage = storage
        self.changes: queue.Queue[tuple[str, str, list[int]]] = queue.Queue()
        self.states: queue.Queue[tuple[bool, str | None]] = queue.Queue()

    def on_change(self, kind: str, store_id: str) -> None:
        seqs = [m.seq for m in self.storage.inbox_after(store_id, 0)] if kind == "inbox" else []
        self.changes.put((kind, store_id, seqs))

    def on_state(self, listening: bool, why: str | None) -> None:
        self.states.put((listening, why))

    def nothing_more(self, seconds: float = 0.3) -> bool:
        try:
            got = self.changes.get(timeout=seconds)
        except queue.Empty:
            return True
        raise AssertionError(f"unexpected notification {got}")


@pytest.fixture
def heard(pg_url: str) -> Iterator[tuple[Any, Heard, Any]]:
    storage = open_storage(pg_url)
    heard = Heard(storage)
    listener = storage.listen(heard.on_change, heard.on_state)
    try:
        assert heard.states.get(timeout=10) == (True, None)
        yield storage, heard, listener
    finally:
        listener.stop()
        storage.close()


def test_a_write_notifies_at_its_commit_and_a_rolled_back_one_notifies_no_one(heard):
    storage, heard, listener = heard
    store = storage.enroll("one").store_id
    assert heard.nothing_more()  # enrolling wakes no one

    storage.put_message(store, "order", "k" * 16, "t" * 32, "{}", "h", 1.0)
    # the message is already visible to another connection when its notification arrives
    assert heard.changes.get(timeout=5) == ("inbox", store, [1])
    storage.put_message(store, "order", "k" * 16, "t" * 32, "{}", "h", 2.0)  # the same key: nothing written
    assert heard.nothing_more()

    assert storage.put_events(store, [NewEvent("accepted:k", "k" * 16, "accepted", "{}", "at")], 3.0) == 1
    assert heard.changes.get(timeout=5) == ("events", store, [])
    assert storage.put_events(store, [NewEvent("accepted:k", "k" * 16, "accepted", "{}", "at")], 4.0) == 0
    assert heard.nothing_more()

    with pytest.raises(RuntimeError), storage._tx(write=True) as tx:
        storage._changed(tx, "inbox", store)
        raise RuntimeError("rolled back after the notification was asked for")
    assert heard.nothing_more()
    assert listener.connects == 1


def test_the_listener_reconnects_after_its_connection_is_killed_and_hears_what_follows(heard, postgres_cluster):
    storage, heard, listener = heard
    store = storage.enroll("one").store_id
    first = listener.backend_pid
    assert admin(postgres_cluster, "SELECT pg_terminate_backend(%s)", first) == [(True,)]
    listening, why = heard.states.get(timeout=5)
    assert listening is False and "terminat" in why  # "terminating connection due to administrator command"
    assert heard.states.get(timeout=10) == (True, None)
    assert listener.connects == 2 and listener.backend_pid not in (None, first)
    storage.put_message(store, "order", "a" * 16, "t" * 32, "{}", "h", 1.0)
    assert heard.changes.get(timeout=5) == ("inbox", store, [1])


def test_a_poll_start_acknowledges_marks_the_store_polling_and_moves_the_counter_past_a_box_ahead(storage):
    """begin_poll (one statement on PostgreSQL, a transaction on SQLite): the same on both."""
    store = storage.enroll("one").store_id
    for n in range(3):
        storage.put_message(store, "order", f"key{n:013d}", "t" * 32, "{}", "h", 1.0)
    assert [m.seq for m in storage.begin_poll(store, 1, now=5.0, limit=1)] == [2]
    row = storage.store(store)
    assert (row.acked_seq, row.polling, row.last_poll_at, row.next_seq) == (1, False, 5.0, 4)  # messages: no wait
    assert storage.begin_poll(store, 3, now=6.0) == []
    row = storage.store(store)
    assert (row.acked_seq, row.polling, row.last_poll_at) == (3, True, 6.0)  # nothing: it waits, online meanwhile
    storage.end_poll(store, now=7.0)
    assert not storage.store(store).polling
    # an older `after` gets the message again and takes back no acknowledgement
    assert [m.seq for m in storage.begin_poll(store, 2, now=8.0, wait=False)] == [3]
    assert (storage.store(store).acked_seq, storage.store(store).polling) == (3, False)
    # a box ahead of the relay's counter (the relay's database restored from an older copy)
    assert storage.begin_poll(store, 10, now=9.0) == []
    assert (storage.store(store).acked_seq, storage.store(store).next_seq) == (10, 11)
    message, _ = storage.put_message(store, "order", "k" * 16, "t" * 32, "{}", "h", 10.0)
    assert message.seq == 11


def test_sqlite_has_no_listener(tmp_path):
    storage = open_storage(f"sqlite:///{tmp_path / 'relay.db'}")
    try:
        assert storage.listen(lambda kind, store: None, lambda up, why: None) is None
    finally:
        storage.close()


# -- two real relay processes on one database ------------------------------------------------------------------------
class RelayProcess:
    """`tablebox relay serve` on 127.0.0.1 with JSON logs to a file; its database re-check every 25 s, so only a
    notification (or the listener's own re-read) delivers sooner."""

    def __init__(self, database_url: str, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log
        env = {
            **os.environ,
            "TABLEBOX_RELAY_LOG_FORMAT": "json",
            "TABLEBOX_RELAY_RECHECK_SECONDS": "25",
            "TABLEBOX_RELAY_RATE_LIMIT_ADDRESS_PER_MINUTE": "0",
            "TABLEBOX_RELAY_RATE_LIMIT_ADDRESS_ORDERS_PER_MINUTE": "0",
            "TABLEBOX_RELAY_RATE_LIMIT_STORE_PER_MINUTE": "0",
            "TABLEBOX_RELAY_RATE_LIMIT_TOKEN_PER_MINUTE": "0",
        }
        argv = ["relay", "serve", "--database-url", database_url, "--host", "127.0.0.1", "--port", str(self.port)]
        with log.open("ab") as out:
            self.proc = subprocess.Popen([sys.executable, "-m", "appliance", *argv], env=env, stdout=out, stderr=out)
        wait_until_healthy(self.url, self.proc, self.stop, log.read_text, "relay")

    def events(self) -> list[str]:
        found = []
        for line in self.log_path.read_text().splitlines():
            try:
                found.append(msgspec.json.decode(line).get("event", ""))
            except msgspec.DecodeError:
                pass
        return found

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture
def two_relays(pg_url: str, postgres_cluster: PostgresCluster, tmp_path: Path) -> Iterator[Any]:
    started: list[RelayProcess] = []
    try:
        for name in ("a", "b"):
            started.append(RelayProcess(pg_url, tmp_path / f"relay-{name}.log"))
        wait_until(lambda: len(listener_pids(postgres_cluster, pg_url)) == 2, what="both relays listening")
        yield started
    finally:
        for relay in started:
            relay.stop()


@pytest.fixture
def store(pg_url: str) -> tuple[str, str]:
    storage = open_storage(pg_url, pool_size=1)
    try:
        enrolled = storage.enroll("小笼天下")
    finally:
        storage.close()
    return enrolled.store_id, enrolled.secret


def waiting_poll(box: Box, pg_url: str, after: int = 0) -> tuple[threading.Thread, dict[str, Any]]:
    """The box's long-poll (20 s) on its own thread, started and waiting (the store row says polling)."""
    out: dict[str, Any] = {}

    def run() -> None:
        out["answer"] = box.poll(after, 20)
        out["at"] = time.monotonic()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    storage = open_storage(pg_url, pool_size=1)
    try:
        wait_until(lambda: storage.store(box.store_id).polling, what="the poll to wait")
    finally:
        storage.close()
    return thread, out


@pytest.mark.slow
def test_a_message_posted_to_one_relay_process_reaches_a_box_long_polling_on_the_other_within_100_ms(
    two_relays, store, pg_url
):
    a, b = two_relays
    for box_side, phone_side in ((b, a), (a, b)):
        box = Box(box_side.url, *store, clock=time.time)
        phone = Phone(phone_side.url, store[0])
        try:
            after = max([m["seq"] for m in box.poll(0, 0).json()["messages"]], default=0)
            thread, out = waiting_poll(box, pg_url, after)
            client_key = key()
            assert phone.order(client_key).status_code == 202
            posted = time.monotonic()
            thread.join(30)
            assert [m["client_key"] for m in out["answer"].json()["messages"]] == [client_key]
            assert out["at"] - posted < DELIVERY_BOUND, f"{out['at'] - posted:.3f} s from the 202 to the box"
        finally:
            box.close()
            phone.close()


@pytest.mark.slow
def test_an_event_posted_to_one_relay_process_reaches_a_phone_stream_on_the_other_within_100_ms(
    two_relays, store, pg_url
):
    a, b = two_relays
    box = Box(b.url, *store, clock=time.time)
    phone = Phone(a.url, store[0])
    got: queue.Queue[tuple[float, str, dict[str, Any]]] = queue.Queue()

    def stream() -> None:
        with httpx.Client(base_url=a.url, timeout=30) as client, client.stream("GET", phone.prefix + "/events") as r:
            name = ""
            for line in r.iter_lines():
                if line.startswith("event: "):
                    name = line[len("event: ") :]
                elif line.startswith("data: "):
                    got.put((time.monotonic(), name, msgspec.json.decode(line[len("data: ") :])))
                    if name == "order":
                        return

    try:
        assert box.poll(0, 0).status_code == 200
        client_key = key()
        assert phone.order(client_key).status_code == 202
        assert [m["client_key"] for m in box.poll(0, 5).json()["messages"]] == [client_key]
        reader = threading.Thread(target=stream, daemon=True)
        reader.start()
        _, name, snapshot = got.get(timeout=10)
        assert name == "snapshot" and snapshot["pending"] == [client_key]
        answer = box.post_events(accepted(client_key))
        posted = time.monotonic()
        assert answer.status_code == 200 and answer.json()["new"] == 1
        at, name, event = got.get(timeout=20)
        reader.join(5)
        assert (name, event["type"], event["client_key"]) == ("order", "accepted", client_key)
        assert at - posted < DELIVERY_BOUND, f"{at - posted:.3f} s from the box's 200 to the phone"
    finally:
        box.close()
        phone.close()


@pytest.mark.slow
def test_a_relay_whose_listener_was_cut_off_delivers_what_was_posted_meanwhile_once_it_reconnects(
    two_relays, store, pg_url, postgres_cluster
):
    """Both listeners are killed while the database refuses new connections (the pools keep theirs): an order
    posted meanwhile cannot wake anyone and the 25 s re-check is far off; once connections are allowed again the
    listener is back, re-reads, and the waiting box gets the order; later orders are woken at once again."""
    a, b = two_relays
    dbname = pg_url.rsplit("/", 1)[1]
    box = Box(b.url, *store, clock=time.time)
    phone = Phone(a.url, store[0])
    try:
        assert box.poll(0, 0).status_code == 200
        assert phone.order(key()).status_code == 202  # the pools of both processes hold connections now
        after = box.poll(0, 0).json()["messages"][-1]["seq"]
        thread, out = waiting_poll(box, pg_url, after)
        before = listener_pids(postgres_cluster, pg_url)
        admin(postgres_cluster, f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS false")
        try:
            for pid in before:
                admin(postgres_cluster, "SELECT pg_terminate_backend(%s)", pid)
            wait_until(lambda: "relay.listener_lost" in b.events(), what="relay b to notice")
            time.sleep(0.5)  # its waiters' one re-read on noticing is over
            client_key = key()
            assert phone.order(client_key).status_code == 202
            time.sleep(0.5)  # the listener retries meanwhile and is refused
            assert thread.is_alive(), f"answered while nobody listened: {out['answer'].text}"
        finally:
            admin(postgres_cluster, f"ALTER DATABASE {dbname} ALLOW_CONNECTIONS true")
        allowed = time.monotonic()
        thread.join(30)
        assert [m["client_key"] for m in out["answer"].json()["messages"]] == [client_key]
        assert out["at"] - allowed < 10  # the listener's retry (at most 5 s apart) and its re-read, not the 25 s
        after = out["answer"].json()["messages"][-1]["seq"]
        wait_until(lambda: len(listener_pids(postgres_cluster, pg_url)) == 2, what="both listeners back")
        assert set(listener_pids(postgres_cluster, pg_url)).isdisjoint(before)
        assert b.events().count("relay.listening") == 2 and b.events().count("relay.listener_lost") == 1

        thread, out = waiting_poll(box, pg_url, after)
        client_key = key()
        assert phone.order(client_key).status_code == 202
        posted = time.monotonic()
        thread.join(30)
        assert [m["client_key"] for m in out["answer"].json()["messages"]] == [client_key]
        assert out["at"] - posted < DELIVERY_BOUND
    finally:
        box.close()
        phone.close()
