"""`tablebox version`'s release: read from release.json beside the venv that runs, through the symlink the units
call (/opt/tablebox/venv -> releases/<id>/venv; provision/steps/release.sh)."""

from __future__ import annotations

import json
from pathlib import Path

from appliance import __version__
from appliance.release import Release, describe, running_release


def box(tmp_path: Path, release: str = "1.2.0-0123456789ab") -> Path:
    venv = tmp_path / "releases" / release / "venv"
    venv.mkdir(parents=True)
    info = {"id": release, "version": "1.2.0", "installed_at": "2026-12-04T10:00:00+08:00", "from": "wheelhouse"}
    (venv.parent / "release.json").write_text(json.dumps(info))
    (tmp_path / "venv").symlink_to(f"releases/{release}/venv")
    return tmp_path / "venv"


def test_the_release_is_found_through_the_venv_symlink(tmp_path: Path) -> None:
    link = box(tmp_path)
    found = running_release(link)
    assert (found.version, found.release_id, found.installed_at) == (
        "1.2.0",
        "1.2.0-0123456789ab",
        "2026-12-04T10:00:00+08:00",
    )
    assert found.path == (tmp_path / "releases/1.2.0-0123456789ab").resolve()
    assert running_release(link / "bin" / "..") == found


def test_outside_a_box_the_package_version_alone(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    venv.mkdir()
    assert running_release(venv) == Release(__version__, None, None, None)
    (tmp_path / "release.json").write_text("[not, a, release]")
    assert running_release(venv).release_id is None


def test_describe_says_which_way_the_schema_stands(tmp_path: Path) -> None:
    found = running_release(box(tmp_path))
    lines = describe(found, 9, 9)
    assert lines[0] == "tablebox 1.2.0 (release 1.2.0-0123456789ab)"
    assert lines[-1] == "  schema:    store at 9, this release knows up to 9 (up to date)"
    assert describe(found, 3, 9)[-1].endswith("(to migrate)")
    assert describe(found, 12, 9)[-1].endswith("(NEWER than this release)")
    assert describe(found, None, 9)[-1] == "  schema:    this release knows up to 9; no store here"


def test_a_store_a_newer_release_migrated_is_refused_by_every_command(tmp_path: Path, capsys) -> None:
    import sqlite3

    from appliance.cli import main

    box_args = ["--data-dir", str(tmp_path / "data")]
    assert main([*box_args, "init", "--store-name", "Dumpling House"]) == 0
    assert main([*box_args, "tables"]) == 0
    db = sqlite3.connect(tmp_path / "data" / "store.db")
    with db:
        db.execute("INSERT INTO schema_migrations VALUES (9999, 'from_a_newer_release', '2026-12-04T00:00:00Z')")
    db.close()
    capsys.readouterr()
    # A command reading the store, and a daemon before it starts (printd never migrates, so it is checked apart).
    for command in (["tables"], ["printd"], ["serve", "--port", "0"]):
        assert main([*box_args, *command]) == 2, command
        said = capsys.readouterr().err
        assert "updated by a newer Tablebox (its schema is 9999" in said and "provision.sh update" in said, command
