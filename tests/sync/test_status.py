"""Where each sync target stands, as the console shows it: ok, retrying since when, failing with the reason, idle."""

from __future__ import annotations

import pytest

from appliance.db.connection import write_transaction
from appliance.db.sync_state import NEEDS_A_PERSON, SyncState, retry_now, sync_status, target_status
from appliance.domain.errors import DomainError


def outbox_row(
    db,
    target,
    key,
    *,
    created="2026-11-21T11:00:00.000000Z",
    attempts=0,
    delivered=None,
    parked=None,
    error=None,
    next_attempt=None,
):
    db.execute(
        "INSERT INTO outbox (target, kind, idempotency_key, payload, attempts, next_attempt_at, delivered_at,"
        " parked_at, last_error, created_at) VALUES (?, 'order.submitted', ?, '{}', ?, ?, ?, ?, ?, ?)",
        (target, key, attempts, next_attempt, delivered, parked, error, created),
    )


@pytest.fixture
def targets(db):
    with write_transaction(db):
        for name, kind, enabled in [("erp", "erp", 1), ("relay", "relay", 1), ("spare", "erp", 1), ("old", "erp", 0)]:
            db.execute("INSERT INTO sync_targets (name, kind, enabled) VALUES (?, ?, ?)", (name, kind, enabled))
        outbox_row(db, "erp", "a", delivered="2026-11-21T11:00:01.000000Z", attempts=1)
        outbox_row(db, "erp", "b", delivered="2026-11-21T11:05:00.000000Z", attempts=1)
        outbox_row(
            db,
            "erp",
            "c",
            created="2026-11-21T11:10:00.000000Z",
            attempts=3,
            error="HTTP 502 bad gateway",
            next_attempt="2026-11-21T12:40:00.000000Z",
        )
        outbox_row(db, "erp", "d", created="2026-11-21T11:20:00.000000Z")
        outbox_row(db, "relay", "a", delivered="2026-11-21T12:00:00.000000Z", attempts=1)
        outbox_row(db, "relay", "b", created="2026-11-21T12:29:00.000000Z", next_attempt="2026-11-21T12:31:00.000000Z")
    return db


def test_each_target_gets_its_state_backlog_and_last_success(targets):
    status = {t.name: t for t in sync_status(targets)}
    erp = status["erp"]
    assert (erp.state, erp.backlog, erp.parked) == (SyncState.RETRYING, 2, 0)
    assert (erp.since, erp.last_error) == ("2026-11-21T11:10:00.000000Z", "HTTP 502 bad gateway")
    assert (erp.last_success, erp.oldest_waiting) == ("2026-11-21T11:05:00.000000Z", "2026-11-21T11:10:00.000000Z")
    relay = status["relay"]
    assert (relay.state, relay.backlog, relay.last_success, relay.last_error) == (
        SyncState.OK,
        1,
        "2026-11-21T12:00:00.000000Z",
        None,
    )
    assert status["spare"].state == SyncState.IDLE and status["spare"].backlog == 0
    assert (status["old"].state, status["old"].enabled) == (SyncState.IDLE, False)
    assert [t.name for t in sync_status(targets)] == ["erp", "old", "relay", "spare"]


def test_parked_rows_make_a_target_fail_until_someone_retries(targets):
    with targets:
        outbox_row(
            targets,
            "erp",
            "e",
            created="2026-11-21T11:30:00.000000Z",
            attempts=8,
            parked="2026-11-21T12:00:00.000000Z",
            error="HTTP 422 unknown product har_gow",
        )
    erp = target_status(targets, "erp")
    assert (erp.state, erp.backlog, erp.parked) == (SyncState.FAILING, 2, 1)
    assert (erp.since, erp.last_error) == ("2026-11-21T12:00:00.000000Z", "HTTP 422 unknown product har_gow")
    assert erp.state in NEEDS_A_PERSON
    with targets:
        assert retry_now(targets, "erp") == {"unparked": 1, "hurried": 1}
    rows = targets.execute(
        "SELECT idempotency_key, parked_at, next_attempt_at, attempts FROM outbox"
        " WHERE target = 'erp' AND delivered_at IS NULL ORDER BY id"
    ).fetchall()
    assert rows == [("c", None, None, 3), ("d", None, None, 0), ("e", None, None, 8)]
    after = target_status(targets, "erp")
    assert (after.state, after.backlog, after.parked) == (SyncState.RETRYING, 3, 0)
    relay = targets.execute("SELECT next_attempt_at FROM outbox WHERE target = 'relay' ORDER BY id").fetchall()
    assert relay == [(None,), ("2026-11-21T12:31:00.000000Z",)]  # another target's rows are untouched


def test_unknown_targets_are_refused(targets):
    with pytest.raises(DomainError) as refused:
        retry_now(targets, "nowhere")
    assert refused.value.code == "unknown_target"
    assert sync_status(targets)[0].name == "erp"


def test_no_targets_no_rows(db):
    assert sync_status(db) == []
