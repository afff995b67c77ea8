"""The outbox delivery engine: hands one target's queued rows to its ERP adapter, each exactly once in effect, each
order's rows in the order they were queued, backing off per order while the ERP fails (the other orders keep
flowing), pausing the whole target when the ERP does not answer at all or asks to be left alone, and setting aside
what it refuses.

How a row travels:
- claimed: `claimed_by` / `claimed_at` set in one `BEGIN IMMEDIATE` transaction, for up to `batch_size` rows picked
  from a window of the target's line, oldest first. Nobody else claims a row while its lease runs (a worker that
  crashed loses its claims after `lease_seconds`; the same worker id, restarted, takes them back at once).
- ordered per order: every row belongs to one or more *groups*: an order.* row to its order (the client key), a
  payment.recorded row to every order of its payload's `order_refs` and to itself, a payment.refunded row to those
  orders and to the payment it refunds (`refund_of`). A row is claimed only when no earlier row of any of its groups
  is still waiting (in backoff, in another worker's hands, or not claimed in this pass), so a status change never
  overtakes its order, a payment waits for its orders, and a refund for its payment. An order whose order row the
  ERP refused (parked) holds its later rows (and its payments) in line until a person acts: nothing of an order the
  ERP does not have can be booked. A parked status change or void does not hold anything up.
- delivered: the adapter is called (it makes a retried delivery harmless: lookup before create, or the ERP's
  idempotency key), then `delivered_at` is committed, row by row. A crash between the two delivers the row
  again, which the adapter recognises: at-least-once on the wire, exactly-once in effect. Rows of different
  groups go out `in_flight` at once; a wave never holds two rows of one group.
- retrying (`Retryable`): attempts + 1, the error, `next_attempt_at` = now + backoff (exponential from 1 s,
  factor 2, full jitter, capped; at least the target's `Retry-After`, up to the cap); the row keeps its place and
  holds up its groups' later rows; every other order goes on. While other rows get through, a row's backoff stops
  doubling at 16 s (its failures are a flaky ERP's luck; the pause below protects an ERP that fails everything).
- the target paused: when a whole wave failed and the ERP did not answer at all (connection refused, timeout, a
  dropped connection) three times in a row, or failed in any way 16 times in a row (an ERP failing half its
  calls does that about once in 60,000), nothing is claimed for a while (1 s, doubling to the retry cap, jittered),
  then one row probes: the ready row tried least often (so an order the ERP refuses alone cannot keep the target
  paused); any delivered or refused row ends the pauses. A `Retry-After` (429/503) pauses the whole target that
  long (up to the cap). `tablebox sync retry` ends a pause.
- parked (`Rejected`): set aside with the ERP's message for a person (`tablebox sync retry` puts it back in
  line); the other groups go on.

Kinds: `order.submitted` -> push_order; `order.status` -> push_status; `order.line_voided` -> push_status with
status "line_voided"; for an adapter declaring Capability.AMENDS both go to push_change (an OrderChange with the
order as the store has it now); `order.refused` (an order that came through the relay and the box refused; queued
for that relay target only) -> push_status(client_key, "refused", the error as JSON), and `request.refused` (a waiter
or bill call from the relay the box refused; client_key is the relay's `request:...` key) the same way;
`payment.recorded` -> push_payment (payload: order_refs, table, method, amount_minor, currency, paid_at);
`payment.refunded` -> push_payment of a PaymentDoc of kind "refund" (payload as a payment's, plus refund_of and
reason); any other kind is marked delivered with a note (no adapter call for it).
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import apsw
import structlog

from appliance.db import outbox as outbox_db
from appliance.db.orders import order_view
from appliance.db.outbox import LineHead, OutboxRow
from appliance.db.store_settings import load_store_settings
from appliance.domain.errors import DomainError
from appliance.domain.menu import translate
from appliance.errors import TableboxError
from sync.adapters.base import (
    Adapter,
    Capability,
    ChangeAdapter,
    OrderChange,
    OrderDoc,
    OrderLine,
    OrderViewAdapter,
    PaymentDoc,
    Rejected,
    Retryable,
    voided_words,
)

log = structlog.get_logger("sync.outbox")

LEASE_SECONDS = 120.0
BATCH_SIZE = 50
ERROR_CHARS = 500
# How far down the line a claim looks for rows of orders that are not waiting: past every row in backoff and the rows
# of their orders. A claim reads this many rows' heads in its write transaction (a millisecond or two).
WINDOW = 1000
# The target pauses after a wave in which every attempt failed, once this many attempts in a row got no answer at all
# (the ERP down or unreachable) or failed in any way (an ERP answering 503 to everything).
PAUSE_AFTER_UNANSWERED = 3
PAUSE_AFTER_FAILED = 16
# While the ERP gets other rows through, a failing row's backoff doubles no further than after this many failures
# (up to 16 s, 8 s on average: one request every few seconds for an order an otherwise working ERP keeps refusing).
FLAKY_CEILING_FAILURES = 5
# Parked rows that hold their groups' later rows: the ERP does not have the order (or the payment), so nothing
# that refers to it can be booked until a person has dealt with it.
HOLDING_WHEN_PARKED = ("order.submitted", "payment.recorded")
Clock = Callable[[], datetime]


def stamp(moment: datetime) -> str:
    """A time as the outbox stores it (as appliance.db.connection.utc_now): UTC ISO-8601, microseconds, 'Z';
    such strings sort as the times do."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Backoff:
    """Exponential backoff with full jitter: after the n-th failure wait uniform(0, min(cap, base * factor**(n-1)))
    seconds. Full jitter spreads a crowd of retries (many boxes, one ERP coming back) instead of keeping it."""

    base: float = 1.0
    factor: float = 2.0
    cap: float = 300.0
    rng: random.Random | None = None

    def ceiling(self, failures: int) -> float:
        return min(self.cap, self.base * self.factor ** min(max(failures - 1, 0), 60))

    def delay(self, failures: int) -> float:
        return (self.rng or random).uniform(0.0, self.ceiling(failures))


