"""Releases on a box (issue 14): an offline install from a wheelhouse, an update from the previous release to this
one with the real processes running, an update whose health check fails and is undone with the store as it was,
and a rollback.

The box lives under a temporary folder (TABLEBOX_PREFIX/DATA/ETC) and `systemctl` is tests/provision/
fake_systemctl.py, which runs the real `tablebox serve` and `tablebox printd` of the release the symlink names.
Every pip install here has the package index pointed at a closed port: nothing may come from the network.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import sqlite3
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.edge import free_port
from tests.provision.wheelhouses import REPO, source_at, wheelhouse_for

pytestmark = pytest.mark.slow

SCRIPT = REPO / "provision" / "provision.sh"
# The last commit before releases existed (issue 13's end): what boxes in the field run today.
PREVIOUS_RELEASE = "addd7c7"


class Box:
    def __init__(self, base: Path) -> None:
        self.base = base
        self.prefix, self.data, self.etc, self.state = (base / n for n in ("opt", "data", "etc", "systemd"))
        self.etc.mkdir(parents=True)
        self.port = free_port()
        (self.etc / "tablebox.toml").write_text(f'host = "127.0.0.1"\nport = {self.port}\n')
        fake = base / "bin" / "systemctl"
        fake.parent.mkdir()
        fake.write_text(f'#!/bin/sh\nexec {sys.executable} {REPO / "tests/provision/fake_systemctl.py"} "$@"\n')
        fake.chmod(0o755)
        self.env = {
            **os.environ,
            "TABLEBOX_PREFIX": str(self.prefix),
            "TABLEBOX_DATA": str(self.data),
            "TABLEBOX_ETC": str(self.etc),
            "TABLEBOX_SERVICE_USER": subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip(),
            "FAKE_SYSTEMD_STATE": str(self.state),
            "SYSTEMCTL": str(fake),
            "TABLEBOX_HEALTH_TIMEOUT": "60",
            "TABLEBOX_HEALTH_SETTLE": "2",
            # Nothing from the network: an index that refuses every connection, and no find-links of this machine.
            "PIP_INDEX_URL": f"http://127.0.0.1:{free_port()}/simple",
            "PIP_FIND_LINKS": "",
            "PIP_RETRIES": "0",
            "PIP_TIMEOUT": "2",
        }

    def provision(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", str(SCRIPT), "--unattended", *args], capture_output=True, text=True, timeout=900, env=self.env
        )

    def tablebox(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                str(self.prefix / "venv/bin/tablebox"),
                "--data-dir",
                str(self.data),
                "--config",
                str(self.etc / "tablebox.toml"),
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
            env=self.env,
        )

    def systemctl(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([self.env["SYSTEMCTL"], *args], capture_output=True, text=True, timeout=60, env=self.env)

    def release(self) -> str:
        return Path(os.readlink(self.prefix / "venv")).parent.name

    def healthz(self) -> int:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=5) as answer:
            return answer.status

    def rows(self) -> tuple[list[tuple[str, ...]], list[int]]:
        db = sqlite3.connect(f"file:{self.data / 'store.db'}?mode=ro", uri=True)
        try:
            tables = db.execute("SELECT name, area FROM tables ORDER BY name").fetchall()
            schema = [v for (v,) in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
        finally:
            db.close()
        return tables, schema

    def stop_all(self) -> None:
        self.systemctl("stop", "tablebox-web.service", "tablebox-printd.service")


@pytest.fixture
def box(tmp_path: Path):
    made = Box(tmp_path / "box")
    yield made
    made.stop_all()  # never leave a server running


@pytest.fixture(scope="module")
def wheelhouses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three wheelhouses, made once per test run: under pytest-xdist every worker that runs one of these tests
    would make its own (three Tablebox wheels built, about 30 s), so they are made in the run's shared temporary
    folder by the first worker, under a lock, and the others wait for it and read them (no test writes into them)."""
    run_temp = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        run_temp = run_temp.parent  # the workers' folders are popen-gwN under the run's own
    base = run_temp / "release-wheelhouses"
    with open(run_temp / "release-wheelhouses.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if not (base / "made").exists():
            shutil.rmtree(base, ignore_errors=True)  # what a worker that failed half-way left
            made = make_wheelhouses(base)
            (base / "made").write_text(json.dumps({k: str(v) for k, v in made.items()}))
    return {k: Path(v) for k, v in json.loads((base / "made").read_text()).items()}


def make_wheelhouses(base: Path) -> dict[str, Path]:
    base.mkdir(parents=True)
    current = wheelhouse_for(base / "current", REPO)
    previous = wheelhouse_for(base / "previous", source_at(PREVIOUS_RELEASE, base / "previous-src"))
    # A release that migrates the store and then cannot serve: its health check must fail.
    broken_src = base / "broken-src"
    shutil.copytree(
        REPO,
        broken_src,
        ignore=shutil.ignore_patterns(".venv", ".git", "*.egg-info", "__pycache__", "test-artifacts", "tablebox-data"),
    )
    (broken_src / "appliance/db/migrations/0999_broken_release.sql").write_text(
        "CREATE TABLE broken_release_marker (id INTEGER PRIMARY KEY);\n"
    )
    store_cli = broken_src / "appliance/cli/store.py"
    store_cli.write_text(
        store_cli.read_text().replace(
            '    require_store(settings, hint=" or `tablebox demo` first")\n    return serve(',
            '    require_store(settings, hint=" or `tablebox demo` first")\n'
            # What Store.open does first (store_connection alone does not migrate).
            "    from appliance.db.connection import open_connection\n"
            "    from appliance.db.migrate import migrate\n\n"
            "    conn = open_connection(settings.db_path)\n    migrate(conn)\n    conn.close()\n"
            "    raise SystemExit('broken release: serve exits after migrating')\n    return serve(",
        )
    )
    assert "broken release" in store_cli.read_text()
    broken = wheelhouse_for(base / "broken", broken_src)
    return {"current": current, "previous": previous, "broken": broken}


def install_previous(box: Box, wheelhouses: dict[str, Path]) -> str:
    done = box.provision("--wheelhouse", str(wheelhouses["previous"]), "step", "venv")
    assert done.returncode == 0, done.stdout + done.stderr
    made = box.tablebox("init", "--store-name", "Dumpling House")
    assert made.returncode == 0, made.stderr
    for name, area in (("A1", "Hall"), ("B2", "Garden")):
        added = box.tablebox("tables", "add", name, "--area", area)
        assert added.returncode == 0, added.stderr
    started = box.systemctl("start", "tablebox-web.service", "tablebox-printd.service")
    assert started.returncode == 0
    return box.release()


def test_an_offline_install_from_a_wheelhouse(box: Box, wheelhouses: dict[str, Path]) -> None:
    done = box.provision("--wheelhouse", str(wheelhouses["current"]), "step", "venv")
    assert done.returncode == 0, done.stdout + done.stderr
    release = box.release()
    info = json.loads((box.prefix / "releases" / release / "release.json").read_text())
    assert (info["id"], info["from"]) == (release, "wheelhouse")
    version = box.tablebox("version")
    assert version.returncode == 0 and f"(release {release})" in version.stdout, version.stderr
    # Nothing relay- or test-only, and the two litestar-only packages left out (provision/lock.sh).
    site = next((box.prefix / "releases" / release).glob("venv/lib/python3*/site-packages"))
    installed = {p.name.split("-")[0].lower() for p in site.glob("*.dist-info")}
    assert installed & {"psycopg", "psycopg_binary", "faker", "polyfactory", "pytest"} == set()
    # A second run with the same wheelhouse changes nothing.
    again = box.provision("--wheelhouse", str(wheelhouses["current"]), "step", "venv")
    assert again.returncode == 0 and f"ok: {box.prefix}/venv (release {release})" in again.stdout
    # Wheels for another CPU are refused before anything is touched.
    other = box.base / "arm"
    shutil.copytree(wheelhouses["current"], other)
    info = json.loads((other / "wheelhouse.json").read_text())
    (other / "wheelhouse.json").write_text(json.dumps({**info, "arch": "aarch64"}))
    refused = box.provision("--wheelhouse", str(other), "step", "venv")
    assert refused.returncode != 0 and "holds wheels for aarch64" in refused.stderr
    assert box.release() == release


def test_an_update_from_the_previous_release_then_a_rollback(box: Box, wheelhouses: dict[str, Path]) -> None:
    old = install_previous(box, wheelhouses)
    before = box.rows()
    updated = box.provision("update", "--from", str(wheelhouses["current"]))
    assert updated.returncode == 0, updated.stdout + updated.stderr
    new = box.release()
    assert new != old and "update done" in updated.stdout
    assert box.healthz() == 200
    assert box.systemctl("is-active", "tablebox-printd.service").stdout.strip() == "active"
    after = box.rows()
    newest = max(int(p.name[:4]) for p in (REPO / "appliance/db/migrations").glob("*.sql"))
    assert after[0] == before[0] and after[1][-1] == newest  # the tables kept, the store migrated to this release
    backups = list((box.data / "backups/updates").glob("store-*.db"))
    assert len(backups) == 1 and (box.prefix / "releases" / new / "backup-before").read_text().strip() == str(
        backups[0]
    )
    assert stat.S_IMODE(backups[0].stat().st_mode) == 0o600
    assert os.readlink(box.prefix / "previous") == f"releases/{old}"
    # A table added on the new release, then back to the old one.
    assert box.tablebox("tables", "add", "C3", "--area", "Hall").returncode == 0
    back = box.provision("rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert box.release() == old
    assert box.healthz() == 200
    if after[1] == before[1]:  # no migration between the two: the store is kept, with what was added since
        assert "store kept" in back.stdout and [n for n, _ in box.rows()[0]] == ["A1", "B2", "C3"]
    else:  # the old release cannot read the migrated store: the backup from before the update comes back
        assert f"store restored from {backups[0]}" in back.stdout
        assert box.rows() == before
        aside = list(box.data.glob("store.db.before-restore-*"))
        assert len(aside) == 1  # what was taken since the update is kept beside it, not deleted


def test_an_update_that_fails_its_health_check_is_undone(box: Box, wheelhouses: dict[str, Path]) -> None:
    old = install_previous(box, wheelhouses)
    before = box.rows()
    failed = box.provision("update", "--from", str(wheelhouses["broken"]))
    assert failed.returncode != 0
    assert "is not healthy" in failed.stdout and "store restored from" in failed.stdout, failed.stdout
    assert "the web server is not running" in failed.stdout  # said at once, not after the whole timeout
    assert "the update failed and was undone" in failed.stderr
    # Its web unit exited before READY=1, so `systemctl start` failed: the update went on to judge and undo it.
    assert f"systemctl could not start release {failed.stdout.split(' -> ')[1].split()[0]}" in failed.stdout
    assert box.release() == old
    assert box.rows() == before  # the broken release's migration 0999 is gone with it
    assert box.healthz() == 200
    assert box.systemctl("is-active", "tablebox-printd.service").stdout.strip() == "active"


def test_a_newer_schema_refuses_to_start(box: Box, wheelhouses: dict[str, Path]) -> None:
    done = box.provision("--wheelhouse", str(wheelhouses["current"]), "step", "venv")
    assert done.returncode == 0, done.stderr
    assert box.tablebox("init").returncode == 0
    db = sqlite3.connect(box.data / "store.db")
    with db:
        db.execute("INSERT INTO schema_migrations VALUES (9999, 'from_a_newer_release', '2026-12-04T00:00:00Z')")
    db.close()
    refused = box.tablebox("tables")
    assert refused.returncode == 2
    assert "updated by a newer Tablebox (its schema is 9999" in refused.stderr and "provision.sh" in refused.stderr
    version = box.tablebox("version")
    assert "NEWER than this release" in version.stdout


def test_two_updates_never_run_at_once(box: Box) -> None:
    box.prefix.mkdir(parents=True)
    holder = subprocess.Popen(["flock", str(box.prefix / ".update.lock"), "sleep", "30"], start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:  # until the holder has the lock
            probe = subprocess.run(["flock", "-n", str(box.prefix / ".update.lock"), "true"], check=False)
            if probe.returncode != 0:
                break
            time.sleep(0.05)
        refused = box.provision("rollback")
        assert refused.returncode != 0
        assert "another update or rollback is running" in refused.stderr
    finally:
        os.killpg(holder.pid, signal.SIGKILL)  # flock and the sleep that holds the lock with it
        holder.wait()
    free = box.provision("rollback")  # the lock is free again: it gets as far as "nothing to go back to"
    assert free.returncode != 0 and "no earlier release to go back to" in free.stderr


def test_an_update_of_a_box_from_before_releases(box: Box, wheelhouses: dict[str, Path]) -> None:
    """Boxes in the field have /opt/tablebox/venv as a plain virtualenv (provision.sh before releases pip-installed
    into it): the first update keeps it as releases/legacy-<date>/ and can go back to it."""
    previous = wheelhouses["previous"]
    venv = box.prefix / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin/python"), "-m", "pip", "install", "--quiet", "--no-index", "--no-deps"]
    subprocess.run(
        [*pip, "--find-links", str(previous), "-r", str(previous / "requirements.lock")], check=True, env=box.env
    )
    wheel = json.loads((previous / "wheelhouse.json").read_text())["wheel"]
    subprocess.run([*pip, str(previous / wheel)], check=True, env=box.env, timeout=300)
    assert box.tablebox("init", "--store-name", "Dumpling House").returncode == 0
    assert box.tablebox("tables", "add", "A1").returncode == 0
    assert box.systemctl("start", "tablebox-web.service", "tablebox-printd.service").returncode == 0
    assert box.healthz() == 200
    updated = box.provision("update", "--from", str(wheelhouses["current"]))
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "update: legacy ->" in updated.stdout
    assert venv.is_symlink() and box.healthz() == 200
    legacy = Path(os.readlink(box.prefix / "previous")).name
    assert legacy.startswith("legacy-") and (box.prefix / "releases" / legacy / "venv/bin/tablebox").exists()
    back = box.provision("rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert box.release() == legacy and box.healthz() == 200
    assert [name for name, _ in box.rows()[0]] == ["A1"]
