"""The dependency rules of docs/architecture.md section 3, checked two ways.

1. Statically: every module's syntax tree is read and every import in it counted, wherever it stands (top level,
   inside a function, under `if TYPE_CHECKING:`), so a deferred import cannot hide a cycle. The rules are the table
   below; docs/architecture.md prints the same table.
2. At run time: importing a module in a fresh interpreter must not load heavy libraries it has no use for.

And one owner per table: only `appliance/db` (and the relay's own storage) holds SQL.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("appliance", "printers", "sync", "tui")
HEAVY = ("litestar", "apsw", "msgspec", "structlog", "httpx", "uvicorn", "sqlite_utils", "textual", "escpos", "usb")
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}


@dataclass(frozen=True)
class Rule:
    """Modules under `scope` may import only `allowed` (None: anything not forbidden) and never `forbidden`.
    Names are module prefixes: "appliance.db" covers appliance.db and appliance.db.orders."""

    scope: str
    forbidden: tuple[str, ...] = ()
    allowed: tuple[str, ...] | None = None
    why: str = ""


RULES = (
    Rule("appliance.domain", allowed=("appliance.domain",), why="pure rules: the standard library only"),
    Rule(
        "appliance.contract",
        allowed=("appliance.domain", "appliance.contract", "msgspec"),
        why="the box-relay contract: shapes, decoding, signing; no I/O",
    ),
    Rule(
        "appliance.db",
        forbidden=(
            "appliance.web",
            "appliance.cli",
            "printers",
            "sync",
            "tui",
            "litestar",
            "textual",
            "httpx",
            "uvicorn",
            "escpos",
            "usb",
            "serial",
        ),
        why="the store: SQL only, never a framework, a device or the network",
    ),
    Rule(
        "appliance.web",
        forbidden=("appliance.cli", "printers", "sync", "tui", "textual", "httpx"),
        why="the diner API and pages",
    ),
    Rule(
        "appliance",
        forbidden=("appliance.cli", "printers", "sync", "tui"),
        why="the store side never imports the workers, the console or the front door",
    ),
    Rule(
        "printers",
        forbidden=("appliance.web", "appliance.cli", "sync", "tui", "litestar", "textual", "httpx"),
        why="the print worker: the store, the domain and the printers",
    ),
    Rule(
        "sync.relay",
        forbidden=(
            "appliance.web",
            "appliance.cli",
            "printers",
            "tui",
            "textual",
            "sync.worker",
            "sync.outbox",
            "sync.relay_link",
            "sync.catalog",
        ),
        why="the public relay: its own storage and the contract, none of the box's workers",
    ),
    Rule(
        "sync",
        forbidden=("appliance.web", "appliance.cli", "printers", "tui", "textual"),
        why="the sync worker: the store, the domain, the contract and HTTP",
    ),
    Rule(
        "tui",
        forbidden=(
            "appliance.web",
            "appliance.cli",
            "printers",
            "sync",
            "litestar",
            "httpx",
            "escpos",
            "usb",
            "serial",
            "uvicorn",
        ),
        why="the console: the store and the domain only; never a printer, a device or the network",
    ),
)


def rule_for(module: str) -> Rule | None:
    """The most specific rule whose scope covers the module (the front door, appliance.cli and `python -m
    appliance`, is the composition root: no rule)."""
    if covers("appliance.cli", module) or module == "appliance.__main__":
        return None
    matching = [r for r in RULES if covers(r.scope, module)]
    return max(matching, key=lambda r: len(r.scope)) if matching else None


def covers(prefix: str, module: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def module_name(path: Path, root: Path = ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path = ROOT) -> set[str]:
    """Every module the file imports, wherever the import stands, relative imports resolved."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            # `from appliance import cli` imports appliance.cli: count the names as submodules too.
            found.update(f"{base}.{alias.name}" for alias in node.names if alias.name != "*")
    return found


def project_files() -> list[Path]:
    return sorted(p for pkg in PROJECT for p in (ROOT / pkg).rglob("*.py"))


def broken_rules(path: Path) -> list[str]:
    module = module_name(path)
    rule = rule_for(module)
    if rule is None:
        return []
    bad: list[str] = []
    for imported in sorted(imports_of(path)):
        if any(covers(b, imported) for b in bad):
            continue  # `from printers.admin import x` is one finding, not two
        top = imported.split(".")[0]
        if any(covers(f, imported) for f in rule.forbidden) or (
            rule.allowed is not None
            and top not in STDLIB
            and imported != "appliance"
            and not any(covers(a, imported) for a in rule.allowed)
        ):
            bad.append(imported)
    return [f"{module} imports {imported} ({rule.scope}: {rule.why})" for imported in bad]


def test_every_module_keeps_the_import_rules():
    broken = [line for path in project_files() for line in broken_rules(path)]
    assert broken == []


def test_nothing_but_tests_imports_the_command_line_package():
    importers = [
        module_name(p)
        for p in project_files()
        if not covers("appliance.cli", module_name(p))
        and module_name(p) != "appliance.__main__"
        and any(covers("appliance.cli", m) for m in imports_of(p))
    ]
    bench = [p.name for p in (ROOT / "bench").glob("*.py") if any(covers("appliance.cli", m) for m in imports_of(p))]
    assert importers == [] and bench == []


