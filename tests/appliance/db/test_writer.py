"""The group-commit writer: shared transactions, one failing write never spoils the others, and a failed
commit acknowledges nothing."""

from __future__ import annotations

import threading

import apsw
import pytest

from appliance.db.connection import open_connection
from appliance.db.writer import Writer, WriterClosed
from tests.faults import FaultyVFS


def _setup(path):
    conn = open_connection(path)
    conn.execute("CREATE TABLE t (v INTEGER UNIQUE)")
    conn.close()


def insert(conn, value):
    conn.execute("INSERT INTO t (v) VALUES (?)", (value,))
    return value


def test_queued_writes_share_commits_and_each_result_comes_back(tmp_path):
    path = tmp_path / "w.db"
    _setup(path)
    writer = Writer(path)
    gate = threading.Event()
    blocker = writer.submit(lambda conn: gate.wait(5))  # holds the writer while 200 writes queue up
    futures = [writer.submit(insert, i) for i in range(200)]
    gate.set()
    assert blocker.result(5) is True
    assert [f.result(5) for f in futures] == list(range(200))
    assert writer.batches <= 3  # the blocker's batch, then one or two batches for all 200
    writer.close()
    conn = open_connection(path)
    assert conn.execute("SELECT count(*) FROM t").fetchone()[0] == 200


def test_a_failing_write_rolls_back_only_itself(tmp_path):
    path = tmp_path / "w.db"
    _setup(path)
    writer = Writer(path)
    gate = threading.Event()
    writer.submit(lambda conn: gate.wait(5))

    def half_then_fail(conn):
        conn.execute("INSERT INTO t (v) VALUES (1000)")
        insert(conn, 1)  # duplicate of the first write below: UNIQUE fails

    first = writer.submit(insert, 1)
    bad = writer.submit(half_then_fail)
    last = writer.submit(insert, 2)
    gate.set()
    assert first.result(5) == 1 and last.result(5) == 2
    with pytest.raises(apsw.ConstraintError):
        bad.result(5)
    writer.close()
    conn = open_connection(path)
    assert [v for (v,) in conn.execute("SELECT v FROM t ORDER BY v")] == [1, 2]  # not 1000


def test_a_failed_commit_acknowledges_nothing_of_its_batch(tmp_path):
    vfs = FaultyVFS("faulty-writer")
    path = tmp_path / "w.db"
    _setup(path)
    writer = Writer(path, vfs=vfs.name)
    assert writer.call(insert, 1) == 1
    gate = threading.Event()
    writer.submit(lambda conn: gate.wait(5))
    vfs.fail_sync = True
    doomed = [writer.submit(insert, i) for i in range(10, 15)]
    gate.set()
    for future in doomed:
        with pytest.raises(apsw.Error):
            future.result(5)
    vfs.fail_sync = False
    assert writer.call(insert, 20) == 20  # the writer recovers once the disk does
    writer.close()
    conn = open_connection(path)
    assert [v for (v,) in conn.execute("SELECT v FROM t ORDER BY v")] == [1, 20]
    vfs.unregister()


def test_close_finishes_queued_writes_then_refuses_more(tmp_path):
    path = tmp_path / "w.db"
    _setup(path)
    writer = Writer(path)
    futures = [writer.submit(insert, i) for i in range(50)]
    writer.close()
    assert all(f.done() and f.result() == i for i, f in enumerate(futures))
    with pytest.raises(WriterClosed):
        writer.submit(insert, 99)
