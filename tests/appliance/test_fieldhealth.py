"""appliance/fieldhealth.py: doctor's clock synchronisation, power and SD card lines, on fake /sys and /run trees
and kernel logs shaped like the real ones (the messages the kernel's drivers print; see the module's docstring)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from appliance import fieldhealth
from appliance.doctor import Mark, run_checks
from tests.conftest import make_settings

NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)


def pi_sys(tmp_path: Path, throttled: str | None = "0", volt_alarm: str | None = None, sd: bool = True) -> Path:
    """A /sys with what a Raspberry Pi shows: the firmware's get_throttled (hex, as the kernel prints it), the
    rpi_volt hwmon device, the SD card's block device."""
    sys_root = tmp_path / "sys"
    if throttled is not None:
        firmware = sys_root / "devices/platform/soc/soc:firmware"
        firmware.mkdir(parents=True)
        (firmware / "get_throttled").write_text(throttled + "\n")
    if volt_alarm is not None:
        hwmon = sys_root / "class/hwmon/hwmon1"
        hwmon.mkdir(parents=True)
        (hwmon / "name").write_text("rpi_volt\n")
        (hwmon / "in0_lcrit_alarm").write_text(volt_alarm + "\n")
    other = sys_root / "class/hwmon/hwmon0"  # the CPU temperature sensor is there too
    other.mkdir(parents=True, exist_ok=True)
    (other / "name").write_text("cpu_thermal\n")
    if sd:
        (sys_root / "block/mmcblk0").mkdir(parents=True)
    return sys_root


def by_name(checks: list) -> dict[str, tuple[Mark, str, str]]:
    return {c.name: (c.mark, c.detail, c.fix) for c in checks}


@pytest.mark.parametrize(
    ("throttled", "alarm", "mark", "words"),
    [
        ("0", None, Mark.OK, "no under-voltage since this boot"),
        ("50005", None, Mark.FAIL, "under-voltage now"),  # what a weak phone charger shows under load
        ("50000", None, Mark.WARN, "under-voltage since this boot"),
        ("80000", None, Mark.WARN, "slowed itself down"),  # soft temperature limit reached
        (None, "1", Mark.FAIL, "under-voltage now"),  # newer kernels: the hwmon alarm only
        (None, "0", Mark.OK, "no under-voltage since this boot"),
    ],
)
def test_power(tmp_path, throttled, alarm, mark, words):
    sys_root = pi_sys(tmp_path, throttled, alarm)
    check = fieldhealth.power_check(sys_root, [])
    assert check.mark is mark and words in check.detail
    if mark is Mark.FAIL:
        assert "official power supply" in check.fix


def test_under_voltage_in_the_kernel_log_counts_when_the_word_is_clean(tmp_path):
    log = [
        "rpi_volt rpi_volt: Undervoltage detected!",
        "rpi_volt rpi_volt: Voltage normalised",
        "rpi_volt rpi_volt: Undervoltage detected!",
    ]
    check = fieldhealth.power_check(pi_sys(tmp_path, None, "0"), log)
    assert (check.mark, check.detail) == (Mark.WARN, "under-voltage since this boot (2 times in the kernel's log)")


def test_no_pi_no_power_line(tmp_path):
    check = fieldhealth.power_check(pi_sys(tmp_path, None, None, sd=False), [])
    assert (check.mark, check.detail) == (Mark.SKIP, "no Raspberry Pi power sensor here")


SD_FAILING = [
    "mmc0: Timeout waiting for hardware interrupt.",
    "mmcblk0: error -110 transferring data, sector 4470320, nr 8, cmd response 0x900, card status 0xc00",
    "I/O error, dev mmcblk0, sector 4470320 op 0x1:(WRITE) flags 0x800 phys_seg 1 prio class 2",
    "Buffer I/O error on dev mmcblk0p2, logical block 549638, lost async page write",
    "EXT4-fs error (device mmcblk0p2): ext4_find_entry:1683: inode #2: comm tablebox: reading directory lblock 0",
]


