"""The systemd units in systemd/ are valid, hardened, and the processes really run inside what they allow.
If these failed, a box would come up with a unit systemd ignores lines of (a misspelt setting is only a
warning), a service running with far more rights than it needs, or a service the sandbox kills on its first
order (a system call or address family the unit forbids).

How the units are checked here, where /opt/tablebox does not exist and systemd does not run the services:
- `systemd-analyze verify --man=no` on copies of the unit files in a temporary folder, with the ExecStart=
  programs rewritten to real executables (this repository's virtualenv `tablebox` for
  /opt/tablebox/venv/bin/tablebox; fbterm if installed, else /bin/true): verify refuses a unit whose
  program does not exist. Its exit code is 0 even for a setting it could not parse ("..., ignoring"), so the
  test also requires it to print nothing. (`verify --root=DIR` was not used: it resolves every dependency,
  down to sysinit.target, and every program inside DIR, which would need a whole OS tree; the default
  `--recursive-errors=yes` still loads the units ours refer to, like getty@tty1.service.)
- `systemd-analyze security --offline=yes` on the same copies: each service's exposure must be <= 3.5.
- tests/sandbox.py puts the real processes under each unit's SystemCallFilter=, MemoryDenyWriteExecute=,
  RestrictAddressFamilies=, UMask= and LimitNOFILE=, built as systemd builds them with the same libseccomp; the web
  server takes an order (and keeps its connections below the unit's file limit), the print worker prints, the
  console draws its PIN screen, the backup makes a backup.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import resource
import select
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import httpx
import pytest

from appliance.cli import build_parser
from appliance.db.connection import open_connection, write_transaction
from appliance.demo import ensure_demo_store
from tests import sandbox
from tests.appliance.test_crash import free_port
from tests.appliance.test_sdnotify import NotifySocket, is_ping, is_ready
from tests.appliance.web.conftest import item_id, key, token_for
from tests.conftest import make_settings
from tests.printers.test_worker import settle

REPO = Path(__file__).resolve().parents[1]
UNITS = REPO / "systemd"
SERVICES = sorted(p.name for p in UNITS.glob("*.service"))
TIMERS = sorted(p.name for p in UNITS.glob("*.timer"))
RELAY_UNIT = "relay/tablebox-relay.service"  # for the relay's own host; provisioning a box never installs it
INSTALLED_TABLEBOX = "/opt/tablebox/venv/bin/tablebox"
MAX_EXPOSURE = 3.5

pytestmark = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")


def read_unit(name: str) -> dict[str, dict[str, list[str]]]:
    """section -> key -> every value, in order (keys like DeviceAllow= repeat)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current: dict[str, list[str]] = {}
    for raw in (UNITS / name).read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            current = sections.setdefault(line.strip("[]"), {})
        else:
            k, v = line.split("=", 1)
            current.setdefault(k.strip(), []).append(v.strip())
    return sections


