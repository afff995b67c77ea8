"""provision.sh against a staging root: the tree a technician's box gets, and a second run that changes
nothing. (Debian packages are not installed under --root: that is the image build's job, and the script
says so.) The virtualenv is a real pip install of this repository, relocated to /opt/tablebox/venv."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "provision" / "provision.sh"

CONFIG = """\
port = 8080

[provision]
store_name = "小笼天下 Dumpling House"
hostname = "dumplings"
manager_name = "Lin"
manager_pin = "2468"
languages = ["zh", "en"]

[store]
currency = "CNY"
service_charge_bp = 1000

[sync.erp]
kind = "erpnext"
base_url = "https://erp.example.com"
api_key = "key-123"
api_secret = 's3cret\\"x'  # a backslash and a quote (TOML literal string)
price_list = "Standard Selling"
"""

FSTAB = """\
proc            /proc           proc    defaults          0       0
PARTUUID=1-01  /boot/firmware  vfat    defaults          0       2
PARTUUID=1-02  /               ext4    defaults,noatime  0       1
# a comment stays
"""


def provision(root: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    cmd = [
        "bash",
        str(SCRIPT),
        "--root",
        str(root),
        "--unattended",
        *(["--config", str(config)] if config else []),
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "PIP_QUIET": "2"})


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, subprocess.CompletedProcess[str]]:
    if not shutil.which("systemd-sysusers") or not shutil.which("systemctl"):
        pytest.fail("systemd-sysusers and systemctl are needed (./run test installs systemd)")
    base = tmp_path_factory.mktemp("box")
    root, config = base / "root", base / "tablebox.toml"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "fstab").write_text(FSTAB)
    config.write_text(CONFIG, "utf-8")
    first = provision(root, config=config)
    assert first.returncode == 0, first.stdout + first.stderr
    return root, config, first


def ids(root: Path, name: str) -> tuple[int, int]:
    passwd = {line.split(":")[0]: line.split(":") for line in (root / "etc/passwd").read_text().splitlines()}
    return int(passwd[name][2]), int(passwd[name][3])


def test_the_service_user_is_created_in_its_device_groups(staged):
    root, _, _ = staged
    entry = next(line for line in (root / "etc/passwd").read_text().splitlines() if line.startswith("tablebox:"))
    assert entry.endswith(":/var/lib/tablebox:/usr/sbin/nologin")
    groups = {
        line.split(":")[0]: line.split(":")[3].split(",") for line in (root / "etc/group").read_text().splitlines()
    }
    for group in ("lp", "dialout", "video", "tty"):
        assert "tablebox" in groups[group], group


def first_start(root: Path, data: Path) -> subprocess.CompletedProcess[str]:
    """What tablebox-web.service's ExecStartPre= runs at a box's first start, with the staged venv."""
    return subprocess.run(
        [
            str(root / "opt/tablebox/venv/bin/python"),
            "-m",
            "appliance",
            "--data-dir",
            str(data),
            "--config",
            str(root / "etc/tablebox/tablebox.toml"),
            "init",
            "--if-missing",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_settings_are_private_to_the_service_and_the_store_is_made_at_first_start(staged, tmp_path):
    root, _, _ = staged
    _, gid = ids(root, "tablebox")
    config = root / "etc/tablebox/tablebox.toml"
    st = config.stat()
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o640, 0, gid)
    text = config.read_text("utf-8")
    assert 'store_name = "小笼天下 Dumpling House"' in text and "service_charge_bp = 1000" in text
    assert "manager_pin" not in text and "[provision]" not in text  # only for the script, never kept
    # `sudo -u tablebox tablebox ...` (no $STATE_DIRECTORY outside systemd) finds the store the units use.
    assert 'data_dir = "/var/lib/tablebox"' in text.splitlines()
    assert "[sync.erp]" in text and 'price_list = "Standard Selling"' in text and "s3cret" not in text
    env = root / "etc/tablebox/sync.env"
    assert (stat.S_IMODE(env.stat().st_mode), env.stat().st_uid) == (0o600, 0)
    assert env.read_text().splitlines()[1:] == [
        'TABLEBOX_SYNC_ERP_API_KEY="key-123"',
        'TABLEBOX_SYNC_ERP_API_SECRET="s3cret\\\\\\"x"',
    ]
    # An image is flashed onto many boxes: it carries no store and no secret (issue 14).
    assert not (root / "var/lib/tablebox").exists()  # systemd makes it (StateDirectory=) at the first start
    # Each box makes its own at its first start, once; a second start keeps it.
    secrets = []
    for box in ("box-a", "box-b"):
        data = tmp_path / box
        made = first_start(root, data)
        assert made.returncode == 0 and "created store '小笼天下 Dumpling House'" in made.stdout, made.stderr
        secret = (data / "store.secret").read_bytes()
        assert stat.S_IMODE((data / "store.secret").stat().st_mode) == 0o600
        again = first_start(root, data)
        assert again.returncode == 0 and "nothing to do" in again.stdout, again.stderr
        assert (data / "store.secret").read_bytes() == secret
        secrets.append(secret)
        db = sqlite3.connect(data / "store.db")
        try:
            settings = {k: json.loads(v) for k, v in db.execute("SELECT key, value FROM settings")}
        finally:
            db.close()
        assert (settings["store_name"], settings["service_charge_bp"]) == ("小笼天下 Dumpling House", 1000)
    assert secrets[0] != secrets[1] and len(secrets[0]) >= 32


def test_the_virtualenv_points_where_it_will_live_on_the_box(staged):
    root, _, _ = staged
    link = root / "opt/tablebox/venv"
    assert link.is_symlink() and os.readlink(link).startswith("releases/") and os.readlink(link).endswith("/venv")
    release = link.resolve().parent
    info = json.loads((release / "release.json").read_text())
    assert info["id"] == release.name and release.name.startswith(info["version"] + "-") and info["from"] == "source"
    script = root / "opt/tablebox/venv/bin/tablebox"
    assert script.read_text().splitlines()[0] == f"#!/opt/tablebox/releases/{release.name}/venv/bin/python"
    # The box's pinned versions, nothing relay- or test-only (faker and polyfactory left out: provision/lock.sh).
    site = next(release.glob("venv/lib/python3*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert {"litestar", "apsw", "textual", "tablebox"} <= installed
    assert installed & {"psycopg", "psycopg_binary", "faker", "polyfactory", "pytest"} == set()
    out = subprocess.run(
        [str(root / "opt/tablebox/venv/bin/python"), "-m", "appliance", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "console" in out.stdout


def test_units_udev_journald_fstab_and_hostname(staged):
    root, _, _ = staged
    units = sorted(p.name for p in (REPO / "systemd").iterdir() if p.suffix in {".service", ".timer"})
    assert units, "no unit files in systemd/"
    for unit in units:
        assert (root / "etc/systemd/system" / unit).read_bytes() == (REPO / "systemd" / unit).read_bytes()
    for unit in (
        "tablebox-web.service",
        "tablebox-printd.service",
        "tablebox-console.service",
        "tablebox-backup.timer",
        "tablebox-prune.timer",
        "tablebox-syncd.service",
    ):  # syncd: the settings name a sync target
        state = subprocess.run(["systemctl", f"--root={root}", "is-enabled", unit], capture_output=True, text=True)
        assert state.stdout.strip() == "enabled", unit
    assert (root / "etc/udev/rules.d/99-tablebox-printers.rules").read_bytes() == (
        REPO / "provision/udev/99-tablebox-printers.rules"
    ).read_bytes()
    # the backup stick (step usbstick): its udev rule and its mount unit, not enabled (udev starts it)
    for installed, source in (
        ("etc/udev/rules.d/99-tablebox-usb.rules", "provision/udev/99-tablebox-usb.rules"),
        ("etc/systemd/system/media-tablebox.mount", "systemd/media-tablebox.mount"),
    ):
        assert (root / installed).read_bytes() == (REPO / source).read_bytes(), installed
    assert (root / "etc/modules-load.d/tablebox.conf").read_text().split("\n")[-4:-1] == [
        "usblp",
        "usbserial",
        "cdc_acm",
    ]
    assert "SystemMaxUse=" in (root / "etc/systemd/journald.conf.d/tablebox.conf").read_text()
    fstab = [
        line.split() for line in (root / "etc/fstab").read_text().splitlines() if line and not line.startswith("#")
    ]
    options = {fields[1]: fields[3] for fields in fstab}
    assert options == {"/proc": "defaults", "/boot/firmware": "defaults,noatime", "/": "defaults,noatime"}
    assert (root / "etc/hostname").read_text() == "dumplings\n"
    assert "127.0.1.1\tdumplings" in (root / "etc/hosts").read_text()


def test_the_summary_gives_the_diner_address(staged):
    _, _, first = staged
    assert "http://dumplings.local:8080/t/" in first.stdout
    assert "skipped under --root" in first.stdout  # packages: said, not silently skipped


def snapshot(root: Path) -> dict[str, tuple[int, int, bytes]]:
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file() and not path.is_symlink() and "__pycache__" not in path.parts:
            st = path.stat()
            out[str(path.relative_to(root))] = (
                st.st_mode,
                st.st_mtime_ns,
                path.read_bytes() if st.st_size < 65536 else b"",
            )
    return out


def test_a_second_run_changes_nothing_and_says_so(staged):
    root, config, _ = staged
    before = snapshot(root)
    again = provision(root, config=config)
    assert again.returncode == 0, again.stderr
    assert "  changed: " not in again.stdout
    assert "Nothing changed: this box was already provisioned." in again.stdout
    assert snapshot(root) == before


def test_one_step_alone_and_a_bad_hostname_refused(staged):
    root, config, _ = staged
    bad = provision(root, "--hostname", "Bad_Name", "step", "hostname", config=config)
    assert bad.returncode != 0 and "hostname Bad_Name" in bad.stderr
    assert (root / "etc/hostname").read_text() == "dumplings\n"
    other = provision(root, "--hostname", "kitchen-box", "step", "hostname", config=config)
    assert other.returncode == 0, other.stderr
    assert [line.strip() for line in other.stdout.splitlines() if "changed:" in line] == [
        "changed: /etc/hostname",
        "changed: /etc/hosts",
    ]
    provision(root, "step", "hostname", config=config)  # back as it was, for the other tests
    assert (root / "etc/hostname").read_text() == "dumplings\n"


def test_bad_settings_are_refused_before_anything_is_written(tmp_path):
    root, config = tmp_path / "root", tmp_path / "bad.toml"
    config.write_text("[provision]\nstore_name = 'x'\nsurprise = 1\n")
    out = provision(root, config=config)
    assert out.returncode != 0 and "unknown key(s) in [provision]: surprise" in out.stderr
    assert not root.exists()
    config.write_text("port = \n")
    out = provision(root, config=config)
    assert out.returncode != 0 and "cannot read the settings file" in out.stderr
    assert not root.exists()


def test_secrets_on_the_boot_partition_are_removed_once_the_box_is_set_up(tmp_path):
    root = tmp_path / "root"
    boot = root / "boot/firmware/tablebox"
    boot.mkdir(parents=True)
    (boot / "tablebox.toml").write_text(
        CONFIG.replace("[store]", 'wifi_ssid = "Tea"\nwifi_password = "secret-pass"\nwifi_country = "CN"\n\n[store]'),
        "utf-8",
    )
    out = provision(root, "--hostname", "dumplings")  # finds the settings on the boot partition by itself
    assert out.returncode == 0, out.stderr
    assert f"settings from {boot / 'tablebox.toml'}" in out.stdout
    left = (boot / "tablebox.toml").read_text("utf-8")
    assert "2468" not in left and "secret-pass" not in left and 'wifi_ssid = "Tea"' in left
    # Under --root there is no store yet: the manager is added on the box, and the summary says how.
    assert "tablebox staff add Lin --role manager" in out.stdout


def test_the_script_can_be_sourced_without_running():
    out = subprocess.run(
        ["bash", "-c", f"source {SCRIPT}; declare -F | grep -c ' step_'; echo ${{#STEPS[@]}}"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    functions, steps = out.stdout.split()
    assert out.returncode == 0 and int(functions) == int(steps) >= 13  # one function per step, and nothing ran
