"""Dish photos sized for phones: any picture a restaurant has becomes a small JPEG in the data folder."""

from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import unicodedata
from pathlib import Path

from PIL import Image, ImageOps, UnidentifiedImageError

from appliance.domain.errors import DomainError

MAX_SIDE = 640  # px: sharp on a phone at two dishes per row, ~40-80 KB
QUALITY = 80
MAX_SOURCE_BYTES = 30 * 1024 * 1024
NAME = re.compile(r"^[0-9a-f]{16}\.jpg$")


def images_dir(data_dir: Path) -> Path:
    return data_dir / "images"


def prepare_image(source: Path, data_dir: Path) -> str:
    """Shrink a photo to at most MAX_SIDE pixels a side, honour its EXIF rotation, drop its metadata, and
    store it as JPEG named by its content. Returns the file name (the dish's `image`)."""
    name, data = shrink_image(source)
    store_image(data_dir, name, data)
    return name


def shrink_image(source: Path) -> tuple[str, bytes]:
    """The phone-sized JPEG of a photo and its content name, in memory (nothing written): (name, bytes).
    `invalid_image` for a file that cannot be read, is too large, or is not a picture Pillow reads."""
    if source.suffix.lower() in {".heic", ".heif"}:
        raise DomainError(
            "invalid_image", f"{source} is HEIC (an iPhone photo): export it as JPEG (Share > Save as JPEG) first"
        )
    try:
        raw = source.read_bytes()
    except OSError as exc:
        raise DomainError("invalid_image", f"cannot read {source}: {exc.strerror}") from None
    if len(raw) > MAX_SOURCE_BYTES:
        raise DomainError("invalid_image", f"{source} is larger than {MAX_SOURCE_BYTES // 1024 // 1024} MB")
    try:
        with Image.open(io.BytesIO(raw)) as opened:
            picture: Image.Image = ImageOps.exif_transpose(opened)
            picture.thumbnail((MAX_SIDE, MAX_SIDE))
            if picture.mode != "RGB":
                picture = picture.convert("RGB")
            out = io.BytesIO()
            picture.save(out, "JPEG", quality=QUALITY, optimize=True, progressive=True)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as exc:
        raise DomainError("invalid_image", f"{source} is not a picture Tablebox can read ({exc})") from None
    data = out.getvalue()
    return hashlib.sha256(data).hexdigest()[:16] + ".jpg", data


def store_image(data_dir: Path, name: str, data: bytes) -> None:
    """Write a shrunk photo under its content name (atomically; a file already there is the same picture)."""
    target = images_dir(data_dir)
    target.mkdir(parents=True, exist_ok=True)
    path = target / name
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)


def photo_key(text: str) -> str:
    """How a file name and a dish's key or name are compared: Unicode-normalised (NFKC: full-width letters become
    plain), case-folded, and runs of spaces, `_`, `-` and `.` made one space, so `Har-Gow.JPG`'s stem matches the
    key `har_gow` and the name "Har Gow"."""
    return " ".join(_SEPARATORS.split(unicodedata.normalize("NFKC", text).casefold())).strip()


_SEPARATORS = re.compile(r"[\s_.\-]+")


# A list-size copy of a photo for the menu's rows (72-84 CSS px, twice that on most phones): a square, centre-cropped
# like the row's `object-fit: cover`, a few KB instead of the 640 px photo's 40-80 KB. Only these sides are made, so a
# folder cannot fill up with sizes someone asked for.
THUMB_SIDES = (192,)
THUMB_QUALITY = 75


def thumbnail(data_dir: Path, name: str, side: int) -> Path | None:
    """The `side` px square copy of photo `name`, made once (from the stored photo, written atomically beside it as
    NAME-SIDE.jpg) and kept: the same photo always gives the same copy, so it may be cached like the photo. None for a
    name that is not a photo's, a side not in THUMB_SIDES, or a photo not there."""
    if not NAME.match(name) or side not in THUMB_SIDES:
        return None
    folder = images_dir(data_dir)
    path = folder / f"{name[:-4]}-{side}.jpg"
    if path.is_file():
        return path
    try:
        with Image.open(folder / name) as photo:
            small = ImageOps.fit(photo.convert("RGB"), (side, side), Image.Resampling.LANCZOS)
    except (OSError, UnidentifiedImageError):
        return None
    out = io.BytesIO()
    small.save(out, "JPEG", quality=THUMB_QUALITY, optimize=True)
    tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
    tmp.write_bytes(out.getvalue())
    tmp.replace(path)
    return path