def hard_file_limit() -> int:
    """tests/sandbox.py cannot raise the file limit above this process's hard limit."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    return 1 << 30 if hard == resource.RLIM_INFINITY else hard


def tablebox_here() -> str:
    program = Path(sys.executable).parent / "tablebox"
    assert program.is_file() and os.access(program, os.X_OK), f"no tablebox command in {program.parent}"
    return str(program)


def staged(tmp_path: Path) -> list[Path]:
    """Copies of every unit with ExecStart= programs that exist on this machine."""
    folder = tmp_path / "units"
    folder.mkdir()
    fbterm = shutil.which("fbterm") or "/bin/true"
    out = []
    for name in SERVICES + TIMERS + [RELAY_UNIT]:
        text = (UNITS / name).read_text().replace(INSTALLED_TABLEBOX, tablebox_here())
        text = text.replace("ExecStart=/usr/bin/fbterm -- ", f"ExecStart={fbterm} -- ")
        (folder / Path(name).name).write_text(text)
        out.append(folder / Path(name).name)
    return out


def verify(paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", *map(str, paths)], capture_output=True, text=True, timeout=120
    )


def exposure(path: Path) -> float:
    out = subprocess.run(
        ["systemd-analyze", "security", "--offline=yes", "--no-pager", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    found = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", out.stdout)
    assert found, f"no exposure level for {path.name}: {out.stdout[-500:]} {out.stderr[-500:]}"
    return float(found.group(1))


def test_the_expected_units_are_there():
    assert SERVICES == [
        "tablebox-backup.service",
        "tablebox-console.service",
        "tablebox-printd.service",
        "tablebox-prune.service",
        "tablebox-syncd.service",
        "tablebox-web.service",
    ]
    assert TIMERS == ["tablebox-backup.timer", "tablebox-prune.timer"]
    assert sorted(p.relative_to(UNITS).as_posix() for p in UNITS.glob("*/*")) == [RELAY_UNIT]


def test_every_unit_passes_systemd_analyze_verify(tmp_path):
    result = verify(staged(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert (result.stdout + result.stderr).strip() == "", result.stdout + result.stderr


def test_verify_only_warns_about_a_misspelt_setting_so_its_output_is_read(tmp_path):
    (web,) = [p for p in staged(tmp_path) if p.name == "tablebox-web.service"]
    web.write_text(web.read_text().replace("ProtectSystem=strict", "ProtectSystem=stricter"))
    result = verify([web])
    assert result.returncode == 0
    assert "Failed to parse protect system value, ignoring: stricter" in result.stderr


def test_every_service_is_exposed_at_most_3_5_out_of_10(tmp_path, capsys):
    scores = {path.name: exposure(path) for path in staged(tmp_path) if path.suffix == ".service"}
    with capsys.disabled():
        print("\nsystemd-analyze security --offline=yes (exposure, 0 = locked down, 10 = unprotected):")
        for name, score in scores.items():
            print(f"  {name:<28} {score:.1f}")
    assert set(scores) == set(SERVICES) | {Path(RELAY_UNIT).name}
    too_exposed = {name: score for name, score in scores.items() if score > MAX_EXPOSURE}
    assert too_exposed == {}


def test_every_service_runs_as_the_tablebox_user_inside_the_same_walls():
    for name in SERVICES:
        service = read_unit(name)["Service"]
        one = {k: v[-1] for k, v in service.items()}
        assert (one["User"], one["Group"], one["StateDirectory"]) == ("tablebox", "tablebox", "tablebox"), name
        assert "DynamicUser" not in one, name  # udev rules hand printers to a fixed user's groups
        assert (one["ProtectSystem"], one["ProtectHome"], one["PrivateTmp"], one["NoNewPrivileges"]) == (
            "strict",
            "yes",
            "yes",
            "yes",
        ), name
        # The console's fbterm alone needs one capability for its keymap (test_the_console_... below).
        capabilities = "CAP_SYS_TTY_CONFIG" if name == "tablebox-console.service" else ""
        assert (one["CapabilityBoundingSet"], one["UMask"], one["SystemCallArchitectures"]) == (
            capabilities,
            "0077",
            "native",
        ), name
        assert service["SystemCallFilter"][0] == "@system-service", name
        assert one["MemoryDenyWriteExecute"] == "yes", name


def test_the_long_running_services_are_watched_and_restarted():
    for name in ("tablebox-web.service", "tablebox-printd.service", "tablebox-syncd.service", RELAY_UNIT):
        unit = read_unit(name)
        service = {k: v[-1] for k, v in unit["Service"].items()}
        assert (service["Type"], service["NotifyAccess"], service["Restart"]) == ("notify", "main", "on-failure"), name
        assert service["WatchdogSec"].endswith("s") and int(service["WatchdogSec"][:-1]) >= 10, name
        assert "SIGTERM" in service["SuccessExitStatus"].split(), name
        assert {"StartLimitIntervalSec", "StartLimitBurst"} <= set(unit["Unit"]), name
        assert unit["Install"]["WantedBy"] == ["multi-user.target"], name


def test_no_unit_restarts_a_start_refused_as_configured():
    """`tablebox` exits 2 for an expected failure (bad settings, no store, a bad secret, a damaged database:
    appliance.errors); restarting cannot fix any of them, so no unit retries it."""
    for name in [*SERVICES, RELAY_UNIT]:
        values = read_unit(name)["Service"].get("RestartPreventExitStatus", [])
        assert any("2" in value.split() for value in values), f"{name} has no RestartPreventExitStatus=2"


def memory_bytes(value: str) -> int:
    """MemoryMax=384M -> bytes (systemd's K, M, G, T are powers of 1024)."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
    return int(value[:-1]) * units[value[-1]] if value[-1] in units else int(value)


def test_every_unit_caps_its_open_files_and_its_memory():
    """Issue #13: no unit runs with systemd's default file limit and no memory ceiling."""
    for name in [*SERVICES, RELAY_UNIT]:
        service = read_unit(name)["Service"]
        assert set(service) >= {"LimitNOFILE", "MemoryMax"}, name
        nofile = service["LimitNOFILE"][-1]
        assert nofile.isdigit() and int(nofile) >= 1024, name  # one number: the soft limit the process reads
        assert memory_bytes(service["MemoryMax"][-1]) >= 128 << 20, name


def test_the_servers_connection_cap_fits_under_their_units_file_and_memory_limits():
    """What `tablebox serve` and `tablebox relay serve` work out from the unit's LimitNOFILE= (appliance/serving.py)
    leaves RESERVED_FDS for the database and logs, and every connection holding a full head fits in MemoryMax=."""
    from appliance import serving
    from appliance.settings import BoxSettings
    from sync.relay.settings import RelaySettings

    defaults = {
        "tablebox-web.service": serving.Limits.from_settings(BoxSettings(data_dir=Path("/var/lib/tablebox"))),
        RELAY_UNIT: serving.Limits.from_settings(RelaySettings()),
    }
    caps = {}
    for name, limits in defaults.items():
        service = read_unit(name)["Service"]
        nofile, memory = int(service["LimitNOFILE"][-1]), memory_bytes(service["MemoryMax"][-1])
        cap = serving.connection_cap(limits, nofile)
        assert cap + serving.RESERVED_FDS == nofile, name
        assert serving.memory_needed(limits, cap) <= memory, (name, serving.memory_needed(limits, cap) >> 20)
        caps[name] = cap
    assert caps == {"tablebox-web.service": 1920, RELAY_UNIT: 32640}


def test_the_print_worker_reaches_printers_only():
    service = read_unit("tablebox-printd.service")["Service"]
    assert service["SupplementaryGroups"] == ["lp dialout"]
    assert service["DevicePolicy"] == ["closed"]
    assert sorted(service["DeviceAllow"]) == ["char-ttyACM rw", "char-ttyUSB rw", "char-usb rw", "char-usb_device rw"]
    assert service["RestrictAddressFamilies"] == ["AF_UNIX AF_INET AF_INET6 AF_NETLINK"]
    assert "PrivateUsers" not in service and "PrivateDevices" not in service


def test_the_console_takes_tty1_from_the_login_prompt_inside_fbterm():
    unit = read_unit("tablebox-console.service")
    service = {k: v[-1] for k, v in unit["Service"].items()}
    assert "getty@tty1.service" in unit["Unit"]["Conflicts"]
    assert unit["Unit"]["OnFailure"] == ["getty@tty1.service"]
    assert (service["TTYPath"], service["StandardInput"], service["Restart"]) == ("/dev/tty1", "tty-force", "always")
    assert service["ExecStart"] == f"/usr/bin/fbterm -- {INSTALLED_TABLEBOX} console"
    assert service["SupplementaryGroups"] == "video"


def test_the_console_runs_only_with_a_framebuffer_and_gives_fbterm_its_keymap_capability_and_a_home_of_its_own():
    """fbterm needs /dev/fb0 (a box without a screen skips the unit instead of failing ten times), CAP_SYS_TTY_CONFIG
    for KDSKBENT (Linux drivers/tty/vt/keyboard.c vt_do_kdsk_ioctl: without it, no shortcuts), given as an ambient
    capability because NoNewPrivileges= makes `setcap` on the binary useless, and a HOME outside the data folder
    for the ~/.fbtermrc it writes. fbterm forces TERM=linux on its child and reads SGR 38 as underline, so Textual
    must stay on 16 colours."""
    unit = read_unit("tablebox-console.service")
    service = {k: v[-1] for k, v in unit["Service"].items()}
    assert unit["Unit"]["ConditionPathExists"] == ["/dev/tty1", "/dev/fb0"]
    assert (service["CapabilityBoundingSet"], service["AmbientCapabilities"], service["NoNewPrivileges"]) == (
        "CAP_SYS_TTY_CONFIG",
        "CAP_SYS_TTY_CONFIG",
        "yes",
    )
    environment = dict(pair.split("=", 1) for line in unit["Service"]["Environment"] for pair in line.split())
    assert environment["HOME"] == "%t/tablebox-console" and service["RuntimeDirectory"] == "tablebox-console"
    assert service["RuntimeDirectoryMode"] == "0700"
    assert environment["TEXTUAL_COLOR_SYSTEM"] == "standard"
    # Textual reads it (even where COLORTERM says truecolor), and its console then writes no SGR 38/48 at all.
    probe = (
        "import io, rich.console, textual.constants as c; out = io.StringIO();"
        "con = rich.console.Console(file=out, force_terminal=True, color_system=c.COLOR_SYSTEM);"
        "con.print('[#ff8800 on #123456]hi[/] [bold red]x[/]'); print(c.COLOR_SYSTEM, repr(out.getvalue()))"
    )
    env = {**os.environ, "COLORTERM": "truecolor", "TERM": "xterm-256color", "TEXTUAL_COLOR_SYSTEM": "standard"}
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=60)
    system, written = done.stdout.split(" ", 1)
    assert system == "standard", done.stderr
    codes = {int(code) for sgr in re.findall(r"\\x1b\[([0-9;]*)m", written) for code in sgr.split(";") if code}
    assert codes and not codes & {38, 48}  # fbterm would draw 38 as underline (cyan)


