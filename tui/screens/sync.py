"""Where each sync target (the ERP, the relay) stands: ok, retrying since when, failing and needing a person,
or idle; how much waits, how much was set aside, and when it last delivered; and its last `tablebox sync check`.
`r` sends again now; `c` checks the target's server now.

The console has no network and no ERP keys (its unit denies every IP address; the keys go to syncd only), so `c`
asks tablebox-syncd to run the check (a request in the store: appliance.db.sync_checks) and follows it until the
result is stored."""

from __future__ import annotations

import asyncio
import time

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import DataTable, Static

from appliance.db.sync_checks import CheckOutcome, CheckRecord, last_check, last_checks, request_check
from appliance.db.sync_state import SyncState, TargetStatus, retry_now, sync_status
from tui.base import ConsoleScreen
from tui.columns import fit, room_left, widest
from tui.keys import bindings_for
from tui.times import local_time

NO_TARGETS = "no sync targets configured; the ERP and relay sync come with tablebox syncd"
STATE_WORDS = {
    SyncState.OK: "✓ ok",
    SyncState.RETRYING: "↻ retrying",
    SyncState.FAILING: "✗ failing: needs a person",
    SyncState.IDLE: "– idle",
}
STATE_STYLES = {
    SyncState.RETRYING: "bold black on dark_orange",
    SyncState.FAILING: "bold white on red",
    SyncState.OK: "green",
}


CHECK_MARKS = {CheckOutcome.OK: "✓", CheckOutcome.WARN: "!", CheckOutcome.FAIL: "✗"}
CHECK_STYLES = {CheckOutcome.OK: "green", CheckOutcome.WARN: "bold dark_orange", CheckOutcome.FAIL: "bold red"}
SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"


def check_summary(record: CheckRecord) -> str:
    """ "✗ 1 failed, ! 1 to look at, ✓ 3 ok" of a stored check."""
    return record.summary({CheckOutcome.FAIL: "✗", CheckOutcome.WARN: "!", CheckOutcome.OK: "✓"})


