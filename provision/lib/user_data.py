"""Add one `runcmd` entry to a cloud-init `user-data` file, keeping everything already in it.

Used by provision/flash.sh on Raspberry Pi OS images that use cloud-init. The file is edited as text, not
loaded and dumped again, so the users, keys and comments Raspberry Pi Imager (or the technician) put there
stay exactly as written; when PyYAML is installed the result is loaded and compared with the original
(same keys and values, runcmd one entry longer), and anything else is refused.

    python3 user_data.py FILE COMMAND MARKER

rewrites FILE in place; prints "added" or "already there" (when MARKER is in the file already).
Exits 1 with a message when the file is not a cloud-config this script can extend safely.

    python3 user_data.py --account FILE ACCESS_JSON

adds the technician's account (provision/lib/access.py) as Raspberry Pi Imager does for cloud-init images
(rpi-imager src/customization_generator.cpp): a singular `user:` (cloud-init merges it over the image's
default_user, so the account keeps its groups: sudo, adm, gpio...; a `users:` list without `default` would make a
group-less account, rpi-imager issue 1601) with `ssh_authorized_keys`, `lock_passwd` (true with keys only: no
password at all) and `passwd` (a crypt hash), `sudo: ALL=(ALL) NOPASSWD:ALL` for a key-only account and
`sudo: null` otherwise (the image's default_user would give NOPASSWD sudo to a password account too; null keeps the
sudo group, so sudo asks for the password), `ssh_pwauth` (cloud-init cc_set_passwords: false with keys, true with a
password only), and runcmd entries that enable ssh (Raspberry Pi OS ships it disabled; cc_ssh only writes keys) and
write the sudoers rule for a key-only account. Refused when user-data already sets up accounts (user:, users:,
ssh_pwauth:), e.g. Raspberry Pi Imager's own settings.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

HEADER = "#cloud-config"
RUNCMD_KEY = re.compile(r"^runcmd\s*:\s*(?P<value>[^#]*?)\s*(#.*)?$")


class UserDataError(Exception):
    """The user-data file cannot be extended safely."""


def yaml_single_quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def add_runcmd(text: str, command: str, marker: str) -> str:
    """Return `text` with `command` appended to its top-level runcmd list (created if absent)."""
    if marker in text:
        return text
    if "\t" in text:
        raise UserDataError("it contains tab characters; YAML does not allow them for indentation")
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), None)
    if first is None:
        lines = [HEADER]
    elif not first.startswith(HEADER):
        raise UserDataError(
            f"it does not start with {HEADER} (it starts with {first[:40]!r}): only a cloud-config can be extended"
        )
    entry = [f"# {marker}", f"- {yaml_single_quoted(command)}"]

    key_at = next((i for i, line in enumerate(lines) if RUNCMD_KEY.match(line)), None)
    if key_at is None:
        while lines and not lines[-1].strip():
            lines.pop()
        lines += ["runcmd:"] + ["  " + line for line in entry]
        return newline.join(lines) + newline

    value = RUNCMD_KEY.match(lines[key_at]).group("value")
    if value in ("[]", "~", "null"):
        lines[key_at] = "runcmd:"
    elif value:
        raise UserDataError(
            f"runcmd is written on one line ({lines[key_at].strip()!r}): write it as a list, one '- ' entry per line"
        )
    # The block runs until the next line that starts in column 0 with something other than a list item.
    last_item, indent = key_at, None
    for i in range(key_at + 1, len(lines)):
        line = lines[i]
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        if line[0] != " " and not line.startswith("-"):
            break
        if indent is None:
            if not stripped.startswith("-"):
                raise UserDataError(f"runcmd is not a list (line {i + 1}: {line.strip()!r})")
            indent = len(line) - len(stripped)
        last_item = i
    pad = " " * (2 if indent is None else indent)
    lines[last_item + 1 : last_item + 1] = [pad + line for line in entry]
    return newline.join(lines) + newline


def load_both(before: str, after: str) -> tuple[Any, Any] | None:
    """What cloud-init reads before and after, as YAML; None when PyYAML is not installed."""
    try:
        import yaml
    except ImportError:
        return None
    try:
        return yaml.safe_load(before) or {}, yaml.safe_load(after) or {}
    except yaml.YAMLError as exc:
        raise UserDataError(f"it is not valid YAML: {exc}") from None


def check_with_yaml(before: str, after: str, command: str) -> bool:
    """Compare what cloud-init will read before and after; False when PyYAML is not installed."""
    loaded = load_both(before, after)
    if loaded is None:
        return False
    old, new = loaded
    if not isinstance(old, dict) or not isinstance(new, dict):
        raise UserDataError("it is not a YAML mapping")
    old_runcmd = old.pop("runcmd", None) or []
    new_runcmd = new.pop("runcmd", None)
    if old != new or new_runcmd != [*old_runcmd, command]:
        raise UserDataError(
            "adding the runcmd entry would change its other settings; add this entry by hand: " + command
        )
    return True


ACCOUNT_MARKER = "tablebox: technician account, added by provision/flash.sh"
ACCOUNT_KEYS = re.compile(r"^(user|users|ssh_pwauth)\s*:")


def account_block(access: dict[str, Any]) -> list[str]:
    """The `user:` and `ssh_pwauth:` lines for an access dict (user, password_hash, keys)."""
    keys, password_hash = access["keys"], access["password_hash"]
    lines = [f"# {ACCOUNT_MARKER}", "user:", f"  name: {access['user']}", "  shell: /bin/bash"]
    if password_hash:
        lines += ["  lock_passwd: false", f"  passwd: {yaml_single_quoted(password_hash)}"]
    else:
        lines += ["  lock_passwd: true"]
    if keys:
        lines += ["  ssh_authorized_keys:"] + [f"    - {yaml_single_quoted(key)}" for key in keys]
    lines += ["  sudo: null" if password_hash else "  sudo: 'ALL=(ALL) NOPASSWD:ALL'"]
    lines += [f"ssh_pwauth: {'false' if keys else 'true'}"]
    return lines


def account_commands(access: dict[str, Any]) -> list[str]:
    """runcmd entries: ssh enabled; for a key-only account the sudoers rule, as Imager writes it too."""
    commands = ["systemctl enable --now ssh"]
    if not access["password_hash"]:
        name = access["user"]
        rule = f"/etc/sudoers.d/010_{name}-nopasswd"
        commands.append(f"echo '{name} ALL=(ALL) NOPASSWD:ALL' > {rule} && chmod 0440 {rule}")
    return commands


def add_account(text: str, access: dict[str, Any]) -> str:
    """`text` with the technician's account and its runcmd entries; unchanged when they are there already."""
    if ACCOUNT_MARKER in text:
        return text
    if "\t" in text:
        raise UserDataError("it contains tab characters; YAML does not allow them for indentation")
    found = [line.split(":")[0] for line in text.splitlines() if ACCOUNT_KEYS.match(line)]
    if found:
        raise UserDataError(
            f"it already sets up accounts ({', '.join(found)}: Raspberry Pi Imager's settings?): leave out "
            "--ssh-key and --password to keep them, or flash a plain image"
        )
    newline = "\r\n" if "\r\n" in text else "\n"
    lines = text.splitlines() or [HEADER]
    if not lines[0].startswith(HEADER) and any(line.strip() for line in lines):
        raise UserDataError(f"it does not start with {HEADER}: only a cloud-config can be extended")
    while lines and not lines[-1].strip():
        lines.pop()
    result = newline.join(lines + account_block(access)) + newline
    for number, command in enumerate(account_commands(access)):
        result = add_runcmd(result, command, f"{ACCOUNT_MARKER} ({number + 1})")
    return result


