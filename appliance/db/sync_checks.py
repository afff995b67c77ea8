"""The last `tablebox sync check` of each sync target, and a check the console asked tablebox-syncd to run.

The console cannot run a check itself (it has no network and no ERP keys), so it writes a request here; syncd's
target thread sees it, claims it and runs it on its own thread; the result replaces the target's row, which the
console's sync screen shows. `tablebox sync check` at the shell stores its result the same way.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import apsw

from appliance.db.connection import dumps, scalar
from appliance.domain.errors import DomainError

# A check syncd claimed but never finished (syncd stopped or was killed in the middle) may be claimed again after
# this long: an adapter's check is a handful of requests, each with its own timeout of at most two minutes.
STALE_CLAIM = timedelta(minutes=15)


class CheckOutcome(StrEnum):
    """How one check line stands (the values of sync.adapters.base.CheckState, which the store may not import)."""

    OK = "ok"
    WARN = "warn"
    FAIL = "fail"


_VALUES = frozenset(s.value for s in CheckOutcome)
# From best to worst: a run's outcome is its worst line.
_RANK = {CheckOutcome.OK: 0, CheckOutcome.WARN: 1, CheckOutcome.FAIL: 2}


@dataclass(frozen=True, slots=True)
class CheckLine:
    name: str
    state: CheckOutcome
    detail: str = ""
    fix: str = ""


@dataclass(frozen=True, slots=True)
class CheckRecord:
    target: str
    ran_at: str | None  # when the last check finished (None: never, only asked for)
    outcome: CheckOutcome | None
    lines: tuple[CheckLine, ...]
    ran_by: str | None  # "cli" or "console"
    requested_at: str | None  # a check the console asked for and syncd has not finished
    started_at: str | None  # syncd began it

    @property
    def pending(self) -> bool:
        return self.requested_at is not None

    def summary(self, marks: Mapping[CheckOutcome, str] | None = None) -> str:
        """ "1 failed, 1 to look at, 3 ok" (each count after its mark, when `marks` gives one): the shell and the
        console say it the same way."""
        marks = marks or {}
        counts = {state: sum(1 for line in self.lines if line.state is state) for state in CheckOutcome}
        words = ((CheckOutcome.FAIL, "failed"), (CheckOutcome.WARN, "to look at"), (CheckOutcome.OK, "ok"))
        parts = [
            f"{marks[state] + ' ' if state in marks else ''}{counts[state]} {word}"
            for state, word in words
            if counts[state] or state is CheckOutcome.OK
        ]
        return ", ".join(parts)


def worst(states: Sequence[CheckOutcome]) -> CheckOutcome:
    """The worst of the states (OK for none)."""
    return max(states, key=_RANK.__getitem__, default=CheckOutcome.OK)


def _stamp(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _lines(text: str) -> tuple[CheckLine, ...]:
    found = []
    for item in json.loads(text or "[]"):
        if isinstance(item, Mapping) and item.get("state") in _VALUES:
            found.append(
                CheckLine(
                    str(item.get("name", "")),
                    CheckOutcome(item["state"]),
                    str(item.get("detail", "")),
                    str(item.get("fix", "")),
                )
            )
    return tuple(found)


_COLUMNS = "target, ran_at, outcome, checks, ran_by, requested_at, started_at"


def _record(row: Sequence[object]) -> CheckRecord:
    target, ran_at, outcome, checks, ran_by, requested_at, started_at = row
    return CheckRecord(
        str(target),
        None if ran_at is None else str(ran_at),
        None if outcome is None else CheckOutcome(str(outcome)),
        _lines(str(checks)),
        None if ran_by is None else str(ran_by),
        None if requested_at is None else str(requested_at),
        None if started_at is None else str(started_at),
    )


def save_check(
    conn: apsw.Connection, target: str, lines: Sequence[CheckLine], *, ran_at: datetime, ran_by: str
) -> CheckRecord:
    """A finished check replaces the target's last one and answers any request waiting for it."""
    checks = dumps([{"name": c.name, "state": c.state.value, "detail": c.detail, "fix": c.fix} for c in lines])
    outcome = worst([c.state for c in lines]).value
    row = conn.execute(
        "INSERT INTO sync_checks (target, ran_at, outcome, checks, ran_by) VALUES (?, ?, ?, ?, ?)"
        " ON CONFLICT (target) DO UPDATE SET ran_at = excluded.ran_at, outcome = excluded.outcome,"
        " checks = excluded.checks, ran_by = excluded.ran_by, requested_at = NULL, started_at = NULL"
        f" RETURNING {_COLUMNS}",
        (target, _stamp(ran_at), outcome, checks, ran_by),
    ).fetchone()
    if row is None:  # an upsert with RETURNING always answers its row
        raise RuntimeError(f"sync_checks: no row saved for {target!r}")
    return _record(row)


def request_check(conn: apsw.Connection, target: str, now: datetime) -> str:
    """The console asks syncd to check `target` (a request already waiting is asked again from now). Returns the
    request's time: the check that answers it finishes after it."""
    if scalar(conn, "SELECT 1 FROM sync_targets WHERE name = ?", (target,)) is None:
        raise DomainError("unknown_target", f"no sync target called {target!r}", target=target)
    stamp = _stamp(now)
    conn.execute(
        "INSERT INTO sync_checks (target, requested_at) VALUES (?, ?)"
        " ON CONFLICT (target) DO UPDATE SET requested_at = excluded.requested_at, started_at = NULL",
        (target, stamp),
    )
    return stamp


def check_requested(conn: apsw.Connection, target: str, now: datetime) -> bool:
    """Whether a check of `target` waits for syncd (asked and not begun, or begun so long ago that whoever began it
    is gone): a read by primary key, cheap enough for every pass of a target's loop."""
    return (
        scalar(
            conn,
            "SELECT 1 FROM sync_checks WHERE target = ? AND requested_at IS NOT NULL"
            " AND (started_at IS NULL OR started_at < ?)",
            (target, _stamp(now - STALE_CLAIM)),
        )
        is not None
    )


def claim_check_request(conn: apsw.Connection, target: str, now: datetime) -> bool:
    """syncd takes a waiting request (True), so that one process runs it once; False when there is none."""
    claimed = conn.execute(
        "UPDATE sync_checks SET started_at = ? WHERE target = ? AND requested_at IS NOT NULL"
        " AND (started_at IS NULL OR started_at < ?) RETURNING target",
        (_stamp(now), target, _stamp(now - STALE_CLAIM)),
    ).fetchone()
    return claimed is not None


def last_check(conn: apsw.Connection, target: str) -> CheckRecord | None:
    row = conn.execute(f"SELECT {_COLUMNS} FROM sync_checks WHERE target = ?", (target,)).fetchone()
    return None if row is None else _record(row)


def last_checks(conn: apsw.Connection) -> dict[str, CheckRecord]:
    """Every target's row, by target (one per target: bounded by the number of targets)."""
    return {
        record.target: record
        for record in map(_record, conn.execute(f"SELECT {_COLUMNS} FROM sync_checks ORDER BY target LIMIT 1000"))
    }