def test_the_console_with_its_capability_stays_well_under_the_exposure_cap(tmp_path):
    (console,) = [p for p in staged(tmp_path) if p.name == "tablebox-console.service"]
    assert exposure(console) <= 1.5  # 1.3 before the capability, 1.4 with it (systemd 252)


def test_the_web_server_that_cannot_stay_up_reboots_the_box():
    unit = read_unit("tablebox-web.service")["Unit"]
    assert unit["StartLimitAction"] == ["reboot"]
    assert (unit["StartLimitBurst"], unit["StartLimitIntervalSec"]) == (["10"], ["10min"])


PRINTER_RULE = REPO / "provision/udev/99-tablebox-printers.rules"


def printer_group(device: dict[str, str]) -> str | None:
    """The GROUP the printer rules give a device (the last matching rule wins, as in udev)."""
    group = None
    for rule in udev_rules(PRINTER_RULE):
        if udev_matches(rule, device):
            assert rule["MODE"] == ("=", "0660")
            group = rule["GROUP"][1]
    return group


def test_the_printer_rule_matches_a_printer_interface_whatever_the_device_class():
    """Printers declare class 07 on the interface, with bDeviceClass 00; the usb_id builtin lists the interfaces in
    ID_USB_INTERFACES (":class subclass protocol:"), as systemd's 50-udev-default.rules and system-config-printer's
    70-printers.rules match them."""
    usb = {"SUBSYSTEM": "usb", "DEVTYPE": "usb_device", "ATTRS{bDeviceClass}": "00", "ATTRS{idVendor}": "1a86"}
    assert printer_group({**usb, "ID_USB_INTERFACES": ":070102:"}) == "lp"  # bidirectional printer
    assert printer_group({**usb, "ID_USB_INTERFACES": ":070101:"}) == "lp"  # unidirectional
    assert printer_group({**usb, "ID_USB_INTERFACES": ":080650:070102:"}) == "lp"  # a printer with a card reader
    assert printer_group({**usb, "ID_USB_INTERFACES": ":030101:"}) is None  # a keyboard
    assert printer_group({**usb, "ID_USB_INTERFACES": ":080650:"}) is None  # a USB stick
    assert printer_group({**usb, "ID_USB_INTERFACES": ":ff0000:"}) is None  # vendor-specific, unknown vendor
    # The node libusb opens is the usb_device's: the interface's own event is not matched.
    assert printer_group({**usb, "DEVTYPE": "usb_interface", "ID_USB_INTERFACES": ":070102:"}) is None
    # A known ESC/POS vendor still matches by vendor, even with a vendor-specific interface.
    assert printer_group({**usb, "ATTRS{idVendor}": "0416", "ID_USB_INTERFACES": ":ff0000:"}) == "lp"
    assert not any("bDeviceClass" in key for rule in udev_rules(PRINTER_RULE) for key in rule)


