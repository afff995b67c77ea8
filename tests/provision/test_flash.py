"""flash.sh on small synthetic Raspberry Pi OS images (MBR, FAT32 boot partition, empty ext4-typed root):
what lands on the boot partition, the first-boot hook for both kinds of image, and what is refused.
Everything is read back with mtools, as the script writes it: no loop devices, no mounting."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
FLASH = REPO / "provision" / "flash.sh"
FIRSTRUN = REPO / "provision" / "firstboot" / "firstrun.sh"
FIRSTBOOT_UNIT = REPO / "provision" / "firstboot" / "tablebox-firstboot.service"

MIB = 1024 * 1024
BOOT_START = 2048  # sectors, as on Raspberry Pi OS images (4 MiB there; 1 MiB here)
BOOT_SECTORS = 73728  # 36 MiB: enough clusters for FAT32 with one sector per cluster
BOOT_OFFSET = BOOT_START * 512
RUN_ARGS = (
    "systemd.run=/boot/firmware/firstrun.sh systemd.run_success_action=reboot systemd.unit=kernel-command-line.target"
)
CMDLINE = (
    "console=serial0,115200 console=tty1 root=PARTUUID=4e639091-02 rootfstype=ext4 fsck.repair=yes "
    "rootwait quiet init=/usr/lib/raspberrypi-sys-mods/firstboot\n"
)
# cloud-init runs runcmd once: the entry only installs and starts the retried unit (tests/provision/test_firstboot.py).
PROVISION_COMMAND = "bash /boot/firmware/tablebox/provision/firstboot/firstboot.sh install"
CONFIG = """\
port = 8080

[provision]
store_name = "小笼天下 Dumpling House"
hostname = "dumplings"

[store]
currency = "CNY"
"""
# What Raspberry Pi Imager writes for a cloud-init image (shortened), with one runcmd of the technician's.
USER_DATA = """\
#cloud-config
# This is the user-data configuration file for cloud-init.
hostname: dumplings
manage_etc_hosts: true
users:
- name: tech
  groups: users,adm,dialout,audio,netdev,video,plugdev,sudo
  shell: /bin/bash
  lock_passwd: false
  passwd: $5$rounds=5000$abc$xyz
  ssh_authorized_keys:
    - ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBx tech@laptop
enable_ssh: true
runcmd:
- [ sh, -c, "echo hello > /run/hello" ]
# Set the time zone
timezone: Asia/Shanghai
"""
IMAGER_FIRSTRUN = """\
#!/bin/bash
set +e
/usr/lib/raspberrypi-sys-mods/imager_custom set_hostname dumplings
/usr/lib/raspberrypi-sys-mods/imager_custom enable_ssh
rm -f /boot/firmware/firstrun.sh
sed -i 's| systemd.run.*||g' /boot/firmware/cmdline.txt
exit 0
"""


# Wi-Fi values that would break anything that pastes them into shell code or a config file unescaped.
NASTY_SSID = 'Tea "House" $(reboot)'
NASTY_PASSWORD = 'it\'s "$HOME" \\ `id` ;ok'
# The shape of the network-config on Raspberry Pi OS cloud-init images: Ethernet set up, Wi-Fi in comments.
NETWORK_CONFIG = """\
# netplan configuration that cloud-init applies at first boot.
# Indent with spaces, never tabs.

network:
  version: 2

  ethernets:
    eth0:
      dhcp4: true
      optional: true

