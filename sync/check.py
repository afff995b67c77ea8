"""`tablebox sync check`: run a sync target's checklist against its real server, with what the store expects of it,
and keep the result for the console's sync screen.

Before `adapter.check()` runs, its two inputs are set from the store (every adapter class declares them):
`expected_codes`, the ERP codes of the dishes on the menu, and `box_facts` (currency, prices_include_tax,
tax_rate_bp, payment_methods, languages). Whatever happens in the adapter, the answer is a list of `Check` lines:
settings it cannot be built from, an exception out of `check()`, or an answer that is not a Check each become a ✗
line, never a traceback. Secrets are taken out of every line before it is shown or stored.

The console asks syncd to run a check (`answer_check_request`, called from each target's loop): the console has no
network and no ERP keys, syncd has both.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import apsw
import structlog

from appliance.db.catalog import linked_dishes
from appliance.db.connection import open_connection, write_transaction
from appliance.db.payments import METHODS
from appliance.db.store_settings import load_store_settings
from appliance.db.sync_checks import (
    CheckLine,
    CheckOutcome,
    check_requested,
    claim_check_request,
    save_check,
)
from appliance.settings import SYNC_SECRET_KEYS
from sync.adapters import make_adapter
from sync.adapters.base import Adapter, Check, CheckState
from sync.adapters.http import scrub
from sync.config import Target

log = structlog.get_logger("sync.check")

MARKS = {CheckState.OK: "✓", CheckState.WARN: "!", CheckState.FAIL: "✗"}
_RANK = {CheckState.OK: 0, CheckState.WARN: 1, CheckState.FAIL: 2}
WIDTH = 80
_DETAIL_CAP = 600  # characters of one line's detail or fix kept (an ERP may answer with a page of HTML)

AdapterFactory = Callable[[str, Mapping[str, Any]], Adapter]
Clock = Callable[[], datetime]


def utc_clock() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class TargetCheck:
    """One target's checklist as it ran."""

    target: str
    kind: str
    base_url: str
    ran_at: datetime
    checks: tuple[Check, ...]

    @property
    def outcome(self) -> CheckState:
        return worst(c.state for c in self.checks)

    def counts(self) -> dict[CheckState, int]:
        return {state: sum(1 for c in self.checks if c.state is state) for state in CheckState}


def worst(states: Iterable[CheckState]) -> CheckState:
    return max(states, key=_RANK.__getitem__, default=CheckState.OK)


# -- what the store expects of the target ---------------------------------------------------------------------------
def expected_codes(conn: apsw.Connection) -> list[str]:
    """The ERP codes of the dishes on the menu (removed dishes left out), sorted."""
    return sorted(code for code, dishes in linked_dishes(conn).items() if any(d.removed_at is None for d in dishes))


def box_facts(conn: apsw.Connection) -> dict[str, Any]:
    """What the box does that the ERP's settings must agree with (the keys every adapter's check() may read)."""
    store = load_store_settings(conn)
    return {
        "currency": store.currency,
        "prices_include_tax": True,  # the box's prices always include tax (appliance.domain.pricing.compute_totals)
        "tax_rate_bp": store.tax_rate_bp,
        "payment_methods": list(METHODS),
        "languages": list(store.languages),
    }


# -- running one checklist ------------------------------------------------------------------------------------------
def _cap(text: str) -> str:
    text = " ".join(str(text).split())  # one line: an ERP's message may carry newlines or a page of markup
    return text if len(text) <= _DETAIL_CAP else text[: _DETAIL_CAP - 1] + "…"


def run_checklist(adapter: Adapter, codes: Sequence[str], facts: Mapping[str, Any]) -> tuple[Check, ...]:
    """The adapter's checks with these inputs; an exception or a wrong answer becomes a ✗ line."""
    # per-instance attributes the Adapter protocol declares (each class defaults to no codes, no facts)
    adapter.expected_codes = tuple(codes)
    adapter.box_facts = dict(facts)
    try:
        answer = list(adapter.check())
    except Exception as exc:  # a bug or an unexpected answer in the adapter: a line, never a traceback
        log.warning("sync.check_crashed", target=adapter.name, error=repr(exc)[:300])
        return (
            Check(
                "check",
                CheckState.FAIL,
                f"the check stopped: {type(exc).__name__}: {exc}".rstrip(": "),
                "Run it again; if it stops the same way, send `tablebox support` output to the integrator",
            ),
        )
    checks = [c for c in answer if isinstance(c, Check)]
    if len(checks) != len(answer):
        checks.append(
            Check("check", CheckState.FAIL, "the adapter answered something that is not a check", "Report this bug")
        )
    if not checks:
        checks.append(Check("check", CheckState.WARN, f"{adapter.name}: this kind of target checks nothing yet"))
    return tuple(checks)


def _secrets(config: Mapping[str, Any]) -> list[str]:
    return [str(config[key]).strip() for key in SYNC_SECRET_KEYS if config.get(key)]


