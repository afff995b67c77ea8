"""Damaged store files (issue 13): a zero-length or schema-less store.db, and a store.secret that is missing, empty,
garbled or readable by others. Every command that opens the store or reads the secret refuses with one line that
names the file and what to do, and exit status 2 (which no systemd unit restarts); nothing is written to the file;
`tablebox doctor` fails the same faults with the same advice. Real `tablebox` processes throughout."""

from __future__ import annotations

import hashlib
import os
import re
import shlex
import sqlite3
import stat
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest

from appliance.backup import backup_dir, make_backup
from appliance.db.connection import open_connection
from appliance.db.migrate import migrate
from appliance.errors import SecretError, SecretExposed, StoreDamaged
from appliance.store import Store, read_secret, require_store
from tests.appliance.test_crash import free_port

TABLEBOX = str(Path(sys.executable).parent / "tablebox")
ENV = {**os.environ, "TABLEBOX_PUBLIC_BASE_URL": "http://box.test:8080"}
REPO = Path(__file__).resolve().parents[2]
REFUSED_WITHIN = 10.0  # seconds: a refusal happens before any server, worker or screen starts


def tablebox(*args: str, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    result = subprocess.run(
        [TABLEBOX, *args], capture_output=True, text=True, env=ENV, timeout=60, stdin=subprocess.DEVNULL, cwd=cwd
    )
    return result, time.monotonic() - started


def refusal(result: subprocess.CompletedProcess[str], took: float) -> str:
    """The one line of an expected refusal: exit 2, no traceback, quickly."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tablebox: "), result.stderr
    assert took < REFUSED_WITHIN, took
    return lines[0]


def fingerprint(folder: Path) -> dict[str, str]:
    """Every file in the data folder with the hash of its bytes: a refusal changes none and adds none."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.rglob("*") if p.is_file()
    }


def empty_store(settings) -> None:
    """A zero-length store.db (a power cut while a technician copied it, a full disk...), nothing beside it."""
    for suffix in ("-wal", "-shm"):
        Path(f"{settings.db_path}{suffix}").unlink(missing_ok=True)
    settings.db_path.write_bytes(b"")


