"""provision/firstboot/: the first boot is retried until provisioning succeeds, on both first-boot styles.

cloud-init runs `runcmd` once per instance (canonical/cloud-init cloudinit/config/cc_runcmd.py: frequency
PER_INSTANCE; the script is run by scripts_user in cloud-final.service, ordered After=multi-user.target on Debian),
so the runcmd entry only installs and starts tablebox-firstboot.service; firstrun.sh images install the same unit.
The unit's Restart=on-failure (allowed for Type=oneshot, systemd.service(5)) repeats `firstboot.sh run` until
it exits 0. systemd cannot run here, so the tests run the script the way the unit does: again after each failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIRSTBOOT = REPO / "provision" / "firstboot"
RUNNER = FIRSTBOOT / "firstboot.sh"
UNIT = FIRSTBOOT / "tablebox-firstboot.service"


def unit_settings(path: Path) -> dict[str, dict[str, list[str]]]:
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            key, _, value = line.partition("=")
            current.setdefault(key, []).append(value)
    return sections


@pytest.fixture
def box(tmp_path: Path) -> Path:
    """A boot partition's tablebox/ folder, with a provision.sh that fails until its third attempt."""
    box = tmp_path / "boot" / "tablebox"
    (box / "provision" / "firstboot").mkdir(parents=True)
    shutil.copy(RUNNER, box / "provision" / "firstboot")
    shutil.copy(UNIT, box / "provision" / "firstboot")
    (box / "tablebox.toml").write_text("[provision]\nstore_name = 'x'\n")
    (box / "provision" / "provision.sh").write_text(
        'n=$(( $(cat "$(dirname "$0")/tries" 2>/dev/null || echo 0) + 1 ))\n'
        'echo "$n" > "$(dirname "$0")/tries"\n'
        'echo "provision $* (try $n)"\n'
        'if [ "$n" -lt 3 ]; then echo "apt-get: network unreachable" >&2; exit 1; fi\n'
        'echo "Done: 12 change(s)."\n'
    )
    return box


def run_like_systemd(box: Path, root: Path, tty: Path, max_starts: int = 10) -> list[int]:
    """Start `firstboot.sh run` as the unit does (stdout appended to provision.log), again while it fails."""
    statuses: list[int] = []
    env = {**os.environ, "FIRSTBOOT_BOX_DIR": str(box), "FIRSTBOOT_ROOT": str(root), "FIRSTBOOT_TTY": str(tty)}
    for _ in range(max_starts):
        with (box / "provision.log").open("a") as log:
            done = subprocess.run(
                ["bash", str(box / "provision" / "firstboot" / "firstboot.sh"), "run"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                timeout=60,
            )
        statuses.append(done.returncode)
        if done.returncode == 0:  # Restart=on-failure: a clean exit is the end
            break
    return statuses


def test_a_failing_first_boot_is_retried_until_it_succeeds_with_progress_in_the_log_and_on_tty1(box, tmp_path):
    root, tty = tmp_path / "root", tmp_path / "tty1"
    tty.write_text("")  # a writable terminal
    assert run_like_systemd(box, root, tty) == [1, 1, 0]
    log = (box / "provision.log").read_text()
    # Every attempt's own output, provision.sh's errors too, in the log, in order.
    for n in (1, 2, 3):
        assert (
            f"provision --unattended --config {box}/tablebox.toml --source {box}/tablebox-src.tar.gz (try {n})" in log
        )
    assert log.count("apt-get: network unreachable") == 2
    assert "attempt 1 failed (exit 1)" in log and "attempt 2 failed (exit 1)" in log
    assert "done after 3 attempt(s): this box is set up" in log
    assert log.index("attempt 2 failed") < log.index("attempt 3 started") < log.index("Done: 12 change(s).")
    # The screen shows the same lines, so a technician in front of the box sees where it is.
    screen = tty.read_text()
    assert "*** Tablebox set-up: attempt 1 started" in screen and "apt-get: network unreachable" in screen
    assert "*** Tablebox set-up: done after 3 attempt(s)" in screen
    # The attempt counter is forgotten once it worked (a later re-provisioning counts from 1).
    assert not (root / "var/lib/tablebox-firstboot/attempts").exists()


def test_the_attempt_count_survives_a_reboot_between_attempts(box, tmp_path):
    root = tmp_path / "root"
    env = {**os.environ, "FIRSTBOOT_BOX_DIR": str(box), "FIRSTBOOT_ROOT": str(root), "FIRSTBOOT_TTY": "/nonexistent"}
    first = subprocess.run(["bash", str(RUNNER), "run"], capture_output=True, text=True, env=env, timeout=60)
    assert first.returncode == 1
    assert (root / "var/lib/tablebox-firstboot/attempts").read_text() == "1\n"
    # "Rebooted": the same state folder, a new process.
    second = subprocess.run(["bash", str(RUNNER), "run"], capture_output=True, text=True, env=env, timeout=60)
    assert second.returncode == 1 and "attempt 2 started" in second.stdout
    # No terminal at that path: progress still reaches standard output (the log), nothing fails.
    assert "provision --unattended" in second.stdout


def test_an_interrupted_dpkg_is_finished_before_the_next_attempt(box, tmp_path):
    root, bin_dir, calls = tmp_path / "root", tmp_path / "bin", tmp_path / "dpkg-calls"
    bin_dir.mkdir()
    (bin_dir / "dpkg").write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    (bin_dir / "dpkg").chmod(0o755)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "FIRSTBOOT_BOX_DIR": str(box),
        "FIRSTBOOT_ROOT": str(root),
        "FIRSTBOOT_TTY": "/nonexistent",
    }
    subprocess.run(["bash", str(RUNNER), "run"], capture_output=True, env=env, timeout=60)
    assert not calls.exists()  # nothing half-done: dpkg is left alone
    (root / "var/lib/dpkg/updates").mkdir(parents=True)
    (root / "var/lib/dpkg/updates/0001").write_text("")  # what a power cut during dpkg leaves
    done = subprocess.run(["bash", str(RUNNER), "run"], capture_output=True, text=True, env=env, timeout=60)
    assert calls.read_text() == "--configure -a\n"
    assert done.stdout.index("finishing an interrupted package installation") < done.stdout.index("provision --")


