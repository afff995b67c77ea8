"""The retention policy (issue 14 item 12): `tablebox prune` deletes delivered sync rows, status events and
printed tickets older than retention_days and gives the space back. If these failed, a row the ERP has not got
or a ticket the kitchen has not had could be deleted (an acknowledged order lost), the books would lose a
cancellation's reason, an id could come back and confuse the live event streams, or the SD card would fill up
over the years anyway."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import apsw
import pytest

from appliance.cli import main
from appliance.db import retention
from appliance.db.connection import open_connection, write_transaction
from appliance.db.migrate import migrate
from appliance.db.orders import MenuCache, OrderRequest, advance_order, change_status, order_view, submit_order
from appliance.db.outbox import mark_delivered, park
from appliance.db.printing import fail_job, mark_printed
from appliance.db.sync_targets import TargetRow, register_targets
from appliance.db.tables import list_tables
from appliance.domain.orders import Actor, Channel, OrderStatus
from appliance.domain.pricing import CartLine
from tests.appliance.web.conftest import item_id

OLD = "2020-01-01T00:00:00.000000Z"  # far older than any retention


@pytest.fixture
def conn(settings):
    c = open_connection(settings.db_path)
    register_targets(c, [TargetRow("erp", "rest", True, {})])
    try:
        yield c
    finally:
        c.close()


def order(conn: apsw.Connection, table: str = "A1") -> int:
    target = next(t for t in list_tables(conn) if t.name == table)
    request = OrderRequest(
        client_key=uuid.uuid4().hex,
        lines=(CartLine(item_id=item_id(conn, "har_gow"), quantity=2),),
        note="",
        diners=None,
        expected_total_minor=None,
        lang="en",
        channel=Channel.LAN,
    )
    with write_transaction(conn):
        return int(submit_order(conn, target, request, MenuCache()).order["id"])


def ids(conn: apsw.Connection, sql: str, params: tuple = ()) -> list[int]:
    return [int(i) for (i,) in conn.execute(sql, params)]


def age(conn: apsw.Connection, order_id: int) -> None:
    """Make everything of an order look long past (as if taken years ago)."""
    with write_transaction(conn):
        conn.execute(
            "UPDATE outbox SET created_at = ?, delivered_at = CASE WHEN delivered_at IS NULL THEN NULL ELSE ? END"
            " WHERE coalesce(json_extract(payload, '$.order_id'), json_extract(payload, '$.id')) = ?",
            (OLD, OLD, order_id),
        )
        conn.execute(
            "UPDATE print_jobs SET created_at = ?, printed_at = CASE WHEN printed_at IS NULL THEN NULL ELSE ? END"
            " WHERE order_id = ?",
            (OLD, OLD, order_id),
        )
        conn.execute("UPDATE order_events SET at = ? WHERE order_id = ?", (OLD, order_id))


def deliver_all(conn: apsw.Connection, order_id: int) -> None:
    with write_transaction(conn):
        for row_id in outbox_of(conn, order_id):
            mark_delivered(conn, row_id, OLD)
    for job in jobs_of(conn, order_id):
        mark_printed(conn, job)


def outbox_of(conn: apsw.Connection, order_id: int) -> list[int]:
    return ids(
        conn,
        "SELECT id FROM outbox WHERE coalesce(json_extract(payload, '$.order_id'), json_extract(payload, '$.id')) = ? ORDER BY id",
        (order_id,),
    )


def jobs_of(conn: apsw.Connection, order_id: int) -> list[int]:
    return ids(conn, "SELECT id FROM print_jobs WHERE order_id = ? ORDER BY id", (order_id,))


def books(conn: apsw.Connection) -> tuple:
    """What the restaurant's books are made of, row for row."""
    return tuple(
        conn.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()
        for table in ("orders", "order_lines", "payments", "table_sessions")
    )


def test_outbox_rows_and_print_jobs_carry_the_order_id_the_test_follows(conn):
    first = order(conn)
    assert outbox_of(conn, first) and jobs_of(conn, first)  # else the tests below would prove nothing


