"""A stand-in for systemctl that runs the real Tablebox processes (no systemd on the test machines).

provision.sh calls `$SYSTEMCTL start|stop|is-active UNIT...`. Here tablebox-web.service runs what the unit runs
(`tablebox init --if-missing`, its failure ignored, then `tablebox serve`) and tablebox-printd.service runs `tablebox printd`, from the
release the /opt/tablebox/venv symlink names at start, as real processes with pid files in $FAKE_SYSTEMD_STATE.
Both units are Type=notify: as systemd does, `start` hands the process a $NOTIFY_SOCKET and returns only once it
says READY=1, or fails (exit 1, "Job for ... failed") when it exits first or stays silent past the start timeout,
so provision.sh meets a release that cannot start the way it would on a box (systemd.service(5), Type=notify).
Other units are accepted and stay inactive. `stop` sends SIGTERM and waits, as systemd does (then SIGKILL).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STATE = Path(os.environ["FAKE_SYSTEMD_STATE"])
PREFIX = Path(os.environ["TABLEBOX_PREFIX"])
BOX = ["--data-dir", os.environ["TABLEBOX_DATA"], "--config", os.environ["TABLEBOX_ETC"] + "/tablebox.toml"]
COMMANDS = {"tablebox-web.service": ["serve"], "tablebox-printd.service": ["printd"]}
START_TIMEOUT = float(os.environ.get("FAKE_SYSTEMD_START_TIMEOUT", "60"))  # TimeoutStartSec=, shortened


def pid_of(unit: str) -> int | None:
    try:
        pid = int((STATE / f"{unit}.pid").read_text())
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, ValueError, IndexError):
        return None
    return None if state in {"Z", "X"} else pid


def start(unit: str) -> int:
    if unit not in COMMANDS or pid_of(unit) is not None:
        return 0
    tablebox = str(PREFIX / "venv/bin/tablebox")
    log = open(STATE / f"{unit}.log", "ab")  # noqa: SIM115 - handed to the child
    if unit == "tablebox-web.service":
        # ExecStartPre=-...: its failure is ignored (a release from before --if-missing), as systemd does.
        subprocess.run([tablebox, *BOX, "init", "--if-missing"], stdout=log, stderr=log, check=False)
    folder = tempfile.mkdtemp(prefix="fake-sd-")  # short: an AF_UNIX path holds at most 107 bytes
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        notify.bind(f"{folder}/notify")
        notify.settimeout(0.2)
        child = subprocess.Popen(
            [tablebox, *BOX, *COMMANDS[unit]],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, "NOTIFY_SOCKET": f"{folder}/notify"},
        )
        (STATE / f"{unit}.pid").write_text(str(child.pid))
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                said = notify.recv(4096).decode("utf-8", "replace").splitlines()
            except TimeoutError:
                said = []
            if "READY=1" in said:
                return 0
            if child.poll() is not None:
                print(f"Job for {unit} failed: the process exited with {child.returncode}.", file=sys.stderr)
                return 1
            if time.monotonic() > deadline:
                stop(unit)
                print(f"Job for {unit} failed: start timed out.", file=sys.stderr)
                return 1
    finally:
        notify.close()
        shutil.rmtree(folder, ignore_errors=True)


def stop(unit: str) -> None:
    pid = pid_of(unit)
    if pid is None:
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while pid_of(unit) is not None and time.monotonic() < deadline:
        time.sleep(0.1)
    if pid_of(unit) is not None:
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    (STATE / f"{unit}.pid").unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    STATE.mkdir(parents=True, exist_ok=True)
    verb, units = argv[0], argv[1:]
    with open(STATE / "calls.log", "a") as calls:
        calls.write(" ".join(argv) + "\n")
    if verb == "start":
        return max((start(u) for u in units), default=0)
    if verb == "stop":
        for unit in units:
            stop(unit)
        return 0
    if verb == "is-active":
        states = ["active" if pid_of(u) is not None else "inactive" for u in units]
        print("\n".join(states))
        return 0 if all(s == "active" for s in states) else 3
    print(f"fake systemctl: {verb} is not supported", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