@pytest.mark.parametrize(
    "source,expected",
    [
        ("def f():\n    from appliance import cli\n", True),
        ("def f():\n    import appliance.cli.main\n", True),
        ("from appliance.db import orders\n", False),
    ],
)
def test_the_static_check_sees_deferred_imports(tmp_path, source, expected):
    """The rule test must see an import inside a function (the cycle printers.stickers -> appliance.cli hid there)."""
    (tmp_path / "printers").mkdir()
    path = tmp_path / "printers" / "x.py"
    path.write_text(source)
    assert any(covers("appliance.cli", m) for m in imports_of(path, tmp_path)) is expected


# -- One owner per table: SQL only in appliance/db (and the relay's own storage) ---------------------------------

SQL = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|WITH|CREATE|ALTER|DROP|BEGIN|COMMIT|ROLLBACK|PRAGMA)\b")
SQL_OWNERS = ("appliance.db", "sync.relay.storage")
HTTP_METHODS = {"DELETE"}  # an adapter's HTTP method (ERPNext deletes a draft), not a statement


def sql_in(path: Path) -> list[str]:
    """String constants that read as SQL, and calls of `.execute`/`.executemany` (apsw's way in)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and SQL.match(node.value)
            and node.value not in HTTP_METHODS
        ):
            found.append(f"line {node.lineno}: {node.value.strip()[:60]!r}")
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in {"execute", "executemany"}
        ):
            found.append(f"line {node.lineno}: .{node.func.attr}(...)")
    return found


def test_only_the_store_layer_executes_sql():
    outside = {
        module_name(p): sql_in(p) for p in project_files() if not any(covers(o, module_name(p)) for o in SQL_OWNERS)
    }
    assert {m: found for m, found in outside.items() if found} == {}


def test_the_sql_check_sees_statements_and_execute_calls(tmp_path):
    path = tmp_path / "m.py"
    path.write_text(
        'Q = "SELECT 1"\nD = "DELETE FROM t"\ndef f(c, http):\n    c.execute(Q)\n    http.send("DELETE", "/x")\n'
        '    return "Selected dishes"\n'
    )
    assert sql_in(path) == ["line 1: 'SELECT 1'", "line 2: 'DELETE FROM t'", "line 4: .execute(...)"]


# -- At run time: no heavy library where it has no use ------------------------------------------------------------


def imported_after(module: str) -> set[str]:
    code = (
        f"import sys, json; before = set(sys.modules); import {module}; "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    return {name.split(".")[0] for name in json.loads(out)} | {
        name for name in json.loads(out) if name.startswith("appliance.")
    }


@pytest.mark.parametrize(
    "module",
    [
        "appliance.domain",
        "appliance.domain.pricing",
        "appliance.domain.orders",
        "appliance.domain.tokens",
        "appliance.domain.money",
        "appliance.domain.menu",
        "appliance.domain.text",
        "appliance.domain.messages",
    ],
)
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


@pytest.mark.parametrize(
    "package,forbidden",
    [
        ("printers.worker", {"litestar", "textual", "tui", "sync"}),
        ("sync.worker", {"litestar", "textual", "tui", "printers", "uvicorn"}),
        ("tui.app", {"litestar", "printers", "sync", "httpx", "escpos"}),
    ],
)
def test_side_packages_keep_to_their_lane(package, forbidden):
    loaded = imported_after(package)
    assert loaded & forbidden == set(), f"{package} pulled in {loaded & forbidden}"


def test_the_console_screens_load_no_printer_and_no_sync_module():
    """Every screen loaded: the console reads and writes rows through appliance.db, never a printer or the network."""
    code = (
        "import sys, json; import tui.app as a; [a._screen_class(m) for m in a.SCREENS]; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    loaded = set(
        json.loads(
            subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
        )
    )
    assert {m for m in loaded if m.split(".")[0] in {"printers", "sync"}} == set()
    heavy = {m.split(".")[0] for m in loaded} & {"litestar", "escpos", "usb", "serial", "httpx", "uvicorn"}
    assert heavy == set()


# -- bench/ runs from a clean clone ---------------------------------------------------------------------------------


def test_nothing_in_bench_is_named_like_a_package():
    """bench/X.py runs with bench/ first on sys.path: a bench/sync.py hid the sync package from every script."""
    shadowing = {p.stem for p in (ROOT / "bench").glob("*.py")} & {*PROJECT, "tests"}
    assert shadowing == set()


BENCH_SCRIPTS = sorted(p.name for p in (ROOT / "bench").glob("*.py") if "argparse" in p.read_text(encoding="utf-8"))


@pytest.mark.parametrize("script", BENCH_SCRIPTS)
def test_every_bench_script_starts_from_a_clone(script):
    """Run as a person runs it (`python bench/X.py`, bench/ first on sys.path): every import resolves and its
    --help answers. A script importing what moved, or shadowed by a file in bench/, fails here, not in a bench run."""
    done = subprocess.run(
        [sys.executable, f"bench/{script}", "--help"], capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage:" in done.stdout
