"""Where each sync target stands, read from the outbox: ok, retrying since when, failing (rows set aside that
need a person), or idle; and "retry now". The console, `tablebox sync status` and /healthz show it."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import apsw

from appliance.db.connection import scalar
from appliance.domain.errors import DomainError


class SyncState(StrEnum):
    OK = "ok"  # delivering (or caught up) without errors
    RETRYING = "retrying"  # a row failed and waits for its next attempt
    FAILING = "failing"  # rows were parked: the worker gave up on them until a person looks
    IDLE = "idle"  # disabled, or never had anything to send


NEEDS_A_PERSON = frozenset({SyncState.FAILING})

# The rows still to send, and the rows set aside (both are "not delivered").
_WAITING = "target = ? AND delivered_at IS NULL AND parked_at IS NULL"
_PARKED = "target = ? AND delivered_at IS NULL AND parked_at IS NOT NULL"


@dataclass(frozen=True)
class TargetStatus:
    name: str
    kind: str
    enabled: bool
    state: SyncState
    backlog: int  # waiting to be sent (parked rows not counted)
    parked: int
    oldest_waiting: str | None  # created_at of the oldest row still to send
    last_success: str | None  # the latest delivered_at
    since: str | None  # retrying: when the oldest failing row was queued; failing: the first parking
    last_error: str | None  # why (the failing row's, or the latest parked row's)


def _counted(conn: apsw.Connection, sql: str, name: str) -> tuple[int, str | None]:
    """(count, the earliest time) of an aggregate query: (0, None) when there is nothing."""
    row = conn.execute(sql, (name,)).fetchone()
    return (0, None) if row is None else (int(row[0]), row[1])


def target_status(conn: apsw.Connection, name: str) -> TargetStatus:
    target = conn.execute("SELECT kind, enabled FROM sync_targets WHERE name = ?", (name,)).fetchone()
    if target is None:
        raise DomainError("unknown_target", f"no sync target called {name!r}", target=name)
    kind, enabled = str(target[0]), bool(target[1])
    backlog, oldest = _counted(conn, f"SELECT count(*), min(created_at) FROM outbox WHERE {_WAITING}", name)
    parked, first_parked = _counted(conn, f"SELECT count(*), min(parked_at) FROM outbox WHERE {_PARKED}", name)
    last_success: str | None = scalar(
        conn, "SELECT max(delivered_at) FROM outbox WHERE target = ? AND delivered_at IS NOT NULL", (name,)
    )
    failing = conn.execute(
        f"SELECT created_at, last_error FROM outbox WHERE {_WAITING} AND attempts > 0 ORDER BY created_at, id LIMIT 1",
        (name,),
    ).fetchone()
    since: str | None = None
    error: str | None = None
    if failing is not None:
        since, error = failing[0], failing[1]
    if parked:
        state, since = SyncState.FAILING, first_parked
        error = scalar(
            conn, f"SELECT last_error FROM outbox WHERE {_PARKED} ORDER BY parked_at DESC, id DESC LIMIT 1", (name,)
        )
    elif failing:
        state = SyncState.RETRYING
    elif not enabled or (backlog == 0 and last_success is None):
        state = SyncState.IDLE
    else:
        state = SyncState.OK
    return TargetStatus(name, kind, enabled, state, backlog, parked, oldest, last_success, since, error)


def sync_status(conn: apsw.Connection) -> list[TargetStatus]:
    """Every target, by name; read in one transaction so the figures agree with each other."""
    with conn:
        names = [str(name) for (name,) in conn.execute("SELECT name FROM sync_targets ORDER BY name")]
        statuses = [target_status(conn, name) for name in names]
    return statuses  # noqa: RET504 - outside the `with`: apsw's __exit__ may swallow, for the type checker


def retry_now(conn: apsw.Connection, name: str) -> dict[str, int]:
    """Send the target's waiting rows at the worker's next pass (no backoff wait) and put its parked rows back
    in line. Attempts and the last error are kept: they are the history the worker and the console read."""
    if scalar(conn, "SELECT 1 FROM sync_targets WHERE name = ?", (name,)) is None:
        raise DomainError("unknown_target", f"no sync target called {name!r}", target=name)
    unparked = conn.execute(
        f"UPDATE outbox SET parked_at = NULL, next_attempt_at = NULL WHERE {_PARKED} RETURNING id", (name,)
    ).fetchall()
    hurried = conn.execute(
        f"UPDATE outbox SET next_attempt_at = NULL WHERE {_WAITING} AND next_attempt_at IS NOT NULL RETURNING id",
        (name,),
    ).fetchall()
    return {"unparked": len(unparked), "hurried": len(hurried)}
