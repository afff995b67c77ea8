"""`tablebox doctor`: every problem a technician meets on a box shows as a failed line with what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from appliance.backup import backup_dir, make_backup
from appliance.cli import main
from appliance.db.connection import open_connection
from appliance.diskspace import MB
from appliance.doctor import UNITS, Check, Mark, exit_code, run_checks
from tests.appliance.db.test_integrity import damage
from tests.appliance.test_backup import write_order
from tests.conftest import make_settings

NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def printers_said(settings, status: str = "ready", checked: datetime = NOW, name: str | None = None) -> None:
    conn = open_connection(settings.db_path)
    try:
        with conn:
            for printer in [name] if name else ["kitchen", "bar"]:
                conn.execute(
                    "INSERT INTO printer_status (name, status, detail, since, checked_at) VALUES (?, ?, '', ?, ?)"
                    " ON CONFLICT (name) DO UPDATE SET status = excluded.status, checked_at = excluded.checked_at",
                    (printer, status, stamp(checked), stamp(checked)),
                )
    finally:
        conn.close()


def healthy_box(settings) -> None:
    printers_said(settings)
    backup_dir(settings).mkdir()
    make_backup(settings.db_path, backup_dir(settings), NOW.astimezone().replace(tzinfo=None) - timedelta(hours=9))


def doctor(settings, **kw) -> dict[str, Check]:
    values = {
        "clock": lambda: NOW,
        "unit_states": lambda units: dict.fromkeys(units, "active"),
        "measure_free": lambda path: 5000 * MB,
        **kw,
    }
    checks = run_checks(settings, **values)
    return {c.name: c for c in checks}


def healthy_pi(monkeypatch, tmp_path) -> None:
    """fieldhealth's lines on a Pi with a synchronised clock, a good supply and a clean kernel log."""
    from appliance import fieldhealth

    real = fieldhealth.checks
    sys_root = tmp_path / "sys"
    (sys_root / "devices/platform/soc/soc:firmware").mkdir(parents=True)
    (sys_root / "devices/platform/soc/soc:firmware/get_throttled").write_text("0\n")
    (sys_root / "block/mmcblk0").mkdir(parents=True)

    def on_a_healthy_pi(settings, now):
        return real(settings, now, sys_root=sys_root, kernel_log=list, timedatectl=lambda: "yes")

    monkeypatch.setattr(fieldhealth, "checks", on_a_healthy_pi)


def test_a_healthy_box_passes_every_check(settings, monkeypatch, tmp_path):
    healthy_box(settings)
    healthy_pi(monkeypatch, tmp_path)
    checks = doctor(settings)
    assert list(checks) == [
        "settings",
        "database",
        "migrations",
        "store secret",
        "disk space",
        "clock",
        "printer kitchen",
        "printer bar",
        "backups",
        "off-card backup",
        "sticker address",
        "time sync",  # appliance/fieldhealth.py
        "power",
        "SD card",
        *UNITS,
    ]
    assert {c.name: c.mark for c in checks.values() if c.mark is not Mark.OK and c.name != "off-card backup"} == {}
    assert checks["disk space"].detail == "5000 MB free (orders are refused under 64 MB)"
    assert checks["backups"].detail.endswith("(9 h ago, 1 kept)")
    assert exit_code(list(checks.values())) == 0


def test_each_failure_says_what_to_do(settings):
    healthy_box(settings)
    settings.secret_path.chmod(0o644)
    printers_said(settings, checked=NOW - timedelta(minutes=10))
    checks = doctor(
        settings,
        measure_free=lambda path: 20 * MB,
        unit_states=lambda units: {**dict.fromkeys(units, "active"), "tablebox-printd.service": "failed"},
    )
    failed = {c.name: c for c in checks.values() if c.mark is Mark.FAIL}
    assert set(failed) == {"store secret", "disk space", "print worker", "tablebox-printd.service"}
    assert (
        "mode 0644" in failed["store secret"].detail
        and failed["store secret"].fix == f"chmod 600 {settings.secret_path}"
    )
    assert (
        failed["disk space"].detail == "20 MB free, under min_free_mb (64 MB): new orders are being refused (disk_full)"
    )
    assert failed["print worker"].detail == "no recent status from kitchen, bar: the print worker is not running"
    assert failed["print worker"].fix.startswith("`systemctl start tablebox-printd`")
    assert failed["tablebox-printd.service"].detail == "failed"
    assert "journalctl -u tablebox-printd.service" in failed["tablebox-printd.service"].fix
    assert exit_code(list(checks.values())) == 1
    line = failed["store secret"].line()
    assert line.startswith("✗ store secret: ") and line.endswith(f"  → chmod 600 {settings.secret_path}")


