"""`tablebox doctor`: a checklist of what keeps the box taking orders, each problem with what to do about it."""

from __future__ import annotations

import shutil
import stat
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path

import apsw

from appliance import fieldaddress, fieldhealth, offcard
from appliance.backup import backup_dir, list_backups, restore_advice
from appliance.db.integrity import database_problems, file_problem, newest_order_at, open_for_check, schema_problem
from appliance.db.migrate import available, current_version
from appliance.db.printing import load_printers, printer_language_misfits, printer_rows
from appliance.diskspace import MB, free_bytes
from appliance.domain.printing import UNABLE_TO_PRINT, PrinterStatus, parse_printer_address
from appliance.errors import SecretError, SecretExposed, StoreError
from appliance.settings import BoxSettings
from appliance.store import read_secret

EARLIEST_YEAR = 2025  # a Pi without a clock battery starts in 1970 until it reaches a time server
CLOCK_SLACK = timedelta(minutes=5)
DISK_WARN_FACTOR = 4  # warn while free space is under 4 x min_free_mb, fail under min_free_mb
BACKUP_MAX_AGE = timedelta(hours=48)
UNITS = ("tablebox-web.service", "tablebox-printd.service", "tablebox-backup.timer")


class Mark(StrEnum):
    OK = "✓"
    WARN = "!"
    FAIL = "✗"
    SKIP = "-"


@dataclass(frozen=True)
class Check:
    name: str
    mark: Mark
    detail: str
    fix: str = ""

    def line(self) -> str:
        return f"{self.mark} {self.name}: {self.detail}" + (f"  → {self.fix}" if self.fix else "")


UnitStates = Callable[[Sequence[str]], dict[str, str] | None]


def systemd_unit_states(units: Sequence[str]) -> dict[str, str] | None:
    """`systemctl is-active` of each unit; None when this machine does not run systemd (a laptop, a container)."""
    systemctl = shutil.which("systemctl")
    if systemctl is None or not Path("/run/systemd/system").is_dir():
        return None
    result = subprocess.run([systemctl, "is-active", *units], capture_output=True, text=True, timeout=10)
    states = result.stdout.split()
    return {unit: (states[i] if i < len(states) else "unknown") for i, unit in enumerate(units)}


def run_checks(
    settings: BoxSettings,
    *,
    settings_error: str | None = None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    printers: bool = True,
    unit_states: UnitStates = systemd_unit_states,
    measure_free: Callable[[str | Path], int] = free_bytes,
) -> list[Check]:
    now = clock()
    checks = [_settings_check(settings, settings_error)]
    conn: apsw.Connection | None = None
    database = _database_check(settings)
    checks.append(database)
    if database.mark is Mark.OK:
        conn = open_for_check(settings.db_path)
    try:
        if conn is not None:
            checks.append(_migrations_check(conn))
        checks.append(_secret_check(settings))
        checks.append(_disk_check(settings, measure_free))
        checks.append(_clock_check(settings, conn, now))
        if conn is not None and printers:
            checks.extend(_printer_checks(conn, now))
            checks.extend(_printer_language_checks(conn))
        checks.append(_backup_check(settings, now))
        checks.extend(offcard.checks(settings, now))
        checks.extend(fieldaddress.checks(settings, now))
        checks.extend(fieldhealth.checks(settings, now))
        checks.extend(_unit_checks(unit_states))
    finally:
        if conn is not None:
            conn.close()
    return checks


def failed(checks: Sequence[Check]) -> bool:
    return any(c.mark is Mark.FAIL for c in checks)


def _settings_check(settings: BoxSettings, error: str | None) -> Check:
    if error:
        return Check("settings", Mark.FAIL, error, "correct that file (`tablebox --help` lists every setting)")
    if settings.config_file is None:
        return Check("settings", Mark.OK, "no settings file: defaults and TABLEBOX_* variables")
    return Check("settings", Mark.OK, f"{settings.config_file} is valid")


def _database_check(settings: BoxSettings) -> Check:
    path = settings.db_path
    if not path.exists():
        return Check(
            "database",
            Mark.FAIL,
            f"no store at {path}",
            f"`tablebox init` on a new box, or `tablebox restore BACKUP` (backups: {backup_dir(settings)})",
        )
    try:
        problem = file_problem(path)  # empty or not SQLite: read as bytes, never opened
        if problem is None:
            problems = database_problems(path, full=True)
            if problems:
                problem = f"{path} is damaged ({'; '.join(problems[:2])})"
        if problem is None:
            problem = schema_problem(path)  # someone else's database, or never initialised
    except StoreError as exc:  # cannot be read or opened at all
        return Check("database", Mark.FAIL, str(exc), "check the data folder's owner and mode")
    if problem is not None:
        return Check("database", Mark.FAIL, problem, restore_advice(settings))
    return Check("database", Mark.OK, f"{path}: integrity_check ok ({-(-path.stat().st_size // MB)} MB)")


