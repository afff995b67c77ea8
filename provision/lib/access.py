"""The technician's account for provision/flash.sh: checked on the laptop, then written where each Raspberry Pi OS
first-boot style reads it (user-data's `user:` via user_data.py, or tablebox/firstrun-access.conf for firstrun.sh).

    python3 access.py prepare --user NAME [--ssh-key FILE]... [--password-hash HASH | --password-stdin] --out DIR
        writes DIR/access.json and DIR/firstrun-access.conf (mode 0600); prints one line saying what the box
        will accept. A password read from stdin (flash.sh --password or --password-file) is hashed here
        (SHA-512 crypt, `openssl passwd -6 -stdin`, never on a command line) and only its hash is kept.

No default password anywhere: with keys only the account gets none (cloud-init `lock_passwd: true`, '*' on the
firstrun style) and sudo without a password, since its key is then the only way in; with a password, sudo asks
for it. Exits 1 with a message when something cannot work.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

# As userconf-pi's userconf-service validate_user: 1 to 32 characters, a lower-case letter first, then lower-case
# letters, digits and '-'; not root. Names the image already uses for other purposes are refused too.
USER_NAME = re.compile(r"[a-z][a-z0-9-]{0,31}")
RESERVED = {"root", "tablebox", "daemon", "nobody", "sshd", "systemd-network"}
KEY_TYPES = (
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
)
# A crypt(3) hash as chpasswd -e and cloud-init's passwd take it: yescrypt ($y$), SHA-512/256 ($6$/$5$), bcrypt.
HASH = re.compile(r"\$(y|gy|6|5|2[aby])\$[./0-9A-Za-z$=,]+")


class AccessError(Exception):
    """The account cannot be set up as asked."""


def check_user(name: str) -> str:
    if not USER_NAME.fullmatch(name):
        raise AccessError(
            f"--user {name!r}: use 1 to 32 lower-case letters, digits and '-', starting with a letter "
            "(as Raspberry Pi OS's userconf requires)"
        )
    if name in RESERVED:
        raise AccessError(f"--user {name}: that name is taken by the system or by Tablebox's service; use e.g. tech")
    return name


def read_keys(path: str) -> list[str]:
    """The public keys in an OpenSSH .pub or authorized_keys file, one a line; options before the type are refused."""
    try:
        text = Path(path).read_text("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise AccessError(f"--ssh-key {path}: cannot read it ({exc})") from None
    if "PRIVATE KEY" in text:
        raise AccessError(f"--ssh-key {path} is a private key: give the public one ({path}.pub), which is safe to copy")
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        words = line.split()
        if words[0] not in KEY_TYPES or len(words) < 2 or not re.fullmatch(r"[A-Za-z0-9+/]+={0,3}", words[1]):
            raise AccessError(
                f"--ssh-key {path} line {number} is not an OpenSSH public key (it should start with "
                "ssh-ed25519 AAAA..., as in ~/.ssh/id_ed25519.pub; make one with ssh-keygen -t ed25519)"
            )
        keys.append(" ".join(words))
    if not keys:
        raise AccessError(f"--ssh-key {path} holds no public key")
    return keys


def hash_password(password: str) -> str:
    """SHA-512 crypt of `password`, made by openssl (or mkpasswd) reading it from stdin."""
    if not password:
        raise AccessError("the password is empty: give one, or use --ssh-key only")
    if len(password) < 8:
        raise AccessError("the password has fewer than 8 characters: the box is reachable by everyone on its network")
    if "\n" in password or "\r" in password:
        raise AccessError("the password cannot hold a line break")
    for command in (["openssl", "passwd", "-6", "-stdin"], ["mkpasswd", "--method=sha-512", "--stdin"]):
        if shutil.which(command[0]) is None:
            continue
        done = subprocess.run(command, input=password + "\n", capture_output=True, text=True, timeout=30)
        hashed = done.stdout.strip()
        if done.returncode == 0 and HASH.fullmatch(hashed):
            return hashed
    raise AccessError("cannot hash the password: install openssl (sudo apt install openssl), or give --password-hash")


def check_hash(value: str) -> str:
    if not HASH.fullmatch(value):
        raise AccessError(
            "--password-hash must be a crypt hash such as $6$... or $y$... (make one with "
            "openssl passwd -6, or mkpasswd --method=yescrypt); a plain password is never written"
        )
    return value


def prepare(user: str, key_files: list[str], password_hash: str | None, password: str | None) -> dict[str, Any]:
    keys: list[str] = []
    for path in key_files:
        keys += [k for k in read_keys(path) if k not in keys]
    access: dict[str, Any] = {"user": check_user(user), "password_hash": "", "keys": keys}
    if password_hash is not None:
        access["password_hash"] = check_hash(password_hash)
    elif password is not None:
        access["password_hash"] = hash_password(password)
    if not access["keys"] and not access["password_hash"]:
        raise AccessError("give --ssh-key FILE, or a password (--password, --password-file, --password-hash)")
    return access


def firstrun_text(access: dict[str, Any]) -> str:
    return (
        "# Read by firstrun.sh at first boot (one key=value a line, never run as code), then deleted.\n"
        f"user={access['user']}\npassword_hash={access['password_hash']}\n"
        + "".join(f"key={key}\n" for key in access["keys"])
    )


def describe(access: dict[str, Any]) -> str:
    keys = len(access["keys"])
    ways = []
    if keys:
        ways.append(f"SSH with {keys} key{'s' if keys != 1 else ''} (no password over SSH)")
    if access["password_hash"]:
        ways.append("the password" + ("" if keys else " (SSH and console)"))
    sudo = "sudo asks for the password" if access["password_hash"] else "sudo without a password (key only)"
    return f"Technician account: {access['user']}, signs in with {' or '.join(ways)}; {sudo}"


def write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)


def main(argv: list[str]) -> int:
    args = argv[1:]
    if args[:1] != ["prepare"]:
        print(__doc__, file=sys.stderr)
        return 2
    user, out, key_files = "tech", "", []
    password_hash: str | None = None
    from_stdin = False
    rest = args[1:]
    try:
        while rest:
            flag = rest.pop(0)
            if flag == "--password-stdin":
                from_stdin = True
                continue
            if not rest:
                raise AccessError(f"{flag} needs a value")
            value = rest.pop(0)
            if flag == "--user":
                user = value
            elif flag == "--ssh-key":
                key_files.append(value)
            elif flag == "--password-hash":
                password_hash = value
            elif flag == "--out":
                out = value
            else:
                raise AccessError(f"unknown option {flag}")
        password = sys.stdin.readline().rstrip("\r\n") if from_stdin else None
        access = prepare(user, key_files, password_hash, password)
    except AccessError as exc:
        print(f"flash: {exc}", file=sys.stderr)
        return 1
    folder = Path(out)
    write_private(folder / "access.json", json.dumps(access))
    write_private(folder / "firstrun-access.conf", firstrun_text(access))
    print(describe(access))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