@dataclass
class Pass:
    """What one claim-and-deliver pass did."""

    claimed: int = 0
    delivered: int = 0
    skipped: int = 0  # delivered without an adapter call (a kind the adapter has no call for)
    retrying: int = 0
    parked: int = 0
    released: int = 0  # claimed but handed back unsent (a failure ahead of them, or stopping)


class UnreadableRow(TableboxError):
    """A row whose payload cannot be turned into a document: retrying cannot fix it, so it is parked."""


def error_text(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    status = getattr(exc, "status", None)
    if status and str(status) not in message:
        message = f"HTTP {status}: {message}"
    return message[:ERROR_CHARS]


def order_of(kind: str, idempotency_key: str) -> str:
    """The order a row of `kind` belongs to ("order.status:<client_key>:<event>" -> the client key); a row of another
    kind is its own key."""
    if kind.startswith("order."):
        parts = idempotency_key.split(":")
        if len(parts) >= 2:
            return parts[1]
    return idempotency_key


def groups_of(head: LineHead) -> frozenset[str]:
    """The groups a row belongs to (see the module's docstring): each group's rows go out one after another, in the
    order they were queued."""
    if head.kind.startswith("payment."):
        groups = {f"order:{ref}" for ref in head.order_refs} | {f"payment:{head.idempotency_key}"}
        if head.refund_of:
            groups.add(f"payment:{head.refund_of}")
        return frozenset(groups)
    if head.kind.startswith("order."):
        return frozenset({f"order:{order_of(head.kind, head.idempotency_key)}"})
    return frozenset({f"row:{head.idempotency_key}"})


def _attempt(call: Callable[[], Any] | Rejected | None) -> tuple[str, Any]:
    """Run one ERP call; its outcome as data (this runs on a pool thread and touches no database)."""
    if isinstance(call, Rejected):
        return "park", error_text(call)
    try:
        return "ok", (call() if call is not None else None)
    except Retryable as exc:
        return "retry", (error_text(exc), exc.retry_after, exc.status)
    except Rejected as exc:
        return "park", error_text(exc)
    except Exception as exc:  # an adapter bug or an error it did not map: retry, and say so in the log
        return "bug", exc


class OutboxEngine:
    """Delivers one target's outbox rows through one adapter, on one connection (one thread)."""

    def __init__(
        self,
        conn: apsw.Connection,
        target: str,
        adapter: Adapter,
        *,
        worker_id: str,
        clock: Clock = system_clock,
        backoff: Backoff | None = None,
        lease_seconds: float = LEASE_SECONDS,
        batch_size: int = BATCH_SIZE,
        stop: threading.Event | None = None,
        heartbeat: Callable[[], None] | None = None,
        in_flight: int = 1,
        window: int = WINDOW,
    ) -> None:
        self.conn = conn
        self.in_flight = max(1, in_flight)
        self._pool = (
            ThreadPoolExecutor(self.in_flight, thread_name_prefix=f"sync-{target}") if self.in_flight > 1 else None
        )
        self.target = target
        self.adapter = adapter
        self.worker_id = worker_id
        self.clock = clock
        self.backoff = backoff or Backoff()
        self.lease = timedelta(seconds=lease_seconds)
        self.batch_size = batch_size
        self.stop = stop or threading.Event()
        self.heartbeat = heartbeat or (lambda: None)
        self._lang: str | None = None
        self.window = max(window, batch_size)
        self._groups: dict[int, frozenset[str]] = {}  # a claimed row's groups, by id (only while it is claimed)
        self.paused_until: datetime | None = None  # the whole target waits until then
        self._pauses = 0  # pauses in a row without a row getting through: each one twice as long
        self._probe = False  # after a pause, one row tries the ERP before a full wave
        self._unanswered = 0  # attempts in a row that got no answer at all
        self._failed = 0  # attempts in a row that failed
        self.pause_rng = random.Random()

    # -- claiming -------------------------------------------------------------------------------------------
    def _blocked_until(self, row: LineHead, now: datetime) -> datetime | None:
        """When the row may be claimed, if not now: its backoff, or another worker's live lease. A time further
        ahead than a backoff or a lease can reach was written by a clock that ran ahead (a box without a
        battery clock, before NTP set it right): it does not hold the row up for hours."""
        next_attempt, by, at = row.next_attempt_at, row.claimed_by, row.claimed_at
        if next_attempt is not None and next_attempt > stamp(now):
            until = parse_stamp(next_attempt)
            if until - now <= timedelta(seconds=self.backoff.cap + 1):
                return until
        if by is not None and by != self.worker_id and at is not None and at >= stamp(now - self.lease):
            until = parse_stamp(at) + self.lease
            if until - now <= self.lease + timedelta(seconds=1):
                return until
        return None

    def _held(self, heads: Sequence[LineHead]) -> dict[str, int]:
        """The groups held by a parked row older than the window's last row (its order or payment never reached
        the ERP), each with the oldest such row's id: the group's rows after it wait for a person, the rows before
        it (the order a parked payment was for) go on."""
        if not heads:
            return {}
        parked = outbox_db.parked_heads(self.conn, self.target, HOLDING_WHEN_PARKED, heads[-1].id, self.window)
        held: dict[str, int] = {}
        for head in parked:  # oldest first
            for group in groups_of(head):
                held.setdefault(group, head.id)
        return held

    def _pick(self, heads: Sequence[LineHead], now: datetime, limit: int) -> list[LineHead]:
        """The rows of the window that may go now, oldest first, at most `limit`: a row that is not ready holds
        its groups, and so does every row behind it in one of them (even one that is ready). A probe after a pause
        is the one ready row tried least often (the oldest of those) among the rows first in each of their groups
        (never a payment ahead of its order): the pause ends when any order gets through, and an order the ERP
        keeps failing on its own would otherwise be the probe every time."""
        parked = self._held(heads)
        waiting: set[str] = set()
        picked: list[LineHead] = []
        firsts: list[LineHead] = []  # picked rows with no earlier picked row in any of their groups
        seen: set[str] = set()
        for head in heads:
            groups = groups_of(head)
            if (
                groups & waiting
                or any(head.id > parked.get(group, head.id) for group in groups)
                or self._blocked_until(head, now) is not None
            ):
                waiting |= groups
                continue
            picked.append(head)
            if not groups & seen:
                firsts.append(head)
            seen |= groups
            if len(picked) >= limit and not self._probe:
                break
        if self._probe and firsts:
            return [min(firsts, key=lambda head: (head.attempts, head.id))]
        return picked

    def claim(self, limit: int | None = None) -> list[OutboxRow]:
        """Claim up to `limit` ready rows from the window of the target's line, in one transaction: the rows of
        orders (and payments) with nothing waiting ahead of them (parked rows are not in the line). Nothing while
        the target is paused."""
        now = self.clock()
        if self._paused(now):
            return []
        if self._probe:
            limit = 1
        chosen: dict[int, frozenset[str]] = {}

        def choose(heads: list[LineHead]) -> list[int]:
            picked = self._pick(heads, now, limit or self.batch_size)
            chosen.update((head.id, groups_of(head)) for head in picked)
            return [head.id for head in picked]

        rows = outbox_db.claim_rows(self.conn, self.target, self.worker_id, stamp(now), self.window, choose)
        self._groups = {row.id: chosen[row.id] for row in rows}
        return rows

    def seconds_until_ready(self) -> float | None:
        """How long until a row can be claimed: 0 now, None when nothing waits. Reads only (no write lock), so an
        idle worker can ask often."""
        now = self.clock()
        if self._paused(now) and self.paused_until is not None:
            if not outbox_db.line_head(self.conn, self.target, 1):
                return None
            return max(0.0, (self.paused_until - now).total_seconds())
        heads = outbox_db.line_head(self.conn, self.target, self.window)
        if not heads:
            return None
        parked = self._held(heads)
        held: set[str] = set()
        soonest: datetime | None = None
        for head in heads:
            groups = groups_of(head)
            if groups & held or any(head.id > parked.get(group, head.id) for group in groups):
                continue  # waits for an earlier row of its order (above, or parked)
            held |= groups
            until = self._blocked_until(head, now)
            if until is None:
                return 0.0
            soonest = until if soonest is None else min(soonest, until)
        return None if soonest is None else max(0.0, (soonest - now).total_seconds())

    def _paused(self, now: datetime) -> bool:
        """Whether the whole target waits; a person asking (`tablebox sync retry`) ends the pause."""
        if self.paused_until is None:
            return False
        if now >= self.paused_until or outbox_db.hurried(self.conn, self.target):
            self.paused_until = None
            return False
        return True

    def _pause(self, seconds: float, why: str) -> None:
        until = self.clock() + timedelta(seconds=seconds)
        if self.paused_until is None or until > self.paused_until:
            self.paused_until = until
        self._probe = True
        log.warning("sync.paused", target=self.target, seconds=round(seconds, 3), why=why)

    def release(self, ids: Sequence[int]) -> int:
        """Hand claimed rows back unsent (stopping, or a failure ahead of them)."""
        return outbox_db.release_claims(self.conn, ids, self.worker_id)

    def release_all(self) -> int:
        """Every claim this worker holds on the target (at shutdown)."""
        return outbox_db.release_all_claims(self.conn, self.target, self.worker_id)

    # -- delivering -----------------------------------------------------------------------------------------
    def run_once(self) -> Pass:
        """Claim a batch and deliver it. A row that fails (Retryable) holds back the rest of the batch's rows of its
        groups (handed back unsent); the other rows go on. Stops early, handing the rest back, when the target
        pauses or `stop` is set.

        With `in_flight` > 1 the batch goes out in waves of up to that many rows of *different* groups at once (an
        ERP 20 ms away would otherwise cap the drain at a few dozen orders a second); two rows of one order are
        never in one wave, so an order's status change still reaches the ERP after the order."""
        rows = self.claim()
        result = Pass(claimed=len(rows))
        claimed_at = self.clock()
        pending = list(rows)
        while pending:
            if self.stop.is_set() or self.paused_until is not None:
                result.released += self.release([r.id for r in pending])
                break
            if self.clock() - claimed_at > self.lease / 3:  # a slow ERP: keep the lease on what is left
                claimed_at = self.clock()
                outbox_db.renew_claims(self.conn, [r.id for r in pending], self.worker_id, stamp(claimed_at))
            self.heartbeat()
            wave = self._wave(pending)
            outcomes = self._deliver_wave(wave)
            for outcome in outcomes:
                setattr(result, outcome, getattr(result, outcome) + 1)
            sent = {row.id for row in wave}
            held: set[str] = set()
            for row, outcome in zip(wave, outcomes, strict=True):
                if outcome == "retrying" or (outcome == "parked" and row.kind in HOLDING_WHEN_PARKED):
                    held |= self._groups.get(row.id, frozenset())
            rest, back = [], []
            for row in pending:
                if row.id in sent:
                    continue
                groups = self._groups.get(row.id, frozenset())
                if groups & held:
                    held |= groups  # behind a failed row of its order: waits, and holds its own groups
                    back.append(row.id)
                else:
                    rest.append(row)
            result.released += self.release(back)
            pending = rest
        for row in rows:
            self._groups.pop(row.id, None)
        return result

    def _wave(self, pending: Sequence[OutboxRow]) -> list[OutboxRow]:
        """The next rows to send at once: oldest first, no two sharing a group, none behind an earlier pending row
        of its groups; one row alone to probe the ERP after a pause."""
        size = 1 if self._probe else max(1, self.in_flight)
        wave: list[OutboxRow] = []
        taken: set[str] = set()
        for row in pending:
            groups = self._groups.get(row.id, frozenset({f"row:{row.id}"}))
            if not groups & taken:
                wave.append(row)
            taken |= groups
            if len(wave) >= size:
                break
        return wave

    def _deliver_wave(self, wave: Sequence[OutboxRow]) -> list[str]:
        prepared = [self._prepare(row) for row in wave]  # reads the store: on this thread
        calls = [call for call, _ in prepared]
        if len(wave) == 1 or self._pool is None:
            results = [_attempt(call) for call in calls]
        else:
            results = list(self._pool.map(_attempt, calls))  # only the ERP calls run on the pool
        outcomes = [
            self._settle(row, note, result) for row, (_, note), result in zip(wave, prepared, results, strict=True)
        ]
        self._after_wave(results)
        return outcomes

    def _after_wave(self, results: Sequence[tuple[str, Any]]) -> None:
        """Count the failures in a row; pause the target when the ERP is down or asked for a break."""
        asked = 0.0
        for outcome, value in results:
            if outcome == "retry":
                _, retry_after, status = value
                self._failed += 1
                self._unanswered = self._unanswered + 1 if status is None else 0
                asked = max(asked, retry_after or 0.0)
            elif outcome == "bug":  # the adapter's own fault: a failure, but the ERP may well have answered
                self._failed += 1
                self._unanswered = 0
            else:
                self._failed = self._unanswered = 0
                if outcome in ("ok", "park"):
                    self._pauses, self._probe = 0, False
        if asked > 0:
            self._pause(min(asked, self.backoff.cap), "the ERP asked to be left alone (Retry-After)")
            return
        if all(outcome in ("retry", "bug") for outcome, _ in results) and (
            self._unanswered >= PAUSE_AFTER_UNANSWERED or self._failed >= PAUSE_AFTER_FAILED
        ):
            self._pauses += 1
            ceiling = self.backoff.ceiling(self._pauses)
            seconds = self.pause_rng.uniform(ceiling / 2, ceiling)  # half fixed, half jitter: a pause is a pause
            self._pause(seconds, "no answer" if self._unanswered else "every attempt failed")

    def deliver(self, row: OutboxRow) -> str:
        """One row to the ERP and its outcome committed: 'delivered', 'skipped', 'retrying' or 'parked'."""
        return self._deliver_wave([row])[0]

    def _prepare(self, row: OutboxRow) -> tuple[Callable[[], Any] | Rejected | None, str | None]:
        try:
            return self._call_for(row)
        except (KeyError, TypeError, ValueError, UnreadableRow) as exc:
            return Rejected(f"cannot read this outbox row: {type(exc).__name__}: {exc}"), None

    def _settle(self, row: OutboxRow, note: str | None, result: tuple[str, Any]) -> str:
        outcome, value = result
        if outcome == "retry":
            error, asked, _ = value
            return self._retry(row, error, asked)
        if outcome == "park":
            return self._park(row, value)
        if outcome == "bug":
            log.error("sync.unexpected_error", target=self.target, outbox_id=row.id, kind=row.kind, error=repr(value))
            return self._retry(row, f"unexpected error: {value!r}"[:ERROR_CHARS])
        if not outbox_db.mark_delivered(self.conn, row.id, stamp(self.clock()), note):
            log.warning("sync.already_delivered", target=self.target, outbox_id=row.id)
        if note:
            log.info("sync.skipped", target=self.target, outbox_id=row.id, kind=row.kind, note=note)
            return "skipped"
        log.info(
            "sync.delivered",
            target=self.target,
            outbox_id=row.id,
            kind=row.kind,
            key=row.idempotency_key,
            erp_ref=value,
        )
        return "delivered"

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)

    def _retry(self, row: OutboxRow, error: str, asked: float | None = None) -> str:
        """Back off; a target that said how long to wait (Retry-After) is left alone at least that long, up to the
        retry cap (a row never waits longer than the cap, whatever a server asks).

        While other rows get through (the ERP is up but fails some calls), a row's wait stops doubling at
        FLAKY_CEILING_FAILURES: its failures are the ERP's luck, not its own, and an order should not reach a flaky
        ERP minutes after the others. When the ERP fails everything the target pauses and the rows' waits grow on
        to the cap."""
        failures = row.attempts + 1
        target_failing = self._failed >= PAUSE_AFTER_FAILED or self._unanswered >= PAUSE_AFTER_UNANSWERED
        wait = self.backoff.delay(failures if target_failing else min(failures, FLAKY_CEILING_FAILURES))
        if asked is not None:
            wait = max(wait, min(asked, self.backoff.cap))
        outbox_db.schedule_retry(self.conn, row.id, error, stamp(self.clock() + timedelta(seconds=wait)))
        log.warning(
            "sync.retrying",
            target=self.target,
            outbox_id=row.id,
            kind=row.kind,
            attempts=failures,
            wait_seconds=round(wait, 3),
            error=error,
        )
        return "retrying"

    def _park(self, row: OutboxRow, error: str) -> str:
        outbox_db.park(self.conn, row.id, error, stamp(self.clock()))
        log.error(
            "sync.parked", target=self.target, outbox_id=row.id, kind=row.kind, key=row.idempotency_key, error=error
        )
        return "parked"

    # -- documents ------------------------------------------------------------------------------------------
    def _call_for(self, row: OutboxRow) -> tuple[Callable[[], Any] | None, str | None]:
        payload = json.loads(row.payload)
        if row.kind in ("order.status", "order.line_voided") and Capability.AMENDS in self.adapter.capabilities:
            change = self.order_change(row, payload)
            push_change = cast(ChangeAdapter, self.adapter).push_change
            return (lambda: push_change(change)), None
        if row.kind == "order.submitted":
            order = self.order_doc(payload)
            return (lambda: self.adapter.push_order(order)), None
        if row.kind == "order.status":
            ref, status, reason = payload["client_key"], payload["to"], payload.get("reason")
            viewer = self._order_viewer()
            if viewer is not None:
                view, push = self.order_now(payload["order_id"], status), viewer.push_status
                return (lambda: push(ref, status, reason, order=view)), None
            return (lambda: self.adapter.push_status(ref, status, reason)), None
        if row.kind == "order.line_voided":
            ref = payload["client_key"]
            reason = voided_words(
                payload["line_no"], payload.get("quantity"), int(payload.get("left") or 0), payload.get("reason")
            )
            viewer = self._order_viewer()
            if viewer is not None:
                view, push = self.order_now(payload["order_id"], None), viewer.push_status
                return (lambda: push(ref, "line_voided", reason, order=view)), None
            return (lambda: self.adapter.push_status(ref, "line_voided", reason)), None
        if row.kind in ("order.refused", "request.refused"):
            if Capability.REFUSALS not in self.adapter.capabilities:
                return None, f"not sent: target {self.target} takes no refusals ({row.kind!r} rows)"
            ref, error = payload["client_key"], json.dumps(payload["error"], ensure_ascii=False, sort_keys=True)
            return (lambda: self.adapter.push_status(ref, "refused", error)), None
        if row.kind in ("payment.recorded", "payment.refunded"):
            payment = self.payment_doc(row.idempotency_key, payload, refund=row.kind == "payment.refunded")
            return (lambda: self.adapter.push_payment(payment)), None
        return None, f"not sent: the ERP adapters have no call for {row.kind!r} rows"

    def order_change(self, row: OutboxRow, payload: dict[str, Any]) -> OrderChange:
        """An order.status or order.line_voided row for an adapter declaring AMENDS: the change, with the order as
        the store has it now (None when no line is left active)."""
        view = self.order_now(payload["order_id"], None)
        try:
            order: OrderDoc | None = self.order_doc(view)
        except UnreadableRow:
            order = None
        if row.kind == "order.status":
            return OrderChange(
                order_ref=payload["client_key"],
                event="status",
                status=str(payload["to"]),
                reason=payload.get("reason"),
                order=order,
                change_ref=row.idempotency_key,
            )
        return OrderChange(
            order_ref=payload["client_key"],
            event="line_voided",
            status=str(view.get("status") or "submitted"),
            reason=payload.get("reason"),
            order=order,
            change_ref=row.idempotency_key,
            line_no=int(payload["line_no"]),
            quantity=int(payload["quantity"]) if payload.get("quantity") else None,
            left=int(payload.get("left") or 0),
        )

    def _order_viewer(self) -> OrderViewAdapter | None:
        """The adapter as one that takes the order with each status change, if it declares so."""
        if Capability.ORDER_VIEW in self.adapter.capabilities:
            return cast(OrderViewAdapter, self.adapter)
        return None

    @property
    def lang(self) -> str:
        if self._lang is None:
            self._lang = load_store_settings(self.conn).languages[0]
        return self._lang

    def order_now(self, order_id: int, status: str | None) -> dict[str, Any]:
        """The order as the store has it now (lines voided since, new totals), with `status` as of the row being
        delivered: a phone that gets the rows in order ends on the order's real state."""
        try:
            order = order_view(self.conn, int(order_id))
        except DomainError as exc:
            raise UnreadableRow(exc.message) from None
        if status is not None:
            order["status"] = status
        return order

    def order_doc(self, order: dict[str, Any]) -> OrderDoc:
        """The order as the ERP gets it: the payload (the order as it was submitted) plus each dish's ERP code
        and key as the menu has them now."""
        lines = [line for line in order["lines"] if line.get("status", "active") == "active"]
        codes = outbox_db.dish_codes(self.conn, {line["item_id"] for line in lines})
        doc_lines = []
        for line in lines:
            dish = codes.get(line["item_id"])
            key, code = (dish.key, dish.erp_code) if dish is not None else (None, None)
            name = translate(line["names"], self.lang)
            if line.get("variant_names"):
                name += f" ({translate(line['variant_names'], self.lang)})"
            extras = [translate(o["names"], self.lang) for o in line.get("options") or []]
            if line.get("note"):
                extras.append(line["note"])
            doc_lines.append(
                OrderLine(
                    code=code or None,
                    key=key,
                    name=name,
                    quantity=int(line["quantity"]),
                    unit_price_minor=int(line["unit_price_minor"]),
                    line_total_minor=int(line["line_total_minor"]),
                    note="; ".join(extras),
                )
            )
        if not doc_lines:
            raise UnreadableRow("the order has no lines")
        return OrderDoc(
            order_ref=order["client_key"],
            order_id=int(order["id"]),
            ticket=f"{order['ticket_day']}#{order['ticket_no']}",
            table=str(order["table"]),
            created_at=order["created_at"],
            currency=order["currency"],
            lines=doc_lines,
            subtotal_minor=int(order["subtotal_minor"]),
            service_charge_minor=int(order["service_charge_minor"]),
            total_minor=int(order["total_minor"]),
            tax_minor=int(order["tax_minor"]),
            status=order.get("status") or "submitted",
            note=order.get("note") or "",
            view=order,
        )

    @staticmethod
    def payment_doc(key: str, payment: dict[str, Any], *, refund: bool = False) -> PaymentDoc:
        """A payment.recorded (or, with `refund`, a payment.refunded) row's payload as the ERP gets it; what the
        document has no field for goes in `extra`."""
        known = {"order_refs", "table", "method", "amount_minor", "currency", "paid_at"}
        if refund:
            known |= {"refund_of", "reason"}
            if not payment.get("refund_of"):
                raise UnreadableRow("a refund that names no payment (refund_of)")
        return PaymentDoc(
            payment_ref=key,
            order_refs=list(payment["order_refs"]),
            table=str(payment["table"]),
            method=payment["method"],
            amount_minor=int(payment["amount_minor"]),
            currency=payment["currency"],
            paid_at=payment["paid_at"],
            extra={k: v for k, v in payment.items() if k not in known},
            kind="refund" if refund else "payment",
            refund_of=str(payment["refund_of"]) if refund else None,
            reason=str(payment.get("reason") or "") if refund else "",
        )