def foreign_store(settings, kind: str) -> None:
    """A SQLite file that is not a Tablebox store, in place of store.db."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{settings.db_path}{suffix}").unlink(missing_ok=True)
    conn = sqlite3.connect(settings.db_path)
    if kind == "no_tables":  # a SQLite file and nothing in it (someone ran `sqlite3 store.db .databases`)
        conn.execute("PRAGMA user_version = 7")
    elif kind == "other_program":  # someone else's database
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users (name) VALUES ('ann')")
    elif kind == "rails_like":  # has a schema_migrations table, but not ours and no store_id
        conn.execute("CREATE TABLE schema_migrations (version TEXT PRIMARY KEY)")
        conn.execute("CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT)")
    conn.commit()
    conn.close()


def store_commands(tmp_path: Path) -> dict[str, list[str]]:
    """Every command that opens the store, with the arguments it needs to get that far."""
    port = str(free_port())
    menu = tmp_path / "menu.json"
    menu.write_text('{"categories": []}')
    photo = tmp_path / "dish.jpg"  # never read: the store is refused first
    return {
        "serve": ["serve", "--host", "127.0.0.1", "--port", port],
        "demo": ["demo", "--host", "127.0.0.1", "--port", port],
        "printd": ["printd"],
        "syncd": ["syncd"],
        "console": ["console"],
        "tables": ["tables"],
        "tables add": ["tables", "add", "Z9"],
        "printers": ["printers"],
        "staff list": ["staff", "list"],
        "staff add": ["staff", "add", "Ann", "--role", "manager", "--pin", "2468"],
        "sync status": ["sync", "status"],
        "backup": ["backup"],
        "stickers": ["stickers", "--pdf", str(tmp_path / "stickers.pdf")],
        "menu import": ["menu", "import", str(menu)],
        "photo": ["photo", "1", str(photo)],
    }


# --- a zero-length or schema-less store.db -------------------------------------------------------------------


def test_every_command_that_opens_the_store_refuses_a_zero_length_file(settings, tmp_path):
    empty_store(settings)
    before = fingerprint(settings.data_dir)
    commands = store_commands(tmp_path)
    for name, args in commands.items():
        line = refusal(*tablebox(*args, "--data-dir", str(settings.data_dir)))
        assert line.startswith(f"tablebox: {settings.db_path} is empty (0 bytes): it holds no store; "), (name, line)
        # no backup yet: how to get one back, or how to start afresh
        assert f"No backup in {backup_dir(settings)}" in line, (name, line)
        assert f"`tablebox init --data-dir {settings.data_dir}`" in line, (name, line)
        assert fingerprint(settings.data_dir) == before, name  # not migrated, no -wal, nothing written
    assert settings.db_path.stat().st_size == 0
    assert not (tmp_path / "stickers.pdf").exists()


@pytest.mark.parametrize("kind", ["no_tables", "other_program", "rails_like"])
def test_serve_refuses_a_sqlite_file_without_the_store_schema(settings, kind):
    foreign_store(settings, kind)
    before = fingerprint(settings.data_dir)
    line = refusal(
        *tablebox("serve", "--data-dir", str(settings.data_dir), "--host", "127.0.0.1", "--port", str(free_port()))
    )
    said = {
        "no_tables": "it has no schema_migrations table (no tables at all)",
        "other_program": "it has no schema_migrations table (its tables: users)",
        "rails_like": "it has no store_id",
    }[kind]
    assert line.startswith(f"tablebox: {settings.db_path} is not a Tablebox store: {said}"), line
    assert "nothing was changed" in line
    assert fingerprint(settings.data_dir) == before  # same bytes: never migrated into an empty schema


def test_the_refusal_names_the_newest_backup_and_its_command_brings_the_store_back(settings, tmp_path):
    folder = backup_dir(settings)
    folder.mkdir()
    make_backup(settings.db_path, folder, datetime(2025, 6, 1, 3, 0))
    newest, _ = make_backup(settings.db_path, folder, datetime(2025, 6, 2, 3, 0))
    empty_store(settings)
    line = refusal(
        *tablebox("serve", "--data-dir", str(settings.data_dir), "--host", "127.0.0.1", "--port", str(free_port()))
    )
    assert "Stop the services (`systemctl stop tablebox-web tablebox-printd" in line
    command = re.search(r"`(tablebox restore [^`]+)`", line)
    assert command is not None and command.group(1) == f"tablebox restore {newest} --data-dir {settings.data_dir}"
    done, _ = tablebox(*shlex.split(command.group(1))[1:])  # what the technician types, as printed
    assert done.returncode == 0, done.stderr
    (aside,) = settings.data_dir.glob("store.db.before-restore-*")
    assert aside.stat().st_size == 0  # the empty file is kept aside, not deleted
    tables, _ = tablebox("tables", "--data-dir", str(settings.data_dir))
    assert tables.returncode == 0 and "http://box.test:8080/" in tables.stdout, tables.stderr


def test_without_a_backup_the_advice_starts_afresh_and_keeps_the_file(settings):
    foreign_store(settings, "other_program")
    foreign = settings.db_path.read_bytes()
    line = refusal(*tablebox("tables", "--data-dir", str(settings.data_dir)))
    move = re.search(r"start afresh: `([^`]+)`, then `(tablebox init --data-dir [^`]+)`", line)
    assert move is not None, line
    subprocess.run(["sh", "-c", move.group(1)], check=True, timeout=10)
    init, _ = tablebox(*shlex.split(move.group(2))[1:])
    assert init.returncode == 0, init.stderr
    assert (settings.data_dir / "damaged" / "store.db").read_bytes() == foreign
    tables, _ = tablebox("tables", "--data-dir", str(settings.data_dir))
    assert tables.returncode == 0, tables.stderr


@pytest.mark.parametrize("kind", ["empty", "other_program"])
def test_init_explains_a_damaged_file_instead_of_saying_a_store_exists(settings, kind):
    empty_store(settings) if kind == "empty" else foreign_store(settings, kind)
    before = fingerprint(settings.data_dir)
    line = refusal(*tablebox("init", "--data-dir", str(settings.data_dir)))
    assert "a store already exists" not in line
    what = "is empty (0 bytes)" if kind == "empty" else "is not a Tablebox store"
    assert line.startswith(f"tablebox: {settings.db_path} {what}"), line
    assert "`tablebox init` does not write over it. To start afresh, move it aside (`mkdir -p " in line
    assert f"`tablebox restore FILE --data-dir {settings.data_dir}` with a backup from a USB stick" in line
    assert fingerprint(settings.data_dir) == before


def test_init_on_a_whole_store_still_says_it_exists(settings):
    line = refusal(*tablebox("init", "--data-dir", str(settings.data_dir)))
    assert line == f"tablebox: a store already exists at {settings.db_path}"


@pytest.mark.parametrize("kind", ["empty", "other_program"])
def test_doctor_fails_a_zero_length_or_foreign_store_with_the_fix(settings, kind):
    folder = backup_dir(settings)
    folder.mkdir()
    newest, _ = make_backup(settings.db_path, folder, datetime(2025, 6, 2, 3, 0))
    empty_store(settings) if kind == "empty" else foreign_store(settings, kind)
    before = fingerprint(settings.data_dir)
    result, _ = tablebox("doctor", "--data-dir", str(settings.data_dir))
    assert result.returncode == 1, result.stdout + result.stderr
    (line,) = [line for line in result.stdout.splitlines() if line.startswith(("✓ database", "✗ database"))]
    what = "is empty (0 bytes): it holds no store" if kind == "empty" else "is not a Tablebox store: it has no"
    assert line.startswith(f"✗ database: {settings.db_path} {what}"), line
    assert line.endswith(
        f"  → Stop the services (`systemctl stop tablebox-web tablebox-printd tablebox-syncd tablebox-console`), "
        f"restore the newest backup: `tablebox restore {newest} --data-dir {settings.data_dir}` "
        "(it keeps this file aside), then start them again."
    ), line
    assert not [line for line in result.stdout.splitlines() if line[2:].startswith("migrations:")]  # not read on
    assert fingerprint(settings.data_dir) == before


def test_no_unit_restarts_a_start_refused_for_a_damaged_store(settings):
    """Each box unit's own command, on a zero-length store: exit 2 at once, which its RestartPreventExitStatus=
    names, so systemd leaves it stopped (no restart loop) with the one line in the journal."""
    empty_store(settings)
    units = sorted((REPO / "systemd").glob("*.service"))
    assert {u.name for u in units} >= {"tablebox-web.service", "tablebox-printd.service", "tablebox-syncd.service"}
    for unit in units:
        text = unit.read_text()
        exec_start = re.findall(r"^ExecStart=.*/opt/tablebox/venv/bin/tablebox (.+)$", text, re.M)[-1]
        prevent = re.findall(r"^RestartPreventExitStatus=(.+)$", text, re.M)
        result, took = tablebox(*shlex.split(exec_start), "--data-dir", str(settings.data_dir))
        line = refusal(result, took)
        assert str(result.returncode) in " ".join(prevent).split(), (unit.name, prevent)
        assert "is empty (0 bytes)" in line, (unit.name, line)


def test_the_store_layer_refuses_what_the_commands_refuse(settings):
    """The web app's Store.open and migrate() refuse on their own too (not only through the command line)."""
    empty_store(settings)
    with pytest.raises(StoreDamaged, match="is empty"):
        Store.open(settings)
    with pytest.raises(StoreDamaged, match="is empty"):
        require_store(settings)
    assert settings.db_path.stat().st_size == 0 and not Path(f"{settings.db_path}-wal").exists()
    foreign_store(settings, "other_program")
    conn = open_connection(settings.db_path)
    try:
        with pytest.raises(StoreDamaged, match=r"has tables \(users\) but no schema_migrations"):
            migrate(conn)
        assert [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == ["users"]
    finally:
        conn.close()


# --- store.secret: missing, empty, garbled, readable by others ----------------------------------------------

SECRET_FAULTS = {
    "missing": (None, "no store secret at {path}: run `tablebox init`"),
    "empty": ("", "{path} is empty: copy back the store.secret kept from this store"),
    "garbled": ("not hex at all, an editor's backup\n", "{path} does not hold a hex secret"),
    "short": ("abcd\n", "{path}: the store secret is too short"),
    "binary": ("\x00\xff\xfe", "{path} does not hold a hex secret"),
}


def spoil_secret(settings, fault: str) -> None:
    content, _ = SECRET_FAULTS[fault]
    if content is None:
        settings.secret_path.unlink()
    else:
        settings.secret_path.write_bytes(content.encode("latin-1"))  # the file keeps its mode 0600


SECRET_COMMANDS = {
    "serve": lambda: ["serve", "--host", "127.0.0.1", "--port", str(free_port())],
    "tables": lambda: ["tables"],
    "console": lambda: ["console"],
    "staff add": lambda: ["staff", "add", "Ann", "--role", "manager", "--pin", "2468"],
}


@pytest.mark.parametrize("command", list(SECRET_COMMANDS))
@pytest.mark.parametrize("fault", list(SECRET_FAULTS))
def test_a_bad_secret_is_one_line_and_exit_2(settings, fault, command):
    spoil_secret(settings, fault)
    line = refusal(*tablebox(*SECRET_COMMANDS[command](), "--data-dir", str(settings.data_dir)))
    assert SECRET_FAULTS[fault][1].format(path=settings.secret_path) in line, line


@pytest.mark.parametrize(
    "command,mode", [*((command, 0o644) for command in SECRET_COMMANDS), ("serve", 0o640), ("serve", 0o604)]
)
def test_a_secret_others_can_read_is_refused_with_the_chmod_to_run(settings, command, mode):
    settings.secret_path.chmod(mode)
    secret = settings.secret_path.read_bytes()
    line = refusal(*tablebox(*SECRET_COMMANDS[command](), "--data-dir", str(settings.data_dir)))
    assert line == (
        f"tablebox: {settings.secret_path} has mode {mode:04o}: other users on this machine can read the store "
        f"secret and forge table codes; run `chmod 600 {settings.secret_path}` (as its owner or root)"
    )
    assert settings.secret_path.read_bytes() == secret
    assert stat.S_IMODE(settings.secret_path.stat().st_mode) == mode  # said, not silently changed


def test_the_chmod_it_names_is_the_fix(settings):
    settings.secret_path.chmod(0o644)
    line = refusal(*tablebox("tables", "--data-dir", str(settings.data_dir)))
    chmod = re.search(r"run `(chmod 600 [^`]+)`", line)
    assert chmod is not None
    subprocess.run(shlex.split(chmod.group(1)), check=True, timeout=10)
    fixed, _ = tablebox("tables", "--data-dir", str(settings.data_dir))
    assert fixed.returncode == 0 and "http://box.test:8080/" in fixed.stdout, fixed.stderr


@pytest.mark.parametrize("fault", ["missing", "empty", "garbled", "0644"])
def test_doctor_says_the_same_about_the_secret(settings, fault):
    if fault == "0644":
        settings.secret_path.chmod(0o644)
    else:
        spoil_secret(settings, fault)
    result, _ = tablebox("doctor", "--data-dir", str(settings.data_dir))
    assert result.returncode == 1
    (line,) = [line for line in result.stdout.splitlines() if line[2:].startswith("store secret: ")]
    path = settings.secret_path
    expected = {
        "missing": f"✗ store secret: {path} is missing: no table sticker can be checked  → copy back the "
        "store.secret kept from this box (a new secret voids every printed sticker)",
        "empty": f"✗ store secret: {path} is empty: copy back the store.secret kept from this store  → restore "
        f"the store.secret kept from this box to {path}",
        "garbled": f"✗ store secret: {path} does not hold a hex secret: copy back the store.secret kept from this "
        f"store  → restore the store.secret kept from this box to {path}",
        "0644": f"✗ store secret: {path} has mode 0644: other users can read it and forge table codes "
        f"(`tablebox serve` refuses to start)  → chmod 600 {path}",
    }[fault]
    assert line == expected


def test_read_secret_says_each_fault(settings):
    good = read_secret(settings.secret_path)
    assert len(good) == 32
    settings.secret_path.chmod(0o660)
    with pytest.raises(SecretExposed, match=r"mode 0660.*chmod 600"):
        read_secret(settings.secret_path)
    settings.secret_path.chmod(0o600)
    settings.secret_path.write_text("ab" * 5000)  # hex, but far too long to be a secret: not read whole
    with pytest.raises(SecretError, match="does not hold a hex secret"):
        read_secret(settings.secret_path)
    with pytest.raises(SecretError, match="cannot read the store secret"):
        read_secret(settings.data_dir)  # a folder where the file should be