def test_the_backup_runs_daily_and_catches_up_after_a_night_switched_off():
    timer = read_unit("tablebox-backup.timer")
    assert timer["Timer"]["Persistent"] == ["true"]
    assert timer["Timer"]["RandomizedDelaySec"] and timer["Timer"]["OnCalendar"]
    assert timer["Install"]["WantedBy"] == ["timers.target"]
    calendar = subprocess.run(
        ["systemd-analyze", "calendar", timer["Timer"]["OnCalendar"][0]], capture_output=True, text=True, check=True
    ).stdout
    assert "Normalized form: *-*-* 04:00:00" in calendar
    assert read_unit("tablebox-backup.service")["Service"]["Type"] == ["oneshot"]


def test_the_prune_runs_nightly_after_the_backup_and_vacuums_on_the_data_disk():
    timer = read_unit("tablebox-prune.timer")
    assert (timer["Timer"]["Persistent"], timer["Install"]["WantedBy"]) == (["true"], ["timers.target"])
    calendar = subprocess.run(
        ["systemd-analyze", "calendar", timer["Timer"]["OnCalendar"][0]], capture_output=True, text=True, check=True
    ).stdout
    assert "Normalized form: *-*-* 04:45:00" in calendar  # after the backup's 04:00 + 30 min random delay
    unit = read_unit("tablebox-prune.service")
    assert "tablebox-backup.service" in unit["Unit"]["After"][0].split()
    service = {k: v[-1] for k, v in unit["Service"].items()}
    assert (service["Type"], service["ExecStart"]) == ("oneshot", f"{INSTALLED_TABLEBOX} prune")
    assert "SQLITE_TMPDIR=/var/lib/tablebox" in service["Environment"].split()  # not a RAM /tmp
    assert read_unit("tablebox-backup.service")["Service"]["ExecStart"] == [f"{INSTALLED_TABLEBOX} backup --automatic"]