def test_a_box_that_booted_in_1970_has_a_wrong_clock(settings):
    checks = doctor(settings, clock=lambda: datetime(1970, 1, 1, 0, 1, tzinfo=UTC))
    clock = checks["clock"]
    assert clock.mark is Mark.FAIL and clock.detail.startswith("the clock says 1970-01-01")
    assert "timedatectl" in clock.fix
    assert exit_code(list(checks.values())) == 1


def test_a_clock_behind_the_newest_order_is_wrong(settings):
    write_order(settings, "k1")  # stamped with the real time
    checks = doctor(settings, clock=lambda: datetime.now(UTC) - timedelta(days=2))
    assert checks["clock"].mark is Mark.FAIL and "before the newest order" in checks["clock"].detail


def test_a_clock_behind_the_newest_backup_is_wrong(settings):
    backup_dir(settings).mkdir()
    make_backup(settings.db_path, backup_dir(settings), datetime(2025, 7, 1, 3, 0))
    checks = doctor(settings)  # 2 June, yet a backup of 1 July
    assert checks["clock"].mark is Mark.FAIL and "store-20250701-030000.db" in checks["clock"].detail


@pytest.mark.parametrize(
    "status,mark,reason",
    [
        ("paper_out", Mark.FAIL, "paper out"),
        ("cover_open", Mark.FAIL, "cover open"),
        ("paper_near_end", Mark.WARN, "paper low"),
    ],
)
def test_a_printer_that_cannot_print(settings, status, mark, reason):
    printers_said(settings)
    printers_said(settings, status, name="kitchen")
    check = doctor(settings)["printer kitchen"]
    assert (check.mark, check.detail) == (mark, reason)
    assert check.fix.endswith("then `tablebox printers test kitchen`")


def test_low_disk_and_old_or_missing_backups_are_warnings(settings):
    printers_said(settings)
    checks = doctor(settings, measure_free=lambda path: 200 * MB)
    assert checks["disk space"].mark is Mark.WARN and checks["backups"].mark is Mark.WARN
    assert checks["backups"].detail == f"no backup in {backup_dir(settings)} yet"
    assert exit_code(list(checks.values())) == 0  # warnings alone do not fail
    backup_dir(settings).mkdir()
    make_backup(settings.db_path, backup_dir(settings), datetime(2025, 5, 28, 3, 0))
    assert doctor(settings)["backups"].detail == "the newest backup, store-20250528-030000.db, is 5 days old"


def test_a_damaged_database_points_to_the_newest_backup(settings):
    healthy_box(settings)
    newest = sorted(backup_dir(settings).glob("store-*.db"))[-1]
    damage(settings.db_path)
    checks = doctor(settings)
    assert checks["database"].mark is Mark.FAIL and "is damaged" in checks["database"].detail
    assert f"`tablebox restore {newest} --data-dir {settings.data_dir}`" in checks["database"].fix
    assert "migrations" not in checks and "printer kitchen" not in checks  # nothing more is read from it


def test_no_store_and_no_systemd(tmp_path):
    settings = make_settings(tmp_path / "none")
    checks = doctor(settings, unit_states=lambda units: None)
    assert checks["database"].mark is Mark.FAIL and "tablebox init" in checks["database"].fix
    assert checks["store secret"].mark is Mark.FAIL
    assert (checks["services"].mark, checks["services"].detail) == (
        Mark.SKIP,
        "not checked (this machine does not run systemd)",
    )


def test_the_command_lists_every_check_and_fails_on_a_bad_settings_file(settings, tmp_path, capsys):
    healthy_box(settings)
    bad = tmp_path / "tablebox.toml"
    bad.write_text("port = 'eighty'\n")
    code = main(["doctor", "--data-dir", str(settings.data_dir), "--config", str(bad)])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert (
        out[0]
        == f"✗ settings: {bad}: port must be int, got 'eighty'  → correct that file (`tablebox --help` lists every setting)"
    )
    assert out[1].startswith(f"✓ database: {settings.db_path}: integrity_check ok")
    failed = sum(line.startswith("✗ ") for line in out)
    assert out[-1].startswith(f"{failed} failed, ") and failed >= 1
