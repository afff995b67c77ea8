"""Backups and restores: a backup taken during a rush is whole and restores; rotation keeps the right files;
a bad file is never restored and the live store is left as it was."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta
from pathlib import Path

import apsw
import httpx
import pytest

from appliance.backup import (
    BackupError,
    backup_dir,
    copy_backup,
    list_backups,
    make_backup,
    restore,
    rotate,
    run_backup,
    store_in_use,
    to_keep,
)
from appliance.cli import main
from appliance.cli.backup import backup_progress
from appliance.db.connection import open_connection, write_transaction
from appliance.db.integrity import inspect_store_file
from appliance.db.migrate import available
from appliance.demo import ensure_demo_store
from tests.appliance.test_crash import ServerProcess
from tests.appliance.web.conftest import item_id, token_for
from tests.conftest import make_settings


def order_keys(path: Path) -> set[str]:
    conn = apsw.Connection(str(path))
    try:
        return {k for (k,) in conn.execute("SELECT client_key FROM orders")}
    finally:
        conn.close()


@pytest.mark.slow
def test_a_backup_during_a_rush_is_whole_holds_every_earlier_order_and_restores(tmp_path):
    settings = make_settings(tmp_path / "data")
    ensure_demo_store(settings)
    conn = open_connection(settings.db_path)
    items = [item_id(conn, k) for k in ("har_gow", "seasonal_greens", "mineral_water")]
    conn.close()
    tokens = [token_for(settings, name) for name in ("A1", "A2", "T1")]
    server = ServerProcess(settings.data_dir, tmp_path / "server.log")
    acked: dict[str, tuple[str, dict]] = {}
    lock = threading.Lock()
    more = threading.Event()  # set once phones got orders through while the backup was copying
    target = [10**9]
    stop = threading.Event()

    def phone(n: int) -> None:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            i = 0
            while not stop.is_set():
                i += 1
                token = tokens[(n + i) % len(tokens)]
                body = {
                    "client_key": uuid.uuid4().hex,
                    "lines": [{"item_id": items[(n + i) % len(items)], "quantity": 1 + i % 3}],
                }
                r = client.post(f"/api/v1/tables/{token}/orders", json=body)
                assert r.status_code == 201, r.text
                with lock:
                    acked[body["client_key"]] = (token, body)
                    if len(acked) >= target[0]:
                        more.set()

    phones = [threading.Thread(target=phone, args=(n,)) for n in range(4)]
    try:
        for p in phones:
            p.start()
        with lock:
            target[0] = 100
        assert more.wait(30), "the orders did not get going"
        waited = []

        def progress(done: int, total: int) -> None:
            # After every step, hold the copy until 3 more orders went through: the writer never waits for
            # the backup, and the copy must not start over because of them (it reads one snapshot).
            with lock:
                target[0] = len(acked) + 3
                more.clear()
            waited.append(more.wait(30))
            progress_seen.append((done, total))

        progress_seen: list[tuple[int, int]] = []
        with lock:
            before = set(acked)  # every order acknowledged before the backup began
        report = run_backup(settings, progress=progress, step_pages=4)
        stop.set()
        for p in phones:
            p.join(10)
        assert waited == [True] * len(progress_seen), "orders stopped going through while the backup copied"
    finally:
        stop.set()
        server.stop()

    backup = report.made[0].path
    assert backup.parent == settings.data_dir / "backups" and backup.name.startswith("store-")
    assert [d for d, _ in progress_seen] == sorted(d for d, _ in progress_seen)
    assert progress_seen[-1][0] == progress_seen[-1][1] > 4
    info = inspect_store_file(backup)  # integrity_check ok, a store
    in_backup = order_keys(backup)
    assert before <= in_backup, f"{len(before - in_backup)} orders acknowledged before the backup are missing"
    live = order_keys(settings.db_path)
    assert in_backup <= live and len(in_backup) < len(live)  # a snapshot: later orders are not in it
    assert info.orders == len(in_backup)
    copy = apsw.Connection(str(backup))
    # the snapshot is whole: every order with its lines, one ticket per station and its event
    assert (
        copy.execute(
            "SELECT count(*) FROM orders o WHERE NOT EXISTS (SELECT 1 FROM order_lines l WHERE l.order_id = o.id)"
        ).fetchone()[0]
        == 0
    )
    assert (
        copy.execute(
            "SELECT count(*) FROM orders o WHERE (SELECT count(*) FROM print_jobs j WHERE j.order_id = o.id) != 1"
        ).fetchone()[0]
        == 0
    )
    assert (
        copy.execute(
            "SELECT count(*) FROM orders o WHERE (SELECT count(*) FROM order_events e WHERE e.order_id = o.id) != 1"
        ).fetchone()[0]
        == 0
    )
    assert copy.execute("PRAGMA foreign_key_check").fetchall() == []
    assert copy.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    copy.close()

    assert main(["restore", "--data-dir", str(settings.data_dir), str(backup)]) == 0
    assert order_keys(settings.db_path) == in_backup
    aside = next(settings.data_dir.glob("store.db.before-restore-*"))
    assert order_keys(aside) == live  # the replaced database, whole on its own (WAL folded in)
    server = ServerProcess(settings.data_dir, tmp_path / "server2.log")
    try:
        key = sorted(before)[0]
        token, body = acked[key]
        again = httpx.post(f"{server.url}/api/v1/tables/{token}/orders", json=body)
        assert again.status_code == 200 and again.json()["id"] > 0  # the restored store knows it
        fresh = httpx.post(f"{server.url}/api/v1/tables/{token}/orders", json={**body, "client_key": uuid.uuid4().hex})
        assert fresh.status_code == 201
    finally:
        server.stop()


def write_order(settings, client_key: str) -> None:
    """An order written the way any process would (for states before and after a backup)."""
    from appliance.db.orders import MenuCache, OrderRequest, submit_order
    from appliance.db.tables import list_tables
    from appliance.domain.orders import Channel
    from appliance.domain.pricing import CartLine

    conn = open_connection(settings.db_path)
    try:
        table = next(t for t in list_tables(conn) if t.name == "A1")
        request = OrderRequest(
            client_key=client_key,
            lines=(CartLine(item_id=item_id(conn, "har_gow"), quantity=1),),
            note="",
            diners=None,
            expected_total_minor=None,
            lang="en",
            channel=Channel.LAN,
        )
        with write_transaction(conn):
            submit_order(conn, table, request, MenuCache())
    finally:
        conn.close()


def touch_backup(folder: Path, when: datetime, serial: int = 1) -> Path:
    path = folder / (f"store-{when:%Y%m%d-%H%M%S}" + (f"-{serial}" if serial > 1 else "") + ".db")
    path.write_bytes(b"x")
    return path


def test_rotation_keeps_the_newest_per_day_for_7_days_and_per_week_for_4_weeks(tmp_path):
    folder = tmp_path / "backups"
    folder.mkdir()
    start = datetime(2025, 3, 3, 3, 0)  # a Monday
    made = {}
    for day in range(40):  # two a day (03:00 and 15:00) for 40 days, one day missing
        if day == 36:
            continue
        for hour in (3, 15):
            when = start + timedelta(days=day, hours=hour - 3)
            made[when] = touch_backup(folder, when)
    stranger = folder / "store-before-upgrade.db"
    stranger.write_bytes(b"mine")
    removed = rotate(folder, 7, 4)
    kept = {p.name for _, p in list_backups(folder)}
    # days 39, 38, 37, 35, 34, 33, 32 (36 has none): their 15:00 backups; weeks: the newest of the ISO weeks
    # holding days 35-39, 28-34, 21-27, 14-20 (Sundays are days 6, 13, 20, 27, 34)
    daily = {f"store-{start + timedelta(days=d, hours=12):%Y%m%d-%H%M%S}.db" for d in (39, 38, 37, 35, 34, 33, 32)}
    weekly = {f"store-{start + timedelta(days=d, hours=12):%Y%m%d-%H%M%S}.db" for d in (39, 34, 27, 20)}
    assert kept == daily | weekly
    assert len(removed) == len(made) - len(kept)
    assert stranger.read_bytes() == b"mine"  # only files named like a backup are ever deleted


def test_rotation_never_deletes_the_backup_just_made(tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    newer = touch_backup(folder, datetime(2025, 6, 2, 3, 0))
    just_made = touch_backup(folder, datetime(1970, 1, 1, 0, 0, 12))  # a box whose clock was not set yet
    assert rotate(folder, keep_daily=1, keep_weekly=0, protect=just_made) == []
    assert just_made.exists() and newer.exists()
    second = touch_backup(folder, datetime(2025, 6, 2, 3, 0), serial=2)
    assert rotate(folder, keep_daily=1, keep_weekly=0, protect=just_made) == [newer]  # same second: -2 is newer
    assert to_keep(list_backups(folder), 0, 0) == set() and second.exists()


def test_backup_refusals_say_why(settings, tmp_path):
    with pytest.raises(BackupError, match="no store at"):
        run_backup(make_settings(tmp_path / "empty"))
    with pytest.raises(BackupError, match="is not a folder"):
        run_backup(settings, tmp_path / "no-stick")
    greedy = make_settings(settings.data_dir, min_free_mb=10**9)  # more than any disk: the backup must not eat it
    with pytest.raises(BackupError, match=r"not enough free space .* must stay free for orders \(min_free_mb\)"):
        run_backup(greedy)
    assert list_backups(backup_dir(settings)) == []
    assert [p.name for p in backup_dir(settings).iterdir()] == [".backup.lock"]  # no partial file left


def test_a_destination_that_cannot_be_written_is_refused(settings, tmp_path):
    dest = tmp_path / "readonly"
    dest.mkdir()
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("root ignores file modes and chattr is missing")
        subprocess.run(["chattr", "+i", str(dest)], check=True)
    else:
        dest.chmod(0o555)
    try:
        with pytest.raises(BackupError, match=f"cannot write to {dest}"):
            run_backup(settings, dest)
    finally:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(dest)], check=True)
        dest.chmod(0o755)


def test_the_usb_copy_is_made_only_on_a_mounted_stick(settings, tmp_path, monkeypatch):
    stick = tmp_path / "stick"
    stick.mkdir()
    usb = make_settings(settings.data_dir, backup_usb_dir=str(stick))
    report = run_backup(usb, now=datetime(2025, 6, 2, 3, 0))
    assert [m.path.parent for m in report.made] == [backup_dir(settings)]
    assert report.skipped == (f"{stick} is not a mounted USB stick: no copy made there",)
    monkeypatch.setattr("appliance.backup.os.path.ismount", lambda p: Path(p) == stick)
    report = run_backup(usb, now=datetime(2025, 6, 3, 3, 0), automatic=True)
    local, copy = (m.path for m in report.made)
    assert copy == stick / "store-20250603-030000.db" and copy.read_bytes() == local.read_bytes()
    assert inspect_store_file(copy).store_id == inspect_store_file(local).store_id


def test_a_copy_that_does_not_read_back_whole_is_not_kept(settings, tmp_path, monkeypatch):
    good, _ = make_backup(settings.db_path, tmp_path, datetime(2025, 6, 2, 3, 0))
    stick = tmp_path / "stick"
    stick.mkdir()
    real_copy = shutil.copyfileobj

    def lossy(source, target, length=0):  # a stick that drops the end of what it is given
        target.write(source.read()[:-8192])

    monkeypatch.setattr("appliance.backup.shutil.copyfileobj", lossy)
    with pytest.raises(BackupError, match="does not read back whole"):
        copy_backup(good, stick)
    assert list(stick.iterdir()) == []
    monkeypatch.setattr("appliance.backup.shutil.copyfileobj", real_copy)
    assert copy_backup(good, stick).read_bytes() == good.read_bytes()


def test_progress_lines_for_a_large_store(capsys):
    show = backup_progress(min_pages=100)
    for done in range(0, 1001, 50):
        show(done, 1000)
    show(5, 10)  # below the size worth reporting
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "backup: 0% (0 of 1000 pages)" and lines[-1] == "backup: 100% (1000 of 1000 pages)"
    assert len(lines) == 11


def test_backup_command_prints_what_it_made_and_rotated(settings, capsys):
    folder = backup_dir(settings)
    folder.mkdir()
    old = touch_backup(folder, datetime(2020, 1, 1, 3, 0))
    argv = ["backup", "--data-dir", str(settings.data_dir), "--automatic", "--keep-daily", "1", "--keep-weekly", "0"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    (made,) = [p for _, p in list_backups(folder)]
    schema = available()[-1][0]
    assert f"backup: {made} (1 MB, 0 orders, schema {schema}; integrity_check ok)" in out
    assert f"rotated out: {old.name}" in out and not old.exists()


def touch_manual(folder: Path, when: datetime) -> Path:
    path = folder / f"store-{when:%Y%m%d-%H%M%S}-manual.db"
    path.write_bytes(b"m")
    return path


def test_manual_backups_never_rotate_out_automatic_ones(tmp_path):
    """Issue 14 item 8: a manual backup used to count as the day's newest and push that day's nightly one out."""
    folder = tmp_path / "backups"
    folder.mkdir()
    nightly = [touch_backup(folder, datetime(2025, 6, day, 4, 10)) for day in range(1, 8)]  # 7 nights
    manual = [touch_manual(folder, datetime(2025, 6, 7, 9 + n // 60, n % 60)) for n in range(12)]  # 12 on day 7
    removed = rotate(folder, keep_daily=7, keep_weekly=0, protect=manual[-1])
    assert all(p.exists() for p in nightly)  # every nightly one survives twelve manual ones on its day
    assert sorted(removed) == sorted(manual[:2])  # only manual ones beyond the newest 10 went
    assert [p for p in manual if p.exists()] == manual[2:]
    # and the nightly rotation never deletes a manual one: an eighth night removes the oldest night only
    eighth = touch_backup(folder, datetime(2025, 6, 8, 4, 10))
    assert rotate(folder, keep_daily=7, keep_weekly=0, protect=eighth) == [nightly[0]]
    assert all(p.exists() for p in manual[2:])


def test_a_manual_backup_the_same_day_keeps_the_nightly_one(settings):
    nightly = run_backup(settings, now=datetime(2025, 6, 2, 4, 5), automatic=True, keep_daily=1, keep_weekly=0)
    manual = run_backup(settings, now=datetime(2025, 6, 2, 15, 0), keep_daily=1, keep_weekly=0)
    assert manual.made[0].path.name == "store-20250602-150000-manual.db" and manual.made[0].removed == ()
    assert nightly.made[0].path.exists()
    again = run_backup(settings, now=datetime(2025, 6, 3, 4, 5), automatic=True, keep_daily=1, keep_weekly=0)
    assert again.made[0].removed == (nightly.made[0].path,)  # the nightly rotation counts nightly ones only
    names = [p.name for _, p in list_backups(backup_dir(settings))]
    assert names == ["store-20250603-040500.db", "store-20250602-150000-manual.db"]


def test_the_off_card_copy_is_noted_and_the_doctor_names_it(settings, tmp_path, monkeypatch):
    from appliance import offcard
    from appliance.doctor import Mark

    stick = tmp_path / "stick"
    stick.mkdir()
    usb = make_settings(settings.data_dir, backup_usb_dir=str(stick))
    now = datetime(2025, 6, 3, 9, 0).astimezone()
    (check,) = offcard.checks(usb, now, ismount=lambda p: False)
    assert (
        check.mark is Mark.WARN
        and check.detail == f"no backup was ever copied off the SD card (no stick at {stick} now)"
    )
    monkeypatch.setattr("appliance.backup.os.path.ismount", lambda p: Path(p) == stick)
    report = run_backup(usb, now=datetime(2025, 6, 3, 3, 0), automatic=True)
    copy = report.made[1].path
    # the stick went home with the manager: the note still names the copy and its age
    (check,) = offcard.checks(usb, now, ismount=lambda p: False)
    assert (check.mark, check.detail) == (Mark.OK, f"newest {copy}, 6 h old; no stick at {stick} now")
    (check,) = offcard.checks(usb, datetime(2025, 6, 13, 9, 0).astimezone(), ismount=lambda p: False)
    assert check.mark is Mark.WARN and check.detail.startswith(f"newest {copy}, 10 days old")
    # a stick plugged in with a newer copy made elsewhere: the newest of both is named
    newer = stick / "store-20250603-080000.db"
    newer.write_bytes(copy.read_bytes())
    (check,) = offcard.checks(usb, now, ismount=lambda p: Path(p) == stick)
    assert (check.mark, check.detail) == (Mark.OK, f"newest {newer}, 1 h old; a stick is mounted at {stick}")
    (check,) = offcard.checks(make_settings(settings.data_dir, backup_usb_dir=""), now)
    assert check.mark is Mark.WARN and "every backup stays on the SD card" in check.detail


def test_the_doctor_lists_the_off_card_line(settings):
    from appliance.doctor import run_checks

    names = [c.name for c in run_checks(settings, printers=False, unit_states=lambda units: None)]
    assert names.index("off-card backup") == names.index("backups") + 1


# restore


def test_a_truncated_file_is_refused_and_the_live_store_is_untouched(settings, tmp_path, capsys):
    write_order(settings, "kept-order-1")
    good, _ = make_backup(settings.db_path, tmp_path, datetime(2025, 6, 2, 3, 0))
    truncated = tmp_path / "truncated.db"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    live_before = {p.name: p.read_bytes() for p in settings.data_dir.iterdir() if p.is_file()}
    assert main(["restore", "--data-dir", str(settings.data_dir), str(truncated)]) == 2
    err = capsys.readouterr().err
    assert f"{truncated} is damaged (integrity_check" in err and "nothing was changed" in err
    assert {p.name: p.read_bytes() for p in settings.data_dir.iterdir() if p.is_file()} == live_before


@pytest.mark.parametrize("kind", ["text", "other_sqlite", "empty_store"])
def test_a_file_that_is_not_a_tablebox_store_is_refused(settings, tmp_path, kind):
    bad = tmp_path / "bad.db"
    if kind == "text":
        bad.write_text("orders,2025\n")
        why = "is not a SQLite database"
    else:
        conn = apsw.Connection(str(bad))
        if kind == "other_sqlite":
            conn.execute("CREATE TABLE notes (x)")
            why = "is not a Tablebox store (its tables"
        else:  # migrated but never initialised: no store_id
            from appliance.db.migrate import migrate

            migrate(conn)
            why = "is not a Tablebox store (no store_id"
        conn.close()
    live = settings.db_path.read_bytes()
    with pytest.raises(BackupError, match=f"{bad}.*{why}".replace("(", r"\(")):
        restore(settings, bad)
    assert settings.db_path.read_bytes() == live
    assert sorted(p.name for p in settings.data_dir.iterdir()) == ["store.db", "store.secret"]


def test_restore_keeps_the_previous_database_aside(settings, tmp_path, capsys):
    write_order(settings, "before-backup")
    good, _ = make_backup(settings.db_path, tmp_path, datetime(2025, 6, 2, 3, 0))
    write_order(settings, "after-backup")
    assert main(["restore", "--data-dir", str(settings.data_dir), str(good)]) == 0
    out = capsys.readouterr().out
    (aside,) = settings.data_dir.glob("store.db.before-restore-*")
    assert f"kept as {aside}" in out and "systemctl start tablebox-web" in out
    assert order_keys(settings.db_path) == {"before-backup"}
    assert order_keys(aside) == {"before-backup", "after-backup"}
    assert not Path(f"{settings.db_path}-wal").exists()  # no WAL of the old store left to replay onto the new one


def test_restore_refuses_while_a_process_has_the_store_open(settings, tmp_path, capsys):
    good, _ = make_backup(settings.db_path, tmp_path, datetime(2025, 6, 2, 3, 0))
    write_order(settings, "live-order")
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import apsw, sys; c = apsw.Connection(sys.argv[1]); "
            "c.execute('SELECT count(*) FROM orders').fetchall(); print('open', flush=True); sys.stdin.read()",
            str(settings.db_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "open\n"
        assert store_in_use(settings.db_path)
        assert main(["restore", "--data-dir", str(settings.data_dir), str(good)]) == 2
        err = capsys.readouterr().err
        assert "is in use" in err and "systemctl stop tablebox-web tablebox-printd" in err
        assert order_keys(settings.db_path) == {"live-order"}
        assert main(["restore", "--data-dir", str(settings.data_dir), "--force", str(good)]) == 0
        assert order_keys(settings.db_path) == set()
    finally:
        holder.stdin.close()
        holder.wait(10)
        holder.stdout.close()
    assert not store_in_use(settings.db_path)


def test_restore_onto_a_new_box_without_a_store(settings, tmp_path, capsys):
    good, _ = make_backup(settings.db_path, tmp_path, datetime(2025, 6, 2, 3, 0))
    fresh = make_settings(tmp_path / "new-box")
    assert main(["restore", "--data-dir", str(fresh.data_dir), str(good)]) == 0
    captured = capsys.readouterr()
    assert "no store secret at" in captured.err and "kept as" not in captured.out
    assert inspect_store_file(fresh.db_path).store_id == inspect_store_file(good).store_id


def test_a_damaged_store_is_replaced_and_kept_aside(settings, tmp_path):
    from tests.appliance.db.test_integrity import damage

    good, _ = make_backup(settings.db_path, tmp_path, datetime(2025, 6, 2, 3, 0))
    damage(settings.db_path)
    damaged = settings.db_path.read_bytes()
    done = restore(settings, good)
    assert done.aside[0].read_bytes() == damaged and done.previous_store_id == done.info.store_id
    assert inspect_store_file(settings.db_path).store_id == done.info.store_id  # whole again


def test_command_errors_are_one_line_and_exit_2(settings, tmp_path, capsys):
    assert main(["backup", "--data-dir", str(settings.data_dir), "--dest", str(tmp_path / "no-stick")]) == 2
    assert capsys.readouterr().err == f"tablebox: {tmp_path / 'no-stick'} is not a folder (is the USB stick mounted?)\n"
    assert main(["restore", "--data-dir", str(settings.data_dir), str(tmp_path / "nothing.db")]) == 2
    assert capsys.readouterr().err == f"tablebox: {tmp_path / 'nothing.db'}: no such file\n"
