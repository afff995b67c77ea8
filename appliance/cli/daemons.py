"""`tablebox printd` and `tablebox syncd`: the print worker and the sync worker as services, both run by
appliance.daemon.run_daemon (signals, READY, the watchdog fed while every worker thread loops)."""

from __future__ import annotations

import argparse

import structlog

from appliance.cli.common import add_command, box_settings
from appliance.cli.sync import register_sync_targets
from appliance.daemon import run_daemon
from appliance.logs import configure_logging
from appliance.settings import SettingsError
from appliance.store import require_store


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "printd",
        help="run the print worker (kitchen tickets to the printers)",
        description="Print every queued kitchen ticket, void ticket and test page on the store's "
        "printers, in order, waiting out paper-out, cover-open and unplugged printers. "
        "Stops between jobs on SIGTERM.",
        examples=["tablebox printd", "systemctl status tablebox-printd   (on a box it runs as a service)"],
    )
    p.set_defaults(func=cmd_printd, check_database=True)  # quick_check first (main)

    p = add_command(
        sub,
        "syncd",
        help="run the sync worker (orders to the ERP, catalog and stock from it)",
        description="Deliver every queued order and status change to each [sync.NAME] target of the "
        "settings, oldest first, exactly once in effect, backing off while the ERP fails; "
        "pull catalog and stock every pull_minutes. Stops between deliveries on SIGTERM.",
        examples=[
            "tablebox syncd --config /etc/tablebox/tablebox.toml",
            "systemctl enable --now tablebox-syncd   (on a box it runs as a service)",
        ],
    )
    p.set_defaults(func=cmd_syncd, check_database=True)


def cmd_printd(args: argparse.Namespace) -> int:
    from printers.host import PrintingHost

    settings = box_settings(args)
    require_store(settings)
    configure_logging(settings.log_format, settings.log_level)
    host = PrintingHost(settings)
    run_daemon(host, host.status)
    return 0


def cmd_syncd(args: argparse.Namespace) -> int:
    from sync.worker import SyncWorker, hold_lock

    settings = box_settings(args)
    require_store(settings)
    configure_logging(settings.log_format, settings.log_level)
    registered = register_sync_targets(settings)
    if not registered["enabled"]:
        where = settings.config_file or f"{settings.data_dir / 'tablebox.toml'} (there is no settings file)"
        raise SettingsError(
            f"{where}: no enabled [sync.NAME] target, so there is nothing to deliver to; add one "
            "(README: Settings, ERP sync targets) or leave tablebox-syncd disabled"
        )
    lock = hold_lock(settings.data_dir / "syncd.lock")  # AlreadyRunning (exit 2) while another syncd runs
    try:
        worker = SyncWorker(settings)
        run_daemon(
            worker,
            lambda: "delivering to " + ", ".join(f"{loop.target.name} ({loop.target.kind})" for loop in worker.loops),
        )
        structlog.get_logger("sync.worker").info("sync.stopped", delivered=sum(loop.delivered for loop in worker.loops))
    finally:
        lock.close()
    return 0