#  wifis:
#    wlan0:
#      dhcp4: true
#      access-points:
#        myhomewifi:
#          password: "S3kr1t"
"""


def run(*cmd: str | Path, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(c) for c in cmd],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "MTOOLS_SKIP_CHECK": "1", **(env or {})},
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def make_image(path: Path, files: dict[str, str | bytes]) -> Path:
    """A 40 MiB image like Raspberry Pi OS's: FAT32 boot partition first (type c), an ext4-typed root after."""
    with path.open("wb") as f:
        f.truncate(40 * MIB)
    table = f"label: dos\nstart={BOOT_START}, size={BOOT_SECTORS}, type=c\nstart={BOOT_START + BOOT_SECTORS}, type=83\n"
    subprocess.run(["sfdisk", "-q", str(path)], input=table, text=True, check=True, capture_output=True)
    run("mkfs.vfat", "-F", "32", "-s", "1", "-n", "BOOTFS", "--offset", str(BOOT_START), path, str(BOOT_SECTORS // 2))
    for name, content in files.items():
        local = path.parent / f"content-{name}"
        local.write_bytes(content.encode() if isinstance(content, str) else content)
        run("mcopy", "-i", f"{path}@@{BOOT_OFFSET}", local, f"::/{name}")
        local.unlink()
    return path


def boot(image: Path) -> str:
    return f"{image}@@{BOOT_OFFSET}"


def mtype(image: Path, name: str) -> bytes:
    done = subprocess.run(
        ["mtype", "-i", boot(image), f"::/{name}"],
        capture_output=True,
        timeout=60,
        env={**os.environ, "MTOOLS_SKIP_CHECK": "1"},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def listing(image: Path) -> set[str]:
    """Every path on the boot partition, folders ending in '/'."""
    out = run("mdir", "-/", "-b", "-i", boot(image), "::/").stdout
    return {line.removeprefix("::/") for line in out.splitlines() if line.strip()}


ACCESS_FLAGS = ("--ssh-key", "--password", "--password-file", "--password-hash", "--no-account", "--access")


def flash(
    image: Path, target: Path, config: Path, *extra: str, env: dict[str, str] | None = None, script: Path = FLASH
) -> subprocess.CompletedProcess[str]:
    """flash.sh as a technician runs it; --no-account unless the test gives an account option (or --access, which
    says: give none, to see what flash.sh does then)."""
    given = [word for word in extra if word != "--access"]
    if not any(word in ACCESS_FLAGS for word in extra):
        given.append("--no-account")
    return run("bash", script, image, target, "--config", config, "--yes", *given, env=env, check=False)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "tablebox.toml"
    path.write_text(CONFIG, "utf-8")
    return path


@pytest.fixture
def plain_image(tmp_path: Path) -> Path:
    """A Bookworm-style image: cmdline.txt, no user-data."""
    return make_image(tmp_path / "raspios-bookworm.img", {"cmdline.txt": CMDLINE, "config.txt": "arm_64bit=1\n"})


def test_a_bookworm_image_gets_the_settings_the_scripts_the_source_and_firstrun(tmp_path, plain_image, config):
    out = tmp_path / "card.img"
    done = flash(plain_image, out, config)
    assert done.returncode == 0, done.stdout + done.stderr
    on_card = listing(out)

    # The technician's settings, byte for byte (secrets included: the box reads them at first boot).
    assert mtype(out, "tablebox/tablebox.toml") == config.read_bytes()
    # The provision/ tree as in the repository, so provision.sh is on the card.
    for script in sorted((REPO / "provision").rglob("*")):
        if script.is_file() and "__pycache__" not in script.parts:
            name = "tablebox/" + str(script.relative_to(REPO))
            assert name in on_card, f"{name} missing from the card"
            assert mtype(out, name) == script.read_bytes()
    assert "tablebox/provision/flash.sh" in on_card
    if (REPO / "provision" / "provision.sh").exists():
        assert "tablebox/provision/provision.sh" in on_card
    # provision.sh finds the units in ../systemd: the same layout on the card.
    units = sorted(p for p in (REPO / "systemd").rglob("*") if p.is_file())
    assert units  # the relay's unit (systemd/relay/) travels too: the card carries the repository's layout
    for unit in units:
        assert mtype(out, f"tablebox/systemd/{unit.relative_to(REPO / 'systemd').as_posix()}") == unit.read_bytes()

    # The source: a tar.gz of the last commit that pip (through provision.sh --source) can install.
    with tarfile.open(fileobj=io.BytesIO(mtype(out, "tablebox/tablebox-src.tar.gz")), mode="r:gz") as archive:
        names = set(archive.getnames())
    assert {"tablebox-src/pyproject.toml", "tablebox-src/appliance/cli/__init__.py"} <= names
    assert not {n for n in names if "/.venv/" in n or "/tablebox-data/" in n or "__pycache__" in n}

    # firstrun.sh, started from the one line of cmdline.txt, exactly once.
    assert mtype(out, "firstrun.sh") == FIRSTRUN.read_bytes()
    cmdline = mtype(out, "cmdline.txt").decode()
    assert cmdline == CMDLINE.rstrip("\n") + " " + RUN_ARGS + "\n"
    assert cmdline.count("\n") == 1 and cmdline.count("systemd.run=") == 1
    assert "user-data" not in on_card
    # The rest of the image is the image: same partition table, same root partition bytes.
    image_bytes, out_bytes = plain_image.read_bytes(), out.read_bytes()
    assert len(out_bytes) == len(image_bytes)
    assert out_bytes[:512] == image_bytes[:512]
    assert out_bytes[(BOOT_START + BOOT_SECTORS) * 512 :] == image_bytes[(BOOT_START + BOOT_SECTORS) * 512 :]
    if not shutil.which("pv"):
        assert "copied" in done.stderr  # dd's progress line


def test_an_xz_image_is_decompressed_on_the_fly(tmp_path, plain_image, config):
    run("xz", "-0", "-T1", "-k", plain_image)
    out = tmp_path / "card.img"
    done = flash(Path(f"{plain_image}.xz"), out, config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert out.stat().st_size == plain_image.stat().st_size
    assert mtype(out, "tablebox/tablebox.toml") == config.read_bytes()
    assert mtype(out, "cmdline.txt").decode().count("systemd.run=") == 1


def test_a_cloud_init_image_gets_a_runcmd_entry_and_keeps_its_users(tmp_path, config):
    image = make_image(
        tmp_path / "raspios-trixie.img",
        {"cmdline.txt": CMDLINE, "user-data": USER_DATA, "meta-data": "instance-id: rpios\n"},
    )
    out = tmp_path / "card.img"
    done = flash(image, out, config)
    assert done.returncode == 0, done.stdout + done.stderr

    text = mtype(out, "user-data").decode()
    before, after = yaml.safe_load(USER_DATA), yaml.safe_load(text)
    command = f"{PROVISION_COMMAND} >>/boot/firmware/tablebox/provision.log 2>&1"
    assert after["runcmd"] == [*before["runcmd"], command]
    assert {k: v for k, v in after.items() if k != "runcmd"} == {k: v for k, v in before.items() if k != "runcmd"}
    # Every line written before is still there, in order (comments too).
    remaining = iter(text.splitlines())
    assert all(any(line == seen for seen in remaining) for line in USER_DATA.splitlines())
    # No firstrun path on a cloud-init image.
    assert mtype(out, "cmdline.txt").decode() == CMDLINE
    assert "firstrun.sh" not in listing(out)
    assert mtype(out, "tablebox/tablebox.toml") == config.read_bytes()


def test_a_second_run_is_refused_unless_forced(tmp_path, plain_image, config):
    out = tmp_path / "card.img"
    assert flash(plain_image, out, config).returncode == 0
    flashed = digest(out)

    again = flash(plain_image, out, config)
    assert again.returncode == 1
    assert "already holds a Tablebox card" in again.stderr and "--force" in again.stderr
    assert digest(out) == flashed

    forced = flash(plain_image, out, config, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert mtype(out, "cmdline.txt").decode().count("systemd.run=") == 1
    assert mtype(out, "tablebox/tablebox.toml") == config.read_bytes()


def test_adding_the_first_boot_files_twice_changes_nothing_more(tmp_path, plain_image, config):
    """The steps after writing the image are harmless on a card that already has them."""
    out = tmp_path / "card.img"
    assert flash(plain_image, out, config).returncode == 0
    first = listing(out)
    steps = (
        f'source "{FLASH}"; WORK=$(mktemp -d); cp -r "$0" "$WORK/tablebox"; BOOT="$1"; '
        'copy_tablebox_folder; install_first_boot; rm -rf "$WORK"'
    )
    staged = tmp_path / "stage"
    staged.mkdir()
    (staged / "tablebox.toml").write_text(CONFIG, "utf-8")
    run("bash", "-c", steps, staged, boot(out))
    assert listing(out) == first
    assert mtype(out, "cmdline.txt").decode() == CMDLINE.rstrip("\n") + " " + RUN_ARGS + "\n"
    assert mtype(out, "firstrun.sh") == FIRSTRUN.read_bytes()


def test_an_existing_file_that_is_not_a_card_is_not_overwritten(tmp_path, plain_image, config):
    out = tmp_path / "notes.img"
    out.write_bytes(b"someone's data")
    done = flash(plain_image, out, config)
    assert done.returncode == 1 and "exists: --force overwrites it" in done.stderr
    assert out.read_bytes() == b"someone's data"


def test_the_image_itself_is_refused_as_target(tmp_path, plain_image, config):
    before = digest(plain_image)
    link = tmp_path / "same.img"
    link.symlink_to(plain_image)
    for target in (plain_image, link):
        done = flash(plain_image, target, config, "--force")
        assert done.returncode == 1 and "TARGET is the image itself" in done.stderr
    assert digest(plain_image) == before


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ('[provision\nstore_name = "x"\n', "is not valid TOML"),
        ("port = 8080\n", "has no [provision] table"),
        ('[provision]\nhostname = "box"\n', "store_name is missing or empty"),
        ('[provision]\nstore_name = "  "\n', "store_name is missing or empty"),
        ('[provision]\nstore_name = "x"\nwifi_pasword = "typo"\n', "would be refused by provision.sh"),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, plain_image, settings, message):
    if "provision.sh" in message and not (REPO / "provision" / "lib" / "render_config.py").exists():
        pytest.skip("provision/lib/render_config.py is not there yet")
    bad = tmp_path / "bad.toml"
    bad.write_text(settings, "utf-8")
    out = tmp_path / "card.img"
    done = flash(plain_image, out, bad)
    assert done.returncode == 1
    assert message in done.stderr
    assert "nothing was written" in done.stderr
    assert not out.exists()


def test_an_image_without_a_pi_boot_partition_is_refused_before_writing(tmp_path, config):
    image = make_image(tmp_path / "other.img", {"readme.txt": "not a Pi\n"})
    out = tmp_path / "card.img"
    done = flash(image, out, config)
    assert done.returncode == 1 and "no cmdline.txt on the boot partition" in done.stderr
    assert not out.exists()


def test_a_failure_after_writing_removes_the_half_made_output(tmp_path, config):
    image = make_image(tmp_path / "two-lines.img", {"cmdline.txt": CMDLINE + "quiet splash\n"})
    out = tmp_path / "card.img"
    done = flash(image, out, config)
    assert done.returncode == 1 and "cmdline.txt on the image has 2 lines" in done.stderr
    assert not out.exists()


def test_an_imager_firstrun_is_kept_and_run_first(tmp_path, config):
    image = make_image(
        tmp_path / "customised.img",
        {"cmdline.txt": CMDLINE.rstrip("\n") + " " + RUN_ARGS + "\n", "firstrun.sh": IMAGER_FIRSTRUN},
    )
    out = tmp_path / "card.img"
    done = flash(image, out, config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert mtype(out, "firstrun-before-tablebox.sh").decode() == IMAGER_FIRSTRUN
    assert mtype(out, "firstrun.sh") == FIRSTRUN.read_bytes()
    assert mtype(out, "cmdline.txt").decode().count("systemd.run=") == 1


def test_another_first_boot_script_in_cmdline_is_refused(tmp_path, config):
    image = make_image(
        tmp_path / "other-hook.img", {"cmdline.txt": CMDLINE.rstrip("\n") + " systemd.run=/boot/firmware/other.sh\n"}
    )
    done = flash(image, tmp_path / "card.img", config)
    assert done.returncode == 1 and "already starts another first-boot script" in done.stderr


def test_a_missing_tool_names_the_package_and_nothing_is_written(tmp_path, plain_image, config):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "mktemp", "rm", "dd", "sfdisk", "python3", "cat"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    out = tmp_path / "card.img"
    done = flash(plain_image, out, config, env={"PATH": str(bin_dir)})
    assert done.returncode == 1
    assert "mcopy is missing: install it with  sudo apt install mtools" in done.stderr
    assert not out.exists()


def test_without_git_the_source_is_the_folder_without_local_state(tmp_path, plain_image, config):
    repo = tmp_path / "tablebox-1.0"
    shutil.copytree(REPO / "provision", repo / "provision")
    (repo / "pyproject.toml").write_text("[project]\nname = 'tablebox'\n")
    (repo / "appliance" / "cli").mkdir(parents=True)
    (repo / "appliance" / "cli" / "__init__.py").write_text("")
    for junk in (
        ".venv/bin/python",
        "tablebox-data/store.secret",
        "appliance/cli/__pycache__/__init__.cpython-311.pyc",
        "test-artifacts/shot.png",
        "raspios.img",
    ):
        (repo / junk).parent.mkdir(parents=True, exist_ok=True)
        (repo / junk).write_text("x")
    out = tmp_path / "card.img"
    done = flash(plain_image, out, config, script=repo / "provision" / "flash.sh")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not a git clone" in done.stdout
    with tarfile.open(fileobj=io.BytesIO(mtype(out, "tablebox/tablebox-src.tar.gz")), mode="r:gz") as archive:
        files = {n for n in archive.getnames() if archive.getmember(n).isfile()}
    assert "tablebox-src/pyproject.toml" in files and "tablebox-src/appliance/cli/__init__.py" in files
    assert not {f for f in files if f.split("/")[1] in (".venv", "tablebox-data", "test-artifacts")}
    assert not {f for f in files if f.endswith((".pyc", ".img"))}


# The refusal of system disks, through the sourced functions, against a fake /sys and /proc/mounts.


def fake_disk(
    sys_root: Path,
    name: str,
    *,
    size_gb: float = 32,
    removable: int = 0,
    bus: str = "usb",
    parts: int = 2,
    ro: int = 0,
    mmc_type: str | None = None,
    holders: tuple[str, ...] = (),
) -> None:
    device = sys_root / "devices" / "pci0000:00" / bus / "host0" / name
    device.mkdir(parents=True)
    if mmc_type:
        (device / "type").write_text(mmc_type + "\n")
    disk = sys_root / "block" / name
    disk.mkdir(parents=True)
    (disk / "device").symlink_to(device)
    (disk / "size").write_text(f"{int(size_gb * 1e9) // 512}\n")
    (disk / "removable").write_text(f"{removable}\n")
    (disk / "ro").write_text(f"{ro}\n")
    (disk / "holders").mkdir()
    for holder in holders:
        (disk / "holders" / holder).mkdir()
    for number in range(1, parts + 1):
        part = f"{name}p{number}" if name[-1].isdigit() else f"{name}{number}"
        (disk / part / "holders").mkdir(parents=True)
        (disk / part / "partition").write_text(f"{number}\n")
        (sys_root / "class" / "block" / part).mkdir(parents=True)
        (sys_root / "class" / "block" / part / "partition").write_text(f"{number}\n")


MOUNTS = """\
/dev/nvme0n1p2 / ext4 rw,relatime 0 0
/dev/nvme0n1p1 /boot/efi vfat rw,relatime 0 0
proc /proc proc rw 0 0
"""


@pytest.mark.parametrize(
    ("disk", "options", "mounts", "refusal"),
    [
        ("sdb", {"bus": "usb2/2-1"}, "", None),
        ("sdc", {"bus": "ata1", "removable": 1}, "", None),
        ("mmcblk0", {"bus": "mmc_host/mmc0", "mmc_type": "SD"}, "", None),
        ("sda", {"bus": "ata1"}, "", "is not removable and not on USB or an SD card slot"),
        ("mmcblk1", {"bus": "mmc_host/mmc1", "mmc_type": "MMC"}, "", "is not removable"),
        ("nvme0n1", {"bus": "nvme0", "size_gb": 512}, "", "holds /: it is a system disk"),
        ("sdb", {"bus": "usb2/2-1"}, "/dev/sdb1 /boot ext4 rw 0 0\n", "holds /boot: it is a system disk"),
        (
            "sdb",
            {"bus": "usb2/2-1"},
            "/dev/sdb1 /media/tech/bootfs vfat rw 0 0\n",
            "/dev/sdb1 is mounted on /media/tech/bootfs: unmount it first",
        ),
        (
            "sdb",
            {"bus": "usb2/2-1"},
            "/dev/sdb2 /media/tech/my\\040disk ext4 rw 0 0\n",
            "mounted on /media/tech/my disk",
        ),
        ("sdb", {"bus": "usb2/2-1", "holders": ("dm-0",)}, "", "is in use by dm-0"),
        ("sdb", {"bus": "usb2/2-1", "size_gb": 1000}, "", "larger than 256 GB"),
        ("sdb", {"bus": "usb2/2-1", "size_gb": 256}, "", None),
        ("sdb", {"bus": "usb2/2-1", "size_gb": 0}, "", "is empty: is the SD card in the reader?"),
        ("sdb", {"bus": "usb2/2-1", "ro": 1}, "", "is read-only"),
        ("sdb1", {}, "", "is a partition: give the whole card"),
    ],
)
def test_devices_that_look_like_a_system_disk_are_refused(tmp_path, disk, options, mounts, refusal):
    sys_root, proc_root = tmp_path / "sys", tmp_path / "proc"
    fake_disk(sys_root, "nvme0n1", size_gb=512, bus="nvme0")
    if disk != "nvme0n1":
        fake_disk(sys_root, disk.rstrip("1") if disk == "sdb1" else disk, **options)
    proc_root.mkdir()
    (proc_root / "mounts").write_text(MOUNTS + mounts)
    (proc_root / "swaps").write_text("Filename Type Size Used Priority\n")
    done = run(
        "bash",
        "-c",
        f'source "{FLASH}"; check_disk "$0"',
        disk,
        check=False,
        env={"SYSFS_ROOT": str(sys_root), "PROC_ROOT": str(proc_root)},
    )
    if refusal is None:
        assert (done.returncode, done.stderr) == (0, "")
    else:
        assert done.returncode == 1
        assert refusal in done.stderr


def test_a_disk_used_as_swap_is_refused(tmp_path):
    sys_root, proc_root = tmp_path / "sys", tmp_path / "proc"
    fake_disk(sys_root, "sdb", bus="usb2/2-1")
    proc_root.mkdir()
    (proc_root / "mounts").write_text(MOUNTS)
    (proc_root / "swaps").write_text("Filename Type Size Used Priority\n/dev/sdb2 partition 1048572 0 -2\n")
    done = run(
        "bash",
        "-c",
        f'source "{FLASH}"; check_disk sdb',
        check=False,
        env={"SYSFS_ROOT": str(sys_root), "PROC_ROOT": str(proc_root)},
    )
    assert done.returncode == 1 and "/dev/sdb2 is in use as swap" in done.stderr


def test_a_dev_path_that_is_not_a_device_is_refused(tmp_path, plain_image, config):
    # The card is not in: dd would otherwise create a file /dev/sdz.
    done = flash(plain_image, Path("/dev/sdz-not-there"), config)
    assert done.returncode == 1 and "is not a block device: is the SD card in?" in done.stderr
    assert not Path("/dev/sdz-not-there").exists()


# What runs on the Pi.


def test_firstrun_installs_the_provisioning_unit_and_cleans_cmdline(tmp_path):
    boot_dir, root = tmp_path / "boot", tmp_path / "root"
    (boot_dir / "tablebox" / "provision" / "firstboot").mkdir(parents=True)
    shutil.copy(FIRSTBOOT_UNIT, boot_dir / "tablebox" / "provision" / "firstboot")
    shutil.copy(FIRSTRUN, boot_dir / "firstrun.sh")
    (boot_dir / "cmdline.txt").write_text(CMDLINE.rstrip("\n") + " " + RUN_ARGS + "\n")
    # The image's own script, as Imager writes it, but on this folder: it cuts cmdline.txt and removes ours.
    (boot_dir / "firstrun-before-tablebox.sh").write_text(
        IMAGER_FIRSTRUN.replace("/usr/lib/raspberrypi-sys-mods/imager_custom", "echo")
        .replace("/boot/firmware", str(boot_dir))
        .replace("exit 0", f"touch {boot_dir}/imager-ran\nexit 0")
    )
    done = run("bash", boot_dir / "firstrun.sh", env={"FIRSTRUN_ROOT": str(root)})
    assert done.returncode == 0
    assert (boot_dir / "cmdline.txt").read_text() == CMDLINE
    assert (boot_dir / "imager-ran").exists()
    assert not (boot_dir / "firstrun.sh").exists() and not (boot_dir / "firstrun-before-tablebox.sh").exists()
    unit = root / "etc/systemd/system/tablebox-firstboot.service"
    assert unit.read_bytes() == FIRSTBOOT_UNIT.read_bytes()
    assert (root / "etc/systemd/system/multi-user.target.wants/tablebox-firstboot.service").is_symlink()
    assert "tablebox-firstboot.service installed" in (boot_dir / "tablebox" / "firstrun.log").read_text()


def test_firstrun_alone_removes_exactly_what_flash_added(tmp_path):
    boot_dir = tmp_path / "boot"
    (boot_dir / "tablebox").mkdir(parents=True)
    (boot_dir / "cmdline.txt").write_text(CMDLINE.rstrip("\n") + " " + RUN_ARGS + " splash\n")
    steps = f'source "{FIRSTRUN}"; BOOT="$0"; LOG="$0/tablebox/firstrun.log"; remove_from_cmdline'
    run("bash", "-c", steps, boot_dir)
    assert (boot_dir / "cmdline.txt").read_text() == CMDLINE.rstrip("\n") + " splash\n"


def test_the_first_boot_unit_runs_the_script_the_cloud_init_entry_installs_it_with():
    runner = PROVISION_COMMAND.removesuffix(" install")
    assert f"ExecStart=/bin/{runner} run\n" in FIRSTBOOT_UNIT.read_text()
    sourced = run("bash", "-c", f'source "{FLASH}"; printf %s "$PROVISION_COMMAND"').stdout
    assert sourced == PROVISION_COMMAND
    if shutil.which("systemd-analyze"):
        run("systemd-analyze", "verify", "--man=no", FIRSTBOOT_UNIT)


def test_the_script_can_be_sourced_without_running(tmp_path):
    done = run("bash", "-c", f'source "{FLASH}"; declare -F main check_disk write_image add_firstrun')
    assert done.stdout.split() == ["main", "check_disk", "write_image", "add_firstrun"]


def test_shellcheck_passes_on_every_shell_script():
    if not shutil.which("shellcheck"):
        pytest.fail("shellcheck is needed (./run test installs it)")
    scripts = sorted((REPO / "provision").rglob("*.sh"))
    scripts += [p for p in (REPO / "run", REPO / ".ci" / "run") if p.exists()]
    assert FLASH in scripts and FIRSTRUN in scripts
    done = run("shellcheck", *scripts, check=False)
    assert done.returncode == 0, done.stdout


# Wi-Fi: a box with no cable must be online at first boot, before provision.sh needs apt and pip.


def wifi_config(
    tmp_path: Path, ssid: str = NASTY_SSID, password: str = NASTY_PASSWORD, country: str = "CN", name: str = "wifi.toml"
) -> Path:
    """The settings file with [provision] wifi_*, written as TOML basic strings (JSON escapes are TOML's)."""
    path = tmp_path / name
    path.write_text(
        CONFIG.replace(
            'hostname = "dumplings"\n',
            'hostname = "dumplings"\n'
            f"wifi_ssid = {json.dumps(ssid, ensure_ascii=False)}\n"
            f"wifi_password = {json.dumps(password)}\n"
            f"wifi_country = {json.dumps(country)}\n",
        ),
        "utf-8",
    )
    return path


def cloud_init_image(tmp_path: Path, network_config: str | None = NETWORK_CONFIG) -> Path:
    files = {"cmdline.txt": CMDLINE, "user-data": USER_DATA, "meta-data": "instance-id: rpios\n"}
    if network_config is not None:
        files["network-config"] = network_config
    return make_image(tmp_path / "raspios-trixie.img", files)


def test_a_cloud_init_image_gets_the_wifi_in_network_config_and_keeps_the_rest(tmp_path):
    config = wifi_config(tmp_path)
    out = tmp_path / "card.img"
    done = flash(cloud_init_image(tmp_path), out, config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "network-config Wi-Fi (added)" in done.stdout

    text = mtype(out, "network-config").decode()
    network = yaml.safe_load(text)["network"]
    assert network["wifis"] == {
        "wlan0": {
            "dhcp4": True,
            "optional": True,
            "regulatory-domain": "CN",
            "access-points": {NASTY_SSID: {"password": NASTY_PASSWORD}},
        }
    }
    # The image's own settings and every line of the file (comments too) are still there, in order.
    assert network["version"] == 2 and network["ethernets"] == {"eth0": {"dhcp4": True, "optional": True}}
    remaining = iter(text.splitlines())
    assert all(any(line == seen for seen in remaining) for line in NETWORK_CONFIG.splitlines())
    # Provisioning still runs from user-data; the settings (with the password the box needs) are on the card.
    command = f"{PROVISION_COMMAND} >>/boot/firmware/tablebox/provision.log 2>&1"
    assert yaml.safe_load(mtype(out, "user-data"))["runcmd"][-1] == command
    assert mtype(out, "tablebox/tablebox.toml") == config.read_bytes()
    assert "firstrun.sh" not in listing(out) and "tablebox/firstrun-wifi.conf" not in listing(out)


@pytest.mark.parametrize(
    "network_config",
    [
        None,  # no network-config on the image
        "# Examples only:\n#network:\n#  version: 2\n#  ethernets:\n#    eth0:\n#      dhcp4: true\n",
        "version: 2\nethernets:\n  eth0:\n    dhcp4: true\n",  # without the network: key, as cloud-init allows
        "network:\r\n  version: 2\r\n  ethernets:\r\n    eth0:\r\n      dhcp4: true\r\n",
        "network:\n  version: 2\n  ethernets:\n    eth0:\n      dhcp4: true\n  wifis:\n",  # wifis: left empty
    ],
)
def test_an_open_network_goes_into_any_network_config(tmp_path, network_config):
    out = tmp_path / "card.img"
    done = flash(cloud_init_image(tmp_path, network_config), out, wifi_config(tmp_path, "小笼天下 Wi-Fi", ""))
    assert done.returncode == 0, done.stdout + done.stderr
    text = mtype(out, "network-config").decode()
    data = yaml.safe_load(text)
    network = data.get("network", data)
    assert network["version"] == 2
    assert network["wifis"]["wlan0"]["access-points"] == {"小笼天下 Wi-Fi": {}}  # {}: no password
    assert network["wifis"]["wlan0"]["regulatory-domain"] == "CN"
    old = yaml.safe_load(network_config or "") or {}
    old_network = old.get("network", old)
    assert {k: v for k, v in network.items() if k != "wifis"} == {
        k: v for k, v in old_network.items() if k != "wifis"
    } | {"version": 2}
    if network_config and "\r\n" in network_config:
        assert text.count("\r\n") == text.count("\n")
    if network_config and network_config.startswith("#"):
        assert text.startswith(network_config)


def test_wifi_already_in_network_config_is_refused_before_writing_unless_forced(tmp_path):
    theirs = NETWORK_CONFIG + (
        "  wifis:\n    wlan0:\n      dhcp4: true\n      access-points:\n"
        '        "Office":\n          password: "office-secret"\n'
    )
    image = cloud_init_image(tmp_path, theirs)
    out = tmp_path / "card.img"
    config = wifi_config(tmp_path)

    done = flash(image, out, config)
    assert done.returncode == 1
    assert 'already configures Wi-Fi differently (wlan0: "Office")' in done.stderr
    assert "--force replaces it" in done.stderr and "nothing was written" in done.stderr
    assert not out.exists()

    forced = flash(image, out, config, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "network-config Wi-Fi (replaced)" in forced.stdout
    network = yaml.safe_load(mtype(out, "network-config"))["network"]
    assert network["wifis"]["wlan0"]["access-points"] == {NASTY_SSID: {"password": NASTY_PASSWORD}}
    assert network["ethernets"] == {"eth0": {"dhcp4": True, "optional": True}}


def test_the_same_wifi_already_there_is_left_alone(tmp_path):
    out = tmp_path / "card.img"
    config = wifi_config(tmp_path)
    assert flash(cloud_init_image(tmp_path), out, config).returncode == 0
    first = mtype(out, "network-config")
    steps = (
        f'source "{FLASH}"; WORK=$(mktemp -d); cp -r "$0" "$WORK/tablebox"; BOOT="$1"; '
        'install_first_boot; rm -rf "$WORK"'
    )
    staged = tmp_path / "stage"
    staged.mkdir()
    shutil.copy(config, staged / "tablebox.toml")
    again = run("bash", "-c", steps, staged, boot(out))
    assert "network-config Wi-Fi (already there)" in again.stdout
    assert mtype(out, "network-config") == first


@pytest.mark.parametrize(
    ("provision", "message"),
    [
        ('wifi_ssid = "Tea House"\nwifi_password = "12345678"\n', "wifi_country is missing"),
        (
            'wifi_ssid = "Tea House"\nwifi_password = "12345"\nwifi_country = "CN"\n',
            "wifi_password has 5 characters: a WPA-PSK password has from 8 to 63",
        ),
        ('wifi_ssid = "Tea House"\nwifi_password = "' + "x" * 64 + '"\nwifi_country = "CN"\n', "has 64 characters"),
        ('wifi_ssid = "Tea House"\nwifi_password = "密码密码密码密码"\nwifi_country = "CN"\n', "only printable ASCII"),
        (
            'wifi_ssid = "Tea House"\nwifi_country = "CN"\n',
            'wifi_password is missing: give the Wi-Fi password, or wifi_password = "" for an open network',
        ),
        ('wifi_ssid = "Tea House"\nwifi_password = ""\nwifi_country = "China"\n', "two-letter code"),
        ('wifi_ssid = "Tea House"\nwifi_password = ""\nwifi_country = "XX"\n', '"XX" is not an ISO 3166 country code'),
        ('wifi_ssid = "Tea\\nHouse"\nwifi_password = ""\nwifi_country = "CN"\n', "contains a control character"),
        ('wifi_ssid = "' + "茶" * 11 + '"\nwifi_password = ""\nwifi_country = "CN"\n', "33 bytes long"),
        ("wifi_ssid = 42\n", "wifi_ssid must be a string in quotes"),
        ('wifi_password = "12345678"\n', "wifi_password given without wifi_ssid"),
    ],
)
def test_bad_wifi_settings_are_refused_before_the_output_is_created(tmp_path, plain_image, provision, message):
    if "XX" in provision and not Path("/usr/share/zoneinfo/iso3166.tab").exists():
        pytest.skip("no tzdata country list here")
    bad = tmp_path / "bad.toml"
    bad.write_text(f'[provision]\nstore_name = "x"\n{provision}', "utf-8")
    out = tmp_path / "card.img"
    done = flash(plain_image, out, bad)
    assert done.returncode == 1
    assert message in done.stderr
    assert f"flash: {bad}: [provision]" in done.stderr and "nothing was written" in done.stderr
    assert not out.exists()


# firstrun.sh images: the values travel in a key=value file that firstrun.sh reads as data.


def firstrun_sandbox(tmp_path: Path, card: Path, *, imager_custom: bool, raspi_config: bool = True):
    """The card's firstrun.sh and Wi-Fi file in a boot folder; a root folder for /etc and /usr/lib; fake
    imager_custom, raspi-config and rfkill that record their arguments (NUL-separated) in one file."""
    boot_dir, root, fakes, record = tmp_path / "boot", tmp_path / "root", tmp_path / "fakes", tmp_path / "calls"
    (boot_dir / "tablebox").mkdir(parents=True)
    (boot_dir / "firstrun.sh").write_bytes(mtype(card, "firstrun.sh"))
    (boot_dir / "tablebox" / "firstrun-wifi.conf").write_bytes(mtype(card, "tablebox/firstrun-wifi.conf"))
    fake = '#!/bin/bash\nprintf "%s\\0" "$(basename "$0")" "$@" >> "$RECORD"\n'
    tools = ["rfkill"] + (["raspi-config"] if raspi_config else [])
    fakes.mkdir()
    for name in tools:
        (fakes / name).write_text(fake)
        (fakes / name).chmod(0o755)
    if imager_custom:
        path = root / "usr/lib/raspberrypi-sys-mods/imager_custom"
        path.parent.mkdir(parents=True)
        path.write_text(fake)
        path.chmod(0o755)
    (root / "var/lib/systemd/rfkill").mkdir(parents=True)
    (root / "var/lib/systemd/rfkill/platform-3f300000.mmcnr:wlan").write_text("1\n")
    env = {"FIRSTRUN_ROOT": str(root), "RECORD": str(record), "PATH": f"{fakes}:{os.environ['PATH']}"}
    return boot_dir, root, record, env


def calls(record: Path) -> list[list[str]]:
    """The recorded commands, each [name, arg...]."""
    if not record.exists():
        return []
    words = record.read_bytes().decode().split("\0")[:-1]
    result: list[list[str]] = []
    for word in words:
        if word in ("imager_custom", "raspi-config", "rfkill"):
            result.append([word])
        else:
            result[-1].append(word)
    return result


def read_keyfile(text: str) -> dict[str, dict[str, str]]:
    """A NetworkManager keyfile as NetworkManager reads it: GLib key-file escapes, then an SSID given as a
    byte list ("84;101;") decoded."""
    groups: dict[str, dict[str, str]] = {}
    current: dict[str, str] = {}
    escapes = {"s": " ", "n": "\n", "t": "\t", "r": "\r", "\\": "\\"}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        if line.startswith("["):
            current = groups.setdefault(line.strip()[1:-1], {})
            continue
        key, _, value = line.partition("=")
        current[key.strip()] = re.sub(r"\\(.)", lambda m: escapes[m.group(1)], value.lstrip(" "))
    ssid = groups.get("wifi", {}).get("ssid", "")
    if re.fullmatch(r"(\d+;)+", ssid):
        groups["wifi"]["ssid"] = bytes(int(b) for b in ssid.split(";")[:-1]).decode("utf-8")
    return groups


def test_a_firstrun_image_carries_the_wifi_for_firstrun_sh(tmp_path, plain_image):
    out = tmp_path / "card.img"
    done = flash(plain_image, out, wifi_config(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert 'Wi-Fi: the box joins "Tea \\"House\\" $(reboot)" (WPA-PSK, country CN)' in done.stdout
    # The script on the card is the repository's, with the Wi-Fi setup ahead of the first-boot unit.
    script = mtype(out, "firstrun.sh").decode()
    assert script == FIRSTRUN.read_text()
    main_body = script[script.index("\nmain() {") :]
    assert main_body.index("configure_wifi") < main_body.index("install_firstboot_unit")
    assert '"$IMAGER_CUSTOM" set_wlan "$WIFI_SSID" "$WIFI_PASSWORD" "$WIFI_COUNTRY"' in script
    assert "tablebox-wifi.nmconnection" in script and "do_wifi_country" in script
    # The values, as data beside it; no network-config on an image without cloud-init.
    assert mtype(out, "tablebox/firstrun-wifi.conf").decode().splitlines()[1:] == [
        f"ssid={NASTY_SSID}",
        f"password={NASTY_PASSWORD}",
        "country=CN",
    ]
    assert "network-config" not in listing(out)


def test_firstrun_gives_imager_custom_exactly_the_values(tmp_path, plain_image):
    out = tmp_path / "card.img"
    assert flash(plain_image, out, wifi_config(tmp_path)).returncode == 0
    boot_dir, root, record, env = firstrun_sandbox(tmp_path, out, imager_custom=True)
    (boot_dir / "tablebox" / "provision" / "firstboot").mkdir(parents=True)
    shutil.copy(FIRSTBOOT_UNIT, boot_dir / "tablebox" / "provision" / "firstboot")
    (boot_dir / "cmdline.txt").write_text(CMDLINE.rstrip("\n") + " " + RUN_ARGS + "\n")

    done = run("bash", boot_dir / "firstrun.sh", env=env)  # the whole script, as the Pi runs it
    assert done.returncode == 0
    assert calls(record) == [["imager_custom", "set_wlan", NASTY_SSID, NASTY_PASSWORD, "CN"]]
    assert not (root / "etc/NetworkManager").exists()  # imager_custom writes the connection itself
    assert not (boot_dir / "tablebox" / "firstrun-wifi.conf").exists()
    assert (root / "etc/systemd/system/multi-user.target.wants/tablebox-firstboot.service").is_symlink()
    assert (boot_dir / "cmdline.txt").read_text() == CMDLINE
    assert "Wi-Fi set up with imager_custom (country CN)" in (boot_dir / "tablebox" / "firstrun.log").read_text()


@pytest.mark.parametrize(
    ("ssid", "password", "raw_ssid"),
    [
        (NASTY_SSID, NASTY_PASSWORD, NASTY_SSID),  # printable: written as text
        ("小笼天下 Wi-Fi", "12345678", "229;176;143;231;172;188;229;164;169;228;184;139;32;87;105;45;70;105;"),
        ("a;b\\c", "", "97;59;98;92;99;"),  # ';' and '\' need the byte list
        (" 2046", "   spaces   ", "32;50;48;52;54;"),  # a leading space too
    ],
)
def test_without_imager_custom_firstrun_writes_a_private_networkmanager_connection(tmp_path, ssid, password, raw_ssid):
    image = make_image(tmp_path / "raspios-trixie-early.img", {"cmdline.txt": CMDLINE})
    out = tmp_path / "card.img"
    assert flash(image, out, wifi_config(tmp_path, ssid, password, "cn")).returncode == 0
    boot_dir, root, record, env = firstrun_sandbox(tmp_path, out, imager_custom=False)
    steps = (
        'source "$0/firstrun.sh"; BOOT="$0"; LOG="$0/tablebox/firstrun.log"; '
        'WIFI_FILE="$0/tablebox/firstrun-wifi.conf"; configure_wifi'
    )
    run("bash", "-c", steps, boot_dir, env=env)

    keyfile = root / "etc/NetworkManager/system-connections/tablebox-wifi.nmconnection"
    assert keyfile.stat().st_mode & 0o777 == 0o600
    text = keyfile.read_text()
    assert re.search(r"^ssid=(.*)$", text, re.M).group(1) == raw_ssid
    settings = read_keyfile(text)
    assert settings["connection"]["id"] == "tablebox-wifi"
    assert settings["connection"]["type"] == "wifi" and settings["connection"]["autoconnect"] == "true"
    assert settings["wifi"] == {"mode": "infrastructure", "ssid": ssid}
    if password:
        assert settings["wifi-security"] == {"key-mgmt": "wpa-psk", "psk": password}
    else:
        assert "wifi-security" not in settings  # an open network
    assert settings["ipv4"] == {"method": "auto"} and settings["ipv6"] == {"method": "auto"}
    assert calls(record) == [["raspi-config", "nonint", "do_wifi_country", "CN"], ["rfkill", "unblock", "wifi"]]
    assert (root / "var/lib/systemd/rfkill/platform-3f300000.mmcnr:wlan").read_text() == "0\n"
    assert not (boot_dir / "tablebox" / "firstrun-wifi.conf").exists()


def test_a_name_imager_custom_would_take_for_a_flag_goes_to_networkmanager(tmp_path, plain_image):
    out = tmp_path / "card.img"
    assert flash(plain_image, out, wifi_config(tmp_path, "-h", "--hidden")).returncode == 0
    boot_dir, root, record, env = firstrun_sandbox(tmp_path, out, imager_custom=True, raspi_config=False)
    steps = (
        'source "$0/firstrun.sh"; BOOT="$0"; LOG="$0/tablebox/firstrun.log"; '
        'WIFI_FILE="$0/tablebox/firstrun-wifi.conf"; configure_wifi'
    )
    run("bash", "-c", steps, boot_dir, env=env)
    settings = read_keyfile((root / "etc/NetworkManager/system-connections/tablebox-wifi.nmconnection").read_text())
    assert settings["wifi"]["ssid"] == "-h" and settings["wifi-security"]["psk"] == "--hidden"
    assert calls(record) == [["rfkill", "unblock", "wifi"]]
    assert "no raspi-config: the Wi-Fi country CN was not set" in (boot_dir / "tablebox/firstrun.log").read_text()


def test_firstrun_without_wifi_touches_no_network_settings(tmp_path):
    boot_dir = tmp_path / "boot"
    (boot_dir / "tablebox").mkdir(parents=True)
    steps = (
        'source "$1"; BOOT="$0"; LOG="$0/tablebox/firstrun.log"; WIFI_FILE="$0/tablebox/firstrun-wifi.conf"; '
        "configure_wifi"
    )
    # No command at all on PATH: nothing may be run.
    run(
        shutil.which("bash"),
        "-c",
        steps,
        boot_dir,
        FIRSTRUN,
        env={"FIRSTRUN_ROOT": str(tmp_path / "root"), "PATH": str(tmp_path / "empty")},
    )
    assert not (tmp_path / "root").exists() and not (boot_dir / "tablebox/firstrun.log").exists()


# Technician access (issue 14, item 1): --ssh-key and passwords land where each first-boot style reads them.

KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIK0eQ1pU8l3Vt5ZqJtRBkq2r3x3cqGz7L1f2y9nHkE3D tech@laptop"
PLAIN_IMAGE_FILES = {"cmdline.txt": CMDLINE, "config.txt": "arm_64bit=1\n"}
CLOUD_IMAGE_FILES = {"cmdline.txt": CMDLINE, "user-data": "#cloud-config\n", "meta-data": "instance-id: rpios\n"}


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "id_ed25519.pub"
    path.write_text(KEY + "\n")
    return path


def first_user_root(root: Path) -> None:
    """A box's /etc as pi-gen leaves it: the first user (uid 1000, pi) with no usable password, in group sudo."""
    (root / "etc").mkdir(parents=True)
    (root / "home/pi").mkdir(parents=True)
    (root / "etc/passwd").write_text("root:x:0:0:root:/root:/bin/bash\npi:x:1000:1000:,,,:/home/pi:/bin/bash\n")
    (root / "etc/shadow").write_text("root:*:20000:0:99999:7:::\npi:!:20000:0:99999:7:::\n")
    (root / "etc/group").write_text("root:x:0:\nsudo:x:27:pi\npi:x:1000:\n")
    (root / "etc/gshadow").write_text("root:*::\nsudo:*::pi\npi:!::\n")
    os.chown(root / "home/pi", 1000, 1000)


def run_firstrun(tmp_path: Path, card: Path, *, fakes: tuple[str, ...] = ()) -> tuple[Path, Path, list[list[str]]]:
    """The card's firstrun.sh and its files in a boot folder, run against a root folder (FIRSTRUN_ROOT); the image
    tools named in `fakes` (imager_custom, userconf) record their arguments instead of acting."""
    boot_dir, root, record = tmp_path / "boot", tmp_path / "root", tmp_path / "calls"
    (boot_dir / "tablebox/provision/firstboot").mkdir(parents=True)
    (boot_dir / "firstrun.sh").write_bytes(mtype(card, "firstrun.sh"))
    (boot_dir / "cmdline.txt").write_bytes(mtype(card, "cmdline.txt"))
    for name in listing(card):
        if name.startswith("tablebox/provision/firstboot/") and not name.endswith("/"):
            (boot_dir / name).write_bytes(mtype(card, name))
    (boot_dir / "tablebox/firstrun-access.conf").write_bytes(mtype(card, "tablebox/firstrun-access.conf"))
    first_user_root(root)
    fake = '#!/bin/bash\nprintf "%s\\0" "$(basename "$0")" "$@" >> "$RECORD"\n'
    paths = {"imager_custom": "usr/lib/raspberrypi-sys-mods/imager_custom", "userconf": "usr/lib/userconf-pi/userconf"}
    for name in fakes:
        path = root / paths[name]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(fake)
        path.chmod(0o755)
    done = run("bash", boot_dir / "firstrun.sh", env={"FIRSTRUN_ROOT": str(root), "RECORD": str(record)})
    assert done.returncode == 0, done.stdout + done.stderr
    words = record.read_bytes().decode().split("\0")[:-1] if record.exists() else []
    recorded: list[list[str]] = []
    for word in words:
        if word in paths:
            recorded.append([word])
        else:
            recorded[-1].append(word)
    return boot_dir, root, recorded


def test_without_an_account_option_flash_refuses_before_writing(tmp_path, plain_image, config):
    out = tmp_path / "card.img"
    done = flash(plain_image, out, config, "--access")
    assert done.returncode == 1
    assert "no way into the box: give --ssh-key" in done.stderr
    assert not out.exists()


def test_a_firstrun_image_with_an_ssh_key_gets_the_key_for_firstrun_and_the_ssh_file(
    tmp_path, plain_image, config, key_file
):
    out = tmp_path / "card.img"
    done = flash(plain_image, out, config, "--ssh-key", str(key_file))
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        "Technician account: tech, signs in with SSH with 1 key (no password over SSH); sudo without a password"
        in done.stdout
    )
    assert mtype(out, "ssh") == b""  # raspberrypi-sys-mods' sshswitch: an ssh file on the boot partition turns SSH on
    assert mtype(out, "tablebox/firstrun-access.conf").decode().splitlines()[1:] == [
        "user=tech",
        "password_hash=",
        f"key={KEY}",
    ]
    assert "ssh tech@" in done.stdout


def test_firstrun_puts_the_key_where_sshd_reads_it_and_renames_the_first_user(tmp_path, config, key_file):
    """Without Raspberry Pi OS's tools the same result by hand: the key in the renamed first user's
    ~/.ssh/authorized_keys (0600, theirs), no password anyone can type, sudo without one, SSH by key only."""
    card = tmp_path / "card.img"
    image = make_image(tmp_path / "raspios.img", PLAIN_IMAGE_FILES)
    assert flash(image, card, config, "--ssh-key", str(key_file)).returncode == 0
    boot_dir, root, _ = run_firstrun(tmp_path, card)
    keys = root / "home/tech/.ssh/authorized_keys"
    assert keys.read_text() == KEY + "\n"
    assert (keys.stat().st_mode & 0o777, keys.stat().st_uid) == (0o600, 1000)
    assert (keys.parent.stat().st_mode & 0o777) == 0o700 and not (root / "home/pi").exists()
    assert "tech:x:1000:1000:,,,:/home/tech:/bin/bash" in (root / "etc/passwd").read_text()
    assert "\ntech:*:" in (root / "etc/shadow").read_text()
    sudoers = root / "etc/sudoers.d/010_tech-nopasswd"
    assert sudoers.read_text() == "tech ALL=(ALL) NOPASSWD:ALL\n" and (sudoers.stat().st_mode & 0o777) == 0o440
    assert "PasswordAuthentication no" in (root / "etc/ssh/sshd_config.d/tablebox-keys-only.conf").read_text()
    assert not (boot_dir / "tablebox/firstrun-access.conf").exists()  # read once, then gone


def test_firstrun_hands_the_key_and_the_name_to_imager_custom_and_userconf(tmp_path, config, key_file):
    """On Raspberry Pi OS: exactly Imager's calls, keys first (into uid 1000's home), then the rename."""
    card = tmp_path / "card.img"
    image = make_image(tmp_path / "raspios.img", PLAIN_IMAGE_FILES)
    pw = tmp_path / "pw"
    pw.write_text("dumplings-2026\n")
    assert (
        flash(image, card, config, "--ssh-key", str(key_file), "--password-file", str(pw), "--user", "lee").returncode
        == 0
    )
    _, root, recorded = run_firstrun(tmp_path, card, fakes=("imager_custom", "userconf"))
    assert recorded[0] == ["imager_custom", "enable_ssh", "-k", KEY]
    assert recorded[1][:2] == ["userconf", "lee"] and recorded[1][2].startswith("$6$")
    assert len(recorded) == 2
    assert not (root / "etc/sudoers.d/010_lee-nopasswd").exists()  # with a password, sudo asks for it


def test_a_cloud_init_image_with_an_ssh_key_gets_a_locked_user_with_the_key(tmp_path, config, key_file):
    image = make_image(tmp_path / "raspios-trixie.img", CLOUD_IMAGE_FILES)
    out = tmp_path / "card.img"
    done = flash(image, out, config, "--ssh-key", str(key_file))
    assert done.returncode == 0, done.stdout + done.stderr
    data = yaml.safe_load(mtype(out, "user-data"))
    assert data["user"] == {
        "name": "tech",
        "shell": "/bin/bash",
        "lock_passwd": True,
        "ssh_authorized_keys": [KEY],
        "sudo": "ALL=(ALL) NOPASSWD:ALL",
    }
    assert data["ssh_pwauth"] is False
    assert data["runcmd"][:2] == [
        "systemctl enable --now ssh",
        "echo 'tech ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/010_tech-nopasswd && chmod 0440 /etc/sudoers.d/010_tech-nopasswd",
    ]
    assert "provision.log" in data["runcmd"][-1]  # the first-boot command runs after the account exists
    assert "ssh" not in listing(out) and "tablebox/firstrun-access.conf" not in listing(out)


def test_a_password_goes_on_the_card_only_as_a_hash(tmp_path, config):
    image = make_image(tmp_path / "raspios-trixie.img", CLOUD_IMAGE_FILES)
    out = tmp_path / "card.img"
    pw = tmp_path / "pw"
    pw.write_text("Xiaolong-Secret-77\n")
    done = flash(image, out, config, "--password-file", str(pw))
    assert done.returncode == 0, done.stdout + done.stderr
    user = yaml.safe_load(mtype(out, "user-data"))["user"]
    assert (user["lock_passwd"], user["sudo"]) == (False, None)
    salt = user["passwd"].split("$")[2]
    rehashed = run("openssl", "passwd", "-6", "-salt", salt, "Xiaolong-Secret-77").stdout.strip()
    assert user["passwd"] == rehashed
    assert yaml.safe_load(mtype(out, "user-data"))["ssh_pwauth"] is True
    assert b"Xiaolong-Secret-77" not in out.read_bytes()  # not in any file, not in a deleted one either


@pytest.mark.parametrize(
    ("files", "options", "message"),
    [
        (
            {**CLOUD_IMAGE_FILES, "user-data": USER_DATA},
            ["--ssh-key", "KEY"],
            "already sets up an account (user-data",
        ),
        (
            {**PLAIN_IMAGE_FILES, "firstrun.sh": IMAGER_FIRSTRUN},
            ["--ssh-key", "KEY"],
            "already sets up an account (Raspberry Pi Imager's firstrun.sh",
        ),
        (PLAIN_IMAGE_FILES, ["--ssh-key", "PRIVATE"], "is a private key: give the public one"),
        (PLAIN_IMAGE_FILES, ["--ssh-key", "KEY", "--user", "Root"], "--user 'Root': use 1 to 32 lower-case"),
        (PLAIN_IMAGE_FILES, ["--password-hash", "hunter22"], "--password-hash must be a crypt hash"),
        (PLAIN_IMAGE_FILES, ["--password", "--no-account"], "--no-account cannot go with"),
    ],
)
def test_an_account_that_cannot_work_is_refused_before_writing(tmp_path, config, key_file, files, options, message):
    private = tmp_path / "id_ed25519"
    private.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nb3Blbn\n-----END OPENSSH PRIVATE KEY-----\n")
    image = make_image(tmp_path / "raspios.img", files)
    out = tmp_path / "card.img"
    given = [str(key_file) if o == "KEY" else str(private) if o == "PRIVATE" else o for o in options]
    done = flash(image, out, config, *given)
    assert done.returncode != 0 and message in done.stderr, done.stderr
    assert not out.exists()


def test_an_image_with_imagers_account_needs_no_option(tmp_path, config):
    image = make_image(tmp_path / "raspios-trixie.img", {**CLOUD_IMAGE_FILES, "user-data": USER_DATA})
    done = flash(image, tmp_path / "card.img", config, "--access")
    assert done.returncode == 0, done.stderr
