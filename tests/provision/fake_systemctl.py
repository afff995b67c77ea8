"""A stand-in for systemctl that runs the real Tablebox processes (no systemd on the test machines).

provision.sh calls `$SYSTEMCTL start|stop|is-active UNIT...`. Here tablebox-web.service runs what the unit runs
(`tablebox init --if-missing`, its failure ignored, then `tablebox serve`) and tablebox-printd.service runs `tablebox printd`, from the
release the /opt/tablebox/venv symlink names at start, as real processes with pid files in $FAKE_SYSTEMD_STATE.
Other units are accepted and stay inactive. `stop` sends SIGTERM and waits, as systemd does (then SIGKILL).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

STATE = Path(os.environ["FAKE_SYSTEMD_STATE"])
PREFIX = Path(os.environ["TABLEBOX_PREFIX"])
BOX = ["--data-dir", os.environ["TABLEBOX_DATA"], "--config", os.environ["TABLEBOX_ETC"] + "/tablebox.toml"]
COMMANDS = {"tablebox-web.service": ["serve"], "tablebox-printd.service": ["printd"]}


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
    child = subprocess.Popen(
        [tablebox, *BOX, *COMMANDS[unit]], stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True
    )
    (STATE / f"{unit}.pid").write_text(str(child.pid))
    return 0


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