class SyncScreen(ConsoleScreen):
    NAME = "Sync 同步"
    PERMISSION = "sync"
    BINDINGS = [*bindings_for("sync")]  # tui/keys.py
    DEFAULT_CSS = """
    SyncScreen #targets { height: auto; max-height: 1fr; }
    SyncScreen #below { height: 1fr; border-top: solid $accent; }
    SyncScreen #detail { height: auto; padding: 0 1; }
    SyncScreen #check { height: auto; padding: 0 1; }
    """
    # How long `c` waits for syncd to begin the check (its target loop comes round every quarter second unless it
    # is in the middle of a delivery), and for the check to finish (a few requests, each with its own timeout).
    PICKUP_SECONDS = 30.0
    FINISH_SECONDS = 300.0
    FOLLOW_EVERY_SECONDS = 0.25

    def __init__(self) -> None:
        super().__init__()
        self.targets: dict[str, TargetStatus] = {}
        self.fitted_to = 0  # the terminal width the names were fitted to
        self.checks: dict[str, CheckRecord] = {}
        self.progress: dict[str, str] = {}  # target -> what its check being run is doing ("⠙ syncd is checking")

    def body(self) -> ComposeResult:
        yield DataTable(id="targets", cursor_type="row", zebra_stripes=True)
        with VerticalScroll(id="below"):
            yield Static("", id="detail")
            yield Static("", id="check")

    def on_mount(self) -> None:
        columns = self.query_one(DataTable).add_columns(
            "Target", "State 状态", "Waiting", "Parked", "Last sent", "Check 检查"
        )
        self.check_column = columns[-1]

    def when(self, stamp: str | None, never: str = "never") -> str:
        return local_time(stamp, self.console.store, self.console.now(), never)

    def state_text(self, target: TargetStatus) -> Text:
        words = STATE_WORDS[target.state]
        if target.state == SyncState.RETRYING:
            words += f" since {self.when(target.since)}"
        if not target.enabled:
            words += " (disabled)"
        return Text(words, style=STATE_STYLES.get(target.state, ""))

    def check_cell(self, name: str) -> Text:
        record = self.checks.get(name)
        if name in self.progress:
            return Text("… checking")
        if record is None or record.outcome is None or record.ran_at is None:
            return Text("–")
        return Text(f"{CHECK_MARKS[record.outcome]} {self.when(record.ran_at)}", style=CHECK_STYLES[record.outcome])

    async def reload(self) -> None:
        targets = await self.console.db.call(sync_status)
        self.checks = await self.console.db.call(last_checks)
        table = self.query_one(DataTable)
        keep = self.selected()
        table.clear()
        self.targets = {t.name: t for t in targets}
        rows = [
            (
                f"{t.name} ({t.kind})",
                self.state_text(t),
                str(t.backlog),
                str(t.parked),
                self.when(t.last_success),
                self.check_cell(t.name),
            )
            for t in targets
        ]
        # the target's name gives way (the pane below has it whole); its state and numbers stay whole
        labels = [str(column.label) for column in table.columns.values()]
        whole = [widest(label, (row[n] for row in rows)) for n, label in enumerate(labels) if n]
        # a scrollbar only when the list (a header row and the rows) is longer than its room: half the screen's
        longer = len(rows) + 1 > (self.app.size.height - 4) // 2  # (less header, tabs, message and footer)
        room = room_left(self.app.size.width, whole, len(labels), scrollbar=longer)
        self.fitted_to = self.app.size.width
        for t, (name, *rest) in zip(targets, rows, strict=True):
            table.add_row(fit(name, room), *rest, key=t.name)
        if keep in self.targets:
            table.move_cursor(row=table.get_row_index(keep))
        self.show_detail()

    def on_resize(self) -> None:
        if self.targets and self.app.size.width != self.fitted_to:  # the name column's room changed
            self.run_worker(self.reload_if_shown, group="reload")

    def show_detail(self) -> None:
        target = self.targets.get(self.selected() or "")
        self.show_check(target)
        if target is None:
            self.query_one("#detail", Static).update(NO_TARGETS)
            return
        text = Text()
        text.append(f"{target.name}", style="bold")
        text.append(f" ({target.kind}) ")
        text.append_text(self.state_text(target))
        text.append(f"\n{target.backlog} waiting")
        if target.oldest_waiting:
            text.append(f" (oldest from {self.when(target.oldest_waiting)})")
        text.append(f" · {target.parked} parked · last sent {self.when(target.last_success)}")
        if target.state == SyncState.FAILING:
            text.append(
                f"\n✗ set aside since {self.when(target.since)} because: {target.last_error or 'no reason given'}",
                style="bold",
            )
            text.append("\nFix the cause (the ERP's settings, a missing product), then press r to send them again.")
        elif target.last_error:
            text.append(f"\nlast error: {target.last_error}", style="bold")
        self.query_one("#detail", Static).update(text)

    def show_check(self, target: TargetStatus | None) -> None:
        """The highlighted target's last check, line by line with what to do, or how the one running is doing."""
        text = Text()
        if target is not None:
            record = self.checks.get(target.name)
            if target.name in self.progress:
                text.append(self.progress[target.name] + "\n", style="bold")
            elif record is not None and record.requested_at is not None:
                text.append(
                    f"A check asked for at {self.when(record.requested_at)} waits for tablebox-syncd\n", style="bold"
                )
            if record is None or record.ran_at is None:
                text.append("Never checked 未检查: press c to check its server now", style="dim")
            else:
                text.append(f"Last check 检查 {self.when(record.ran_at)}", style="bold")
                text.append(f" ({'console' if record.ran_by == 'console' else 'tablebox sync check'}): ")
                text.append(check_summary(record))
                for line in record.lines:
                    text.append(f"\n{CHECK_MARKS[line.state]} ", style=CHECK_STYLES[line.state])
                    text.append(line.name + (f": {line.detail}" if line.detail else ""))
                    if line.fix and line.state is not CheckOutcome.OK:
                        text.append(f"\n  → {line.fix}", style="italic")
        self.query_one("#check", Static).update(text)

    def selected(self) -> str | None:
        key = self.selected_key()
        return None if key is None else str(key)

    @work(exclusive=True, group="dialog")
    async def action_again(self) -> None:
        """r: retry the highlighted target now (and un-park its rows, asked first)."""
        target = self.targets.get(self.selected() or "")
        if target is None:
            self.say(NO_TARGETS, error=True)
            return
        if not target.backlog and not target.parked:
            self.say(f"nothing waiting for {target.name}")
            return
        if target.parked and not await self.confirm(
            f"Send the {target.parked} parked row{'s' if target.parked != 1 else ''} to {target.name} again?\n"
            f"They were set aside because: {target.last_error or 'no reason given'}.\n"
            "If the cause is not fixed they will fail again."
        ):
            self.say(f"{target.name}: parked rows left aside")
            return
        await self.act(
            "sync",
            "sync.retry",
            f"target {target.name}",
            retry_now,
            target.name,
            details={"parked": target.parked, "waiting": target.backlog},
            done=lambda r: (
                f"{target.name}: sending again at the next pass"
                + (f" ({r['unparked']} parked back in line)" if r["unparked"] else "")
            ),
        )

    @work(exclusive=True, group="check")
    async def action_check(self) -> None:
        """Ask syncd to check the highlighted target's server, and follow it until the result is stored."""
        target = self.targets.get(self.selected() or "")
        if target is None:
            self.say(NO_TARGETS, error=True)
            return
        name = target.name
        if name in self.progress:
            self.say(f"{name}: a check is already running")
            return
        asked = await self.act(
            "sync",
            "sync.check",
            f"target {name}",
            request_check,
            name,
            self.console.now(),
            done=f"{name}: asked tablebox-syncd to check its server",
        )
        if asked is None:
            return
        started = time.monotonic()
        try:
            record = await self.follow(name, started)
        finally:
            self.progress.pop(name, None)
            if self.is_running_here():
                await self.reload()
        if record is None:
            return
        summary = check_summary(record)
        if record.outcome is CheckOutcome.FAIL:
            self.say(f"✗ {name}: {summary}: what to do is under each ✗ below", error=True)
        else:
            self.say(f"✓ {name}: {summary}")

    async def follow(self, name: str, started: float) -> CheckRecord | None:
        """Wait for the check asked at `started` (monotonic): the stored result, or None (said why) when syncd
        did not begin it in PICKUP_SECONDS or finish it in FINISH_SECONDS."""
        turn = 0
        while True:
            record = await self.console.db.call(last_check, name)
            waited = time.monotonic() - started
            if record is not None and not record.pending and record.ran_at is not None:
                return record
            begun = record is not None and record.started_at is not None
            if not begun and waited > self.PICKUP_SECONDS:
                self.say(
                    f"✗ {name}: tablebox-syncd did not begin the check in {self.PICKUP_SECONDS:g} s: is it running? "
                    f"(at the shell: systemctl status tablebox-syncd; or run tablebox sync check {name})",
                    error=True,
                )
                return None
            if waited > self.PICKUP_SECONDS + self.FINISH_SECONDS:
                self.say(f"✗ {name}: the check has not finished after {waited:.0f} s; try again later", error=True)
                return None
            turn += 1
            spin = SPINNER[turn % len(SPINNER)]
            doing = "syncd is checking its server" if begun else "waiting for tablebox-syncd to begin"
            self.progress[name] = f"{spin} {name}: {doing} ({waited:.0f} s)"
            if self.is_running_here():
                table = self.query_one(DataTable)
                if name in self.targets:
                    table.update_cell(name, self.check_column, self.check_cell(name))
                self.show_detail()
            await asyncio.sleep(self.FOLLOW_EVERY_SECONDS)
