"""provision/lib/user_data.py: one runcmd entry added to a cloud-init user-data, the rest left as written.
If it failed, a card's cloud-init would lose the technician's users and SSH keys, or never run provisioning."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "provision" / "lib" / "user_data.py"
_spec = importlib.util.spec_from_file_location("user_data", SCRIPT)
user_data = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(user_data)

COMMAND = (
    "bash /boot/firmware/tablebox/provision/provision.sh --unattended >>/boot/firmware/tablebox/provision.log 2>&1"
)
MARKER = "tablebox: first-boot provisioning"


def add(text: str) -> str:
    return user_data.add_runcmd(text, COMMAND, MARKER)


@pytest.mark.parametrize(
    "before",
    [
        "",
        "#cloud-config\n",
        "#cloud-config\nhostname: box\nusers:\n  - name: tech\n    shell: /bin/bash\n",
        "#cloud-config\nruncmd:\n- [ls, -l]\n- echo one\n# a comment\ntimezone: UTC\n",
        "#cloud-config\nruncmd:\n    - |\n      echo one\n      echo two\n    - echo three\n\nhostname: box\n",
        "#cloud-config\nruncmd: []\nhostname: box\n",
        "#cloud-config\nruncmd:\nhostname: box\n",
        "#cloud-config\nhostname: box",  # no newline at the end
    ],
)
def test_the_entry_comes_last_in_runcmd_and_nothing_else_changes(before):
    after = add(before)
    old, new = yaml.safe_load(before) or {}, yaml.safe_load(after)
    assert new["runcmd"] == [*(old.get("runcmd") or []), COMMAND]
    assert {k: v for k, v in new.items() if k != "runcmd"} == {k: v for k, v in old.items() if k != "runcmd"}
    assert after.startswith("#cloud-config")
    assert user_data.check_with_yaml(before, after, COMMAND)
    assert add(after) == after  # a second time: already there


def test_comments_and_layout_are_kept_line_for_line():
    before = "#cloud-config\n# Imager wrote this\nruncmd:\n  - echo one   # why\n\n# time\ntimezone: UTC\n"
    assert add(before) == (
        "#cloud-config\n# Imager wrote this\nruncmd:\n  - echo one   # why\n"
        f"  # {MARKER}\n  - '{COMMAND}'\n\n# time\ntimezone: UTC\n"
    )


def test_windows_line_endings_stay():
    after = add("#cloud-config\r\nhostname: box\r\n")
    assert after.count("\r\n") == after.count("\n") == 5


@pytest.mark.parametrize(
    ("before", "message"),
    [
        ("#!/bin/sh\necho hi\n", "does not start with #cloud-config"),
        ("#cloud-config\nruncmd: [ls, pwd]\n", "runcmd is written on one line"),
        ("#cloud-config\nruncmd:\n  cmd: ls\n", "runcmd is not a list"),
        ("#cloud-config\nusers:\n\t- name: tech\n", "tab characters"),
    ],
)
def test_files_it_cannot_extend_safely_are_refused(before, message):
    with pytest.raises(user_data.UserDataError, match=message):
        add(before)


def test_a_result_that_would_change_other_settings_is_refused():
    with pytest.raises(user_data.UserDataError, match="would change its other settings"):
        user_data.check_with_yaml("#cloud-config\nhostname: box\n", f"#cloud-config\nruncmd:\n- '{COMMAND}'\n", COMMAND)


def test_the_command_line_rewrites_the_file_and_says_what_it_did(tmp_path):
    path = tmp_path / "user-data"
    path.write_text("#cloud-config\nhostname: box\n")
    first = subprocess.run([sys.executable, SCRIPT, path, COMMAND, MARKER], capture_output=True, text=True, check=True)
    again = subprocess.run([sys.executable, SCRIPT, path, COMMAND, MARKER], capture_output=True, text=True, check=True)
    assert (first.stdout, again.stdout) == ("added\n", "already there\n")
    assert yaml.safe_load(path.read_text())["runcmd"] == [COMMAND]
    path.write_text("#!/bin/sh\n")
    refused = subprocess.run([sys.executable, SCRIPT, path, COMMAND, MARKER], capture_output=True, text=True)
    assert refused.returncode == 1 and "flash: user-data: it does not start with #cloud-config" in refused.stderr
    assert path.read_text() == "#!/bin/sh\n"
