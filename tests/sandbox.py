"""Run a command under the seccomp rules a systemd unit file asks for, without systemd: its
SystemCallFilter= (with SystemCallErrorNumber=), MemoryDenyWriteExecute= and RestrictAddressFamilies=,
built the way systemd builds them (src/shared/seccomp-util.c) with the same libseccomp, its UMask= and its
LimitNOFILE=.

    python -m tests.sandbox systemd/tablebox-web.service -- COMMAND [ARG...]

Used by tests/test_systemd_units.py to check that the processes really run inside what their unit
allows (CPython, uvloop, apsw, Textual...), on a machine where systemd is not running the services.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import functools
import os
import resource
import socket
import subprocess
import sys
from pathlib import Path

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_NE, SCMP_CMP_LT, SCMP_CMP_EQ, SCMP_CMP_GT, SCMP_CMP_MASKED_EQ = 1, 2, 4, 6, 7
PROT_WRITE, PROT_EXEC = 0x2, 0x4
SHM_EXEC = 0o100000


def scmp_act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


class ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


@functools.cache
def _lib() -> ctypes.CDLL:
    name = ctypes.util.find_library("seccomp") or "libseccomp.so.2"
    lib = ctypes.CDLL(name, use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(ArgCmp),
    ]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    return lib


def available() -> bool:
    try:
        _lib()
    except OSError:
        return False
    return True


def unit_settings(path: Path) -> dict[str, list[str]]:
    """[Service] assignments of a unit file, each key with all its values in order (keys repeat)."""
    section, out = "", {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        if section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            out.setdefault(key.strip(), []).append(value.strip())
    return out


@functools.cache
def _group(name: str) -> frozenset[str]:
    """A systemd syscall group (`@system-service`), expanded, as the installed systemd defines it."""
    out = subprocess.run(["systemd-analyze", "syscall-filter", name], capture_output=True, text=True, check=True).stdout
    names: set[str] = set()
    for line in out.splitlines()[1:]:
        word = line.strip()
        if not word or word.startswith("#"):
            continue
        names |= _group(word) if word.startswith("@") else {word}
    return frozenset(names)


def _names(words: list[str]) -> set[str]:
    names: set[str] = set()
    for word in words:
        names |= _group(word) if word.startswith("@") else {word}
    return names


def allowed_syscalls(values: list[str]) -> set[str] | None:
    """The allow list from SystemCallFilter= lines (systemd semantics: the first line without ~ starts
    an allow list, @default included; later ~ lines take names out of it). None when there is none."""
    allowed: set[str] | None = None
    for value in values:
        if not value:
            allowed = None
            continue
        invert = value.startswith("~")
        words = value.lstrip("~").split()
        if allowed is None and not invert:
            allowed = set(_group("@default"))
        if allowed is None:
            continue  # a deny list alone: not used by our units
        if invert:
            allowed -= _names(words)
        else:
            allowed |= _names(words)
    return allowed


def _load(default_action: int, rules: list[tuple[int, str, list[tuple[int, int, int, int]]]]) -> None:
    lib = _lib()
    ctx = lib.seccomp_init(default_action)
    if not ctx:
        raise OSError("seccomp_init failed")
    try:
        for action, name, comparisons in rules:
            nr = lib.seccomp_syscall_resolve_name(name.encode())
            if nr < 0:
                continue  # not a system call of this architecture (systemd skips those too)
            array = (ArgCmp * max(1, len(comparisons)))(*[ArgCmp(*c) for c in comparisons])
            rc = lib.seccomp_rule_add_array(ctx, action, nr, len(comparisons), array)
            if rc < 0 and -rc != errno.EEXIST:
                raise OSError(-rc, f"seccomp rule for {name}: {os.strerror(-rc)}")
        rc = lib.seccomp_load(ctx)
        if rc < 0:
            raise OSError(-rc, f"seccomp_load: {os.strerror(-rc)}")
    finally:
        lib.seccomp_release(ctx)


def _address_family_numbers(names: list[str]) -> set[int]:
    return {int(getattr(socket, name)) for name in names if hasattr(socket, name)}


def apply_unit(unit: Path) -> None:
    """Put this process under the unit's rules; they hold across execve."""
    settings = unit_settings(unit)
    if "UMask" in settings:
        os.umask(int(settings["UMask"][-1], 8))
    if "LimitNOFILE" in settings:  # one number: soft and hard (never above this process's hard limit)
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = int(settings["LimitNOFILE"][-1])
        if hard != resource.RLIM_INFINITY:
            wanted = min(wanted, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
    error_name = settings.get("SystemCallErrorNumber", ["EPERM"])[-1]
    error = getattr(errno, error_name)

    if settings.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes":
        _load(
            SCMP_ACT_ALLOW,
            [
                (
                    scmp_act_errno(errno.EPERM),
                    "mmap",
                    [(2, SCMP_CMP_MASKED_EQ, PROT_EXEC | PROT_WRITE, PROT_EXEC | PROT_WRITE)],
                ),
                (scmp_act_errno(errno.EPERM), "mprotect", [(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)]),
                (scmp_act_errno(errno.EPERM), "pkey_mprotect", [(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, PROT_EXEC)]),
                (scmp_act_errno(errno.EPERM), "shmat", [(2, SCMP_CMP_MASKED_EQ, SHM_EXEC, SHM_EXEC)]),
            ],
        )

    families = settings.get("RestrictAddressFamilies")
    if families:
        allowed = sorted(_address_family_numbers(families[-1].split()))
        deny = scmp_act_errno(errno.EAFNOSUPPORT)
        rules = [
            (deny, "socket", [(0, SCMP_CMP_LT, allowed[0], 0)]),
            (deny, "socket", [(0, SCMP_CMP_GT, allowed[-1], 0)]),
        ]
        rules += [
            (deny, "socket", [(0, SCMP_CMP_EQ, n, 0)]) for n in range(allowed[0] + 1, allowed[-1]) if n not in allowed
        ]
        _load(SCMP_ACT_ALLOW, rules)

    allowed_calls = allowed_syscalls(settings.get("SystemCallFilter", []))
    if allowed_calls is not None:
        _load(scmp_act_errno(error), [(SCMP_ACT_ALLOW, name, []) for name in sorted(allowed_calls)])


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        raise SystemExit("usage: python -m tests.sandbox UNIT_FILE -- COMMAND [ARG...]")
    apply_unit(Path(argv[0]))
    os.execvp(argv[2], argv[2:])


if __name__ == "__main__":
    main(sys.argv[1:])