def check_account_with_yaml(before: str, after: str, access: dict[str, Any]) -> bool:
    """What cloud-init reads afterwards: the old settings, plus exactly our user, ssh_pwauth and runcmd entries."""
    loaded = load_both(before, after)
    if loaded is None:
        return False
    old, new = loaded
    user = {
        "name": access["user"],
        "shell": "/bin/bash",
        "lock_passwd": not access["password_hash"],
        "sudo": None if access["password_hash"] else "ALL=(ALL) NOPASSWD:ALL",
    }
    if access["password_hash"]:
        user["passwd"] = access["password_hash"]
    if access["keys"]:
        user["ssh_authorized_keys"] = access["keys"]
    expected = {
        **old,
        "user": user,
        "ssh_pwauth": not access["keys"],
        "runcmd": [*(old.get("runcmd") or []), *account_commands(access)],
    }
    if new != expected:
        raise UserDataError("adding the account would change its other settings; add it by hand")
    return True


def main_account(path: Path, access_file: Path) -> int:
    import json

    access = json.loads(access_file.read_text("utf-8"))
    return rewrite(path, lambda text: add_account(text, access), lambda b, a: check_account_with_yaml(b, a, access))


def rewrite(path: Path, change, check) -> int:
    """Apply `change` to the file's text, `check` the result, write it; prints "added" or "already there"."""
    before = path.read_text("utf-8") if path.exists() else ""
    try:
        after = change(before)
        if after == before:
            print("already there")
            return 0
        check(before, after)
    except UserDataError as exc:
        print(f"flash: {path.name}: {exc}", file=sys.stderr)
        return 1
    path.write_text(after, "utf-8", newline="")
    print("added")
    return 0


def main(argv: list[str]) -> int:
    if len(argv) == 4 and argv[1] == "--account":
        return main_account(Path(argv[2]), Path(argv[3]))
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, command, marker = Path(argv[1]), argv[2], argv[3]
    return rewrite(path, lambda text: add_runcmd(text, command, marker), lambda b, a: check_with_yaml(b, a, command))


if __name__ == "__main__":
    sys.exit(main(sys.argv))
