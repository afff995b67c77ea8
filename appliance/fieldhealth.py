"""`tablebox doctor`'s lines about the box's own hardware in the field: is the clock synchronised, is the power
supply strong enough, does the SD card report errors.

Every source is a file or a command that a test can replace (a fake /sys or /run tree, a kernel log as lines):

- Clock: systemd-timesyncd creates /run/systemd/timesync/synchronized once it has synchronised the clock (the
  file systemd-time-wait-sync.service(8) waits for); `timedatectl show -p NTPSynchronized` reports the kernel's
  "synchronised" status, which chrony or ntpd set too. Neither: the clock runs from a saved time (fake-hwclock,
  timesyncd's clock file), which may be off by the time the box was switched off.
- Power: the Raspberry Pi firmware reports under-voltage as bits of its "throttled" word: bit 0 under-voltage now,
  bit 16 under-voltage since boot (bits 2/18 throttled, 3/19 soft temperature limit; the word `vcgencmd
  get_throttled` prints). Raspberry Pi kernels show it, in hex, in .../soc:firmware/get_throttled
  (drivers/firmware/raspberrypi.c); newer ones in the rpi_volt hwmon device's in0_lcrit_alarm (1 while the supply
  is too low; drivers/hwmon/raspberrypi-hwmon.c), whose driver also logs "Undervoltage detected!".
- SD card: the kernel logs a failing card's errors: the block layer's "I/O error, dev mmcblk0, sector ...",
  "Buffer I/O error on dev mmcblk0p2", ext4's "EXT4-fs error (device mmcblk0p2)", the MMC driver's "mmcblk0:
  error -110 transferring data" and the host controller's "mmc0: Timeout waiting for hardware interrupt". Read
  with `journalctl -k -b` (or /dev/kmsg); a user outside the systemd-journal/adm groups cannot, and is told so.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path

import appliance.doctor as doctor
from appliance.settings import BoxSettings

UNDER_VOLTAGE_NOW = 1 << 0
THROTTLED_NOW = 1 << 2
UNDER_VOLTAGE_SINCE_BOOT = 1 << 16
THROTTLED_SINCE_BOOT = 1 << 18
SOFT_TEMP_LIMIT_SINCE_BOOT = 1 << 19

# Lines that mean the card (or its file system) failed a read or write: the card is dying or badly seated.
SD_FAILURES = re.compile(
    r"I/O error, dev mmcblk\d+|Buffer I/O error on dev mmcblk\d+|EXT4-fs error \(device mmcblk\d+|"
    r"mmcblk\d+: error -\d+ (?:transferring|sending)|mmcblk\d+: recovery failed"
)
# Lines that mean the card was slow to answer: worth watching, not yet lost data.
SD_WARNINGS = re.compile(r"mmc\d+: Timeout waiting for hardware|mmc\d+: .*(?:timeout|CRC error)", re.IGNORECASE)
UNDER_VOLTAGE_LOG = re.compile(r"Under-?voltage detected", re.IGNORECASE)

KernelLog = Callable[[], list[str] | None]
Timedatectl = Callable[[], str | None]

POWER_FIX = (
    "use the official power supply for this Pi (5.1 V 3 A for a Pi 4, 5 V 5 A for a Pi 5) and a short, thick cable: "
    "under-voltage corrupts SD cards and slows the box"
)


def read_kernel_log() -> list[str] | None:
    """This boot's kernel messages, or None when this user may not read them."""
    journalctl = shutil.which("journalctl")
    if journalctl and Path("/run/systemd/system").is_dir():
        try:
            done = subprocess.run(
                [journalctl, "-k", "-b", "--no-pager", "-q", "-o", "cat"], capture_output=True, text=True, timeout=30
            )
        except (OSError, subprocess.TimeoutExpired):
            done = None
        # Without access to the system journal journalctl still exits 0, with no line from the kernel.
        if done is not None and done.returncode == 0 and done.stdout.strip():
            return done.stdout.splitlines()
    try:
        with open("/dev/kmsg", "rb", buffering=0) as kmsg:
            os.set_blocking(kmsg.fileno(), False)
            lines: list[str] = []
            while True:
                try:
                    record = kmsg.read(8192)
                except BlockingIOError:
                    break
                if not record:
                    break
                lines.append(record.decode("utf-8", "replace").split(";", 1)[-1].rstrip("\n"))
            return lines
    except OSError:
        return None


