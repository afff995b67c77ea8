"""provision.sh's step_packages with no network: the card's .debs (provision/debs.sh), apt's network, or neither.

step_packages runs sourced from provision.sh with stand-ins for apt-get, dpkg-query, dpkg and ip on PATH; the
slow test downloads the real Debian packages for Bookworm arm64 and resolves them with apt, offline.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "provision" / "provision.sh"
DEBS_CACHE = Path("/var/cache/tablebox-tests/debs-bookworm-arm64")

FAKES = {
    # Installed: the words of $FAKE_INSTALLED.
    "dpkg-query": 'for p in $FAKE_INSTALLED; do [ "$p" = "${!#}" ] && { printf "install ok installed"; exit 0; }; done\n'
    "exit 1\n",
    # Every call logged as one line; with a private source list, its contents on the next line.
    "apt-get": 'echo "apt-get $*" >> "$FAKE_LOG"\n'
    'for a in "$@"; do case "$a" in Dir::Etc::sourcelist=*) echo "list: $(cat "${a#*=}")" >> "$FAKE_LOG" ;; esac; done\n'
    'if [ -n "$FAKE_APT_FAILS" ]; then echo "E: Failed to fetch (network unreachable)" >&2; exit 100; fi\n',
    "dpkg": '[ "$1" = --print-architecture ] && echo arm64\n',
    "ip": '[ -n "$FAKE_ROUTE" ] && echo "default via 192.168.1.1 dev eth0"; exit 0\n',
}
PACKAGES = "python3 python3-venv python3-pip libusb-1.0-0 fbterm fonts-wqy-microhei sqlite3 fake-hwclock"


@pytest.fixture
def box(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in FAKES.items():
        (bin_dir / name).write_text("#!/bin/bash\n" + body)
        (bin_dir / name).chmod(0o755)
    (tmp_path / "os-release").write_text('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nVERSION_CODENAME=bookworm\n')
    (tmp_path / "synchronized").touch()
    return tmp_path


def wheelhouse(box: Path, suite: str = "bookworm") -> Path:
    """A wheelhouse with a debs/ folder as provision/debs.sh leaves it."""
    wheels = box / "wheels"
    (wheels / "debs").mkdir(parents=True)
    (wheels / "wheelhouse.json").write_text('{"python": "3.11", "arch": "aarch64"}\n')
    (wheels / "debs" / "fbterm_1.7-5_arm64.deb").write_bytes(b"!<arch>\n")
    (wheels / "debs" / "Packages").write_text("Package: fbterm\nFilename: ./fbterm_1.7-5_arm64.deb\n\n")
    (wheels / "debs" / "debs.json").write_text(f'{{"suite": "{suite}", "arch": "arm64", "packages": "{PACKAGES}"}}\n')
    return wheels


def step_packages(
    box: Path, installed: str, wheels: Path | None = None, route: bool = False, apt_fails: bool = False
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    env = {
        **os.environ,
        "PATH": f"{box / 'bin'}:{os.environ['PATH']}",
        "FAKE_INSTALLED": installed,
        "FAKE_LOG": str(box / "apt.log"),
        "FAKE_ROUTE": "yes" if route else "",
        "FAKE_APT_FAILS": "yes" if apt_fails else "",
        "TABLEBOX_OS_RELEASE": str(box / "os-release"),
        "TABLEBOX_CLOCK_SYNC_FILE": str(box / "synchronized"),
    }
    script = (
        f'source "{SCRIPT}"; WHEELHOUSE="{wheels or ""}"; step_packages; '
        "CFG_HOSTNAME=tablebox; CFG_PUBLIC_BASE_URL=http://192.168.1.20:8080; CFG_MANAGER_NAME=li; step_summary"
    )
    done = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, env=env)
    log = (box / "apt.log").read_text().splitlines() if (box / "apt.log").exists() else []
    return done, log


def test_all_installed_calls_no_apt(box: Path) -> None:
    done, log = step_packages(box, installed=PACKAGES)
    assert done.returncode == 0, done.stderr
    assert "  ok: all installed" in done.stdout.splitlines()
    assert log == []


def test_missing_packages_come_from_the_cards_debs_with_no_network(box: Path) -> None:
    wheels = wheelhouse(box)
    done, log = step_packages(box, installed="python3 python3-venv libusb-1.0-0 fake-hwclock", wheels=wheels)
    assert done.returncode == 0, done.stderr
    assert f"  from the card's Debian packages, no network: {wheels}/debs" in done.stdout.splitlines()
    # apt's only repository is the card's folder, with lists of its own: update it, then install just what lacks.
    assert log[1] == f"list: deb [trusted=yes] file:{wheels}/debs ./"
    assert log[0].endswith(" update -qq")
    assert log[2].endswith(" install -y -qq --no-install-recommends python3-pip fbterm fonts-wqy-microhei sqlite3")
    assert log[3] == log[1]
    assert len(log) == 4
    assert "-o Dir::Etc::sourceparts=" in log[2] and "-o Dir::State::Lists=" in log[2]
    assert "  changed: installed python3-pip fbterm fonts-wqy-microhei sqlite3 (from " in done.stdout
    assert "Not installed" not in done.stdout


def test_debs_for_another_debian_are_not_used(box: Path) -> None:
    wheels = wheelhouse(box, suite="trixie")
    done, log = step_packages(box, installed="python3 python3-venv python3-pip libusb-1.0-0", wheels=wheels)
    assert done.returncode == 0, done.stderr
    assert f"  {wheels}/debs holds packages for trixie arm64; this box is bookworm arm64: not used" in done.stderr
    assert log == []
    assert "skipped fbterm fonts-wqy-microhei sqlite3 fake-hwclock" in done.stdout


def test_offline_without_debs_an_essential_package_stops_with_what_to_do(box: Path) -> None:
    done, log = step_packages(box, installed="python3 fbterm")
    assert done.returncode == 1
    assert log == []  # no route: apt is not tried (and the clock not waited for)
    assert (
        "provision: cannot install python3-venv libusb-1.0-0 (Tablebox needs them): no network (or apt" in done.stderr
    )
    assert "provision/wheelhouse.sh --debs" in done.stderr


def test_offline_without_debs_the_optional_packages_are_skipped_and_the_summary_says_how_to_finish(box: Path) -> None:
    done, log = step_packages(box, installed="python3 python3-venv libusb-1.0-0 python3-pip")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert (
        "  no network and no Debian packages on the card: skipped fbterm fonts-wqy-microhei sqlite3 fake-hwclock"
        " (orders work without them; see the summary)" in lines
    )
    assert (
        "Not installed (no network): fbterm fonts-wqy-microhei sqlite3 fake-hwclock. Plug in the network cable,"
        " then run" in lines
    )
    assert (
        f"  sudo {REPO}/provision/provision.sh step packages && sudo systemctl restart tablebox-console.service"
        in lines
    )
    assert log == []


def test_a_route_but_no_answer_from_the_mirror_is_offline_too(box: Path) -> None:
    done, log = step_packages(box, installed="python3 python3-venv libusb-1.0-0", route=True, apt_fails=True)
    assert done.returncode == 0, done.stderr
    assert "  from the network (apt-get)" in done.stdout.splitlines()
    assert log == ["apt-get update -qq"]
    assert "skipped python3-pip fbterm fonts-wqy-microhei sqlite3 fake-hwclock" in done.stdout


def test_with_the_network_apt_installs_what_is_missing(box: Path) -> None:
    done, log = step_packages(box, installed="python3 python3-venv libusb-1.0-0 python3-pip fake-hwclock", route=True)
    assert done.returncode == 0, done.stderr
    assert log == [
        "apt-get update -qq",
        "apt-get install -y -qq --no-install-recommends fbterm fonts-wqy-microhei sqlite3",
    ]
    assert "  changed: installed fbterm fonts-wqy-microhei sqlite3" in done.stdout.splitlines()


@pytest.mark.slow
def test_debs_sh_downloads_every_package_and_dependency_for_bookworm_arm64(tmp_path: Path) -> None:
    if not (DEBS_CACHE / "Packages").is_file():
        done = subprocess.run(
            [str(REPO / "provision" / "debs.sh"), "--suite", "bookworm", "--arch", "arm64", "--out", str(DEBS_CACHE)],
            capture_output=True,
            text=True,
            timeout=900,
        )
        assert done.returncode == 0, done.stderr
    debs = {p.name.split("_")[0]: p for p in DEBS_CACHE.glob("*.deb")}

    def field(deb: Path, name: str) -> str:
        return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True, check=True).stdout

    assert field(debs["fbterm"], "Architecture").strip() == "arm64"
    assert field(debs["python3-venv"], "Architecture").strip() == "arm64"
    assert field(debs["fonts-wqy-microhei"], "Architecture").strip() == "all"
    assert {field(deb, "Architecture").strip() for deb in debs.values()} <= {"arm64", "all"}
    # The folder alone is enough: apt, with it as its only repository and nothing installed, resolves them all.
    apt = tmp_path / "apt"
    (apt / "lists" / "partial").mkdir(parents=True)
    (apt / "empty").mkdir()
    (apt / "status").touch()
    (apt / "sources.list").write_text(f"deb [trusted=yes] file:{DEBS_CACHE} ./\n")
    opts = [
        *("-o", "APT::Architecture=arm64", "-o", "APT::Architectures::=arm64", "-o", f"Dir::State={apt}"),
        *("-o", f"Dir::State::Lists={apt}/lists", "-o", f"Dir::State::status={apt}/status", "-o", f"Dir::Cache={apt}"),
        *("-o", f"Dir::Etc::sourcelist={apt}/sources.list", "-o", f"Dir::Etc::sourceparts={apt}/empty"),
        *("-o", "Debug::NoLocking=1", "-o", "APT::Sandbox::User=root"),
    ]
    subprocess.run(["apt-get", *opts, "-qq", "update"], check=True, capture_output=True, timeout=120)
    sim = subprocess.run(
        ["apt-get", *opts, "-s", "--no-install-recommends", "install", *PACKAGES.split()],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sim.returncode == 0, sim.stdout + sim.stderr
    configured = {line.split()[1] for line in sim.stdout.splitlines() if line.startswith("Conf ")}
    assert set(PACKAGES.split()) <= configured
    assert configured <= set(debs)
