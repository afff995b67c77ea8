"""`tablebox console`: the manager's console (Textual) on the store database."""

from __future__ import annotations

import argparse

from appliance.cli.common import add_command, box_settings
from appliance.store import read_secret, require_store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "console",
        help="the manager's console: orders, tables, menu, printers, sync, reports, settings, audit",
        description="The Textual console on the store database, live. Staff log in with their PIN "
        "(tablebox staff add). Screens: 1 orders, 2 tables, 3 menu, 4 printers, 5 sync, "
        "6 reports, 7 settings, 8 audit (also F1-F8); ? shows a screen's keys, ctrl+p finds any action by name; "
        "ctrl+l locks.",
        examples=["tablebox console", "sudo -u tablebox /opt/tablebox/venv/bin/tablebox console"],
    )
    p.set_defaults(func=cmd_console)


def cmd_console(args: argparse.Namespace) -> int:
    from tui.app import ConsoleApp  # Textual: only for the console

    settings = box_settings(args)
    require_store(settings)
    # Stickers carry only a stable address (public_base_url); empty: the console refuses to print them and says why.
    ConsoleApp(
        settings.db_path, read_secret(settings.secret_path), public_base_url=settings.public_base_url, quiet_gc=True
    ).run()
    return 0
