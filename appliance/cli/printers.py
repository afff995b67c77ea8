"""`tablebox printers [test | reprint | add | remove | bill]`: the store's printers, their status and queue."""

from __future__ import annotations

import argparse

from appliance.cli.common import add_command, box_settings, plural
from appliance.db.connection import write_transaction
from appliance.db.printing import printer_rows, queue_bill, queue_reprint, queue_test_page, remove_printer, save_printer
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
                save_printer(
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
                )
            print(
                f"printer {args.name} saved ({args.uri}, {args.paper} mm, {args.mode}, stations: "
                f"{', '.join(stations) or 'none'}); restart the print worker to use it"
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
            listing = printer_rows(conn)
            if not listing:
                print("no printers configured")
            for p in listing:
                state = p.reason + (f" ({p.detail})" if p.detail and not p.stale else "")
                waiting = f", waiting: {p.waiting_because}" if p.waiting_because else ""
                print(
                    f"{p.name:<10} {state:<28} queue {p.queue:<4} stations {','.join(p.stations) or '-'}"
                    f"  {p.uri}{'' if p.enabled else '  (disabled)'}{waiting}"
                )
    return 0
