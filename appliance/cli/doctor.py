"""`tablebox doctor`: the technician's checklist (appliance.doctor), one line per check."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from appliance.cli.common import add_command, box_settings
from appliance.doctor import Mark, exit_code, run_checks
from appliance.settings import DATA_DIR_ENV, BoxSettings, SettingsError, default_data_dir


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "doctor",
        help="check the box: database, disk, clock, printers, backups, services",
        description="One line per check (✓ ok, ! look at it, ✗ failed) with what to do about each "
        "problem. Exit status 1 when any check failed.",
        examples=["tablebox doctor", "sudo -u tablebox /opt/tablebox/venv/bin/tablebox doctor"],
    )
    p.set_defaults(func=cmd_doctor)


def cmd_doctor(args: argparse.Namespace) -> int:
    try:
        settings, error = box_settings(args), None
    except SettingsError as exc:  # still check the rest, with the defaults
        settings = BoxSettings(data_dir=Path(args.data_dir or os.environ.get(DATA_DIR_ENV) or default_data_dir()))
        error = str(exc)
    checks = run_checks(settings, settings_error=error)
    for check in checks:
        print(check.line())
    failures = sum(c.mark is Mark.FAIL for c in checks)
    warnings = sum(c.mark is Mark.WARN for c in checks)
    print(f"\n{failures} failed, {warnings} to look at, {sum(c.mark is Mark.OK for c in checks)} ok")
    return exit_code(checks)
