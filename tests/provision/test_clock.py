"""provision/steps/clock.sh and watchdog.sh: a clock that is synchronised (or a saved sane time, said so), a local
NTP server, time-sync.target meaning synchronised but never blocking the box for ever, and the hardware watchdog
within the bcm2835's 15 s.

The functions run sourced from provision.sh against a staging root (as the rest of provision.sh is tested);
timedatectl and the synchronisation flag file are stand-ins.
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "provision" / "provision.sh"


def bash(steps: str, root: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Source provision.sh (which sources provision/steps/*.sh), with ROOT and WORK set, then run `steps`."""
    work = root.parent / "work"
    work.mkdir(exist_ok=True)
    script = f'source "{SCRIPT}"; ROOT="{root}"; WORK="{work}"; {steps}'
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})}
    )


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc/group").write_text("root:x:0:\n")
    (root / "lib/systemd/system").mkdir(parents=True)
    # The image's unit, as systemd ships it (units/systemd-time-wait-sync.service.in).
    (root / "lib/systemd/system/systemd-time-wait-sync.service").write_text(
        "[Unit]\nDescription=Wait Until Kernel Time Synchronized\nDefaultDependencies=no\n"
        "Before=time-sync.target shutdown.target\nWants=time-sync.target\nConflicts=shutdown.target\n\n"
        "[Service]\nType=oneshot\nExecStart=/lib/systemd/systemd-time-wait-sync\nTimeoutStartSec=infinity\n"
        "RemainAfterExit=yes\n\n[Install]\nWantedBy=sysinit.target\n"
    )
    return root


def test_a_local_ntp_server_becomes_a_timesyncd_drop_in_and_time_sync_target_waits_for_synchronisation(root):
    done = bash('CFG_NTP_SERVER="192.168.1.1 ntp.example.lan"; step_clock', root)
    assert done.returncode == 0, done.stderr
    dropin = root / "etc/systemd/timesyncd.conf.d/tablebox.conf"
    assert dropin.read_text().splitlines()[1:] == ["[Time]", "NTP=192.168.1.1 ntp.example.lan"]
    assert oct(dropin.stat().st_mode & 0o777) == "0o644"
    wants = root / "etc/systemd/system/sysinit.target.wants/systemd-time-wait-sync.service"
    assert wants.is_symlink()
    # Bounded: without a time server the box goes on with its saved time after 90 s instead of never starting.
    bound = root / "etc/systemd/system/systemd-time-wait-sync.service.d/tablebox.conf"
    assert "[Service]\nTimeoutStartSec=90s\n" in bound.read_text()
    # A second run changes nothing; no ntp_server any more removes the drop-in (the image's servers again).
    again = bash('CFG_NTP_SERVER="192.168.1.1 ntp.example.lan"; step_clock; echo "changes=${#CHANGES[@]}"', root)
    assert "changes=0" in again.stdout, again.stdout
    dropped = bash('CFG_NTP_SERVER=""; step_clock', root)
    assert not dropin.exists() and "timesyncd.conf.d/tablebox.conf removed" in dropped.stdout


def test_an_ntp_server_that_is_not_a_host_name_is_refused(root):
    done = bash('CFG_NTP_SERVER="pool.ntp.org; rm -rf /"; step_clock', root)
    assert done.returncode == 1 and "give host names or addresses separated by spaces" in done.stderr
    assert not (root / "etc/systemd/timesyncd.conf.d/tablebox.conf").exists()


def test_the_time_wait_drop_in_passes_systemd_analyze_verify(root, tmp_path):
    bash('CFG_NTP_SERVER=""; step_clock', root)
    unit = tmp_path / "verify" / "systemd-time-wait-sync.service"
    unit.parent.mkdir()
    # The shipped unit with the drop-in applied, as systemd merges them; ExecStart= pointed at a binary here.
    text = (root / "lib/systemd/system/systemd-time-wait-sync.service").read_text()
    text = text.replace("/lib/systemd/systemd-time-wait-sync", "/bin/true").replace("TimeoutStartSec=infinity\n", "")
    text = text.replace("[Install]", "TimeoutStartSec=90s\n\n[Install]")
    unit.write_text(text)
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr


def sync_env(tmp_path: Path, synchronised: str = "no", flag: bool = False) -> dict[str, str]:
    fake = tmp_path / "timedatectl"
    fake.write_text(f'#!/bin/sh\n[ "$*" = "show -p NTPSynchronized --value" ] && echo {synchronised}\n')
    fake.chmod(0o755)
    flag_file = tmp_path / "synchronized"
    if flag:
        flag_file.write_text("")
    return {
        "TIMEDATECTL": str(fake),
        "TABLEBOX_CLOCK_SYNC_FILE": str(flag_file),
        "TABLEBOX_CLOCK_WAIT_SECONDS": "2",
        "TABLEBOX_CLOCK_POLL_SECONDS": "1",
    }


