"""The box's architecture, here (issue 14): a Debian arm64 root run under qemu-user, provisioned from an aarch64
wheelhouse with no package index reachable, then the installed units' own commands run inside it (the web server
and the print worker, as the `tablebox` user, with the units' environment, umask and notification socket) and a
real order taken over HTTP, its kitchen ticket arriving at a virtual ESC/POS printer on 127.0.0.1.

systemd cannot run that root here (no systemd on the host, cgroup v1: systemd-nspawn fails), so `UnitRunner`
does what systemd would do with the unit files provision.sh installed into the root's /etc/systemd/system:
ExecStartPre=, then ExecStart= as User=/Group=/SupplementaryGroups=, with Environment=, UMask=, StateDirectory=
($STATE_DIRECTORY), $NOTIFY_SOCKET and $WATCHDOG_USEC (sd_notify(3), systemd.exec(5), systemd.service(5));
"stop" is SIGTERM and SuccessExitStatus=SIGTERM. The chroot shares the host's network, as a box shares its LAN
with the printers; the port is moved off 8080 the way a drop-in would (TABLEBOX_PORT), so runs never collide.

Bookworm (Python 3.11, Raspberry Pi OS Bookworm's) and Trixie (3.13). The roots are built once and cached
(tests/provision/arm64root.py); skipped only where this machine cannot run aarch64 programs (not root, no qemu,
no binfmt_misc). Each phase is timed and printed (pytest -s shows it).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.edge import free_port
from tests.printers.test_worker import TICKET_END, tickets
from tests.provision import arm64root

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PROVISION = REPO / "provision" / "provision.sh"
WHEELHOUSE = REPO / "provision" / "wheelhouse.sh"
ELF_MACHINE_AARCH64 = 183  # e_machine of an ELF file built for arm64 (EM_AARCH64)
DATA = "/var/lib/tablebox"


class Phases:
    """Wall-clock seconds of each phase, in order."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._started = time.monotonic()

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            yield
        finally:
            self.seconds[name] = time.monotonic() - started

    def report(self, title: str) -> str:
        lines = [f"{title}: {time.monotonic() - self._started:.1f} s in all"]
        lines += [f"  {name:<62} {secs:6.1f} s" for name, secs in self.seconds.items()]
        return "\n".join(lines)


def root_or_skip(suite: str, dest: Path) -> Path:
    try:
        arm64root.enable_binfmt()
    except arm64root.Unavailable as why:
        pytest.skip(f"this machine cannot run aarch64 programs: {why}")
    root: Path = arm64root.unpack(suite, dest)
    return root


