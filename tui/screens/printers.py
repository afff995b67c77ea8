"""The printers: what each said last (and why it cannot print), its queue and why it waits, its stations.
Keys print a test page, reprint a ticket of today, print tables' QR stickers, and re-key a table."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import apsw
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.widgets import DataTable, Static

from appliance.db.printing import (
    PrinterRow,
    printer_rows,
    queue_stickers,
    queue_test_page,
    reprint_ticket,
    table_stickers,
    unassigned_jobs,
)
from appliance.db.tables import list_tables, record_sticker_address, rekey_table
from appliance.domain.errors import DomainError
from appliance.domain.printing import UNABLE_TO_PRINT, PrinterStatus
from appliance.settings import NO_STABLE_ADDRESS
from tui.base import ConsoleScreen
from tui.columns import MIN_NAME, fit, room_left, widest
from tui.dialogs import ChooseScreen, PromptScreen
from tui.keys import bindings_for
from tui.times import local_time

ALL_TABLES = "__all__"
NOT_NOW = "__not_now__"


def printers_view(conn: apsw.Connection, now: datetime) -> tuple[list[PrinterRow], list[tuple[str, int]]]:
    """The printers, and the jobs no printer has taken yet per station (the worker assigns them to a printer of the
    station), read in one transaction."""
    with conn:
        view = printer_rows(conn, now), unassigned_jobs(conn)
    return view  # noqa: RET504 - outside the `with`: apsw's __exit__ may swallow, for the type checker


def status_text(printer: PrinterRow) -> Text:
    """A symbol and words for the status (colour only repeats them)."""
    if not printer.enabled:
        return Text("– switched off in settings")
    if printer.stale or printer.status is None:
        return Text(f"? {printer.reason}", style="bold")
    if printer.status in UNABLE_TO_PRINT:
        return Text(f"✗ {printer.reason}", style="bold white on red")
    if printer.status == PrinterStatus.PAPER_NEAR_END:
        return Text(f"! {printer.reason}", style="bold black on dark_orange")
    return Text(f"✓ {printer.reason}", style="green")


def queue_text(printer: PrinterRow) -> str:
    """The queue's size, marked when its jobs wait on a fault (the reason is in the detail below), or where its
    tickets go while the print worker hands them to the fallback."""
    if printer.fallback_to:
        return f"{printer.queue} → {printer.fallback_to}"
    return f"{printer.queue} waiting !" if printer.waiting_because else str(printer.queue)


def print_stickers(
    conn: apsw.Connection, printer: str, tables: list[str] | None, secret: bytes, base_url: str
) -> list[int]:
    """Queue the QR stickers of some tables (None: every active table) on a printer, noting the address they carry
    (`tablebox doctor` warns once it is no longer this box's). Refused without a stable address (public_base_url)."""
    if not base_url:
        raise DomainError("no_stable_address", NO_STABLE_ADDRESS.format(port="8080"))
    try:
        stickers = table_stickers(conn, secret, base_url, tables)
    except ValueError as exc:
        raise DomainError("no_stickers", str(exc)) from None
    jobs = queue_stickers(conn, printer, stickers)
    record_sticker_address(conn, base_url, len(stickers))
    return jobs


class PrintersScreen(ConsoleScreen):
    NAME = "Printers 打印机"
    PERMISSION = "print"
    BINDINGS = [*bindings_for("printers")]  # tui/keys.py
    DEFAULT_CSS = """
    PrintersScreen #printers { height: auto; max-height: 1fr; }
    PrintersScreen #detail { height: auto; padding: 0 1; border-top: solid $accent; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.printers: dict[str, PrinterRow] = {}
        self.fitted_to = 0  # the terminal width the names were fitted to
        self.unassigned: list[tuple[str, int]] = []

    def body(self) -> ComposeResult:
        yield DataTable(id="printers", cursor_type="row", zebra_stripes=True)
        yield Static("", id="detail")

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns("Printer", "Stations", "Queue", "Status 状态")

    async def reload(self) -> None:
        printers, self.unassigned = await self.console.db.call(printers_view, self.console.now())
        table = self.query_one(DataTable)
        keep = self.selected()
        table.clear()
        self.printers = {p.name: p for p in printers}
        names, stations = self.name_widths(printers)
        self.fitted_to = self.app.size.width
        for p in printers:
            table.add_row(
                fit(p.name, names),
                fit(", ".join(p.stations) or "–", stations),
                queue_text(p),
                status_text(p),
                key=p.name,
            )
        if keep in self.printers:
            table.move_cursor(row=table.get_row_index(keep))
        self.show_detail()

    def name_widths(self, printers: list[PrinterRow]) -> tuple[int, int]:
        """The printer's and the stations' widths: what the queue and the status (always whole) leave of the
        terminal, the stations giving way first, then the printer's name (the pane below has both whole)."""
        labels = [str(column.label) for column in self.query_one(DataTable).columns.values()]
        whole = [widest(labels[2], map(queue_text, printers)), widest(labels[3], map(status_text, printers))]
        room = room_left(self.app.size.width, whole, len(labels))  # for both names together
        name_needs = widest(labels[0], (p.name for p in printers))
        stations_need = widest(labels[1], (", ".join(p.stations) or "–" for p in printers))
        stations = max(min(stations_need, MIN_NAME), room - name_needs)
        name = max(min(name_needs, MIN_NAME), room - stations)
        return min(name_needs, name), min(stations_need, stations)

    def on_resize(self) -> None:
        if self.printers and self.app.size.width != self.fitted_to:  # the names' room changed
            self.run_worker(self.reload_if_shown, group="reload")

    def show_detail(self) -> None:
        text = Text()
        printer = self.printers.get(self.selected() or "")
        if printer is None:
            text.append("no printers: add one with `tablebox printers add`")
        else:
            now, store = self.console.now(), self.console.store
            text.append(f"{printer.name}", style="bold")
            text.append(f"  {printer.uri} · {printer.paper_mm} mm · {printer.text_mode}")
            text.append(f" · stations {', '.join(printer.stations) or '–'}")  # whole (the list may cut them)
            if printer.fallback:
                text.append(f" · falls back to {printer.fallback}")
            text.append("\n")
            text.append_text(status_text(printer))
            if printer.since and not printer.stale:
                text.append(f" since {local_time(printer.since, store, now)}")
            text.append(f" · last checked {local_time(printer.checked_at, store, now)}")
            if printer.detail and not printer.stale:  # the address and the likely cause (printers.connection)
                text.append(f"\n{printer.detail}")
            text.append(f"\nqueue: {printer.queue} job{'s' if printer.queue != 1 else ''}")
            if printer.waiting_because:
                text.append(f", waiting because: {printer.waiting_because}", style="bold")
            note = printer.hand_over_note(local_time(printer.fallback_since, store, now))
            if note:
                text.append(f"\n→ {note}", style="bold")
            for other in self.printers.values():
                if other.fallback_to == printer.name:
                    whose = ", ".join(other.stations) or other.name
                    text.append(f"\n→ also printing the tickets of {whose} (printer {other.name} cannot print)")
        if self.unassigned:
            waiting = ", ".join(f"{station or 'no station'} {n}" for station, n in self.unassigned)
            text.append(
                f"\n! not yet taken by any printer: {waiting} (is the print worker running? does every"
                " station have a printer?)",
                style="bold",
            )
        self.query_one("#detail", Static).update(text)

    def selected(self) -> str | None:
        key = self.selected_key()
        return None if key is None else str(key)

    # -- actions ----------------------------------------------------------------------------------------
    async def action_test_page(self) -> None:
        printer = self.selected()
        if printer is None:
            self.say("no printer selected", error=True)
            return
        await self.act(
            "print",
            "printer.test",
            f"printer {printer}",
            queue_test_page,
            printer,
            done=f"test page queued for {printer}",
        )

    @work(exclusive=True, group="dialog")
    async def action_again(self) -> None:
        """r: reprint a ticket of today."""
        day = self.today()
        answer = await self.app.push_screen_wait(
            PromptScreen(
                f"Reprint which ticket of today ({day})? 补打单号",
                placeholder="ticket number",
                check=lambda t: None if t.isdigit() else "a ticket number is digits",
            )
        )
        if answer is None:
            self.say("nothing reprinted")
            return
        ticket = int(answer)
        await self.act(
            "print",
            "order.reprinted",
            f"ticket {ticket} of {day}",
            reprint_ticket,
            day,
            ticket,
            done=lambda r: f"ticket #{ticket} reprint queued for {', '.join(r.stations)}",
        )

    async def choose_printer(self, question: str, *, not_now: bool = False) -> str | None:
        first = self.selected()
        names = sorted(self.printers, key=lambda n: n != first)  # the highlighted printer first
        choices = [(n, f"{n}  ({', '.join(self.printers[n].stations) or 'no station'})") for n in names]
        if not_now:
            choices.append((NOT_NOW, "not now 稍后"))
        picked = await self.app.push_screen_wait(ChooseScreen(question, choices))
        return None if picked in (None, NOT_NOW) else picked

    async def queue_stickers_for(self, tables: list[str] | None, printer: str) -> Any:
        what = "every table" if tables is None else ", ".join(tables)
        return await self.act(
            "print",
            "printer.stickers",
            f"printer {printer}",
            print_stickers,
            printer,
            tables,
            self.console.secret,
            self.console.public_base_url,
            details={"tables": tables or "all"},
            done=lambda jobs: f"{len(jobs)} QR sticker{'s' if len(jobs) != 1 else ''} ({what}) queued for {printer}",
        )

    @work(exclusive=True, group="dialog")
    async def action_stickers(self) -> None:
        tables = await self.console.db.call(list_tables)
        picked = await self.app.push_screen_wait(
            ChooseScreen(
                "QR stickers for which table? 打印哪桌的二维码",
                [(ALL_TABLES, f"every table 全部 ({len(tables)})"), *[(t.name, f"{t.name}  {t.area}") for t in tables]],
            )
        )
        if picked is None:
            self.say("no stickers printed")
            return
        printer = await self.choose_printer("Print the stickers on which printer? 用哪台打印机")
        if printer is None:
            self.say("no stickers printed")
            return
        await self.queue_stickers_for(None if picked == ALL_TABLES else [picked], printer)

    @work(exclusive=True, group="dialog")
    async def action_rekey(self) -> None:
        try:
            self.staff.require("rekey")  # before any question: a waiter is told at once
        except DomainError as exc:
            self.say(f"✗ refused: {exc.message}", error=True)
            return
        tables = await self.console.db.call(list_tables)
        picked = await self.app.push_screen_wait(
            ChooseScreen("Re-key which table? 给哪桌换二维码", [(str(t.id), f"{t.name}  {t.area}") for t in tables])
        )
        table = next((t for t in tables if str(t.id) == picked), None)
        if table is None:
            self.say("no table re-keyed")
            return
        if not await self.confirm(
            f"Re-key table {table.name}? Its printed QR sticker stops working at once: diners "
            "who scan it are asked to call staff. Put a new sticker on the table.\n"
            f"换码后 {table.name} 桌的旧二维码立即失效。"
        ):
            self.say(f"table {table.name} not re-keyed")
            return
        version = await self.act(
            "rekey",
            "table.rekeyed",
            f"table {table.name}",
            rekey_table,
            table.id,
            done=f"table {table.name} re-keyed: its old sticker no longer works",
        )
        if version is None:
            return
        printer = await self.choose_printer(f"Print the new sticker for {table.name} now? 打印新二维码", not_now=True)
        if printer is None:
            self.say(f"table {table.name} re-keyed: print its new sticker (s) before guests sit there")
            return
        await self.queue_stickers_for([table.name], printer)