@pytest.mark.parametrize(("how", "synchronised", "flag"), [("timedatectl", "yes", False), ("flag file", "no", True)])
def test_a_synchronised_clock_goes_straight_on_with_apt_checking_dates(root, tmp_path, how, synchronised, flag):
    done = bash('wait_for_clock; echo "apt=${APT_CLOCK_OPTS[*]}."', root, sync_env(tmp_path, synchronised, flag))
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["apt=."], how  # no waiting, apt's own date checks on


def test_no_time_server_but_a_saved_sane_time_goes_on_with_apt_told_not_to_check_dates(root, tmp_path):
    saved = datetime.now(UTC).replace(microsecond=0)
    (root / "etc/fake-hwclock.data").write_text(saved.strftime("%Y-%m-%d %H:%M:%S\n"))
    done = bash('wait_for_clock; echo "apt=${APT_CLOCK_OPTS[*]}."', root, sync_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert "waiting for the clock to be synchronised" in done.stdout
    assert "no time server answered in 2s: going on with the saved time" in done.stdout
    assert done.stdout.splitlines()[-1] == "apt=-o Acquire::Check-Date=false."


def test_timesyncds_clock_file_counts_as_a_saved_time(root, tmp_path):
    clock = root / "var/lib/systemd/timesync/clock"
    clock.parent.mkdir(parents=True)
    clock.write_text("")
    epoch = int(datetime(2026, 3, 1, tzinfo=UTC).timestamp())
    os.utime(clock, (epoch, epoch))
    done = bash("saved_clock_epoch", root)
    assert done.stdout == str(epoch)
    # fake-hwclock's file is newer: the newest wins.
    (root / "etc/fake-hwclock.data").write_text("2026-06-01 12:00:00\n")
    assert bash("saved_clock_epoch", root).stdout == str(int(datetime(2026, 6, 1, 12, tzinfo=UTC).timestamp()))


def test_no_time_server_and_no_saved_time_fails_so_the_first_boot_unit_tries_again(root, tmp_path):
    done = bash("wait_for_clock", root, sync_env(tmp_path))
    assert done.returncode == 1
    assert "the clock is not synchronised" in done.stderr and "ntp_server" in done.stderr
    # A saved time from before 2025 is no saved time: it was never set.
    (root / "etc/fake-hwclock.data").write_text("1970-01-01 00:05:00\n")
    assert bash("wait_for_clock", root, sync_env(tmp_path)).returncode == 1


def test_apt_gets_the_clock_options(root):
    """step_packages passes what wait_for_clock decided to `apt-get update`."""
    text = SCRIPT.read_text()
    body = text[text.index("step_packages() {") : text.index("\n}\n", text.index("step_packages() {"))]
    assert body.index("wait_for_clock") < body.index('apt-get update -qq "${APT_CLOCK_OPTS[@]}"')
    assert "fake-hwclock" in text[text.index("PACKAGES=(") :].split(")")[0]


def test_the_hardware_watchdog_stays_within_the_bcm2835_limit(root):
    done = bash("step_watchdog", root)
    assert done.returncode == 0, done.stderr
    conf = root / "etc/systemd/system.conf.d/tablebox.conf"
    lines = [line for line in conf.read_text().splitlines() if not line.startswith("#")]
    assert lines == ["[Manager]", "RuntimeWatchdogSec=14s", "RebootWatchdogSec=2min"]
    # drivers/watchdog/bcm2835_wdt.c: max_timeout = WDOG_TICKS_TO_SECS(PM_WDOG_TIME_SET) = 0xfffff >> 16.
    assert int(lines[1].split("=")[1].removesuffix("s")) < 0xFFFFF >> 16 == 15
    again = bash('step_watchdog; echo "changes=${#CHANGES[@]}"', root)
    assert "changes=0" in again.stdout


def test_the_steps_run_in_order_clock_first_watchdog_after_the_units():
    done = subprocess.run(
        ["bash", "-c", f'source "{SCRIPT}"; echo "${{STEPS[@]}}"'], capture_output=True, text=True, timeout=30
    )
    steps = done.stdout.split()
    assert steps[0] == "clock" and steps.index("clock") < steps.index("packages")  # the NTP server before apt
    assert steps.index("units") < steps.index("watchdog")