def _migrations_check(conn: apsw.Connection) -> Check:
    have = current_version(conn)
    known = max((n for n, _, _ in available()), default=0)
    if have == known:
        return Check("migrations", Mark.OK, f"schema {have} (current)")
    if have < known:
        return Check(
            "migrations",
            Mark.WARN,
            f"schema {have}, this Tablebox brings {known}",
            "the web server applies them when it starts: `systemctl restart tablebox-web`",
        )
    return Check(
        "migrations",
        Mark.FAIL,
        f"schema {have} is newer than this Tablebox knows ({known})",
        "install the Tablebox version that wrote this database",
    )


def _secret_check(settings: BoxSettings) -> Check:
    path = settings.secret_path
    if not path.exists():
        return Check(
            "store secret",
            Mark.FAIL,
            f"{path} is missing: no table sticker can be checked",
            "copy back the store.secret kept from this box (a new secret voids every printed sticker)",
        )
    try:
        read_secret(path)  # the same checks, in the same order, as every command that reads it
    except SecretExposed:
        mode = stat.S_IMODE(path.stat().st_mode)
        return Check(
            "store secret",
            Mark.FAIL,
            f"{path} has mode {mode:04o}: other users can read it and forge table codes "
            "(`tablebox serve` refuses to start)",
            f"chmod 600 {path}",
        )
    except SecretError as exc:
        return Check("store secret", Mark.FAIL, str(exc), f"restore the store.secret kept from this box to {path}")
    return Check("store secret", Mark.OK, f"{path} (mode {stat.S_IMODE(path.stat().st_mode):04o})")


def _disk_check(settings: BoxSettings, measure: Callable[[str | Path], int]) -> Check:
    try:
        free = measure(settings.data_dir)
    except OSError as exc:
        return Check(
            "disk space",
            Mark.FAIL,
            f"cannot ask for free space on {settings.data_dir}: {exc.strerror}",
            "check that the data folder exists",
        )
    free_mb = free // MB
    limit = settings.min_free_mb
    fix = (
        f"free space: old files in {backup_dir(settings)}, `journalctl --vacuum-size=50M`, "
        "`apt-get clean`; or move to a bigger SD card"
    )
    if free < limit * MB:
        return Check(
            "disk space",
            Mark.FAIL,
            f"{free_mb} MB free, under min_free_mb ({limit} MB): new orders are being refused (disk_full)",
            fix,
        )
    if free < DISK_WARN_FACTOR * limit * MB:
        return Check("disk space", Mark.WARN, f"{free_mb} MB free: orders will be refused under {limit} MB", fix)
    return Check("disk space", Mark.OK, f"{free_mb} MB free (orders are refused under {limit} MB)")


def _clock_check(settings: BoxSettings, conn: apsw.Connection | None, now: datetime) -> Check:
    fix = (
        "connect the box to the internet so it gets the time (`timedatectl` shows it), or set it: "
        "`timedatectl set-time 'YYYY-MM-DD HH:MM:SS'`"
    )
    shown = now.astimezone().strftime("%Y-%m-%d %H:%M %Z")
    if now.year < EARLIEST_YEAR:
        return Check(
            "clock",
            Mark.FAIL,
            f"the clock says {shown}: the box has not got the time yet "
            "(tickets, business days and backups would carry this date)",
            fix,
        )
    newest_order = newest_order_at(conn) if conn is not None else None
    if newest_order:
        at = datetime.fromisoformat(newest_order.replace("Z", "+00:00"))
        if now < at - CLOCK_SLACK:
            return Check(
                "clock",
                Mark.FAIL,
                f"the clock says {shown}, before the newest order ({at.astimezone():%Y-%m-%d %H:%M}): it is wrong",
                fix,
            )
    backups = list_backups(backup_dir(settings))
    if backups:
        local_now = now.astimezone().replace(tzinfo=None)
        if local_now < backups[0][0] - CLOCK_SLACK:
            return Check(
                "clock",
                Mark.FAIL,
                f"the clock says {shown}, before the newest backup ({backups[0][1].name}): it is wrong",
                fix,
            )
    return Check("clock", Mark.OK, shown)


def _address_problem(uri: str) -> str | None:
    """What is wrong with a stored printer address: one saved before `printers add` checked every form (issue 17),
    or edited in the database. The print worker shows such a printer as a set-up fault."""
    try:
        parse_printer_address(uri, resolve_virtual=lambda name: "tcp://127.0.0.1:9")
    except ValueError as exc:
        return str(exc)
    return None


