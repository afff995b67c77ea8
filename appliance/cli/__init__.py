"""The `tablebox` command line (also `python -m appliance`): the composition root of the appliance.

One module per command group (store: init/demo/serve, tables, printers, stickers, staff, console, daemons:
printd/syncd, sync, menu: menu/photo, backup: backup/restore, doctor, relay), each registering its parsers; what
they share is in `common`. Here: the parser and `main()`, which turns a TableboxError into one line on stderr and
its exit code (no traceback for an expected failure). Nothing in the project imports this package (tests do); the
entry point is `appliance.cli:main`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from appliance import __version__
from appliance.backup import restore_advice
from appliance.cli import (
    backup,
    console,
    daemons,
    doctor,
    maintenance,
    menu,
    printers,
    relay,
    staff,
    stickers,
    store,
    sync,
    tables,
    version,
)
from appliance.cli.common import HelpFormatter, box_settings, examples_epilog, global_options
from appliance.db.integrity import refuse_damaged_store
from appliance.errors import TableboxError
from appliance.settings import settings_help
from appliance.store import refuse_newer_store

EXAMPLES = (
    "tablebox demo",
    "tablebox init --store-name '川味小馆' --currency CNY && tablebox serve --urls",
    "tablebox --data-dir /var/lib/tablebox tables add A1 --area '大厅 Hall'",
    "tablebox doctor",
)

# In the order `tablebox --help` lists them.
REGISTER = (
    store.register,
    console.register,
    staff.register,
    daemons.register,
    sync.register,
    printers.register,
    stickers.register,
    menu.register_photo,
    tables.register,
    menu.register_menu,
    backup.register_backup,
    backup.register_restore,
    maintenance.register,
    doctor.register,
    relay.register,
    version.register,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tablebox",
        description="Tablebox: QR ordering, kitchen tickets and a manager's console for one restaurant, on one box.",
        epilog=examples_epilog(EXAMPLES, settings_help()),
        formatter_class=HelpFormatter,
        parents=[global_options(top=True)],
    )
    parser.add_argument("--version", action="version", version=f"tablebox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for register in REGISTER:
        register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if getattr(args, "check_database", False):  # the processes that serve, print or sync: the file, quick_check
            settings = box_settings(args)
            refuse_damaged_store(settings.db_path, lambda: restore_advice(settings))
            refuse_newer_store(settings)  # a store a newer release migrated (provision.sh rollback, StoreTooNew)
        code: int = args.func(args)
        return code
    except TableboxError as exc:
        return refuse(exc)
    except BaseExceptionGroup as group:  # raised through a task group (a server starting): the first expected one
        expected, unexpected = group.split(TableboxError)
        if expected is None or unexpected is not None:
            raise
        return refuse(_first_leaf(expected))
    except KeyboardInterrupt:
        return 130


def refuse(exc: TableboxError) -> int:
    print(f"tablebox: {exc.for_people()}", file=sys.stderr)
    return exc.exit_code


def _first_leaf(group: BaseExceptionGroup[TableboxError]) -> TableboxError:
    first = group.exceptions[0]
    return _first_leaf(first) if isinstance(first, BaseExceptionGroup) else first