def test_prune_deletes_only_what_was_delivered_or_printed_long_ago_and_keeps_the_books(conn):
    done = order(conn)  # delivered, printed, served: all of it may go
    for _ in range(4):
        with write_transaction(conn):
            advance_order(conn, done)
    deliver_all(conn, done)
    waiting = order(conn)  # the ERP has not got it, the kitchen has not had its ticket: nothing may go
    parked = order(conn, "A2")  # the ERP refused it (parked), the printer could not draw it (failed)
    with write_transaction(conn):
        park(conn, outbox_of(conn, parked)[0], "HTTP 422", OLD)
    fail_job(conn, jobs_of(conn, parked)[0], "cannot draw")
    cancelled = order(conn, "T1")  # cancelled with a reason: the reason stays for the day's report
    with write_transaction(conn):
        change_status(conn, cancelled, OrderStatus.CANCELLED, Actor.STAFF, "客人取消 guest cancelled")
    deliver_all(conn, cancelled)
    for old in (done, waiting, parked, cancelled):
        age(conn, old)
    recent = order(conn)  # delivered and printed today: younger than the retention, kept
    deliver_all(conn, recent)

    kept_outbox = outbox_of(conn, waiting) + outbox_of(conn, parked) + outbox_of(conn, recent)
    kept_jobs = jobs_of(conn, waiting) + jobs_of(conn, parked) + jobs_of(conn, recent)
    cancel_event = ids(conn, "SELECT id FROM order_events WHERE to_status = 'cancelled'")
    recent_events = ids(conn, "SELECT id FROM order_events WHERE order_id = ?", (recent,))
    gone_outbox = outbox_of(conn, done) + outbox_of(conn, cancelled)
    gone_jobs = jobs_of(conn, done) + jobs_of(conn, cancelled)
    gone_events = len(ids(conn, "SELECT id FROM order_events")) - len(cancel_event) - len(recent_events)
    before = books(conn)
    cutoff = retention.cutoff_for(datetime.now(UTC), 90)
    expected = {"outbox": len(gone_outbox), "order_events": gone_events, "print_jobs": len(gone_jobs)}
    assert retention.prunable(conn, cutoff) == expected

    pruned = retention.prune(conn, cutoff)

    assert {"outbox": pruned.outbox, "order_events": pruned.order_events, "print_jobs": pruned.print_jobs} == expected
    assert len(gone_outbox) >= 2 and len(gone_jobs) >= 2 and gone_events >= 5
    assert ids(conn, "SELECT id FROM outbox ORDER BY id") == sorted(kept_outbox)
    assert ids(conn, "SELECT id FROM print_jobs ORDER BY id") == sorted(kept_jobs)
    assert ids(conn, "SELECT id FROM order_events ORDER BY id") == sorted(cancel_event + recent_events)
    assert books(conn) == before  # orders, lines, payments, visits: not a byte changed
    assert order_view(conn, cancelled)["cancel_reason"] == "客人取消 guest cancelled"
    assert retention.prune(conn, cutoff).rows == 0  # a second run finds nothing more


def test_rows_not_delivered_or_not_printed_are_kept_however_old(conn):
    """Nothing acknowledged may be lost: an order's 201 promised its ticket and its delivery to the ERP."""
    waiting = [order(conn, table) for table in ("A1", "A2", "T1")]
    for o in waiting:
        age(conn, o)
    order(conn)  # a newer one, so the old ones are not the newest rows
    outbox, jobs = ids(conn, "SELECT id FROM outbox ORDER BY id"), ids(conn, "SELECT id FROM print_jobs ORDER BY id")
    with write_transaction(conn):  # claimed by a worker and retried: still not delivered
        conn.execute("UPDATE outbox SET attempts = 7, claimed_by = 'w1', claimed_at = ?", (OLD,))
        conn.execute("UPDATE print_jobs SET state = 'sending', attempts = 3 WHERE id = ?", (jobs[0],))
    pruned = retention.prune(conn, retention.cutoff_for(datetime.now(UTC) + timedelta(days=3650), 1))
    assert (pruned.outbox, pruned.print_jobs) == (0, 0)
    assert (ids(conn, "SELECT id FROM outbox ORDER BY id"), ids(conn, "SELECT id FROM print_jobs ORDER BY id")) == (
        outbox,
        jobs,
    )


def test_the_newest_row_of_each_table_stays_so_an_id_never_comes_back(conn):
    only = order(conn)
    deliver_all(conn, only)
    age(conn, only)
    newest = {t: ids(conn, f"SELECT max(id) FROM {t}")[0] for t in ("outbox", "print_jobs", "order_events")}
    retention.prune(conn, retention.cutoff_for(datetime.now(UTC), 1))
    assert {t: ids(conn, f"SELECT id FROM {t}") for t in newest} == {t: [i] for t, i in newest.items()}
    nxt = order(conn)
    assert min(outbox_of(conn, nxt)) > newest["outbox"] and min(jobs_of(conn, nxt)) > newest["print_jobs"]


def test_prune_writes_in_small_batches_while_orders_keep_coming(conn):
    old = [order(conn, ("A1", "A2", "T1")[n % 3]) for n in range(9)]
    for o in old:
        deliver_all(conn, o)
        age(conn, o)
    arrived: list[int] = []
    pruned = retention.prune(
        conn, retention.cutoff_for(datetime.now(UTC), 30), batch=2, between=lambda: arrived.append(order(conn))
    )
    # 9 outbox rows: 5 batches (2+2+2+2+1); 9 tickets: 5; events: one per order, 5: 15 batches, an order in each
    assert (pruned.outbox, pruned.print_jobs, pruned.order_events) == (9, 9, 9)
    assert len(arrived) == 15
    assert ids(
        conn,
        "SELECT DISTINCT coalesce(json_extract(payload, '$.order_id'), json_extract(payload, '$.id')) FROM outbox ORDER BY 1",
    ) == sorted(arrived)


