"""`tablebox photo import FOLDER`: many dishes' photos at once, matched by file name (key, id or name in any
language), with a report of what matched, what named no dish and what was refused; a bad file changes nothing."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

from PIL import Image

from appliance.cli import main
from tests.conftest import make_settings


def picture(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (1600, 1200)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    kind = {".png": "PNG", ".webp": "WEBP"}.get(path.suffix.lower(), "JPEG")
    Image.new("RGB", size, colour).save(path, kind)
    return path


def menu_images(client, token) -> dict[str, str | None]:
    """English dish name -> its photo URL, as the diner's menu shows it."""
    menu = client.get(f"/api/v1/tables/{token}/menu?lang=en").json()
    return {i["name"]: i["image"] for c in menu["categories"] for i in c["items"]}


def stored_images(settings) -> list[str]:
    folder = settings.data_dir / "images"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def run(settings, *args: str) -> int:
    return main(["photo", "--data-dir", str(settings.data_dir), *args])


def test_a_folder_gives_each_named_dish_its_photo_and_reports_the_rest(settings, client, token, tmp_path, capsys):
    folder = tmp_path / "photos"
    picture(folder / "har_gow.jpg", (230, 220, 200))  # the key
    picture(folder / "Mapo Tofu.PNG", (180, 40, 30))  # the English name, any case, a space for the _
    picture(folder / "拍黄瓜.webp", (60, 150, 60))  # the Chinese name
    picture(folder / "dan-dan-noodles.jpeg", (200, 120, 40))  # the key with - for _
    picture(folder / "Crab roe xiaolongbao.jpg", (240, 200, 120))
    picture(folder / "hargow.jpg", (1, 2, 3))  # a typo: names no dish
    picture(folder / ".hidden.jpg", (1, 2, 3))
    (folder / "notes.txt").write_text("the photographer's invoice")
    (folder / "old").mkdir()

    assert run(settings, "import", str(folder)) == 0
    out, err = capsys.readouterr()
    assert "matched 5:" in out
    assert "  Mapo Tofu.PNG -> mapo_tofu (麻婆豆腐 / Mapo tofu)" in out
    assert "  拍黄瓜.webp -> smashed_cucumber (拍黄瓜 / Smashed cucumber)" in out
    assert "unmatched 2 (no dish changed):" in out
    assert "  hargow.jpg: no dish has this key, id or name (closest: har gow" in out
    assert "  notes.txt: no dish has this key, id or name" in out
    assert "ignored 2 hidden files and folders" in out
    assert "set 5 photos" in out
    assert "photo import: 5/5 拍黄瓜.webp" in err  # progress, on stderr, in the order the files are read

    images = menu_images(client, token)
    named = ["Crystal shrimp dumplings", "Mapo tofu", "Smashed cucumber", "Dan dan noodles", "Crab roe xiaolongbao"]
    assert all(images[name] for name in named)
    assert len({images[name] for name in named}) == 5
    assert sum(1 for url in images.values() if url) == 5
    served = client.get(images["Mapo tofu"])
    assert served.status_code == 200
    with Image.open(io.BytesIO(served.content)) as shrunk:
        assert shrunk.size == (640, 480) and shrunk.getpixel((320, 240))[0] > 150  # the tofu's red, shrunk
    assert len(stored_images(settings)) == 5


def test_a_bad_file_changes_nothing_until_it_is_fixed_or_skipped(settings, client, token, tmp_path, capsys):
    folder = tmp_path / "photos"
    picture(folder / "har_gow.jpg", (230, 220, 200))
    picture(folder / "mapo_tofu.jpg", (180, 40, 30))
    (folder / "smashed_cucumber.jpg").write_bytes(b"\xff\xd8\xff\xe0 half a JPEG, the card was pulled out")
    (folder / "dan_dan_noodles.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")

    assert run(settings, "import", str(folder)) == 1
    out = capsys.readouterr().out
    assert "matched 2:" in out and "refused 2:" in out
    assert "  smashed_cucumber.jpg: smashed_cucumber: " in out and "is not a picture Tablebox can read" in out
    assert "  dan_dan_noodles.heic: dan_dan_noodles: " in out and "export it as JPEG" in out
    assert "nothing changed" in out
    assert not any(menu_images(client, token).values())
    assert stored_images(settings) == []  # not even the good pictures' files

    assert run(settings, "import", str(folder), "--skip-refused") == 0
    assert "set 2 photos, skipped 2 refused files" in capsys.readouterr().out
    images = menu_images(client, token)
    assert [name for name, url in images.items() if url] == ["Crystal shrimp dumplings", "Mapo tofu"]