USB_MOUNT = "media-tablebox.mount"
USB_RULE = REPO / "provision/udev/99-tablebox-usb.rules"


def test_the_backup_stick_is_mounted_for_the_tablebox_user(tmp_path):
    """systemd/media-tablebox.mount: systemd-analyze verify is silent on it, its name is the escaped mount point
    (`systemd-escape --path`), and FAT/exFAT have no owners, so uid=/gid= give the files to tablebox."""
    mount = read_unit(USB_MOUNT)["Mount"]
    one = {k: v[-1] for k, v in mount.items()}
    escaped = subprocess.run(
        ["systemd-escape", "--path", "--suffix=mount", one["Where"]], capture_output=True, text=True, check=True
    )
    assert escaped.stdout.strip() == USB_MOUNT
    assert one["What"] == "/dev/disk/by-label/TABLEBOX"
    options = one["Options"].split(",")
    assert {"uid=tablebox", "gid=tablebox", "fmask=0177", "dmask=0077", "nosuid", "nodev", "noexec"} <= set(options)
    assert "Install" not in read_unit(USB_MOUNT)  # started by udev, never waited for at boot
    from appliance.settings import BoxSettings

    assert BoxSettings(data_dir=tmp_path).backup_usb_dir == one["Where"]  # where backups are copied by default
    staged_mount = tmp_path / USB_MOUNT
    staged_mount.write_text((UNITS / USB_MOUNT).read_text())
    result = verify([staged_mount])
    assert (result.returncode, (result.stdout + result.stderr).strip()) == (0, "")


def udev_rules(path: Path) -> list[dict[str, tuple[str, str]]]:
    """Each rule line as key -> (operator, value), the way udev reads `KEY=="value", KEY+="value"`."""
    rules = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        pairs = re.findall(r'([A-Z_]+(?:\{[^}]+\})?)\s*(==|!=|\+=|:=|=)\s*"([^"]*)"', line)
        assert pairs, line
        rules.append({key: (op, value) for key, op, value in pairs})
    return rules


def udev_matches(rule: dict[str, tuple[str, str]], device: dict[str, str]) -> bool:
    import fnmatch

    for name, (op, value) in rule.items():
        if op not in ("==", "!="):
            continue
        have = device.get(name.removeprefix("ENV{").removesuffix("}") if name.startswith("ENV{") else name, "")
        hit = any(fnmatch.fnmatchcase(have, alt) for alt in value.split("|"))
        if hit != (op == "=="):
            return False
    return True