def big_old_store(conn: apsw.Connection, orders: int) -> None:
    for n in range(orders):
        o = order(conn, ("A1", "A2", "T1")[n % 3])
        deliver_all(conn, o)
    with write_transaction(conn):  # an ERP payload of a few KB, as a real order's is with many lines
        conn.execute("UPDATE outbox SET payload = json_set(payload, '$.pad', hex(randomblob(2000)))")
        conn.execute("UPDATE outbox SET created_at = ?, delivered_at = ?", (OLD, OLD))
        conn.execute("UPDATE print_jobs SET printed_at = ?", (OLD,))
        conn.execute("UPDATE order_events SET at = ?", (OLD,))
    order(conn)  # today's


def test_a_new_store_uses_incremental_vacuum_and_prune_gives_the_space_back(settings, conn):
    assert retention.auto_vacuum(conn) == retention.INCREMENTAL  # migration 0009 on a new store
    big_old_store(conn, 300)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = settings.db_path.stat().st_size
    retention.prune(conn, retention.cutoff_for(datetime.now(UTC), 90))
    given = retention.give_back_space(conn, step_pages=64)
    after = settings.db_path.stat().st_size
    assert given.free_pages_left == 0 and after == given.bytes_after
    assert after < before - 300 * 4000  # the payloads (4 KB of hex each) went back to the file system
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]


def test_an_older_store_is_switched_by_the_nightly_prune_when_too_big_for_the_migration(settings, monkeypatch, capsys):
    conn = open_connection(settings.db_path)
    register_targets(conn, [TargetRow("erp", "rest", True, {})])
    big_old_store(conn, 60)
    # as a store made before 0009: auto_vacuum NONE, 0009 not applied
    conn.execute("PRAGMA auto_vacuum = NONE")
    conn.execute("VACUUM")
    with write_transaction(conn):
        conn.execute("DELETE FROM schema_migrations WHERE version = 9")
    assert retention.auto_vacuum(conn) == 0
    before = books(conn)
    monkeypatch.setattr(retention, "SMALL_STORE_BYTES", 4096)  # "too big" to rewrite while a server starts
    assert migrate(conn) == [9]
    assert retention.auto_vacuum(conn) == 0  # left for the night
    conn.close()

    monkeypatch.setattr("appliance.cli.maintenance.free_bytes", lambda path: 10 * 1024 * 1024)  # no room
    assert main(["prune", "--data-dir", str(settings.data_dir)]) == 0
    out = capsys.readouterr()
    assert "pruned what is older than 90 days: 60 delivered sync rows" in out.out
    assert "not switched to incremental vacuum yet (migration 0009): the one-time rewrite needs" in out.err
    monkeypatch.undo()

    size_before = settings.db_path.stat().st_size
    assert main(["prune", "--data-dir", str(settings.data_dir)]) == 0
    out = capsys.readouterr().out
    assert "switched the store to incremental vacuum (one VACUUM" in out
    conn = open_connection(settings.db_path)
    try:
        assert retention.auto_vacuum(conn) == retention.INCREMENTAL
        assert books(conn) == before  # the rewrite changed no row of the books
        assert settings.db_path.stat().st_size < size_before
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    finally:
        conn.close()


def test_prune_command_dry_run_and_days(settings, conn, capsys):
    o = order(conn)
    deliver_all(conn, o)
    with write_transaction(conn):
        ten_days = (datetime.now(UTC) - timedelta(days=10)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        conn.execute("UPDATE outbox SET delivered_at = ?", (ten_days,))
        conn.execute("UPDATE print_jobs SET printed_at = ?", (ten_days,))
        conn.execute("UPDATE order_events SET at = ?", (ten_days,))
    order(conn)
    data = ["--data-dir", str(settings.data_dir)]
    assert main(["prune", *data, "--dry-run"]) == 0  # 90 days by default: nothing that old
    assert "would go: 0 from outbox, 0 from order_events, 0 from print_jobs" in capsys.readouterr().out
    assert main(["prune", *data, "--days", "7", "--dry-run"]) == 0
    assert "would go: 1 from outbox, 1 from order_events, 1 from print_jobs" in capsys.readouterr().out
    assert ids(conn, "SELECT count(*) FROM outbox") == [2]  # a dry run deletes nothing
    assert main(["prune", *data, "--days", "7"]) == 0
    assert "1 delivered sync row, 1 status event, 1 printed ticket" in capsys.readouterr().out
    assert main(["prune", *data, "--days", "0"]) == 2