# What to do for each status; the detail (printers.connection) names the address and the likely cause.
PRINTER_FIXES: dict[PrinterStatus | None, str] = {
    PrinterStatus.PAPER_NEAR_END: "have a new roll ready",
    PrinterStatus.PAPER_OUT: "load a new roll",
    PrinterStatus.COVER_OPEN: "close the cover",
    PrinterStatus.OFFLINE: "see to the printer (its light, feed and online buttons)",
    PrinterStatus.NO_ANSWER: "switch the printer off and on (a serial printer: its baud rate must be the address's)",
    PrinterStatus.UNPLUGGED: "plug the printer in and switch it on (power, USB or network cable)",
    PrinterStatus.NO_ACCESS: "set the box up as the detail says and `systemctl restart tablebox-printd`",
}


def _printer_checks(conn: apsw.Connection, now: datetime) -> list[Check]:
    """What the print worker last said about each enabled printer (stale: no heartbeat, the worker is not running)."""
    printers = [p for p in printer_rows(conn, now) if p.enabled]
    if not printers:
        return [
            Check(
                "printers",
                Mark.WARN,
                "no printer configured: no kitchen ticket is printed",
                "`tablebox printers add NAME URI --stations kitchen`",
            )
        ]
    stale = [p.name for p in printers if p.stale]
    if stale:
        return [
            Check(
                "print worker",
                Mark.FAIL,
                f"no recent status from {', '.join(stale)}: the print worker is not running",
                "`systemctl start tablebox-printd`; why it stopped: `journalctl -u tablebox-printd -n 50`",
            )
        ]
    checks = []
    for p in printers:
        address_problem = _address_problem(p.uri)
        if address_problem:
            checks.append(
                Check(
                    f"printer {p.name}",
                    Mark.FAIL,
                    f"its address is not valid: {address_problem}",
                    f"`tablebox printers add {p.name} ADDRESS --stations ...` with the right address (the same name"
                    " changes it), then `systemctl restart tablebox-printd`",
                )
            )
        elif p.status is PrinterStatus.READY:
            checks.append(Check(f"printer {p.name}", Mark.OK, p.reason))
        else:
            mark = Mark.FAIL if p.status in UNABLE_TO_PRINT else Mark.WARN
            checks.append(
                Check(
                    f"printer {p.name}",
                    mark,
                    p.reason + (f" ({p.detail})" if p.detail else ""),
                    f"{PRINTER_FIXES.get(p.status, 'see to the printer')}, then `tablebox printers test {p.name}`",
                )
            )
    return checks


def _printer_language_checks(conn: apsw.Connection) -> list[Check]:
    """Each printer that prints a station's tickets (itself, or as a fallback) in a text mode that cannot print the
    store's languages: the languages were changed after the printer was added, or it was added with --force."""
    checks = []
    for p in load_printers(conn):
        misfits = printer_language_misfits(conn, p.name, p.stations, p.text_mode, p.font_coverage, p.fallback)
        for _, problem in misfits:
            checks.append(
                Check(
                    f"printer {p.name} languages",
                    Mark.WARN,
                    problem,
                    f"`tablebox printers add {p.name} {p.uri} --mode ...` with a mode named there (`--stations` and"
                    " the rest as before), or the store's languages in the console's settings",
                )
            )
    return checks


def _backup_check(settings: BoxSettings, now: datetime) -> Check:
    folder = backup_dir(settings)
    backups = list_backups(folder)
    fix = "`tablebox backup` now; the nightly one runs from `tablebox-backup.timer` (`systemctl status tablebox-backup.timer`)"
    if not backups:
        return Check("backups", Mark.WARN, f"no backup in {folder} yet", fix)
    when, path = backups[0]
    age = now.astimezone().replace(tzinfo=None) - when
    hours = max(0, int(age.total_seconds() // 3600))
    if age > BACKUP_MAX_AGE:
        return Check("backups", Mark.WARN, f"the newest backup, {path.name}, is {hours // 24} days old", fix)
    return Check("backups", Mark.OK, f"newest {path} ({hours} h ago, {len(backups)} kept)")


def _unit_checks(unit_states: UnitStates) -> list[Check]:
    states = unit_states(UNITS)
    if states is None:
        return [Check("services", Mark.SKIP, "not checked (this machine does not run systemd)")]
    checks = []
    for unit in UNITS:
        state = states.get(unit, "unknown")
        if state == "active":
            checks.append(Check(unit, Mark.OK, "active"))
        else:
            checks.append(
                Check(
                    unit,
                    Mark.FAIL,
                    state,
                    f"`systemctl enable --now {unit}`; why it stopped: `journalctl -u {unit} -n 50`",
                )
            )
    return checks


def exit_code(checks: Sequence[Check]) -> int:
    return 1 if failed(checks) else 0
