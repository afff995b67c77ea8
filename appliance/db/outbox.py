"""The outbox as the sync worker works it: a target's line of rows to send, claims with a lease, and each row's
outcome (delivered, retrying, parked). What is claimed and when is the engine's decision (`sync.outbox`); this module
only reads and writes the rows. Rows are queued by the store itself (`appliance.db.orders`, `appliance.db.payments`)
and, for the rows only the relay hears about, by `queue_row`.

Times are strings as the store keeps them (UTC ISO-8601 with microseconds and 'Z', as `connection.utc_now`), which
sort as the times do."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from appliance.db.connection import dumps, utc_now, write_transaction


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A claimed row: what the engine turns into an ERP call."""

    id: int
    kind: str
    idempotency_key: str
    payload: str  # JSON, as queued
    attempts: int


@dataclass(frozen=True, slots=True)
class LineHead:
    """A row still in a target's line (not delivered, not parked), or a parked one: what decides whether it can be
    claimed now, and which orders (and payments) it belongs to."""

    id: int
    next_attempt_at: str | None  # its backoff: not before then
    claimed_by: str | None
    claimed_at: str | None
    kind: str = ""
    idempotency_key: str = ""
    order_refs: tuple[str, ...] = ()  # a payment.* row: the orders its payload names (order_refs)
    refund_of: str | None = None  # a payment.refunded row: the idempotency key of the payment it refunds
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class DishCode:
    """A dish as the ERP knows it: our key and its ERP item code (None: a dish the ERP does not know)."""

    item_id: int
    key: str | None
    erp_code: str | None


def _ids(ids: Iterable[int]) -> str:
    return json.dumps(list(ids))


# A payment row's orders and the payment a refund refunds, read in SQL so a window of the line is one query; a
# payload that is not JSON reads as none (the engine parks that row when it reads it).
_HEAD_COLUMNS = (
    "id, next_attempt_at, claimed_by, claimed_at, kind, idempotency_key, attempts,"
    " CASE WHEN kind LIKE 'payment.%' AND json_valid(payload) THEN json_extract(payload, '$.order_refs') END,"
    " CASE WHEN kind LIKE 'payment.%' AND json_valid(payload) THEN json_extract(payload, '$.refund_of') END"
)


def _head(row: tuple[Any, ...]) -> LineHead:
    i, n, b, a, kind, key, attempts, refs, refund_of = row
    orders: tuple[str, ...] = ()
    if refs:
        try:
            parsed = json.loads(refs)
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            orders = tuple(str(r) for r in parsed)
    return LineHead(
        int(i), n, b, a, str(kind), str(key), orders, str(refund_of) if refund_of is not None else None, int(attempts)
    )


def line_head(conn: apsw.Connection, target: str, limit: int) -> list[LineHead]:
    """The first `limit` rows of the target's line, oldest first. Reads only."""
    return [
        _head(row)
        for row in conn.execute(
            f"SELECT {_HEAD_COLUMNS} FROM outbox"
            " WHERE target = ? AND delivered_at IS NULL AND parked_at IS NULL ORDER BY id LIMIT ?",
            (target, limit),
        )
    ]


def parked_heads(conn: apsw.Connection, target: str, kinds: Sequence[str], before: int, limit: int) -> list[LineHead]:
    """The target's parked rows of `kinds` older than row `before`, oldest first (the parked index). Reads only."""
    return [
        _head(row)
        for row in conn.execute(
            f"SELECT {_HEAD_COLUMNS} FROM outbox WHERE target = ? AND parked_at IS NOT NULL AND delivered_at IS NULL"
            " AND id < ? AND kind IN (SELECT value FROM json_each(?)) ORDER BY id LIMIT ?",
            (target, before, json.dumps(list(kinds)), limit),
        )
    ]


def hurried(conn: apsw.Connection, target: str) -> bool:
    """Whether a person asked for the target's rows now (`tablebox sync retry`: a row in line that was tried but has
    no next attempt time; the engine's own failures always set one). Reads only."""
    return (
        conn.execute(
            "SELECT 1 FROM outbox WHERE target = ? AND delivered_at IS NULL AND parked_at IS NULL AND attempts > 0"
            " AND next_attempt_at IS NULL LIMIT 1",
            (target,),
        ).fetchone()
        is not None
    )


