"""Dish photos sized for phones: any picture a restaurant has becomes a small JPEG in the data folder."""

from __future__ import annotations

import hashlib
import io
import re
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
    name = hashlib.sha256(data).hexdigest()[:16] + ".jpg"
    target = images_dir(data_dir)
    target.mkdir(parents=True, exist_ok=True)
    path = target / name
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return name
