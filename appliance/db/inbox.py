"""What the box applied from a relay's inbox (`inbox_seen`): the checkpoint its next long-poll acknowledges with
`after=`, and applying one message in ONE transaction with its inbox_seen row, so a box killed mid-apply keeps
nothing half-done and a message delivered twice (same seq, or an order's same client key) is a no-op. Also the
menu version the relay link moves past what the relay already holds.

Messages are recorded under the relay target's source, `appliance.contract.relay.relay_source(TARGET, RELAY_STORE)`:
sequence numbers are per relay store. `appliance.db.orders` reads the same rows to know which orders a relay target
has any business with."""

from __future__ import annotations

from collections.abc import Callable

import apsw

from appliance.contract.relay import relay_source
from appliance.db.connection import utc_now

DUPLICATE = "duplicate"


def last_applied_seq(conn: apsw.Connection, target: str, relay_store: str = "") -> int:
    """The next poll's `after=`: every message of the relay store up to it is in the store."""
    row = conn.execute(
        "SELECT coalesce(max(seq), 0) FROM inbox_seen WHERE source = ?", (relay_source(target, relay_store),)
    ).fetchone()
    return int(row[0]) if row is not None else 0


def apply_message(
    conn: apsw.Connection, target: str, relay_store: str, seq: int, message_id: str, apply: Callable[[], str]
) -> str:
    """In one write transaction (the lock taken up front): DUPLICATE when message `seq` was applied already, or when
    `message_id` (an order's client key) was, under another seq (that seq is then recorded as applied, so the next
    poll moves past it); otherwise the message recorded first (so the order's own outbox rows include this relay
    target) and `apply()` run, whose outcome is returned. Whatever `apply` raises rolls the whole message back."""
    source = relay_source(target, relay_store)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT 1 FROM inbox_seen WHERE source = ? AND seq = ?", (source, seq)).fetchone():
            outcome = DUPLICATE
        elif conn.execute(
            "SELECT 1 FROM inbox_seen WHERE source = ? AND message_id = ?", (source, message_id)
        ).fetchone():
            _seen(conn, source, f"repeat:{seq}", seq)
            outcome = DUPLICATE
        else:
            _seen(conn, source, message_id, seq)
            outcome = apply()
        conn.execute("COMMIT")
    except BaseException:
        if not conn.getautocommit():  # SQLite may have rolled back already (a full disk, say)
            conn.execute("ROLLBACK")
        raise
    return outcome


def _seen(conn: apsw.Connection, source: str, message_id: str, seq: int) -> None:
    conn.execute(
        "INSERT INTO inbox_seen (source, message_id, seq, applied_at) VALUES (?, ?, ?, ?)",
        (source, message_id, seq, utc_now()),
    )


def move_menu_version_past(conn: apsw.Connection, past: int) -> bool:
    """The store's menu version set to past + 1 unless it is there already (something else moved it): the next menu
    push is then newer than anything the relay or a phone holds. True when it moved."""
    with conn:
        moved = conn.execute(
            "UPDATE menu_meta SET version = ? WHERE version <= ? RETURNING version", (past + 1, past)
        ).fetchall()
    return bool(moved)