def test_install_puts_the_unit_in_place_enabled(box, tmp_path):
    """What the cloud-init runcmd entry does (under a staging root here: systemctl --root enables it)."""
    root = tmp_path / "root"
    env = {**os.environ, "FIRSTBOOT_BOX_DIR": str(box), "FIRSTBOOT_ROOT": str(root), "FIRSTBOOT_TTY": "/nonexistent"}
    done = subprocess.run(["bash", str(RUNNER), "install"], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert (root / "etc/systemd/system/tablebox-firstboot.service").read_bytes() == UNIT.read_bytes()
    wants = root / "etc/systemd/system/multi-user.target.wants/tablebox-firstboot.service"
    assert wants.is_symlink() and os.readlink(wants) == "/etc/systemd/system/tablebox-firstboot.service"
    assert "tablebox-firstboot.service installed" in done.stdout


def test_install_on_the_box_starts_the_unit_without_waiting(box, tmp_path):
    """On the box (no staging root) install reloads systemd, enables the unit and starts it with --no-block, so
    cloud-final.service (which runs runcmd) does not wait for packages and a virtualenv."""
    calls, fake = tmp_path / "calls", tmp_path / "systemctl"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    steps = f'source "{RUNNER}"; ROOT="$1"; install() {{ echo "install $*" >> "$CALLS"; }}; cmd_install'
    # ROOT is emptied after sourcing and `install` replaced, so nothing is written to this machine's /etc.
    env = {
        **os.environ,
        "SYSTEMCTL": str(fake),
        "CALLS": str(calls),
        "FIRSTBOOT_BOX_DIR": str(box),
        "FIRSTBOOT_TTY": "/nonexistent",
    }
    done = subprocess.run(["bash", "-c", steps, "x", ""], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    assert calls.read_text().splitlines() == [
        f"install -D -m 0644 {box}/provision/firstboot/tablebox-firstboot.service "
        "/etc/systemd/system/tablebox-firstboot.service",
        "daemon-reload",
        "enable tablebox-firstboot.service",
        "start --no-block tablebox-firstboot.service",
    ]


def test_the_unit_retries_for_ever_and_disables_itself_only_after_success():
    unit = unit_settings(UNIT)
    assert unit["Unit"]["StartLimitIntervalSec"] == ["0"]  # never gives up
    service = unit["Service"]
    assert service["Type"] == ["oneshot"] and service["Restart"] == ["on-failure"]
    assert service["RestartSec"] == ["1min"] and service["TimeoutStartSec"] == ["2h"]
    assert service["ExecStart"] == ["/bin/bash /boot/firmware/tablebox/provision/firstboot/firstboot.sh run"]
    assert service["ExecStartPost"] == ["/bin/systemctl disable tablebox-firstboot.service"]
    assert service["StandardOutput"] == ["append:/boot/firmware/tablebox/provision.log"]
    assert unit["Install"]["WantedBy"] == ["multi-user.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_unit_passes_systemd_analyze_verify(tmp_path):
    staged = tmp_path / "tablebox-firstboot.service"
    staged.write_text(UNIT.read_text())
    done = subprocess.run(["systemd-analyze", "verify", str(staged)], capture_output=True, text=True, timeout=60)
    # The script lives on the card's boot partition, which this machine does not have: only that may be reported.
    problems = [line for line in done.stderr.splitlines() if "/boot/firmware/" not in line]
    assert problems == []


def test_the_runner_passes_shellcheck():
    if shutil.which("shellcheck") is None:
        pytest.skip("shellcheck is not installed")
    done = subprocess.run(["shellcheck", str(RUNNER)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout
