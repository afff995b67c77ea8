"""write_transaction: a process beside the web server reads, then writes, and is never refused at once."""

from __future__ import annotations

import threading
import time

import apsw
import pytest

from appliance.db.connection import open_connection, write_transaction


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "store.db"
    conn = open_connection(path)
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    conn.execute("INSERT INTO t (v) VALUES ('a')")
    conn.close()
    return path


def test_a_deferred_savepoint_is_refused_when_another_process_wrote_between_its_read_and_its_write(db):
    """What write_transaction is for: `with conn:` pins a snapshot at its first read, and SQLite refuses the
    upgrade at once, busy timeout or not, when someone else committed in between."""
    mine, other = open_connection(db), open_connection(db)
    with pytest.raises(apsw.BusyError):
        with mine:
            assert mine.execute("SELECT count(*) FROM t").fetchone()[0] == 1
            with other:
                other.execute("INSERT INTO t (v) VALUES ('b')")
            mine.execute("INSERT INTO t (v) VALUES ('c')")
    assert [v for (v,) in mine.execute("SELECT v FROM t ORDER BY id")] == ["a", "b"]


def test_write_transaction_waits_for_the_other_writer_and_then_reads_what_it_wrote(db):
    mine, other = open_connection(db), open_connection(db)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (v) VALUES ('b')")
    released = threading.Event()

    def release():
        time.sleep(0.3)
        other.execute("COMMIT")
        released.set()

    threading.Thread(target=release).start()
    with write_transaction(mine):
        assert released.is_set()  # BEGIN IMMEDIATE waited for the lock (the busy timeout), it was not refused
        seen = mine.execute("SELECT count(*) FROM t").fetchone()[0]
        mine.execute("INSERT INTO t (v) VALUES (?)", (f"after {seen}",))
    assert [v for (v,) in other.execute("SELECT v FROM t ORDER BY id")] == ["a", "b", "after 2"]


def test_write_transaction_rolls_back_on_an_error_and_nests_as_a_savepoint(db):
    conn = open_connection(db)
    with pytest.raises(RuntimeError):
        with write_transaction(conn):
            conn.execute("INSERT INTO t (v) VALUES ('lost')")
            raise RuntimeError("boom")
    assert not conn.in_transaction
    with write_transaction(conn):
        conn.execute("INSERT INTO t (v) VALUES ('outer')")
        with pytest.raises(RuntimeError):
            with write_transaction(conn):
                conn.execute("INSERT INTO t (v) VALUES ('inner')")
                raise RuntimeError("inner only")
    assert [v for (v,) in conn.execute("SELECT v FROM t ORDER BY id")] == ["a", "outer"]