def test_the_usb_rule_mounts_only_a_fat_or_exfat_stick_labelled_tablebox():
    (rule,) = udev_rules(USB_RULE)
    assert rule["ENV{SYSTEMD_WANTS}"] == ("+=", USB_MOUNT)
    stick = {"ACTION": "add", "SUBSYSTEM": "block", "ID_FS_USAGE": "filesystem", "ID_FS_LABEL": "TABLEBOX"}
    assert udev_matches(rule, {**stick, "ID_FS_TYPE": "vfat"})
    assert udev_matches(rule, {**stick, "ID_FS_TYPE": "exfat"})
    assert not udev_matches(rule, {**stick, "ID_FS_TYPE": "ext4"})  # ext4 refuses uid=: not mounted at all
    assert not udev_matches(rule, {**stick, "ID_FS_TYPE": "vfat", "ID_FS_LABEL": "KINGSTON"})
    assert not udev_matches(rule, {**stick, "ID_FS_TYPE": "vfat", "ACTION": "remove"})


def test_every_unit_runs_a_command_tablebox_has():
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    for name in SERVICES:
        exec_start = read_unit(name)["Service"]["ExecStart"][-1]
        subcommand = exec_start.split(f"{INSTALLED_TABLEBOX} ", 1)[1].split()[0]
        if subcommand in commands:
            continue
        # the sync worker's unit is ready before its command (issue 7): it must say so and not be enabled
        assert (name, subcommand) == ("tablebox-syncd.service", "syncd")
        assert "NOT ENABLED" in (UNITS / name).read_text() and "issue 7" in (UNITS / name).read_text()


# --- the processes inside their units' seccomp rules ---------------------------------------------------------

needs_seccomp = pytest.mark.skipif(not sandbox.available(), reason="libseccomp is not installed")

WX_PROBE = """
import ctypes, os, socket
libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
address = libc.mmap(None, 4096, 7, 0x22, -1, 0)  # PROT_READ|WRITE|EXEC, MAP_PRIVATE|ANONYMOUS
print("wx", "refused" if address in (None, 2**64 - 1) else "allowed")
try:
    socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM).close()
    print("netlink allowed")
except OSError as exc:
    print("netlink refused", exc.errno)
try:
    os.setuid(os.getuid())
    print("setuid allowed")
except OSError as exc:
    print("setuid refused", exc.errno)
print("umask", oct(os.umask(0)))
"""


def sandboxed(unit: str, *command: str) -> list[str]:
    return [sys.executable, "-m", "tests.sandbox", str(UNITS / unit), "--", *command]


@needs_seccomp
def test_the_sandbox_enforces_what_the_units_say():
    def probe(unit: str) -> list[str]:
        return subprocess.run(
            sandboxed(unit, sys.executable, "-c", WX_PROBE),
            capture_output=True,
            text=True,
            check=True,
            cwd=REPO,
            timeout=60,
        ).stdout.splitlines()

    assert probe("tablebox-web.service") == ["wx refused", "netlink refused 97", "setuid refused 1", "umask 0o77"]
    # libusb needs netlink for its hotplug monitor: the print worker's unit allows it
    assert probe("tablebox-printd.service")[1] == "netlink allowed"
    unconfined = subprocess.run([sys.executable, "-c", WX_PROBE], capture_output=True, text=True, check=True).stdout
    assert unconfined.splitlines()[0] == "wx allowed"  # the refusal above is the sandbox's doing


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


