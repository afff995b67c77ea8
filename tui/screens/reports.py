"""The day's numbers for the manager: sales, orders, average ticket, covers, top dishes, sales by hour as a heat
strip, table turnover, and what was cancelled or voided and why; today or any earlier day, exported as CSV."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from pathlib import Path

import apsw
from rich.table import Table
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from appliance.db.reports import DayReport, day_report, report_csv
from appliance.domain.errors import DomainError
from appliance.domain.money import Currency, format_money
from tui.base import ConsoleScreen
from tui.dialogs import PromptScreen

SHADES = "░▒▓█"  # a quarter, half, three quarters, more than three quarters of the busiest hour
NONE = "·"
TOP = 5


def heat_cell(minor: int, busiest: int) -> str:
    """One hour as two block characters scaled to the busiest hour (a dot for no sales)."""
    if minor <= 0 or busiest <= 0:
        return NONE + " "
    return SHADES[min(len(SHADES), -(-len(SHADES) * minor // busiest)) - 1] * 2


def heat_strip(by_hour: Sequence[int], first_hour: int = 0) -> tuple[str, str]:
    """Hour labels and the strip beneath them, starting at the business day's first hour (3 columns an hour)."""
    hours = [(first_hour + i) % 24 for i in range(24)]
    busiest = max(by_hour)
    return (" ".join(f"{h:02d}" for h in hours), " ".join(heat_cell(by_hour[h], busiest) for h in hours))