def claim_rows(
    conn: apsw.Connection,
    target: str,
    worker_id: str,
    now: str,
    window: int,
    choose: Callable[[list[LineHead]], Sequence[int]],
) -> list[OutboxRow]:
    """In one write transaction: read the first `window` rows of the target's line and claim (for `worker_id`, at
    `now`) those `choose` picks from them. Returns the claimed rows, oldest first."""
    with write_transaction(conn):
        ids = list(choose(line_head(conn, target, window)))
        if not ids:
            return []
        claimed = [
            OutboxRow(int(i), k, key, p, int(a))
            for i, k, key, p, a in conn.execute(
                "UPDATE outbox SET claimed_by = ?, claimed_at = ? WHERE id IN (SELECT value FROM json_each(?))"
                " RETURNING id, kind, idempotency_key, payload, attempts",
                (worker_id, now, _ids(ids)),
            )
        ]
    return sorted(claimed, key=lambda r: r.id)


def renew_claims(conn: apsw.Connection, ids: Sequence[int], worker_id: str, now: str) -> None:
    """Restart the lease on rows this worker still holds (a slow ERP)."""
    conn.execute(
        "UPDATE outbox SET claimed_at = ? WHERE id IN (SELECT value FROM json_each(?)) AND claimed_by = ?",
        (now, _ids(ids), worker_id),
    )


def release_claims(conn: apsw.Connection, ids: Sequence[int], worker_id: str) -> int:
    """Hand back this worker's claims on `ids` that are not delivered; how many were."""
    if not ids:
        return 0
    return len(
        conn.execute(
            "UPDATE outbox SET claimed_by = NULL, claimed_at = NULL WHERE id IN (SELECT value FROM json_each(?))"
            " AND claimed_by = ? AND delivered_at IS NULL RETURNING id",
            (_ids(ids), worker_id),
        ).fetchall()
    )


def release_all_claims(conn: apsw.Connection, target: str, worker_id: str) -> int:
    """Every claim this worker holds on the target's undelivered rows, handed back (at shutdown)."""
    return len(
        conn.execute(
            "UPDATE outbox SET claimed_by = NULL, claimed_at = NULL WHERE target = ? AND claimed_by = ?"
            " AND delivered_at IS NULL RETURNING id",
            (target, worker_id),
        ).fetchall()
    )


def mark_delivered(conn: apsw.Connection, row_id: int, now: str, note: str | None = None) -> bool:
    """The row reached the ERP (or needs no call: `note` says why). False when it was already delivered."""
    return bool(
        conn.execute(
            "UPDATE outbox SET delivered_at = ?, attempts = attempts + 1, claimed_by = NULL, claimed_at = NULL,"
            " next_attempt_at = NULL, last_error = coalesce(?, last_error) WHERE id = ? AND delivered_at IS NULL"
            " RETURNING id",
            (now, note, row_id),
        ).fetchall()
    )


def schedule_retry(conn: apsw.Connection, row_id: int, error: str, next_attempt_at: str) -> None:
    """The attempt failed and may work later: counted, the error kept, not tried again before `next_attempt_at`;
    the row keeps its place in the line (and its order's later rows wait behind it)."""
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ?, claimed_by = NULL,"
        " claimed_at = NULL WHERE id = ? AND delivered_at IS NULL",
        (error, next_attempt_at, row_id),
    )


def park(conn: apsw.Connection, row_id: int, error: str, now: str) -> None:
    """The ERP refused the row for good: set aside (out of the line) with its message, for a person."""
    conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = ?, parked_at = ?, next_attempt_at = NULL,"
        " claimed_by = NULL, claimed_at = NULL WHERE id = ? AND delivered_at IS NULL",
        (error, now, row_id),
    )


def dish_codes(conn: apsw.Connection, item_ids: Iterable[int]) -> dict[int, DishCode]:
    """The dishes' keys and ERP codes as the menu has them now, by item id (ids no longer in the menu absent)."""
    return {
        int(i): DishCode(int(i), key, code)
        for i, key, code in conn.execute(
            "SELECT id, key, erp_code FROM items WHERE id IN (SELECT value FROM json_each(?))",
            (_ids(sorted(item_ids)),),
        )
    }


def queue_row(
    conn: apsw.Connection, target: str, kind: str, idempotency_key: str, payload: object, created_at: str | None = None
) -> bool:
    """One row for one target (the ones only the relay hears about: an order's "accepted" event again, a refusal),
    unless a row with this key is there already. True when it was queued."""
    return bool(
        conn.execute(
            "INSERT OR IGNORE INTO outbox (target, kind, idempotency_key, payload, created_at) VALUES (?, ?, ?, ?, ?)"
            " RETURNING id",
            (target, kind, idempotency_key, dumps(payload), created_at or utc_now()),
        ).fetchall()
    )
