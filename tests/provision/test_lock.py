"""provision/requirements.lock, the box's exact versions, still matches pyproject.toml (offline: no resolver run).

Every dependency of [project] (not the dev or relay extras) is pinned with ==, to a version inside the range
pyproject.toml allows, with sha256 hashes; nothing test- or relay-only is in it; the two packages litestar lists
but the box never imports (polyfactory, faker) are left out on purpose (provision/lock.sh says why).
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[2]
LOCK = REPO / "provision" / "requirements.lock"


def read_lock(text: str) -> dict[str, tuple[str, int]]:
    """name -> (version, number of hashes) of each pinned requirement in a pip requirements file."""
    pins: dict[str, tuple[str, int]] = {}
    current = ""
    for line in text.splitlines():
        if m := re.match(r"^([A-Za-z0-9._-]+)==([^ ;\\]+)", line):
            current = canonicalize_name(m.group(1))
            pins[current] = (m.group(2), 0)
        elif current and (m := re.match(r"^\s+--hash=sha256:[0-9a-f]{64}", line)):
            version, hashes = pins[current]
            pins[current] = (version, hashes + 1)
    return pins


def test_every_dependency_of_the_box_is_pinned_in_range_with_hashes() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    pins = read_lock(LOCK.read_text())
    missing, out_of_range, unhashed = [], [], []
    for spec in project["dependencies"]:
        req = Requirement(spec)
        name = canonicalize_name(req.name)
        if name not in pins:
            missing.append(name)
            continue
        version, hashes = pins[name]
        if not req.specifier.contains(version, prereleases=True):
            out_of_range.append(f"{name}=={version} not in {req.specifier}")
        if hashes == 0:
            unhashed.append(name)
    assert (missing, out_of_range, unhashed) == ([], [], []), "run provision/lock.sh"
    assert all(hashes > 0 for _, hashes in pins.values())


def test_the_lock_holds_nothing_relay_or_test_only() -> None:
    pins = read_lock(LOCK.read_text())
    assert {"psycopg", "psycopg-binary", "pytest", "hypothesis", "playwright", "faker", "polyfactory"} & set(
        pins
    ) == set()
    assert (
        "psycopg[binary]>=3.1,<4"
        in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["relay"]
    )


def test_read_lock_counts_pins_and_hashes() -> None:
    text = (
        "a-b==1.0 \\\n    --hash=sha256:"
        + "0" * 64
        + " \\\n    --hash=sha256:"
        + "1" * 64
        + "\n    # via x\nc==2 ; sys_platform == 'win32'\n"
    )
    assert read_lock(text) == {"a-b": ("1.0", 2), "c": ("2", 0)}
