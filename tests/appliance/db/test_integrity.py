"""A damaged database is noticed: the web server, the demo and the print worker refuse to start on it and
say to restore a backup."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime

import apsw
import pytest

from appliance.backup import make_backup
from appliance.db.integrity import DatabaseProblem, check_problems, inspect_store_file, open_for_check
from appliance.db.migrate import available


def damage(path) -> None:
    """Overwrite the second half of the `items` table's root page, where its rows are (a flash block gone bad)."""
    conn = apsw.Connection(str(path))
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'items'").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with open(path, "r+b") as handle:
        handle.seek((root - 1) * size + size // 2)
        handle.write(b"\xff" * (size // 2))


def test_a_whole_store_reads_as_one(settings):
    conn = open_for_check(settings.db_path)
    try:
        assert check_problems(conn, full=True) == [] and check_problems(conn, full=False) == []
    finally:
        conn.close()
    info = inspect_store_file(settings.db_path)
    newest = available()[-1][0]
    assert info.store_name == "小笼天下 Dumpling House" and info.schema_version == newest and info.orders == 0
    assert info.size_bytes == settings.db_path.stat().st_size


def test_damage_in_the_middle_of_a_page_is_found(settings):
    damage(settings.db_path)
    conn = open_for_check(settings.db_path)
    try:
        assert check_problems(conn, full=False) != []
    finally:
        conn.close()
    with pytest.raises(DatabaseProblem, match="is damaged"):
        inspect_store_file(settings.db_path)


@pytest.mark.parametrize("command", ["serve", "printd", "demo", "syncd"])
def test_the_processes_refuse_a_damaged_database_and_say_to_restore(settings, tmp_path, command):
    (settings.data_dir / "backups").mkdir()
    newest, _ = make_backup(settings.db_path, settings.data_dir / "backups", datetime(2025, 6, 2, 3, 0))
    damage(settings.db_path)
    damaged = settings.db_path.read_bytes()
    web = [] if command in ("printd", "syncd") else ["--host", "127.0.0.1", "--port", "9"]
    result = subprocess.run(
        [sys.executable, "-m", "appliance", command, "--data-dir", str(settings.data_dir), *web],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TABLEBOX_PUBLIC_BASE_URL": "http://box.test"},
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"tablebox: the database {settings.db_path} is damaged (quick_check: ")
    assert len(result.stderr.splitlines()) == 1  # one line in the journal
    assert f"`tablebox restore {newest} --data-dir {settings.data_dir}`" in result.stderr
    assert "systemctl stop tablebox-web tablebox-printd" in result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert settings.db_path.read_bytes() == damaged  # nothing was migrated or written on it