def check_target(
    conn: apsw.Connection,
    target: Target,
    *,
    adapter_factory: AdapterFactory = make_adapter,
    ran_by: str = "cli",
    clock: Clock = utc_clock,
    where: str = "the settings",
) -> TargetCheck:
    """Build the target's adapter, run its checklist with the store's codes and facts, store the result (the target's
    last check) and return it. Raises nothing for a failed check: a line says it."""
    codes, facts = expected_codes(conn), box_facts(conn)
    checks: tuple[Check, ...]
    try:
        adapter = adapter_factory(target.name, target.config)
    except (ValueError, KeyError, TypeError) as exc:
        checks = (Check("settings", CheckState.FAIL, str(exc), f"Fix [sync.{target.name}] in {where}"),)
    else:
        try:
            checks = run_checklist(adapter, codes, facts)
        finally:
            try:
                adapter.close()
            except Exception as exc:  # closing a client that never connected: not worth a line
                log.debug("sync.check_close_failed", target=target.name, error=repr(exc)[:200])
    secrets = _secrets(target.config)
    checks = tuple(
        Check(_cap(scrub(c.name, secrets)), c.state, _cap(scrub(c.detail, secrets)), _cap(scrub(c.fix, secrets)))
        for c in checks
    )
    result = TargetCheck(target.name, target.kind, str(target.config.get("base_url") or ""), clock(), checks)
    lines = [CheckLine(c.name, CheckOutcome(c.state.value), c.detail, c.fix) for c in checks]
    try:
        with write_transaction(conn):
            save_check(conn, target.name, lines, ran_at=result.ran_at, ran_by=ran_by)
    except apsw.SQLError as exc:  # a store not migrated to 0012 yet (tablebox-web migrates at start): shown, not kept
        log.warning("sync.check_not_kept", target=target.name, error=str(exc))
    log.debug("sync.checked", target=target.name, outcome=result.outcome.value, by=ran_by)  # the caller shows it
    return result


# -- the console's request, answered by syncd -----------------------------------------------------------------------
def answer_check_request(
    conn: apsw.Connection,
    target: Target,
    db_path: Path,
    vfs: str | None,
    running: threading.Thread | None,
    *,
    adapter_factory: AdapterFactory = make_adapter,
    clock: Clock = utc_clock,
) -> threading.Thread | None:
    """Called on each pass of a target's loop in syncd: when the console asked for a check of this target, claim the
    request and run the check on a thread of its own (its own connection and adapter, so delivery never waits on
    it). Returns the thread running a check (pass it back next time), or None."""
    if running is not None and running.is_alive():
        return running
    if not check_requested(conn, target.name, clock()):
        return None
    with write_transaction(conn):
        claimed = claim_check_request(conn, target.name, clock())
    if not claimed:
        return None

    def run() -> None:
        try:
            own = open_connection(db_path, vfs=vfs)
            try:
                result = check_target(own, target, adapter_factory=adapter_factory, ran_by="console", clock=clock)
            finally:
                own.close()
            log.info(
                "sync.checked",
                target=target.name,
                outcome=result.outcome.value,
                failed=[c.name for c in result.checks if c.state is CheckState.FAIL],
            )
        except Exception:  # the store failing: the claim goes stale and the next pass may try again
            log.exception("sync.check_failed", target=target.name)

    thread = threading.Thread(target=run, name=f"sync-check-{target.name}", daemon=True)
    thread.start()
    log.info("sync.check_requested", target=target.name)
    return thread


# -- showing it -----------------------------------------------------------------------------------------------------
def _when(stamp: datetime) -> str:
    return stamp.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def render(result: TargetCheck, *, width: int = WIDTH, disabled: bool = False) -> list[str]:
    """The checklist as console lines of at most `width` columns: a heading, one line per check (wrapped), each
    failed or warned check's fix under it, and a summary."""
    where = f" at {result.base_url}" if result.base_url else ""
    lines = textwrap.wrap(
        f"{result.target} ({result.kind}{', disabled' if disabled else ''}){where}", width, break_on_hyphens=False
    )
    for check in result.checks:
        text = f"{MARKS[check.state]} {check.name}" + (f": {check.detail}" if check.detail else "")
        lines += textwrap.wrap(text, width, initial_indent="  ", subsequent_indent="    ", break_on_hyphens=False)
        if check.fix and check.state is not CheckState.OK:
            lines += textwrap.wrap(
                f"→ {check.fix}", width, initial_indent="    ", subsequent_indent="      ", break_on_hyphens=False
            )
    counts = result.counts()
    summary = [
        f"{counts[CheckState.FAIL]} failed" if counts[CheckState.FAIL] else "",
        f"{counts[CheckState.WARN]} to look at" if counts[CheckState.WARN] else "",
        f"{counts[CheckState.OK]} ok",
    ]
    lines.append(f"  {result.target}: " + ", ".join(s for s in summary if s) + f" ({_when(result.ran_at)})")
    return lines


def as_json(results: Sequence[TargetCheck]) -> dict[str, Any]:
    """`tablebox sync check --json`: every target's checks and the overall outcome."""
    return {
        "outcome": worst(r.outcome for r in results).value,
        "targets": [
            {
                "target": r.target,
                "kind": r.kind,
                "base_url": r.base_url,
                "ran_at": _when(r.ran_at).replace(" ", "T"),
                "outcome": r.outcome.value,
                "checks": [
                    {"name": c.name, "state": c.state.value, "detail": c.detail, "fix": c.fix} for c in r.checks
                ],
            }
            for r in results
        ],
    }
