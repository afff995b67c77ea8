"""`tablebox printers [test | reprint | add | remove | bill]`: the store's printers, their status and queue."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from appliance.cli.common import add_command, box_settings, plural
from appliance.db.connection import write_transaction
from appliance.db.printing import (
    PrinterRow,
    printer_rows,
    queue_bill,
    queue_reprint,
    queue_test_page,
    remove_printer,
    save_printer,
)
from appliance.db.store_settings import load_store_settings
from appliance.domain.printing import FONT_COVERAGES
from appliance.store import store_connection


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "printers",
        help="the printers with their status and queue; test; reprint",
        description="Without a subcommand: every printer with what it said last (ready, paper out, "
        "cover open, unplugged...), its queue and its stations.",
        examples=[
            "tablebox printers",
            "tablebox printers test kitchen",
            "tablebox printers add kitchen usb://04b8:0202 --stations kitchen",
        ],
    )
    p.set_defaults(func=cmd_printers, printers_command=None)
    psub = p.add_subparsers(dest="printers_command", metavar="ACTION")
    t = add_command(psub, "test", help="print a test page on a printer", examples=["tablebox printers test kitchen"])
    t.add_argument("name", help="the printer's name")
    r = add_command(
        psub,
        "reprint",
        help="print an order's tickets again, headed REPRINT",
        examples=["tablebox printers reprint 42", "tablebox printers reprint 42 --station bar"],
    )
    r.add_argument("order_id", type=int, help="the order's id")
    r.add_argument("--station", help="only this station's ticket")
    a = add_command(
        psub,
        "add",
        help="add or change a printer",
        description="Add a printer (or change the one of that name). Addresses: "
        "usb://VID:PID[/SERIAL], serial:///dev/ttyUSB0?baudrate=19200, tcp://HOST:9100, "
        "file:///dev/usb/lp0.",
        examples=[
            "tablebox printers add kitchen usb://04b8:0202 --stations kitchen",
            "tablebox printers add bar tcp://192.168.1.50:9100 --stations bar --paper 58 --fallback kitchen",
            "tablebox printers add old serial:///dev/ttyUSB0?baudrate=19200 --mode raster",
            "tablebox printers add kitchen usb://04b8:0202 --stations kitchen --fallback spare --fallback-after 30",
        ],
    )
    a.add_argument("name")
    a.add_argument("uri")
    a.add_argument("--stations", default="", help="comma-separated stations it prints for, e.g. kitchen")
    a.add_argument("--paper", type=int, default=80, choices=(58, 80), help="paper width in mm")
    a.add_argument(
        "--mode",
        default="gb18030",
        choices=("gb18030", "codepage", "raster"),
        help="gb18030: the printer's Chinese font; raster: drawn by the box (any printer, any script); "
        "codepage: Latin menus",
    )
    a.add_argument("--copies", type=int, default=1)
    a.add_argument("--no-cutter", action="store_true", help="the printer has no cutter")
    a.add_argument("--buzzer", action="store_true", help="beep on every ticket")
    a.add_argument("--fallback", metavar="PRINTER", help="print here when this one stays faulty")
    a.add_argument(
        "--fallback-after",
        metavar="SECONDS",
        type=int,
        default=60,
        help="how long this printer stays faulty before its tickets go to the fallback (5-3600, default 60)",
    )
    a.add_argument(
        "--large-print",
        action="store_true",
        help="dishes and notes larger still (the table is always four times the normal size)",
    )
    a.add_argument(
        "--font-coverage",
        default="gb2312",
        choices=FONT_COVERAGES,
        help="gb18030 mode: the printer's Chinese font has GB2312's characters (most printers, the default) or "
        "the whole GB18030 set (traditional hanzi too); what it lacks is drawn by the box",
    )
    a.add_argument(
        "--force",
        action="store_true",
        help="save it even though its text mode cannot print the store's languages (you are told what happens)",
    )
    rm = add_command(psub, "remove", help="remove a printer", examples=["tablebox printers remove bar"])
    rm.add_argument("name")
    b = add_command(
        psub, "bill", help="print the bill of a table's current visit", examples=["tablebox printers bill A1 kitchen"]
    )
    b.add_argument("table", help="the table's name")
    b.add_argument("printer", help="the printer's name")


def cmd_printers(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    action = args.printers_command
    with store_connection(settings) as conn:
        if action == "test":
            with write_transaction(conn):
                job = queue_test_page(conn, args.name)
            print(f"test page queued for {args.name} (job {job})")
        elif action == "add":
            stations = [x.strip() for x in args.stations.split(",") if x.strip()]
            with write_transaction(conn):
                notes = save_printer(
                    conn,
                    args.name,
                    args.uri,
                    stations=stations,
                    paper_mm=args.paper,
                    text_mode=args.mode,
                    copies=args.copies,
                    cutter=not args.no_cutter,
                    buzzer=args.buzzer,
                    fallback=args.fallback,
                    fallback_after_seconds=args.fallback_after,
                    large_print=args.large_print,
                    font_coverage=args.font_coverage,
                    force=args.force,
                )
            for note in notes:
                print(f"! {note}")
            fallback = f", falls back to {args.fallback} after {args.fallback_after} s" if args.fallback else ""
            print(
                f"printer {args.name} saved ({args.uri}, {args.paper} mm, {args.mode}, stations: "
                f"{', '.join(stations) or 'none'}{fallback}); restart the print worker to use it"
            )
        elif action == "remove":
            with write_transaction(conn):
                remove_printer(conn, args.name)
            print(f"printer {args.name} removed; restart the print worker")
        elif action == "bill":
            with write_transaction(conn):
                queue_bill(conn, args.table, args.printer)
            print(f"bill of table {args.table} queued for {args.printer}")
        elif action == "reprint":
            with write_transaction(conn):
                jobs = queue_reprint(conn, args.order_id, args.station)
            print(f"reprint of order {args.order_id} queued ({plural(len(jobs), 'ticket')})")
        else:
            now = datetime.now(UTC)
            listing = printer_rows(conn, now)
            tz = load_store_settings(conn).tz
            if not listing:
                print("no printers configured")
            for p in listing:
                print(listing_line(p, listing, tz, now))
    return 0


def clock(stamp: str, tz: ZoneInfo, now: datetime) -> str:
    """A stored UTC time as the store's clock shows it: "12:01" today, "12-03 12:01" another day."""
    local = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(tz)
    return local.strftime("%H:%M" if local.date() == now.astimezone(tz).date() else "%m-%d %H:%M")


def listing_line(p: PrinterRow, listing: list[PrinterRow], tz: ZoneInfo, now: datetime) -> str:
    """One printer of `tablebox printers`: status, queue, stations, address, and where its tickets go while the
    worker hands them to the fallback (or whose tickets it prints meanwhile)."""
    state = p.reason + (f" ({p.detail})" if p.detail and not p.stale else "")
    # The jobs wait for what the status already says ("paper out: ..."): said once.
    said = {p.reason, f"{p.reason}: {p.detail}" if p.detail else p.reason}
    waiting = f", waiting: {p.waiting_because}" if p.waiting_because and p.waiting_because not in said else ""
    note = p.hand_over_note(clock(p.fallback_since, tz, now)) if p.fallback_since else None
    handing = f", {note}" if note else ""
    covering = [o for o in listing if o.fallback_to == p.name and o.fallback_since]
    also = "".join(
        f", also printing the tickets of {', '.join(o.stations) or o.name} (printer {o.name})" for o in covering
    )
    return (
        f"{p.name:<10} {state:<28} queue {p.queue:<4} stations {','.join(p.stations) or '-'}"
        f"  {p.uri}{'' if p.enabled else '  (disabled)'}{waiting}{handing}{also}"
    )