@needs_seccomp
@pytest.mark.slow
def test_the_web_server_takes_an_order_inside_its_units_rules(tmp_path):
    settings = make_settings(tmp_path / "data")
    ensure_demo_store(settings)
    token = token_for(settings, "A1")
    conn = open_connection(settings.db_path)
    body = {"client_key": key(), "lines": [{"item_id": item_id(conn, "har_gow"), "quantity": 2}]}
    notify = NotifySocket()
    port = free_port()
    env = {**os.environ, "NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "1000000", "TABLEBOX_LOG_FORMAT": "json"}
    log = (tmp_path / "web.log").open("ab")
    proc = subprocess.Popen(
        sandboxed(
            "tablebox-web.service",
            sys.executable,
            "-m",
            "appliance",
            "serve",
            "--data-dir",
            str(settings.data_dir),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ),
        env=env,
        stdout=log,
        stderr=log,
        cwd=REPO,
    )
    try:
        notify.wait_for(is_ready)
        r = httpx.post(f"http://127.0.0.1:{port}/api/v1/tables/{token}/orders", json=body, timeout=10)
        assert r.status_code == 201, r.text
        assert r.json()["lines"][0]["quantity"] == 2
        notify.wait_for(is_ping)
    finally:
        stop(proc)
        log.close()
        notify.close()
    assert proc.returncode in (0, -signal.SIGTERM), (tmp_path / "web.log").read_text()[-2000:]
    assert conn.execute("SELECT count(*) FROM orders WHERE client_key = ?", (body["client_key"],)).fetchone()[0] == 1
    # the server read the unit's file limit and keeps its connections below it (appliance/serving.py)
    limits = [json.loads(line) for line in (tmp_path / "web.log").read_text().splitlines() if "http.limits" in line]
    nofile = min(int(read_unit("tablebox-web.service")["Service"]["LimitNOFILE"][-1]), hard_file_limit())
    assert [(e["file_limit"], e["max_connections"]) for e in limits] == [(nofile, nofile - 128)]
    conn.close()


@needs_seccomp
@pytest.mark.slow
def test_the_print_worker_prints_inside_its_units_rules(tmp_path):
    from appliance.db.printing import queue_test_page

    settings = make_settings(tmp_path / "data")
    ensure_demo_store(settings)
    conn = open_connection(settings.db_path)
    notify = NotifySocket()
    env = {**os.environ, "NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "1000000", "TABLEBOX_LOG_FORMAT": "json"}
    log = (tmp_path / "printd.log").open("ab")
    proc = subprocess.Popen(
        sandboxed(
            "tablebox-printd.service", sys.executable, "-m", "appliance", "printd", "--data-dir", str(settings.data_dir)
        ),
        env=env,
        stdout=log,
        stderr=log,
        cwd=REPO,
    )
    try:
        notify.wait_for(is_ready)
        with write_transaction(conn):
            queue_test_page(conn, "kitchen")
        assert settle(conn, {"printed": 1}, timeout=30), (tmp_path / "printd.log").read_text()[-2000:]
        notify.wait_for(is_ping)
    finally:
        stop(proc)
        log.close()
        notify.close()
    assert proc.returncode == 0, (tmp_path / "printd.log").read_text()[-2000:]
    conn.close()


@needs_seccomp
@pytest.mark.slow
def test_the_sync_worker_delivers_inside_its_units_rules(tmp_path):
    from litestar.testing import TestClient

    from appliance.web.app import create_app
    from tests.fakes.erp_rest import FakeRestERP
    from tests.sync.syncd import order_bodies, outbox_counts, seed_catalog, wait_until, write_settings

    settings = make_settings(tmp_path / "data")
    ensure_demo_store(settings)
    erp = FakeRestERP().start()
    notify = NotifySocket()
    log = (tmp_path / "syncd.log").open("ab")
    try:
        seed_catalog(settings.db_path, erp)
        config = write_settings(tmp_path / "tablebox.toml", {"erp": {**erp.target_config(), "pull_minutes": 1}})
        env = {**os.environ, "NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "1000000", "TABLEBOX_LOG_FORMAT": "json"}
        proc = subprocess.Popen(
            sandboxed(
                "tablebox-syncd.service",
                sys.executable,
                "-m",
                "appliance",
                "syncd",
                "--data-dir",
                str(settings.data_dir),
                "--config",
                str(config),
            ),
            env=env,
            stdout=log,
            stderr=log,
            cwd=REPO,
        )
        try:
            notify.wait_for(is_ready)
            body = next(order_bodies(settings.db_path, 1))  # syncd registered the target before READY=1
            with TestClient(create_app(settings)) as client:
                assert client.post(f"/api/v1/tables/{token_for(settings, 'A1')}/orders", json=body).status_code == 201
            wait_until(lambda: outbox_counts(settings.db_path)["delivered"] == 1, timeout=30)
            notify.wait_for(is_ping)
        finally:
            stop(proc)
    finally:
        log.close()
        notify.close()
        erp.stop()
    assert proc.returncode == 0, (tmp_path / "syncd.log").read_text()[-2000:]
    assert erp.order_counts() == {body["client_key"]: 1}


@needs_seccomp
@pytest.mark.slow
def test_the_console_draws_its_pin_screen_inside_its_units_rules(tmp_path):
    """fbterm itself needs a framebuffer this machine does not have; the console inside it runs here on a
    pseudo-terminal, as it does inside fbterm."""
    settings = make_settings(tmp_path / "data")
    ensure_demo_store(settings)
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    env = {**os.environ, "TERM": "linux", "LANG": "C.UTF-8"}
    proc = subprocess.Popen(
        sandboxed(
            "tablebox-console.service",
            sys.executable,
            "-m",
            "appliance",
            "console",
            "--data-dir",
            str(settings.data_dir),
        ),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=REPO,
        start_new_session=True,
    )
    os.close(slave)
    screen = b""
    try:
        deadline = time.monotonic() + 30
        while "请输入员工密码".encode() not in screen and time.monotonic() < deadline and proc.poll() is None:
            if select.select([master], [], [], 0.5)[0]:
                try:
                    screen += os.read(master, 65536)
                except OSError:
                    break
    finally:
        stop(proc)
        os.close(master)
    assert "请输入员工密码".encode() in screen, screen[-2000:]


@needs_seccomp
@pytest.mark.slow
def test_the_backup_runs_inside_its_units_rules(tmp_path):
    commands = next(a for a in build_parser()._actions if a.dest == "command").choices
    if "backup" not in commands:
        pytest.skip("`tablebox backup` is not built yet")
    settings = make_settings(tmp_path / "data")
    ensure_demo_store(settings)
    result = subprocess.run(
        sandboxed(
            "tablebox-backup.service", sys.executable, "-m", "appliance", "backup", "--data-dir", str(settings.data_dir)
        ),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "TABLEBOX_LOG_FORMAT": "json"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    backups = [p for p in (settings.data_dir / "backups").rglob("*") if p.is_file()]
    assert backups, result.stdout
    assert all(oct(p.stat().st_mode & 0o777) == "0o600" for p in backups), [oct(p.stat().st_mode) for p in backups]


@needs_seccomp
@pytest.mark.slow
def test_the_prune_runs_inside_its_units_rules(tmp_path):
    settings = make_settings(tmp_path / "data")
    ensure_demo_store(settings)
    result = subprocess.run(
        sandboxed(
            "tablebox-prune.service", sys.executable, "-m", "appliance", "prune", "--data-dir", str(settings.data_dir)
        ),
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        env={**os.environ, "TABLEBOX_LOG_FORMAT": "json"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "pruned what is older than 90 days: 0 delivered sync rows, 0 status events, 0 printed tickets" in result.stdout
    )


@needs_seccomp
@pytest.mark.slow
def test_the_relay_serves_inside_its_units_rules(tmp_path):
    """Its own walls (a throw-away user, no devices): it says READY=1, answers, feeds the watchdog, stops cleanly."""
    relay = read_unit(RELAY_UNIT)["Service"]
    assert (relay["DynamicUser"], relay["StateDirectory"]) == (["yes"], ["tablebox-relay"])
    assert relay["ExecStart"] == [f"{INSTALLED_TABLEBOX} relay serve"]
    port = free_port()
    notify = NotifySocket()
    env = {
        **os.environ,
        "NOTIFY_SOCKET": notify.address,
        "WATCHDOG_USEC": "1000000",
        "TABLEBOX_RELAY_LOG_FORMAT": "json",
        "STATE_DIRECTORY": str(tmp_path),
    }
    log = (tmp_path / "relay.log").open("ab")
    proc = subprocess.Popen(
        sandboxed(
            RELAY_UNIT, sys.executable, "-m", "appliance", "relay", "serve", "--host", "127.0.0.1", "--port", str(port)
        ),
        env=env,
        stdout=log,
        stderr=log,
        cwd=REPO,
    )
    try:
        notify.wait_for(is_ready)
        health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=10)
        assert health.status_code == 200 and health.json()["database"] == "sqlite"
        assert (tmp_path / "relay.db").is_file()  # the default database lives in the StateDirectory
        page = httpx.get(f"http://127.0.0.1:{port}/s/nosuchstore1/t/{'a' * 32}", timeout=10)
        assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
        notify.wait_for(is_ping)
    finally:
        stop(proc)
        log.close()
        notify.close()
    assert proc.returncode in (0, -signal.SIGTERM), (tmp_path / "relay.log").read_text()[-2000:]
    limits = [json.loads(line) for line in (tmp_path / "relay.log").read_text().splitlines() if "http.limits" in line]
    nofile = min(int(relay["LimitNOFILE"][-1]), hard_file_limit())
    assert [(e["file_limit"], e["max_connections"]) for e in limits] == [(nofile, nofile - 128)]
