"""A Debian arm64 root for the box-architecture proof (issue 14), built once and cached.

The recipe is the one checked on these machines: qemu-user-static + binfmt_misc run aarch64 programs, debootstrap
--foreign makes the first stage on the host and the second stage inside the root, then apt inside the root installs
python3 and python3-venv. The root is cached as a tarball under /var/cache/tablebox-tests/ (one per Debian suite)
and unpacked fresh for each test run, so a test never sees another's leftovers.

    python3 tests/provision/arm64root.py bookworm     # build (or reuse) the cached root, print its tarball

Needs root, debootstrap, qemu-user-static and binfmt-support (./run test installs them).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

CACHE = Path(os.environ.get("TABLEBOX_TEST_CACHE", "/var/cache/tablebox-tests"))
MIRROR = os.environ.get("TABLEBOX_DEBIAN_MIRROR", "http://deb.debian.org/debian")
PYTHON_OF = {"bookworm": "3.11", "trixie": "3.13"}
QEMU = Path("/usr/bin/qemu-aarch64-static")
BINFMT = Path("/proc/sys/fs/binfmt_misc")
# The CPU qemu emulates: a Raspberry Pi 4's Cortex-A72 (a Pi 5 has an A76). qemu's default, "max", offers every
# newer extension (SVE, pointer authentication...); Trixie's glibc and Python then take paths qemu emulates slowly:
# `python3 -m venv` in the Trixie root took 210 s with "max" and 22 s with cortex-a72 (Bookworm: 35 s and 29 s).
# qemu-user reads $QEMU_CPU at every exec, so every aarch64 program run in a root must be given it.
QEMU_ENV = {"QEMU_CPU": os.environ.get("TABLEBOX_QEMU_CPU", "cortex-a72")}


class Unavailable(Exception):
    """This machine cannot run aarch64 programs (no qemu, no binfmt_misc, not root)."""


def enable_binfmt() -> None:
    """Register qemu-aarch64 with the kernel's binfmt_misc (mounting it first when needed)."""
    if os.geteuid() != 0:
        raise Unavailable("not root: binfmt_misc and chroot need root")
    if not QEMU.exists():
        raise Unavailable(f"{QEMU} is missing (apt-get install qemu-user-static binfmt-support)")
    if not (BINFMT / "register").exists():
        subprocess.run(["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], check=False, capture_output=True)
    if not (BINFMT / "register").exists():
        raise Unavailable("binfmt_misc cannot be mounted here")
    if not (BINFMT / "qemu-aarch64").exists():
        subprocess.run(["update-binfmts", "--enable", "qemu-aarch64"], check=False, capture_output=True)
    if not (BINFMT / "qemu-aarch64").exists():
        raise Unavailable("update-binfmts could not enable qemu-aarch64")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def tarball(suite: str) -> Path:
    return CACHE / f"arm64-{suite}-python.tar"


def _log(message: str) -> None:
    print(f"arm64root: {message}", file=sys.stderr, flush=True)


def build(suite: str) -> Path:
    """The cached tarball of a bookworm/trixie arm64 root with python3 and python3-venv; built when missing."""
    if suite not in PYTHON_OF:
        raise ValueError(f"no arm64 root recipe for {suite!r}")
    enable_binfmt()
    CACHE.mkdir(parents=True, exist_ok=True)
    out = tarball(suite)
    with open(CACHE / f"arm64-{suite}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs never build one root at once
        if out.exists():
            return out
        work = CACHE / f"arm64-{suite}.build"
        shutil.rmtree(work, ignore_errors=True)
        started = time.monotonic()
        _log(f"debootstrap --foreign {suite} (first stage, on the host)")
        subprocess.run(
            ["debootstrap", "--arch=arm64", "--variant=minbase", "--foreign", suite, str(work), MIRROR],
            check=True,
            capture_output=True,
        )
        shutil.copy2(QEMU, work / "usr/bin" / QEMU.name)
        _log("second stage inside the root (under qemu)")
        subprocess.run(
            ["chroot", str(work), "/debootstrap/debootstrap", "--second-stage"],
            check=True,
            capture_output=True,
            env={**os.environ, **QEMU_ENV},
        )
        (work / "etc/apt/sources.list").write_text(f"deb {MIRROR} {suite} main\n")
        _log("apt-get install python3 python3-venv (under qemu)")
        env = {"DEBIAN_FRONTEND": "noninteractive", "PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        env.update(QEMU_ENV)
        subprocess.run(["chroot", str(work), "apt-get", "update", "-qq"], check=True, capture_output=True, env=env)
        subprocess.run(
            [
                "chroot",
                str(work),
                "apt-get",
                "install",
                "-y",
                "-qq",
                "--no-install-recommends",
                "python3",
                "python3-venv",
            ],
            check=True,
            capture_output=True,
            env=env,
        )
        subprocess.run(["chroot", str(work), "apt-get", "clean"], check=True, capture_output=True, env=env)
        partial = out.with_suffix(".partial")
        with tarfile.open(partial, "w") as tar:
            tar.add(work, arcname=".")
        partial.rename(out)
        shutil.rmtree(work, ignore_errors=True)
        _log(f"{suite} root cached in {out} ({time.monotonic() - started:.0f} s)")
        return out


def unpack(suite: str, dest: Path) -> Path:
    """A fresh copy of the cached root at dest (built first when missing)."""
    source = build(suite)
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-C", str(dest), "-xf", str(source)], check=True)
    return dest


if __name__ == "__main__":
    print(build(sys.argv[1] if len(sys.argv) > 1 else "bookworm"))
