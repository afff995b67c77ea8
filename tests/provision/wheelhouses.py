"""Wheelhouses for the release tests: made by provision/wheelhouse.sh, as a technician makes them.

The pinned wheels are downloaded once per lock, Python and CPU into /var/cache/tablebox-tests/ (the package index
is needed that once); each test gets a copy with the Tablebox wheel of the source it asks for (this checkout, an
earlier commit, a deliberately broken copy).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("TABLEBOX_TEST_CACHE", "/var/cache/tablebox-tests"))
SCRIPT = REPO / "provision" / "wheelhouse.sh"


def cached_wheelhouse(python: str, arch: str) -> Path:
    """The lock's wheels for (python, arch) plus this checkout's Tablebox wheel, in the shared cache."""
    lock = hashlib.sha256((REPO / "provision/requirements.lock").read_bytes()).hexdigest()[:12]
    out = CACHE / f"wheels-{arch}-cp{python.replace('.', '')}-{lock}"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f"{out.name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        done = subprocess.run(
            ["bash", str(SCRIPT), "--python", python, "--arch", arch, "--out", str(out)],
            capture_output=True,
            text=True,
            timeout=900,
            env={**os.environ, "PYTHON": sys.executable},
        )
        assert done.returncode == 0, done.stderr
    return out


def wheelhouse_for(dest: Path, source: Path, *, python: str = "3.11", arch: str = "x86_64") -> Path:
    """A copy of the cached wheelhouse at dest whose Tablebox wheel is built from `source` (a source folder)."""
    base = cached_wheelhouse(python, arch)
    shutil.copytree(base, dest)
    for old in dest.glob("tablebox-*.whl"):
        old.unlink()
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(dest), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    wheel = next(dest.glob("tablebox-*.whl"))
    info = json.loads((dest / "wheelhouse.json").read_text())
    info["wheel"] = wheel.name
    info["version"] = wheel.name.split("-")[1]
    (dest / "wheelhouse.json").write_text(json.dumps(info) + "\n")
    return dest


def source_at(commit: str, dest: Path) -> Path:
    """This repository's source as it was at `commit` (git archive), in dest."""
    dest.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(REPO), "archive", commit], capture_output=True, timeout=120)
    assert archive.returncode == 0, f"git archive {commit}: {archive.stderr.decode()} (a shallow clone? fetch history)"
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest
