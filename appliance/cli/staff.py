"""`tablebox staff [add | list | remove]`: who may log in to the console, with a PIN and a role."""

from __future__ import annotations

import argparse
import getpass
import os
import sys

from appliance.cli.common import add_command, box_settings
from appliance.db.connection import write_transaction
from appliance.db.staff import add_staff, list_staff, remove_staff
from appliance.store import read_secret, store_connection


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "staff",
        help="who may use the console: add, list, remove staff (PIN and role)",
        description="Staff log in to the console with a PIN. Waiters run service; managers also "
        "change prices, re-key tables, see reports and change settings.",
        examples=["tablebox staff", "tablebox staff add 王芳 --role manager", "tablebox staff remove 李明"],
    )
    p.set_defaults(func=cmd_staff, staff_command="list")
    ssub = p.add_subparsers(dest="staff_command", metavar="COMMAND")
    a = add_command(
        ssub,
        "add",
        help="add a staff member (asks for the PIN unless --pin or $TABLEBOX_PIN)",
        examples=["tablebox staff add 王芳 --role manager", "TABLEBOX_PIN=4821 tablebox staff add Ana"],
    )
    a.add_argument("name")
    a.add_argument("--role", choices=("manager", "waiter"), default="waiter")
    a.add_argument("--pin", help="4-8 digits (visible in the shell history: prefer the prompt)")
    add_command(ssub, "list", help="list staff", examples=["tablebox staff list"])
    r = add_command(
        ssub,
        "remove",
        help="stop someone logging in (they stay in the audit trail)",
        examples=["tablebox staff remove 李明"],
    )
    r.add_argument("name")


def cmd_staff(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    with store_connection(settings) as conn:
        if args.staff_command == "add":
            pin = args.pin or os.environ.get("TABLEBOX_PIN") or getpass.getpass(f"PIN for {args.name} (4-8 digits): ")
            with write_transaction(conn):
                added = add_staff(conn, read_secret(settings.secret_path), args.name, args.role, pin)
            print(f"added {added.name} ({added.role}): they log in to the console with their PIN")
        elif args.staff_command == "remove":
            with write_transaction(conn):
                remove_staff(conn, args.name)
            print(f"{args.name} can no longer log in (kept in the audit trail)")
        else:
            people = list_staff(conn)
            if not people:
                print("no staff yet: tablebox staff add NAME --role manager", file=sys.stderr)
            for person in people:
                print(f"{person.name:<24} {person.role:<8} {'active' if person.active else 'removed'}")
    return 0
