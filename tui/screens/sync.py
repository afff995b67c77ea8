"""Where each sync target (the ERP, the relay) stands: ok, retrying since when, failing and needing a person,
or idle; how much waits, how much was set aside, and when it last delivered. `r` sends again now."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Static

from appliance.db.sync_state import SyncState, TargetStatus, retry_now, sync_status
from tui.base import ConsoleScreen
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


class SyncScreen(ConsoleScreen):
    NAME = "Sync 同步"
    PERMISSION = "sync"
    BINDINGS = [Binding("r", "retry", "Retry now 立即重试")]
    DEFAULT_CSS = """
    SyncScreen #targets { height: auto; max-height: 1fr; }
    SyncScreen #detail { height: auto; padding: 0 1; border-top: solid $accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.targets: dict[str, TargetStatus] = {}

    def body(self) -> ComposeResult:
        yield DataTable(id="targets", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Target", "State 状态", "Waiting", "Parked", "Last sent")

    def when(self, stamp: str | None, never: str = "never") -> str:
        return local_time(stamp, self.console.store, self.console.now(), never)

    def state_text(self, target: TargetStatus) -> Text:
        words = STATE_WORDS[target.state]
        if target.state == SyncState.RETRYING:
            words += f" since {self.when(target.since)}"
        if not target.enabled:
            words += " (disabled)"
        return Text(words, style=STATE_STYLES.get(target.state, ""))

    async def reload(self) -> None:
        targets = await self.console.db.call(sync_status)
        table = self.query_one(DataTable)
        keep = self.selected()
        table.clear()
        self.targets = {t.name: t for t in targets}
        for t in targets:
            table.add_row(
                f"{t.name} ({t.kind})",
                self.state_text(t),
                str(t.backlog),
                str(t.parked),
                self.when(t.last_success),
                key=t.name,
            )
        if keep in self.targets:
            table.move_cursor(row=table.get_row_index(keep))
        self.show_detail()

    def show_detail(self) -> None:
        target = self.targets.get(self.selected() or "")
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

    def selected(self) -> str | None:
        key = self.selected_key()
        return None if key is None else str(key)

    @work(exclusive=True, group="dialog")
    async def action_retry(self) -> None:
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
