"""Dish photos: any picture becomes a phone-sized JPEG, served by the box, shown with the dish."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from appliance.cli import main
from appliance.domain.errors import DomainError
from appliance.images import prepare_image


def camera_photo(path, size=(4000, 3000), rotate_tag=None):
    picture = Image.new("RGB", size, (200, 80, 40))
    exif = Image.Exif()
    if rotate_tag:
        exif[0x0112] = rotate_tag  # Orientation
    picture.save(path, "JPEG", quality=95, exif=exif)
    return path


def test_a_camera_photo_is_shrunk_for_phones(tmp_path):
    name = prepare_image(camera_photo(tmp_path / "big.jpg"), tmp_path)
    stored = tmp_path / "images" / name
    with Image.open(stored) as picture:
        assert picture.size == (640, 480) and picture.format == "JPEG"
    assert stored.stat().st_size < 60_000 < (tmp_path / "big.jpg").stat().st_size
    assert prepare_image(tmp_path / "big.jpg", tmp_path) == name  # same picture, same file


def test_the_camera_rotation_is_applied(tmp_path):
    name = prepare_image(camera_photo(tmp_path / "r.jpg", (1200, 800), rotate_tag=6), tmp_path)
    with Image.open(tmp_path / "images" / name) as picture:
        assert picture.size == (427, 640)


def test_not_a_picture_is_refused(tmp_path):
    (tmp_path / "menu.pdf").write_bytes(b"%PDF-1.4 not an image")
    with pytest.raises(DomainError) as err:
        prepare_image(tmp_path / "menu.pdf", tmp_path)
    assert err.value.code == "invalid_image"


def test_the_photo_command_shows_it_on_the_menu(settings, client, token, tmp_path, capsys):
    photo = camera_photo(tmp_path / "dumplings.jpg", (2000, 2000))
    assert main(["photo", "--data-dir", str(settings.data_dir), "har_gow", str(photo)]) == 0
    assert "har_gow: photo" in capsys.readouterr().out
    items = [i for c in client.get(f"/api/v1/tables/{token}/menu?lang=en").json()["categories"] for i in c["items"]]
    url = next(i["image"] for i in items if i["name"].startswith("Crystal shrimp"))
    assert url.startswith("/images/") and url.endswith(".jpg")
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/jpeg"
    assert "immutable" in r.headers["cache-control"]
    assert Image.open(io.BytesIO(r.content)).size == (640, 640)
    assert client.get("/images/../store.db").status_code == 404
    assert client.get("/images/0123456789abcdef.jpg").status_code == 404
    assert main(["photo", "--data-dir", str(settings.data_dir), "no_such_dish", str(photo)]) == 2