def export_report(conn: apsw.Connection, day: str, path: Path) -> Path:
    """Write the day's report as CSV (UTF-8 with a BOM, so spreadsheet programs read the Chinese names)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report_csv(day_report(conn, day)), encoding="utf-8-sig")
    except OSError as exc:
        raise DomainError("export_failed", f"cannot write {path}: {exc.strerror}") from None
    return path


def check_day(text: str, latest: str) -> str | None:
    """Why a typed day cannot be shown (None when it can)."""
    try:
        if date.fromisoformat(text).isoformat() != text:
            raise ValueError(text)
    except ValueError:
        return "a date looks like 2026-11-21"
    return f"{text} has not happened yet (today is {latest})" if text > latest else None


class ReportsScreen(ConsoleScreen):
    NAME = "Reports 报表"
    PERMISSION = "reports"
    BINDINGS = [
        Binding("left_square_bracket", "shift_day(-1)", "Previous day 前一天"),
        Binding("right_square_bracket", "shift_day(1)", "Next day 后一天"),
        Binding("d", "pick_day", "Date 日期"),
        Binding("e", "export", "Export CSV 导出"),
    ]
    DEFAULT_CSS = """
    ReportsScreen #report { height: 1fr; padding: 0 1; }
    ReportsScreen #report > Static { margin-bottom: 1; }
    ReportsScreen #day { text-style: bold; margin-bottom: 0; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.day: str | None = None  # None: today, following the clock past midnight
        self.report: DayReport | None = None

    def body(self) -> ComposeResult:
        with VerticalScroll(id="report"):
            for name in ("day", "summary", "hours", "dishes", "turnover", "losses"):
                yield Static("", id=name)

    @property
    def shown_day(self) -> str:
        return self.day or self.today()

    async def reload(self) -> None:
        self.report = await self.console.db.call(day_report, self.shown_day, top=TOP)
        self.show(self.report)

    def money(self, minor: int) -> str:
        return format_money(minor, Currency.of(self.report.currency if self.report else "CNY"))

    def show(self, report: DayReport) -> None:
        day = date.fromisoformat(report.day)
        when = " (today 今天)" if report.day == self.today() else ""
        self.query_one("#day", Static).update(f"{report.day} {day:%A}{when}")
        summary = Text()
        for label, value in (
            ("Sales 营业额", self.money(report.sales_minor)),
            ("Orders 单数", str(report.orders)),
            ("Average 客单价", self.money(report.average_ticket_minor)),
            ("Covers 人数", str(report.covers)),
        ):
            summary.append(f"{label} ")
            summary.append(value, style="bold")
            summary.append("  ")
        self.query_one("#summary", Static).update(summary)
        self.query_one("#hours", Static).update(self.hours_text(report))
        self.query_one("#dishes", Static).update(self.dishes_table(report))
        self.query_one("#turnover", Static).update(self.turnover_text(report))
        self.query_one("#losses", Static).update(self.losses_text(report))

    def hours_text(self, report: DayReport) -> Text:
        by_hour = report.sales_by_hour_minor
        store = self.console.store
        first = int(store.day_starts_at.split(":")[0]) if store else 0
        labels, strip = heat_strip(by_hour, first)
        text = Text("Sales by hour 分时", style="bold")
        if any(by_hour):
            peak = max(range(24), key=lambda h: (by_hour[h], -((h - first) % 24)))
            text.append(f"  busiest {peak:02d}:00 ({self.money(by_hour[peak])})")
        text.append(f"\n{labels}\n{strip}\n")
        text.append(f"{NONE} none  ░ ≤¼  ▒ ≤½  ▓ ≤¾  █ more, of the busiest hour", style="dim")
        return text

    def dishes_table(self, report: DayReport) -> Table | Text:
        if not report.top_by_count:
            return Text("no dishes sold 当日无销售")
        table = Table(box=None, padding=(0, 1), header_style="bold", pad_edge=False)
        for header, justify in (
            ("#", "right"),
            ("Top dishes by count 销量", "left"),
            ("", "right"),
            ("   #", "right"),
            ("by revenue 销售额", "left"),
            ("", "right"),
        ):
            table.add_column(header, justify=justify, overflow="ellipsis", no_wrap=True)  # type: ignore[arg-type]
        for rank, (by_count, by_revenue) in enumerate(zip(report.top_by_count, report.top_by_revenue, strict=True), 1):
            table.add_row(
                f"{rank}.",
                by_count.name,
                f"{by_count.count}x",
                f"{rank}.",
                by_revenue.name,
                self.money(by_revenue.revenue_minor),
            )
        return table

    def turnover_text(self, report: DayReport) -> Text:
        turnover = report.turnover
        text = Text()
        text.append("Table turnover 翻台 ", style="bold")
        if not turnover:
            return text.append("no tables used")
        visits = sum(turnover.values())
        text.append(
            f"{visits} visit{'s' if visits != 1 else ''} at {len(turnover)} table{'s' if len(turnover) != 1 else ''}: "
        )
        return text.append("  ".join(f"{table} {n}" for table, n in turnover.items()))

    def losses_text(self, report: DayReport) -> Text:
        text = Text()
        text.append(f"Cancelled orders 取消 ({len(report.cancelled_orders)})", style="bold")
        for c in report.cancelled_orders:
            text.append(f"\n #{c.ticket_no} table {c.table}: {c.reason or 'no reason given'}")
        text.append(f"\nVoided lines 退菜 ({len(report.voided_lines)})", style="bold")
        for v in report.voided_lines:
            text.append(f"\n #{v.ticket_no} {v.quantity}x {v.name}: {v.reason or 'no reason given'}")
        return text

    # -- actions ----------------------------------------------------------------------------------------
    async def go_to(self, day: str) -> None:
        today = self.today()
        if day > today:
            self.say(f"✗ {today} is today: there is no later day yet", error=True)
            return
        self.day = None if day == today else day
        await self.reload()
        self.query_one("#report", VerticalScroll).scroll_home(animate=False)
        self.say(f"report for {day}")

    async def action_shift_day(self, step: int) -> None:
        await self.go_to((date.fromisoformat(self.shown_day) + timedelta(days=step)).isoformat())

    @work(exclusive=True, group="dialog")
    async def action_pick_day(self) -> None:
        today = self.today()
        answer = await self.app.push_screen_wait(
            PromptScreen(
                "Show the report of which day? 日期 (YYYY-MM-DD)", self.shown_day, check=lambda t: check_day(t, today)
            )
        )
        if answer is not None:
            await self.go_to(answer)

    async def action_export(self) -> None:
        day = self.shown_day
        path = Path(self.console.db.path).parent / "exports" / f"report-{day}.csv"
        await self.act(
            "reports",
            "report.exported",
            f"day {day}",
            export_report,
            day,
            path,
            details={"file": str(path)},
            done=lambda p: f"report for {day} saved to {p}",
        )