def test_sd_card_errors_fail_with_the_last_one_named(tmp_path):
    check = fieldhealth.sd_card_check(pi_sys(tmp_path), ["usb 1-1: new high-speed USB device", *SD_FAILING])
    assert check.mark is Mark.FAIL
    assert check.detail.startswith("4 read/write error(s) since this boot, the last: EXT4-fs error (device mmcblk0p2)")
    assert "tablebox backup" in check.fix and "tablebox restore" in check.fix


def test_a_slow_card_is_a_warning(tmp_path):
    check = fieldhealth.sd_card_check(pi_sys(tmp_path), SD_FAILING[:1])
    assert (check.mark, check.detail) == (
        Mark.WARN,
        "1 slow answer(s) from the card since this boot, the last: mmc0: Timeout waiting for hardware interrupt.",
    )


def test_a_clean_log_a_hidden_log_and_no_card(tmp_path):
    sys_root = pi_sys(tmp_path)
    assert fieldhealth.sd_card_check(sys_root, ["Booting Linux on physical CPU 0x0"]).mark is Mark.OK
    hidden = fieldhealth.sd_card_check(sys_root, None)
    assert (hidden.mark, hidden.fix) == (Mark.SKIP, "run `sudo tablebox doctor` to include it")
    no_card = fieldhealth.sd_card_check(pi_sys(tmp_path / "laptop", sd=False), SD_FAILING)
    assert (no_card.mark, no_card.detail) == (Mark.SKIP, "this machine has no SD card")
    # Errors of another disk are not the card's.
    usb_disk = ["I/O error, dev sda, sector 2048 op 0x0:(READ) flags 0x0 phys_seg 1 prio class 2"]
    assert fieldhealth.sd_card_check(sys_root, usb_disk).mark is Mark.OK


def test_clock_synchronised_by_flag_file_by_timedatectl_or_not(tmp_path):
    run_root = tmp_path / "run"
    never_asked = lambda: pytest.fail("timedatectl asked although the flag file answers")  # noqa: E731
    (run_root / "systemd/timesync").mkdir(parents=True)
    (run_root / "systemd/timesync/synchronized").write_text("")
    assert fieldhealth.clock_sync_check(run_root, never_asked).mark is Mark.OK
    (run_root / "systemd/timesync/synchronized").unlink()
    assert fieldhealth.clock_sync_check(run_root, lambda: "yes").mark is Mark.OK  # chrony or ntpd
    unsynced = fieldhealth.clock_sync_check(run_root, lambda: "no")
    assert unsynced.mark is Mark.WARN and "saved before it was switched off" in unsynced.detail
    assert "ntp_server" in unsynced.fix
    assert fieldhealth.clock_sync_check(run_root, lambda: None).mark is Mark.SKIP


def test_the_kernel_log_is_read_only_on_a_pi(tmp_path):
    read: list[int] = []

    def log() -> list[str]:
        read.append(1)
        return SD_FAILING

    laptop = pi_sys(tmp_path / "laptop", None, None, sd=False)
    lines = by_name(fieldhealth.checks(make_settings(tmp_path), NOW, sys_root=laptop, kernel_log=log))
    assert read == [] and lines["SD card"][0] is Mark.SKIP and lines["power"][0] is Mark.SKIP
    pi = pi_sys(tmp_path / "pi", "0")
    lines = by_name(
        fieldhealth.checks(
            make_settings(tmp_path), NOW, sys_root=pi, run_root=tmp_path, kernel_log=log, timedatectl=lambda: "no"
        )
    )
    assert read == [1]
    assert [lines[name][0] for name in ("time sync", "power", "SD card")] == [Mark.WARN, Mark.OK, Mark.FAIL]


def test_doctor_shows_the_three_lines(tmp_path):
    names = [c.name for c in run_checks(make_settings(tmp_path), clock=lambda: NOW, unit_states=lambda units: None)]
    assert {"time sync", "power", "SD card"} <= set(names)
    assert names.index("time sync") < names.index("power") < names.index("SD card")