def test_two_files_for_one_dish_are_both_refused(settings, client, token, tmp_path, capsys):
    folder = tmp_path / "photos"
    picture(folder / "har_gow.jpg", (230, 220, 200))
    picture(folder / "水晶虾饺.png", (200, 200, 200))
    picture(folder / "mapo_tofu.jpg", (180, 40, 30))

    assert run(settings, "import", str(folder)) == 1
    out = capsys.readouterr().out
    assert "  har_gow.jpg: 2 files for har_gow (har_gow.jpg, 水晶虾饺.png): keep one" in out
    assert "  水晶虾饺.png: 2 files for har_gow (har_gow.jpg, 水晶虾饺.png): keep one" in out
    assert not any(menu_images(client, token).values())


def test_a_dry_run_reports_and_changes_nothing(settings, client, token, tmp_path, capsys):
    folder = tmp_path / "photos"
    picture(folder / "har_gow.jpg", (230, 220, 200))
    assert run(settings, "import", str(folder), "--dry-run") == 0
    out = capsys.readouterr().out
    assert (
        "  har_gow.jpg -> har_gow (水晶虾饺 / Crystal shrimp dumplings), " in out and "dry run: nothing changed" in out
    )
    assert not any(menu_images(client, token).values()) and stored_images(settings) == []


def test_a_dish_keyed_import_still_takes_a_single_photo(settings, db, client, token, tmp_path, capsys):
    with db:
        db.execute("UPDATE items SET key = 'import' WHERE key = 'har_gow'")
    photo = picture(tmp_path / "dumplings.jpg", (230, 220, 200))
    assert run(settings, "import", str(photo)) == 0
    assert "import: photo " in capsys.readouterr().out
    assert menu_images(client, token)["Crystal shrimp dumplings"]
    assert run(settings, "import", str(tmp_path / "no-such-folder")) == 2  # neither a file nor a folder
    assert run(settings, "har_gow", str(photo), "--dry-run") == 2  # the import options need a folder


def test_the_demo_dishes_drawn_by_the_project_all_import(settings, client, token, tmp_path, capsys):
    from appliance.demo.photos import demo_dish_keys, draw_demo_photos

    files = draw_demo_photos(tmp_path / "demo")
    assert sorted(p.stem for p in files) == sorted(demo_dish_keys()) and len(files) == 64
    assert all(p.stat().st_size < 40_000 for p in files)  # small: a phone on a weak line still gets them
    assert (
        draw_demo_photos(tmp_path / "again", ["mapo_tofu"])[0].read_bytes()
        == (tmp_path / "demo/mapo_tofu.jpg").read_bytes()
    )

    assert run(settings, "import", str(tmp_path / "demo")) == 0
    out = capsys.readouterr().out
    assert "matched 64:" in out and "unmatched" not in out and "refused" not in out and "set 64 photos" in out
    menu = client.get(f"/api/v1/tables/{token}/menu?lang=en").json()
    images = [i["image"] for c in menu["categories"] for i in c["items"]]
    assert len(images) >= 60 and all(images) and len(set(images)) == len(images)  # each its own (one dish is hidden)


def test_demo_photos_are_one_flag_away_and_only_for_the_demo_store(settings, client, token, tmp_path):
    from appliance.cli.menu import set_demo_photos
    from appliance.cli.store import register

    assert set_demo_photos(settings) == 64  # `tablebox demo --photos` runs this before serving
    menu = client.get(f"/api/v1/tables/{token}/menu?lang=zh").json()
    assert all(i["image"] for c in menu["categories"] for i in c["items"])
    assert set_demo_photos(settings) == 0  # a second start draws nothing: every dish has its photo

    parser = argparse.ArgumentParser()
    register(parser.add_subparsers())
    assert parser.parse_args(["demo", "--photos"]).photos is True

    other = make_settings(tmp_path / "real")
    main(["init", "--data-dir", str(other.data_dir), "--store-name", "Noodle Bar"])
    assert main(["demo", "--data-dir", str(other.data_dir), "--photos", "--port", "0"]) == 2  # not the demo: refused


def test_a_list_size_copy_is_made_once_square_and_small(tmp_path):
    from appliance.images import THUMB_SIDES, prepare_image, thumbnail

    name = prepare_image(picture(tmp_path / "wide.jpg", (200, 60, 30), (3000, 1500)), tmp_path)
    side = THUMB_SIDES[0]
    small = thumbnail(tmp_path, name, side)
    assert small is not None and small.name == f"{name[:-4]}-{side}.jpg"
    with Image.open(small) as copy:
        assert copy.size == (side, side) and copy.format == "JPEG"  # centre-cropped like the row's cover
    assert small.stat().st_size * 3 < (tmp_path / "images" / name).stat().st_size
    made = small.stat().st_mtime_ns
    assert thumbnail(tmp_path, name, side) == small and small.stat().st_mtime_ns == made  # kept, not remade
    assert thumbnail(tmp_path, name, 1000) is None  # only the sides the page uses
    assert (
        thumbnail(tmp_path, "../store.db", side) is None and thumbnail(tmp_path, "0123456789abcdef.jpg", side) is None
    )
