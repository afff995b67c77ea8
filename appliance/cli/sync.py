"""`tablebox sync [status | retry | pull]`: each ERP target's state and backlog, retrying, pulling now; and the
registration of the settings' [sync.NAME] targets that `serve` and `syncd` do at start."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

import apsw

from appliance.cli.common import add_command, box_settings
from appliance.db.connection import write_transaction
from appliance.db.migrate import migrate
from appliance.db.store_settings import load_store_settings
from appliance.db.sync_checks import last_checks
from appliance.db.sync_state import SyncState, retry_now, sync_status
from appliance.logs import configure_logging
from appliance.settings import BoxSettings, SettingsError
from appliance.store import store_connection

if TYPE_CHECKING:
    from sync.config import Target


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "sync",
        help="ERP sync: each target's state and backlog; retry; pull now",
        description="Without a subcommand: each sync target's state (ok, retrying since, failing, "
        "idle), backlog, parked rows, last success and last error.",
        examples=["tablebox sync", "tablebox sync retry erp", "tablebox sync pull"],
    )
    p.set_defaults(func=cmd_sync, sync_command="status", target=None)
    ysub = p.add_subparsers(dest="sync_command", metavar="ACTION")
    add_command(
        ysub,
        "status",
        help="each target's state, backlog, parked rows, last success and error",
        examples=["tablebox sync status"],
    )
    y = add_command(
        ysub,
        "retry",
        help="put parked rows back in line and send waiting rows now",
        examples=["tablebox sync retry", "tablebox sync retry erp"],
    )
    y.add_argument("target", nargs="?", help="only this target (default: every enabled one)")
    y = add_command(
        ysub,
        "pull",
        help="pull catalog and stock from the ERP now",
        examples=["tablebox sync pull", "tablebox sync pull erp"],
    )
    y.add_argument("target", nargs="?", help="only this target (default: every enabled one)")
    y = add_command(
        ysub,
        "check",
        help="check each target's server: reachable, signed in, set up as the box expects",
        description="Runs each target's checklist against its real server (reachable, authenticated, the API "
        "user's rights, custom fields, payment modes, tax setting, warehouse, every dish's ERP code found) and "
        "prints ✓ ok, ! to look at, ✗ failed, with what to do. Exit 0 when nothing failed (warnings included), "
        "1 when a check failed, 2 for an unknown target. The result is kept: the console's sync screen shows it.",
        examples=["tablebox sync check", "tablebox sync check erp", "tablebox sync check erp --json"],
    )
    y.add_argument("target", nargs="?", help="only this target (default: every enabled one)")
    y.add_argument("--json", action="store_true", help="print the result as JSON instead of lines")


def register_sync_targets(settings: BoxSettings) -> dict[str, list[str]]:
    """The settings' [sync.NAME] targets into the store (migrated first: this may run before the web server has),
    so orders taken from now on queue a row for each enabled one."""
    from sync.config import register_targets

    with store_connection(settings) as conn:
        migrate(conn)
        return register_targets(conn, settings)


def _when(stamp: str | None) -> str:
    return stamp[:19].replace("T", " ") + "Z" if stamp else "-"


def cmd_sync(args: argparse.Namespace) -> int:
    from sync.config import targets

    settings = box_settings(args)
    with store_connection(settings) as conn:
        configure_logging(settings.log_format, settings.log_level)  # log lines to stderr, the answer on stdout
        configured = targets(settings)
        known = {t.name: t for t in sync_status(conn)}
        if args.sync_command == "check":  # the settings again: the adapter needs the address and keys
            return _sync_check(conn, settings, configured, args.target, as_json=args.json)
        if args.sync_command == "pull":  # needs the settings (address, keys), not the store's registration
            return _sync_pull(
                conn,
                settings,
                configured,
                [args.target] if args.target else [n for n, t in configured.items() if t.enabled],
            )
        wanted = [args.target] if args.target else [n for n, t in known.items() if t.enabled]
        for name in wanted:
            if name not in known:
                raise SettingsError(
                    f"no sync target called {name!r} in the store (targets: "
                    f"{', '.join(known) or 'none'}); targets come from [sync.NAME] tables of the settings"
                )
        if args.sync_command == "retry":
            for name in wanted:
                with write_transaction(conn):
                    moved = retry_now(conn, name)
                print(
                    f"{name}: {moved['unparked']} parked row(s) back in line, {moved['hurried']} waiting row(s)"
                    " sent at the worker's next pass"
                )
            return 0
        if not known and not configured:
            print("no sync targets: add a [sync.NAME] table to the settings file (README: Settings)", file=sys.stderr)
        try:
            checks = last_checks(conn)
        except apsw.SQLError:  # a store the web server has not migrated to 0012 yet: no check ran on it
            checks = {}
        for t in known.values():
            state = t.state.value + (f" since {_when(t.since)}" if t.since else "")
            print(f"{t.name}  ({t.kind}{'' if t.enabled else ', disabled'})  {state}")
            print(
                f"    backlog {t.backlog}, parked {t.parked}, oldest waiting {_when(t.oldest_waiting)},"
                f" last success {_when(t.last_success)}"
            )
            if t.last_error and t.state in (SyncState.RETRYING, SyncState.FAILING):
                print(f"    last error: {t.last_error}")
            if t.state is SyncState.FAILING:
                print(f"    the ERP refused {t.parked} row(s): fix the cause, then `tablebox sync retry {t.name}`")
            check = checks.get(t.name)
            if check is not None and check.outcome is not None:
                print(f"    last check {_when(check.ran_at)}: {check.summary()} (`tablebox sync check {t.name}`)")
        for name in configured:
            if name not in known:
                print(f"{name}  in the settings, not registered yet: restart tablebox-web and tablebox-syncd")
        return 0


def _sync_pull(
    conn: apsw.Connection, settings: BoxSettings, configured: Mapping[str, Target], wanted: list[str]
) -> int:
    from sync.adapters import make_adapter
    from sync.worker import pull_now

    failed = 0
    for name in wanted:
        if name not in configured:
            raise SettingsError(f"{settings.config_file or 'the settings'}: no [sync.{name}] table to pull with")
        try:
            adapter = make_adapter(name, configured[name].config)
        except (ValueError, KeyError, TypeError) as exc:
            raise SettingsError(f"{settings.config_file or 'the settings'}: [sync.{name}]: {exc}") from None
        try:
            result = pull_now(conn, adapter)
        except Exception as exc:  # Retryable, Rejected: the menu is left as it was
            print(f"{name}: pull failed, the menu is unchanged: {exc}", file=sys.stderr)
            failed += 1
            continue
        finally:
            adapter.close()
        changed = sum(n for what, n in result.counts().items() if what != "kept_local")
        print(f"{name}: " + (f"{changed} change(s) to the menu" if changed else "the menu is up to date"))
        for line in result.lines(load_store_settings(conn).money):
            print(f"  {line}")
    return 1 if failed else 0


def _sync_check(
    conn: apsw.Connection, settings: BoxSettings, configured: Mapping[str, Target], name: str | None, *, as_json: bool
) -> int:
    from sync.adapters.base import CheckState
    from sync.check import as_json as checks_json
    from sync.check import check_target, render

    where = str(settings.config_file or "the settings")
    if name is not None and name not in configured:
        raise SettingsError(f"{where}: no [sync.{name}] table to check (targets: {', '.join(configured) or 'none'})")
    wanted = [name] if name is not None else [n for n, t in configured.items() if t.enabled]
    if not wanted:
        raise SettingsError(
            f"{where}: no enabled sync target to check: add a [sync.NAME] table (README: Settings)"
            if not configured
            else f"{where}: every sync target is disabled; name one to check it anyway: tablebox sync check NAME"
        )
    results = []
    for target_name in wanted:
        target = configured[target_name]
        result = check_target(conn, target, where=where)
        results.append(result)
        if not as_json:
            print(("\n" if len(results) > 1 else "") + "\n".join(render(result, disabled=not target.enabled)))
    if as_json:
        print(json.dumps(checks_json(results), ensure_ascii=False, indent=2))
    return 1 if any(r.outcome is CheckState.FAIL for r in results) else 0
