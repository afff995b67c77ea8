"""`tablebox stickers`: the tables' QR stickers, on an A4 sheet (PDF, PNG) or on a receipt printer."""

from __future__ import annotations

import argparse
from pathlib import Path

from appliance.cli.common import add_command, box_settings, plural, web_options
from appliance.db.connection import write_transaction
from appliance.db.printing import queue_stickers, table_stickers
from appliance.db.tables import record_sticker_address
from appliance.domain.printing import WifiInfo
from appliance.errors import UsageError
from appliance.settings import sticker_base_url
from appliance.store import read_secret, require_store, store_connection


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "stickers",
        parents=[web_options()],
        help="table QR stickers: an A4 sheet (PDF/PNG) or on a receipt printer",
        description="Each table's ordering URL as a QR code (quiet zone 4 modules, error correction M) "
        "with the store's name, the table and 扫码点餐 / Scan to order; optionally the "
        "store Wi-Fi's QR code too. Re-keying a table voids its old sticker. The URLs start with the "
        "public_base_url setting (a fixed address or name), never the box's current DHCP lease; the address used "
        "is noted so that `tablebox doctor` warns when it is no longer this box's.",
        examples=[
            "tablebox stickers --pdf stickers.pdf",
            "tablebox stickers --pdf stickers.pdf --public-base-url http://192.168.1.50:8080",
            "tablebox stickers --print kitchen --table A1 --table A2",
            "tablebox stickers --png sheet.png --wifi-ssid Guests --wifi-password 'dumplings8'",
        ],
    )
    p.add_argument("--pdf", metavar="FILE", help="write an A4 sheet of stickers (12 a page) as a PDF")
    p.add_argument("--png", metavar="FILE", help="write the A4 pages as PNG images")
    p.add_argument("--print", dest="print_on", metavar="PRINTER", help="print them on this receipt printer")
    p.add_argument("--table", action="append", metavar="NAME", help="only this table (repeat for several)")
    p.add_argument("--wifi-ssid", metavar="SSID", help="add the store Wi-Fi's QR code")
    p.add_argument("--wifi-password", metavar="PASSWORD", help="the Wi-Fi's password (none: an open network)")
    p.set_defaults(func=cmd_stickers)


def cmd_stickers(args: argparse.Namespace) -> int:
    from printers.stickers import write_sheet  # drawing (Pillow, qrcode): only for the sheet

    settings = box_settings(args)
    require_store(settings)
    if not (args.pdf or args.png or args.print_on):
        raise UsageError("say where the stickers go: --pdf FILE, --png FILE or --print PRINTER")
    wifi = (
        WifiInfo(args.wifi_ssid, args.wifi_password or "", "WPA" if args.wifi_password else "nopass")
        if args.wifi_ssid
        else None
    )
    base_url = sticker_base_url(settings)  # SettingsError (exit 2) without a stable address
    secret = read_secret(settings.secret_path)
    with store_connection(settings, readonly=True) as conn:
        try:
            stickers = table_stickers(conn, secret, base_url, args.table or None)
        except ValueError as exc:  # no tables, an unknown table
            raise UsageError(str(exc)) from None
    for target in (args.pdf, args.png):
        if target:
            try:
                written_files = write_sheet(stickers, Path(target), wifi=wifi)
            except ValueError as exc:  # a wrong suffix, a Wi-Fi password WPA refuses...
                raise UsageError(str(exc)) from None
            for written in written_files:
                print(f"wrote {written}")
    with store_connection(settings) as conn, write_transaction(conn):
        if args.print_on:
            queue_stickers(conn, args.print_on, stickers, wifi)
        record_sticker_address(conn, base_url, len(stickers))
    if args.print_on:
        print(f"{plural(len(stickers), 'sticker')} queued for {args.print_on}")
    print(f"stickers made for {base_url}")
    return 0