def run_timedatectl() -> str | None:
    timedatectl = shutil.which("timedatectl")
    if timedatectl is None or not Path("/run/systemd/system").is_dir():
        return None
    try:
        done = subprocess.run(
            [timedatectl, "show", "-p", "NTPSynchronized", "--value"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def checks(
    settings: BoxSettings,
    now: datetime,
    *,
    sys_root: Path = Path("/sys"),
    run_root: Path = Path("/run"),
    kernel_log: KernelLog = read_kernel_log,
    timedatectl: Timedatectl = run_timedatectl,
) -> list[doctor.Check]:
    # The kernel's log is read only on a machine with an SD card or a Pi's power sensor (a laptop skips both).
    on_a_pi = any(sys_root.glob("block/mmcblk*")) or _throttled_word(sys_root) is not None
    log = kernel_log() if on_a_pi or _hwmon_alarm(sys_root) is not None else None
    return [clock_sync_check(run_root, timedatectl), power_check(sys_root, log), sd_card_check(sys_root, log)]


def clock_sync_check(run_root: Path, timedatectl: Timedatectl) -> doctor.Check:
    Check, Mark = doctor.Check, doctor.Mark
    if (run_root / "systemd/timesync/synchronized").exists():
        return Check("time sync", Mark.OK, "synchronised with a time server (systemd-timesyncd)")
    answer = timedatectl()
    if answer == "yes":
        return Check("time sync", Mark.OK, "synchronised with a time server")
    if answer is None:
        return Check("time sync", Mark.SKIP, "no systemd here to ask (timedatectl)")
    return Check(
        "time sync",
        Mark.WARN,
        "not synchronised with a time server since this boot: the clock runs from the time saved before it was "
        "switched off and may be off by as long as it was off",
        "connect the box to the internet, or set [provision] ntp_server to a time server on this network (many "
        "routers are one) and run provision.sh again; `timedatectl timesync-status` shows what it tried",
    )


def _throttled_word(sys_root: Path) -> int | None:
    for path in sorted(sys_root.glob("devices/platform/soc*/*firmware/get_throttled")):
        try:
            return int(path.read_text().strip(), 16)
        except (OSError, ValueError):
            continue
    return None


def _hwmon_alarm(sys_root: Path) -> bool | None:
    for hwmon in sorted(sys_root.glob("class/hwmon/hwmon*")):
        try:
            if (hwmon / "name").read_text().strip() != "rpi_volt":
                continue
            return (hwmon / "in0_lcrit_alarm").read_text().strip() == "1"
        except OSError:
            continue
    return None


def power_check(sys_root: Path, log: Sequence[str] | None) -> doctor.Check:
    Check, Mark = doctor.Check, doctor.Mark
    word = _throttled_word(sys_root)
    alarm = _hwmon_alarm(sys_root)
    logged = sum(1 for line in log or () if UNDER_VOLTAGE_LOG.search(line))
    if word is None and alarm is None and not logged:
        return Check("power", Mark.SKIP, "no Raspberry Pi power sensor here")
    if alarm or (word is not None and word & UNDER_VOLTAGE_NOW):
        return Check("power", Mark.FAIL, "under-voltage now: the power supply is too weak", POWER_FIX)
    if (word is not None and word & UNDER_VOLTAGE_SINCE_BOOT) or logged:
        times = f" ({logged} time{'s' if logged != 1 else ''} in the kernel's log)" if logged else ""
        return Check("power", Mark.WARN, f"under-voltage since this boot{times}", POWER_FIX)
    if word is not None and word & (THROTTLED_NOW | THROTTLED_SINCE_BOOT | SOFT_TEMP_LIMIT_SINCE_BOOT):
        return Check(
            "power",
            Mark.WARN,
            f"the supply is fine, but the Pi slowed itself down since this boot (too hot; throttled=0x{word:x})",
            "give the box air or a heatsink/fan case; keep it away from the kitchen's heat",
        )
    return Check("power", Mark.OK, "no under-voltage since this boot" + (f" (throttled=0x{word:x})" if word else ""))


def sd_card_check(sys_root: Path, log: Sequence[str] | None) -> doctor.Check:
    Check, Mark = doctor.Check, doctor.Mark
    if not any(sys_root.glob("block/mmcblk*")):
        return Check("SD card", Mark.SKIP, "this machine has no SD card")
    if log is None:
        return Check(
            "SD card",
            Mark.SKIP,
            "the kernel's log cannot be read by this user",
            "run `sudo tablebox doctor` to include it",
        )
    failures = [line for line in log if SD_FAILURES.search(line)]
    warnings = [line for line in log if SD_WARNINGS.search(line) and not SD_FAILURES.search(line)]
    if failures:
        return Check(
            "SD card",
            Mark.FAIL,
            f"{len(failures)} read/write error(s) since this boot, the last: {failures[-1].strip()}",
            "the card is failing: copy a backup off it now (`tablebox backup` with the TABLEBOX stick in), then "
            "move to a new card (flash it, `tablebox restore BACKUP`)",
        )
    if warnings:
        return Check(
            "SD card",
            Mark.WARN,
            f"{len(warnings)} slow answer(s) from the card since this boot, the last: {warnings[-1].strip()}",
            "reseat the card; if this comes back, keep a fresh backup on the stick and plan a new card",
        )
    return Check("SD card", Mark.OK, "no SD card errors in the kernel's log since this boot")
