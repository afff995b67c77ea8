"""Add one `runcmd` entry to a cloud-init `user-data` file, keeping everything already in it.

Used by provision/flash.sh on Raspberry Pi OS images that use cloud-init. The file is edited as text, not
loaded and dumped again, so the users, keys and comments Raspberry Pi Imager (or the technician) put there
stay exactly as written; when PyYAML is installed the result is loaded and compared with the original
(same keys and values, runcmd one entry longer), and anything else is refused.

    python3 user_data.py FILE COMMAND MARKER

rewrites FILE in place; prints "added" or "already there" (when MARKER is in the file already).
Exits 1 with a message when the file is not a cloud-config this script can extend safely.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

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


def check_with_yaml(before: str, after: str, command: str) -> bool:
    """Compare what cloud-init will read before and after; False when PyYAML is not installed."""
    try:
        import yaml
    except ImportError:
        return False
    try:
        old = yaml.safe_load(before) or {}
        new = yaml.safe_load(after) or {}
    except yaml.YAMLError as exc:
        raise UserDataError(f"it is not valid YAML: {exc}") from None
    if not isinstance(old, dict) or not isinstance(new, dict):
        raise UserDataError("it is not a YAML mapping")
    old_runcmd = old.pop("runcmd", None) or []
    new_runcmd = new.pop("runcmd", None)
    if old != new or new_runcmd != [*old_runcmd, command]:
        raise UserDataError(
            "adding the runcmd entry would change its other settings; add this entry by hand: " + command
        )
    return True


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    path, command, marker = Path(argv[1]), argv[2], argv[3]
    before = path.read_text("utf-8") if path.exists() else ""
    try:
        after = add_runcmd(before, command, marker)
        if after == before:
            print("already there")
            return 0
        check_with_yaml(before, after, command)
    except UserDataError as exc:
        print(f"flash: {path.name}: {exc}", file=sys.stderr)
        return 1
    path.write_text(after, "utf-8", newline="")
    print("added")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
