"""The day's numbers for the manager: sales, orders, average ticket, covers, the money (takings by payment method,
the cash the drawer should hold, visits paid and still owing, tax included), top dishes, sales by hour as a heat
strip, table turnover, and what was cancelled or voided and why; today or any earlier day, exported as CSV."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from pathlib import Path

import apsw
from rich.columns import Columns
from rich.console import Group
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.widgets import Static

from appliance.db.reports import DayReport, day_report, report_csv
from appliance.domain.errors import DomainError
from appliance.domain.money import Currency, format_money
from tui.days import DayScreen
from tui.keys import bindings_for

METHOD_WORDS = {
    "cash": "现金 cash",
    "card": "刷卡 card",
    "wechat": "微信 WeChat",
    "alipay": "支付宝 Alipay",
    "other": "其他 other",
}
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


class ReportsScreen(DayScreen):
    NAME = "Reports 报表"
    PERMISSION = "reports"
    BINDINGS = [*bindings_for("reports")]  # tui/keys.py
    DAY_WORDS, DAY_SAID = "report", "report for {day}"
    DEFAULT_CSS = """
    ReportsScreen #report { height: 1fr; padding: 0 1; }
    ReportsScreen #report > Static { margin-bottom: 1; }
    ReportsScreen #day { text-style: bold; margin-bottom: 0; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.report: DayReport | None = None

    def body(self) -> ComposeResult:
        with VerticalScroll(id="report"):
            for name in ("day", "summary", "money", "hours", "dishes", "turnover", "losses"):
                yield Static("", id=name)

    async def reload(self) -> None:
        self.report = await self.console.db.call(day_report, self.shown_day, top=TOP)
        self.show(self.report)

    def money(self, minor: int) -> str:
        return format_money(minor, Currency.of(self.report.currency if self.report else "CNY"))

    def show(self, report: DayReport) -> None:
        day = date.fromisoformat(report.day)
        when = " (today 今天)" if report.day == self.today() else ""
        self.query_one("#day", Static).update(f"{report.day} {day:%A}{when}")
        # Each figure whole: on a narrow terminal a figure moves to the next line with its label, never apart.
        summary = Columns(
            [
                Text.assemble(f"{label} ", (value, "bold"))
                for label, value in (
                    ("Sales 营业额", self.money(report.sales_minor)),
                    ("Orders 单数", str(report.orders)),
                    ("Average 客单价", self.money(report.average_ticket_minor)),
                    ("Covers 人数", str(report.covers)),
                )
            ],
            padding=(0, 2),
        )
        self.query_one("#summary", Static).update(summary)
        self.query_one("#money", Static).update(self.money_text(report))
        self.query_one("#hours", Static).update(self.hours_text(report))
        self.query_one("#dishes", Static).update(self.dishes_table(report))
        self.query_one("#turnover", Static).update(self.turnover_text(report))
        self.query_one("#losses", Static).update(self.losses_text(report))

    def money_text(self, report: DayReport) -> Group:
        """Takings by method (what each took, gave back as change and refunded), the cash the drawer should hold,
        visits paid and still owing, the tax included: what the manager counts at close, each under 80 columns."""
        head = Text()
        head.append("Takings 收款 ", style="bold")
        head.append(self.money(report.takings_minor), style="bold")
        payments = sum(t.payments for t in report.takings)
        head.append(f" in {payments} payment{'s' if payments != 1 else ''}" if payments else ": no payments 无收款")
        methods = Table(box=None, padding=(0, 1), header_style="dim", pad_edge=False, show_header=bool(report.takings))
        for header in ("", "kept 实收", "taken 收", "change 找零", "refunded 退款"):
            methods.add_column(header, justify="left" if not header else "right", no_wrap=True)
        for t in report.takings:
            methods.add_row(
                f"  {METHOD_WORDS[t.method]}",
                self.money(t.net_minor),
                self.money(t.received_minor),
                self.money(t.change_minor) if t.change_minor else "",
                self.money(t.refunded_minor) if t.refunded_minor else "",
            )
        tail = Text()
        tail.append("Cash in drawer 应有现金 ", style="bold")
        tail.append(self.money(report.cash_expected_minor), style="bold")
        tail.append(" (cash taken − change − cash refunds)", style="dim")
        tail.append("\nVisits 桌次 ", style="bold")
        tail.append(f"{report.visits_paid} paid 已付, {report.visits_unpaid} unpaid 未付")
        if report.visits_unpaid:
            tail.append(f" ({self.money(report.unpaid_minor)} owed)", style="bold red")
        tail.append("\nTax included 含税 ", style="bold")
        tail.append(self.money(report.tax_minor))
        return Group(head, methods, tail) if report.takings else Group(head, tail)

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
        # "A2×2": a table and its visits never split across a line break
        return text.append("  ".join(f"{table}×{n}" for table, n in turnover.items()))

    def losses_text(self, report: DayReport) -> Group:
        """Cancelled orders and voided lines, a long reason wrapped under its reason (not at column 1)."""
        parts: list[Text | Table] = []
        for title, rows in (
            (
                f"Cancelled orders 取消 ({len(report.cancelled_orders)})",
                [(f" #{c.ticket_no} table {c.table}:", c.reason) for c in report.cancelled_orders],
            ),
            (
                f"Voided lines 退菜 ({len(report.voided_lines)})",
                [(f" #{v.ticket_no} {v.quantity}x {v.name}:", v.reason) for v in report.voided_lines],
            ),
        ):
            parts.append(Text(title, style="bold"))
            if rows:
                table = Table(box=None, padding=(0, 1, 0, 0), show_header=False, pad_edge=False)
                table.add_column(no_wrap=True, overflow="ellipsis", max_width=36)
                table.add_column(overflow="fold")
                for what, reason in rows:
                    table.add_row(what, reason or "no reason given")
                parts.append(table)
        return Group(*parts)

    # -- actions ----------------------------------------------------------------------------------------
    def shown_again(self) -> None:
        self.query_one("#report", VerticalScroll).scroll_home(animate=False)

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
