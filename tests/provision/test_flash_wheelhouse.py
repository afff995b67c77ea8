"""flash.sh --wheelhouse DIR: the wheels provision/wheelhouse.sh made go on the card as tablebox/wheels/, where the
box's provision.sh finds them (find_wheelhouse) and installs Tablebox with no network (issue 14, item 6).

The wheelhouses here are synthetic (a few small files named like wheels): flash.sh only checks and copies them;
tests/provision/test_release.py and test_arm64.py install real ones.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.provision.test_flash import (
    CMDLINE,
    CONFIG,
    FLASH,
    USER_DATA,
    boot,
    flash,
    listing,
    make_image,
    mtype,
    run,
)

REPO = Path(__file__).resolve().parents[2]
PROVISION = REPO / "provision" / "provision.sh"
WHEELS = {
    "tablebox-0.9.0-py3-none-any.whl": b"PK\x03\x04 tablebox's own wheel",
    "apsw-3.54.1.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl": bytes(range(256)) * 8,
    "msgspec-0.19.0-cp311-cp311-manylinux_2_17_aarch64.manylinux2014_aarch64.whl": b"PK msgspec",
}


def wheelhouse(tmp_path: Path, *, python: str = "3.11", arch: str = "aarch64", big: int = 0) -> Path:
    out = tmp_path / f"wheels-{python}-{arch}"
    out.mkdir()
    for name, content in WHEELS.items():
        (out / name).write_bytes(content)
    if big:
        with (out / "pillow-11.0.0-cp311-cp311-manylinux_2_28_aarch64.whl").open("wb") as f:
            f.truncate(big)
    (out / "requirements.lock").write_text("apsw==3.54.1.0 \\\n    --hash=sha256:00\n")
    info = {"python": python, "arch": arch, "version": "0.9.0", "lock_sha256": "00", "wheel": next(iter(WHEELS))}
    (out / "wheelhouse.json").write_text(json.dumps(info) + "\n")
    (out / "notes.txt").write_text("the technician's own notes: not for the card\n")
    return out


def config(tmp_path: Path) -> Path:
    path = tmp_path / "tablebox.toml"
    path.write_text(CONFIG, "utf-8")
    return path


def bookworm(tmp_path: Path) -> Path:
    return make_image(tmp_path / "raspios-bookworm.img", {"cmdline.txt": CMDLINE, "config.txt": "arm_64bit=1\n"})


def trixie(tmp_path: Path) -> Path:
    files: dict[str, str | bytes] = {
        "cmdline.txt": CMDLINE,
        "config.txt": "arm_64bit=1\n",
        "user-data": USER_DATA,
        "meta-data": "",
    }
    return make_image(tmp_path / "raspios-trixie.img", files)


def test_the_wheels_go_on_the_card_where_provision_finds_them(tmp_path: Path) -> None:
    wheels = wheelhouse(tmp_path)
    out = tmp_path / "card.img"
    done = flash(bookworm(tmp_path), out, config(tmp_path), "--wheelhouse", str(wheels))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "wheelhouse: 3 wheels for Python 3.11, Tablebox 0.9.0" in done.stdout
    assert "installs from tablebox/wheels/ on the card" in done.stdout
    on_card = {name for name in listing(out) if name.startswith("tablebox/wheels/") and not name.endswith("/")}
    expected = {*WHEELS, "requirements.lock", "wheelhouse.json"}
    assert on_card == {f"tablebox/wheels/{name}" for name in expected}  # notes.txt stays on the laptop
    for name in expected:
        assert mtype(out, f"tablebox/wheels/{name}") == (wheels / name).read_bytes()
    # The box: the boot partition is mounted at /boot/firmware; provision.sh picks the folder up by itself.
    root = tmp_path / "box"
    (root / "boot/firmware").mkdir(parents=True)
    run("mcopy", "-s", "-i", boot(out), "::/tablebox", root / "boot/firmware/")
    found = subprocess.run(
        ["bash", "-c", 'source "$1"; ROOT=$2; WHEELHOUSE=""; find_wheelhouse', "bash", str(PROVISION), str(root)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == f"{root}/boot/firmware/tablebox/wheels"


def test_the_debian_packages_of_a_wheelhouse_go_on_the_card_too(tmp_path: Path) -> None:
    wheels = wheelhouse(tmp_path)
    debs = {"fbterm_1.7-5_arm64.deb": b"!<arch>\nfbterm", "fonts-wqy-microhei_0.2.0-beta-3.1_all.deb": b"!<arch>\nfont"}
    (wheels / "debs").mkdir()
    for name, content in debs.items():
        (wheels / "debs" / name).write_bytes(content)
    (wheels / "debs" / "debs.json").write_text('{"suite": "bookworm", "arch": "arm64"}\n')
    out = tmp_path / "card.img"
    done = flash(bookworm(tmp_path), out, config(tmp_path), "--wheelhouse", str(wheels))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "debian packages: 2 .debs" in done.stdout and "the box needs no internet." in done.stdout
    for name, content in debs.items():
        assert mtype(out, f"tablebox/wheels/debs/{name}") == content


def test_without_a_wheelhouse_the_card_has_no_wheels_folder(tmp_path: Path) -> None:
    out = tmp_path / "card.img"
    done = flash(bookworm(tmp_path), out, config(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert not {name for name in listing(out) if name.startswith("tablebox/wheels")}
    assert "installs from tablebox/wheels/" not in done.stdout


def test_wheels_for_the_other_python_are_refused_before_writing(tmp_path: Path) -> None:
    # A Trixie image (cloud-init user-data) has Python 3.13: a Bookworm wheelhouse would fail at first boot.
    out = tmp_path / "card.img"
    done = flash(trixie(tmp_path), out, config(tmp_path), "--wheelhouse", str(wheelhouse(tmp_path)))
    assert done.returncode != 0
    assert "wheels for Python 3.11; this Trixie image has Python 3.13" in done.stderr
    assert "provision/wheelhouse.sh --python 3.13" in done.stderr
    assert not out.exists()
    # And the other way round, on an .img.xz checked once written: the half-made output is removed.
    image = bookworm(tmp_path)
    run("xz", "-0", "-T1", "-k", image)
    done = flash(Path(f"{image}.xz"), out, config(tmp_path), "--wheelhouse", str(wheelhouse(tmp_path, python="3.13")))
    assert done.returncode != 0 and "this Bookworm image has Python 3.11" in done.stderr
    assert not out.exists()


def test_wheels_for_a_pc_or_an_incomplete_folder_are_refused(tmp_path: Path) -> None:
    out = tmp_path / "card.img"
    image = bookworm(tmp_path)
    done = flash(image, out, config(tmp_path), "--wheelhouse", str(wheelhouse(tmp_path, arch="x86_64")))
    assert done.returncode != 0 and "holds wheels for x86_64" in done.stderr and "--arch aarch64" in done.stderr
    assert not out.exists()
    broken = wheelhouse(tmp_path)
    (broken / next(iter(WHEELS))).unlink()
    done = flash(image, out, config(tmp_path), "--wheelhouse", str(broken))
    assert done.returncode != 0 and "is incomplete" in done.stderr and "tablebox-0.9.0" in done.stderr
    done = flash(image, out, config(tmp_path), "--wheelhouse", str(tmp_path))
    assert done.returncode != 0 and "no wheelhouse.json" in done.stderr
    assert not out.exists()


def test_a_boot_partition_too_small_is_said_before_a_half_copy(tmp_path: Path) -> None:
    # The test image's boot partition has 36 MiB; Raspberry Pi OS's has 512 MB.
    wheels = wheelhouse(tmp_path, big=40 * 1024 * 1024)
    out = tmp_path / "card.img"
    done = flash(bookworm(tmp_path), out, config(tmp_path), "--wheelhouse", str(wheels))
    assert done.returncode != 0
    assert "the boot partition has" in done.stderr and "tablebox/ needs about" in done.stderr
    assert not out.exists()


def test_help_names_the_option() -> None:
    shown = run("bash", FLASH, "--help")
    assert "--wheelhouse DIR" in shown.stdout and "tablebox/wheels/" in shown.stdout