def make_wheelhouse(python: str, out: Path) -> dict[str, str]:
    """provision/wheelhouse.sh on "the technician's laptop" (this machine, with the package index). The wheels
    already downloaded for this lock are copied in first (wheelhouse.sh keeps them), so a re-run downloads nothing."""
    lock_sha = arm64root.sha256_of(REPO / "provision" / "requirements.lock")
    cache = arm64root.CACHE / f"wheels-cp{python.replace('.', '')}-aarch64-{lock_sha[:16]}"
    out.mkdir(parents=True)
    if cache.is_dir():
        subprocess.run(["cp", "-a", f"{cache}/.", str(out)], check=True)
    done = subprocess.run(
        ["bash", str(WHEELHOUSE), "--python", python, "--arch", "aarch64", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    if not cache.is_dir():  # every wheel but Tablebox's own, which changes with the source
        partial = cache.with_suffix(".partial")
        subprocess.run(["rm", "-rf", str(partial)], check=True)
        partial.mkdir(parents=True)
        for wheel in out.glob("*.whl"):
            if not wheel.name.startswith("tablebox-"):
                subprocess.run(["cp", "-a", str(wheel), str(partial)], check=True)
        try:
            partial.rename(cache)
        except OSError:  # another run cached it first
            subprocess.run(["rm", "-rf", str(partial)], check=True)
    info: dict[str, str] = json.loads((out / "wheelhouse.json").read_text())
    return info


def offline_env() -> dict[str, str]:
    """provision.sh's environment: no pip settings of this machine, and an index that refuses every connection (a
    port nothing listens on), so any download attempt fails instead of quietly using the network."""
    closed = free_port()
    return {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root",
        "LANG": "C.UTF-8",
        "PIP_INDEX_URL": f"http://127.0.0.1:{closed}/simple",
        "PIP_DEFAULT_TIMEOUT": "5",
        "PIP_RETRIES": "0",
        **arm64root.QEMU_ENV,
    }


def elf_machine(path: Path) -> int:
    with path.open("rb") as f:
        head = f.read(20)
    assert head[:4] == b"\x7fELF", path
    return int.from_bytes(head[18:20], "little")


def directory_bytes(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_symlink() and p.is_file())


class UnitRunner:
    """One unit of the root, run the way systemd would run it (see the module docstring)."""

    def __init__(self, root: Path, name: str, extra_env: dict[str, str], log: Path) -> None:
        self.root = root
        self.name = name
        self.service = parse_service(root / "etc/systemd/system" / name)
        self.extra_env = extra_env
        self.log_path = log
        self.messages: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None
        folder = root / "run/notify"  # an AF_UNIX path holds at most 107 bytes: the root lives in a short path
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
        self.socket_path = folder / f"{name}.sock"
        self.socket_path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.socket_path))
        self.socket_path.chmod(0o777)  # the service's user sends to it
        self.sock.settimeout(0.2)
        self._listening = True
        self._listener = threading.Thread(target=self._listen, daemon=True)
        self._listener.start()

    def _listen(self) -> None:
        while self._listening:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except TimeoutError:
                continue
            except OSError:
                return

    def one(self, key: str) -> str:
        values = self.service.get(key, [])
        assert len(values) == 1, f"{self.name}: {key}= {values}"
        return values[0]

    def environment(self) -> dict[str, str]:
        env = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8"}
        env.update(arm64root.QEMU_ENV)  # not systemd's: qemu's, for every aarch64 program the unit execs
        user = self.one("User")
        env.update({"USER": user, "LOGNAME": user, "HOME": home_of(self.root, user)})
        for line in self.service.get("Environment", []):
            for pair in shlex.split(line):
                key, value = pair.split("=", 1)
                env[key] = value
        for folder in self.service.get("StateDirectory", []):
            env["STATE_DIRECTORY"] = f"/var/lib/{folder}"
        env["NOTIFY_SOCKET"] = "/" + str(self.socket_path.relative_to(self.root))
        if watchdog := self.service.get("WatchdogSec"):
            env["WATCHDOG_USEC"] = str(int(float(watchdog[0].rstrip("s")) * 1_000_000))
        env.update(self.extra_env)
        return env

    def command(self, line: str) -> list[str]:
        user, group = self.one("User"), self.one("Group")
        groups = " ".join(self.service.get("SupplementaryGroups", [])).split()
        env = [f"{k}={v}" for k, v in self.environment().items()]
        spec = [f"--userspec={user}:{group}"] + ([f"--groups={','.join(groups)}"] if groups else [])
        return ["chroot", *spec, str(self.root), "/usr/bin/env", "-i", *env, *shlex.split(line.lstrip("-+!@:"))]

    def _umask(self) -> None:
        os.umask(int(self.service.get("UMask", ["0022"])[0], 8))

    def state_directories(self) -> None:
        """StateDirectory=: made (and handed to the unit's user, StateDirectoryMode=) before the unit starts."""
        uid, gid = ids_of(self.root, self.one("User"))
        mode = int(self.service.get("StateDirectoryMode", ["0755"])[0], 8)
        for folder in self.service.get("StateDirectory", []):
            path = self.root / "var/lib" / folder
            path.mkdir(parents=True, exist_ok=True)
            os.chown(path, uid, gid)
            path.chmod(mode)

    def start(self) -> None:
        self.state_directories()
        with self.log_path.open("ab") as log:
            for line in self.service.get("ExecStartPre", []):
                pre = subprocess.run(
                    self.command(line), stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._umask, timeout=300
                )
                assert pre.returncode == 0, f"{self.name} ExecStartPre={line}: {self.log_text()[-3000:]}"
            self.proc = subprocess.Popen(
                self.command(self.one("ExecStart")), stdout=log, stderr=subprocess.STDOUT, preexec_fn=self._umask
            )

    def wait_ready(self, timeout: float = 240) -> None:
        """Type=notify: until the service says READY=1 (or it exits, or the time runs out)."""
        deadline = time.monotonic() + timeout
        while not any("READY=1" in m.splitlines() for m in self.messages):
            assert self.proc is not None and self.proc.poll() is None, f"{self.name} exited: {self.log_text()[-3000:]}"
            assert time.monotonic() < deadline, f"{self.name}: no READY=1 in {timeout} s: {self.log_text()[-3000:]}"
            time.sleep(0.1)

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM, then SIGKILL after TimeoutStopSec; the exit status (negative: the signal that ended it)."""
        code = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.send_signal(signal.SIGTERM)
            try:
                code = self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._listening = False
        self._listener.join(2)
        self.sock.close()
        self.socket_path.unlink(missing_ok=True)
        return code

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def parse_service(unit: Path) -> dict[str, list[str]]:
    """The [Service] section of a unit file: every key with its values in order (keys repeat in unit files)."""
    section, out = "", dict[str, list[str]]()
    for raw in unit.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


def passwd_entry(root: Path, user: str) -> list[str]:
    for line in (root / "etc/passwd").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == user:
            return fields
    raise AssertionError(f"no user {user} in {root}/etc/passwd")


def ids_of(root: Path, user: str) -> tuple[int, int]:
    fields = passwd_entry(root, user)
    return int(fields[2]), int(fields[3])


def home_of(root: Path, user: str) -> str:
    return passwd_entry(root, user)[5]


def as_tablebox(root: Path, *args: str, timeout: float = 300) -> str:
    """A technician's `sudo -u tablebox /opt/tablebox/venv/bin/tablebox ...` on the box."""
    done = subprocess.run(
        [
            "chroot",
            "--userspec=tablebox:tablebox",
            str(root),
            "/usr/bin/env",
            "-i",
            "PATH=/usr/bin:/bin",
            "LANG=C.UTF-8",
            *(f"{k}={v}" for k, v in arm64root.QEMU_ENV.items()),
            f"HOME={home_of(root, 'tablebox')}",
            "/opt/tablebox/venv/bin/tablebox",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, f"tablebox {' '.join(args)}: {done.stdout}{done.stderr}"
    return done.stdout


def menu_file(root: Path) -> str:
    """The demo restaurant's menu (one table), written into the root where the box's user can read it."""
    from appliance.demo import demo_data

    menu = demo_data()
    menu["tables"] = menu["tables"][:1]
    path = root / "var/tmp/menu.json"
    path.write_text(json.dumps(menu, ensure_ascii=False), "utf-8")
    path.chmod(0o644)
    return "/var/tmp/menu.json"


@pytest.fixture
def short_folder() -> Iterator[Path]:
    """A folder with a short path (the notification sockets live under it), removed afterwards (no mounts in it)."""
    folder = Path(tempfile.mkdtemp(prefix="tb-arm64-", dir="/var/tmp"))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize(("suite", "python"), [("bookworm", "3.11"), ("trixie", "3.13")])
def test_an_arm64_box_provisioned_offline_takes_an_order_and_prints_it(
    suite: str, python: str, tmp_path: Path, short_folder: Path
) -> None:
    from printers.virtual import VirtualPrinter

    phases = Phases()
    with phases(f"root: the cached {suite} arm64 root unpacked (built when missing)"):
        root = root_or_skip(suite, short_folder / "root")
    with phases("wheelhouse: provision/wheelhouse.sh (aarch64)"):
        wheelhouse = make_wheelhouse(python, tmp_path / "wheels")
    assert (wheelhouse["python"], wheelhouse["arch"]) == (python, "aarch64")

    with phases("provision.sh --root --wheelhouse (no index; pip under qemu)"):
        done = subprocess.run(
            [
                *("bash", str(PROVISION), "--root", str(root), "--unattended"),
                *("--wheelhouse", str(tmp_path / "wheels"), "--store-name", "Arm Box", "--hostname", "armbox"),
            ],
            capture_output=True,
            text=True,
            timeout=1200,
            env=offline_env(),
        )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    venv = (root / "opt/tablebox/venv").resolve()
    assert venv.parent.parent == root / "opt/tablebox/releases"
    version_lines = (venv / "pyvenv.cfg").read_text()
    assert f"version = {python}." in version_lines  # the image's Python made the venv, not this machine's
    modules = [p for p in venv.rglob("*.so*") if p.is_file() and not p.is_symlink()]
    assert len(modules) >= 5  # apsw, msgspec, uvloop, httptools, ... (compiled dependencies)
    assert {p.name: elf_machine(p) for p in modules if elf_machine(p) != ELF_MACHINE_AARCH64} == {}
    assert not (root / DATA.lstrip("/") / "store.db").exists()  # made at the box's first start, never in an image
    assert not (root / DATA.lstrip("/") / "store.secret").exists()
    venv_mb = directory_bytes(venv) / 1e6

    port = free_port()
    drop_in = {"TABLEBOX_HOST": "127.0.0.1", "TABLEBOX_PORT": str(port)}
    web = UnitRunner(root, "tablebox-web.service", drop_in, tmp_path / "web.log")
    printd = UnitRunner(root, "tablebox-printd.service", {}, tmp_path / "printd.log")
    base = f"http://127.0.0.1:{port}"
    try:
        with phases("first start: ExecStartPre=init --if-missing, serve READY=1"):
            web.start()
            web.wait_ready()
        assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
        secret = root / DATA.lstrip("/") / "store.secret"
        assert secret.stat().st_mode & 0o777 == 0o600 and secret.stat().st_uid == ids_of(root, "tablebox")[0]
        assert (root / DATA.lstrip("/") / "store.db").stat().st_mode & 0o077 == 0  # UMask=0077

        with VirtualPrinter("kitchen") as kitchen:
            with phases("technician: menu import, printers add, version"):
                data = ["--data-dir", DATA]
                assert "imported" in as_tablebox(root, "menu", "import", menu_file(root), *data)
                as_tablebox(root, "printers", "add", "kitchen", kitchen.uri, "--stations", "kitchen", *data)
                shown = as_tablebox(root, "version", *data)
            assert f"python:    {python}." in shown and "on aarch64" in shown, shown
            with phases("print worker READY=1"):
                printd.start()
                printd.wait_ready()

            with phases("an order over HTTP until its ticket is printed"):
                name, url = as_tablebox(root, "tables", *data).split()
                token = url.rsplit("/", 1)[1]
                try:
                    menu = httpx.get(f"{base}/api/v1/tables/{token}/menu?lang=en", timeout=30).json()
                except httpx.ConnectError as exc:  # say why: the web unit's state and its log (once seen in CI)
                    code = web.proc.poll() if web.proc else "never started"
                    raise AssertionError(
                        f"web refused ({exc}); its exit code: {code}; {web.log_text()[-3000:]}"
                    ) from exc
                har_gow = next(
                    item["id"]
                    for category in menu["categories"]
                    for item in category["items"]
                    if item["name"].startswith("Crystal shrimp")
                )
                order = httpx.post(
                    f"{base}/api/v1/tables/{token}/orders",
                    json={"client_key": f"arm64-{suite}-order-0001", "lines": [{"item_id": har_gow, "quantity": 2}]},
                    timeout=30,
                )
                assert order.status_code == 201, order.text
                assert kitchen.wait_for(lambda b: TICKET_END in b, timeout=120), printd.log_text()[-3000:]
            printed = tickets(kitchen.received)
        assert name == "A1"
        assert len(printed) == 1
        assert any("水晶虾饺" in row for row in printed[0]), printed
        assert any(f"#{order.json()['ticket_no']}" in row for row in printed[0]), (order.json(), printed)

        with phases("stop: SIGTERM to both"):
            printd_code, web_code = printd.stop(), web.stop()
        assert printd_code == 0, printd.log_text()[-2000:]
        assert web_code in (0, -signal.SIGTERM), web.log_text()[-2000:]  # SuccessExitStatus=SIGTERM
    finally:
        printd.stop(5)
        web.stop(5)
    print(
        "\n"
        + phases.report(f"arm64 {suite} (Python {python})")
        + f"\n  venv: {venv_mb:.0f} MB; wheelhouse: {len(list((tmp_path / 'wheels').glob('*.whl')))} wheels",
        flush=True,
    )
