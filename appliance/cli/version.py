"""`tablebox version`: the release that runs, its Python, and the store's schema against what it knows."""

from __future__ import annotations

import argparse

import apsw

from appliance.cli.common import add_command, box_settings
from appliance.db.integrity import open_for_check
from appliance.db.migrate import available, current_version
from appliance.release import describe, running_release


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "version",
        help="show the release that runs, its Python and the store's schema",
        description="The Tablebox version and, on a box, the release provision.sh installed "
        "(/opt/tablebox/releases/ID), the Python that runs it and the store's schema version against "
        "the newest this release knows.",
        examples=["tablebox version", "sudo -u tablebox /opt/tablebox/venv/bin/tablebox version"],
    )
    p.set_defaults(func=cmd_version)


def cmd_version(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    known = available()[-1][0]
    schema: int | None = None
    if settings.db_path.exists():
        try:
            conn = open_for_check(settings.db_path)
        except apsw.Error:
            conn = None
        if conn is not None:
            try:
                schema = current_version(conn)
            finally:
                conn.close()
    for line in describe(running_release(), schema, known):
        print(line)
    return 0
