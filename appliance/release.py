"""Which release of Tablebox this is: the package version, and on a box the release provision.sh installed.

provision.sh installs each release into /opt/tablebox/releases/<id>/venv and writes release.json beside the venv
(id, version, wheel sha256, when). `tablebox version` and `tablebox doctor` read it from the running interpreter's
prefix, so what they print is what runs, not what some file on the card says.
"""

from __future__ import annotations

import json
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from appliance import __version__


@dataclass(frozen=True)
class Release:
    version: str
    release_id: str | None  # None outside a provisioned box (a development checkout)
    installed_at: str | None
    path: Path | None


def running_release(prefix: Path | None = None) -> Release:
    """The release whose virtualenv runs this interpreter (sys.prefix), read from its release.json."""
    # Resolved: /opt/tablebox/venv is a symlink to releases/<id>/venv, and a venv's sys.prefix is the path its
    # python was started by (`/opt/tablebox/venv/bin/python -m appliance ...` gives the link, not the release).
    venv = Path(prefix if prefix is not None else sys.prefix).resolve()
    info = venv.parent / "release.json"
    try:
        data = json.loads(info.read_text("utf-8"))
    except (OSError, ValueError):
        return Release(__version__, None, None, None)
    if not isinstance(data, dict):
        return Release(__version__, None, None, None)
    return Release(
        version=str(data.get("version") or __version__),
        release_id=str(data["id"]) if data.get("id") else None,
        installed_at=str(data["installed_at"]) if data.get("installed_at") else None,
        path=venv.parent,
    )


def describe(release: Release, schema: int | None, known: int) -> list[str]:
    """The lines `tablebox version` prints."""
    lines = [f"tablebox {release.version}" + (f" (release {release.release_id})" if release.release_id else "")]
    if release.path is not None:
        lines.append(f"  installed: {release.path}" + (f" at {release.installed_at}" if release.installed_at else ""))
    lines.append(f"  python:    {platform.python_version()} on {platform.machine()}")
    if schema is None:
        lines.append(f"  schema:    this release knows up to {known}; no store here")
    else:
        state = "up to date" if schema == known else ("to migrate" if schema < known else "NEWER than this release")
        lines.append(f"  schema:    store at {schema}, this release knows up to {known} ({state})")
    return lines
