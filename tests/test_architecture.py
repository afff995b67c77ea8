"""The dependency rules of DESIGN section 3, checked by importing in a fresh interpreter (static analysis
misses deferred imports)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PROJECT = ("appliance", "printers", "sync", "tui")
HEAVY = ("litestar", "apsw", "msgspec", "structlog", "httpx", "uvicorn", "sqlite_utils", "textual", "escpos", "usb")


def imported_after(module: str) -> set[str]:
    code = (f"import sys, json; before = set(sys.modules); import {module}; "
            "print(json.dumps(sorted(set(sys.modules) - before)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return {name.split(".")[0] for name in json.loads(out)} | {
        name for name in json.loads(out) if name.startswith("appliance.")}


@pytest.mark.parametrize("module", ["appliance.domain", "appliance.domain.pricing", "appliance.domain.orders",
                                    "appliance.domain.tokens", "appliance.domain.money", "appliance.domain.menu",
                                    "appliance.domain.text", "appliance.domain.messages"])
def test_the_domain_imports_only_the_standard_library(module):
    loaded = imported_after(module)
    third_party = {m for m in loaded if m in HEAVY or m in PROJECT[1:]}
    assert third_party == set(), f"{module} pulled in {third_party}"
    outside = {m for m in loaded if m.startswith("appliance.") and not m.startswith("appliance.domain")}
    assert outside == set(), f"{module} imported {outside}"
    stdlib = set(sys.stdlib_module_names) | {"appliance", "_distutils_hack"}
    assert {m for m in loaded if "." not in m and not m.startswith("_")} - stdlib == set()


def test_the_store_layer_does_not_import_the_web_app():
    loaded = imported_after("appliance.db.orders")
    assert "litestar" not in loaded and "appliance.web" not in loaded


@pytest.mark.parametrize("package,forbidden", [("printers.worker", {"litestar", "textual", "tui", "sync"}),
                                               ("sync.worker", {"litestar", "textual", "tui", "printers", "uvicorn"}),
                                               ("tui.app", {"litestar", "printers", "sync"})])
def test_side_packages_keep_to_their_lane(package, forbidden):
    loaded = imported_after(package)
    assert loaded & forbidden == set(), f"{package} pulled in {loaded & forbidden}"


def test_the_console_screens_use_only_store_side_printer_and_sync_functions():
    """The exception in docs/architecture.md section 3: rows in the store, never a printer or the network."""
    code = ("import sys, json; import tui.app as a; [a._screen_class(m) for m in a.SCREENS]; "
            "print(json.dumps(sorted(sys.modules)))")
    loaded = set(json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                           check=True).stdout))
    ours = {m for m in loaded if m.split(".")[0] in {"printers", "sync"}}
    assert ours <= {"printers", "printers.admin", "printers.status", "printers.stickers", "sync", "sync.status"}, ours
    heavy = {m.split(".")[0] for m in loaded} & {"litestar", "escpos", "usb", "serial", "httpx", "uvicorn"}
    assert heavy == set() and "printers.worker" not in loaded and "printers.connection" not in loaded
