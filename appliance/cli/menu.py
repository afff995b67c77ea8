"""`tablebox menu import FILE` and `tablebox photo DISH FILE`: a new store's menu, and dishes' photos."""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import apsw

from appliance.cli.common import add_command, box_settings
from appliance.db.connection import write_transaction
from appliance.db.menu import Dish, import_menu, load_menu, set_image, staff_dishes
from appliance.db.store_settings import load_store_settings
from appliance.db.tables import add_table
from appliance.errors import DomainError
from appliance.images import photo_key, prepare_image, shrink_image, store_image
from appliance.settings import BoxSettings
from appliance.store import require_store, store_connection


def register_menu(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "menu",
        help="import a menu file into a new store",
        description="Import a menu file (JSON in the demo's format, appliance/demo/menu.json: stations, "
        "option groups, categories with dishes, optionally tables) into a store that has no "
        "menu yet. One transaction: a bad file changes nothing.",
        examples=["tablebox menu import menu.json"],
    )
    msub = p.add_subparsers(dest="menu_command", metavar="COMMAND", required=True)
    i = add_command(
        msub,
        "import",
        help="import FILE",
        examples=[
            "tablebox menu import menu.json",
            "tablebox --data-dir /var/lib/tablebox menu import /media/usb/menu.json",
        ],
    )
    i.add_argument("file")
    i.set_defaults(func=cmd_menu)


def register_photo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = add_command(
        sub,
        "photo",
        help="give a dish a photo, or many dishes theirs from a folder (resized for phones)",
        description="Shrink a photo to phone size (at most 640 px a side, JPEG), store it in the data "
        "folder and show it with the dish on diners' menus at once. `tablebox photo import FOLDER` does it for "
        "every picture in a folder: each file is named after its dish (its key, its id, or its name in any of "
        "the menu's languages; case, spaces, '-' and '_' do not matter: 'Har Gow.jpg', 'har_gow.png', "
        "'水晶虾饺.webp'). It reports the files it matched, the ones that name no dish (with the closest keys) and "
        "the ones it refused (not a picture, or two files for one dish); nothing changes unless every matched "
        "file is good (or --skip-refused). A dish whose key is 'import' still takes a single FILE.",
        examples=[
            "tablebox photo har_gow har-gow.jpg",
            "tablebox photo 12 /media/usb/dish12.png",
            "tablebox photo import /media/usb/photos --dry-run",
            "tablebox photo import /media/usb/photos",
        ],
    )
    p.add_argument("dish", help="the dish's key (as in the menu file) or id; or `import` to read a FOLDER")
    p.add_argument("file", help="a JPEG, PNG or WebP picture; after `import`, a folder of them")
    p.add_argument(
        "--dry-run", action="store_true", help="with `import`: read and match every file, report, change nothing"
    )
    p.add_argument(
        "--skip-refused",
        action="store_true",
        help="with `import`: set the photos that are good even if some files were refused",
    )
    p.set_defaults(func=cmd_photo)


def cmd_menu(args: argparse.Namespace) -> int:
    """A menu file (the demo's JSON format) into a store that has no menu yet, with its tables if the file lists
    them; one transaction, so a bad file leaves nothing behind."""
    settings = box_settings(args)
    require_store(settings)
    try:
        data = json.loads(Path(args.file).read_text("utf-8"))
    except FileNotFoundError:
        raise DomainError("invalid_menu", f"no file {args.file}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DomainError("invalid_menu", f"{args.file} is not a JSON menu file: {exc}") from None
    if not isinstance(data, dict):
        raise DomainError("invalid_menu", f"{args.file}: a menu file is a JSON object (see appliance/demo/menu.json)")
    with store_connection(settings) as conn, write_transaction(conn):
        try:
            counts = import_menu(conn, data)
            tables = [add_table(conn, t["name"], t.get("area", ""), t.get("seats")) for t in data.get("tables", [])]
        except (KeyError, TypeError, AttributeError, apsw.ConstraintError) as exc:
            what = (
                f"missing {exc}"
                if isinstance(exc, KeyError)
                else "a dish names a station, or a table a name, that is missing or repeated"
                if isinstance(exc, apsw.ConstraintError)
                else str(exc)
            )
            raise DomainError(
                "invalid_menu", f"{args.file} does not follow the menu format ({what}); see appliance/demo/menu.json"
            ) from None
    print(
        f"imported {counts['items']} dishes in {counts['categories']} categories"
        f" ({counts['variants']} sizes) and {len(tables)} tables"
    )
    return 0


def cmd_photo(args: argparse.Namespace) -> int:
    settings = box_settings(args)
    require_store(settings)
    if args.dish == "import" and not Path(args.file).is_file():
        return cmd_photo_import(args)
    if args.dry_run or args.skip_refused:
        raise DomainError("invalid_arguments", "--dry-run and --skip-refused go with `tablebox photo import FOLDER`")
    name = prepare_image(Path(args.file), settings.data_dir)
    with store_connection(settings) as conn, write_transaction(conn):
        set_image(conn, args.dish, name)
    print(f"{args.dish}: photo {name} ({(settings.data_dir / 'images' / name).stat().st_size // 1024} KB)")
    return 0


# A progress line per file from this many files on (shrinking a camera photo takes a moment on a small box).
PROGRESS_MIN_FILES = 5


@dataclass
class PhotoImport:
    """What `photo import` found in a folder: files matched to a dish (with their shrunk picture), files naming no
    dish, files refused (and why)."""

    matched: list[tuple[Path, Dish, str, bytes]] = field(default_factory=list)  # file, dish, image name, JPEG
    unmatched: list[tuple[Path, str]] = field(default_factory=list)  # file, why
    refused: list[tuple[Path, str]] = field(default_factory=list)  # file, why
    ignored: int = 0  # hidden files and sub-folders


def _dish_label(dish: Dish, languages: Sequence[str] = ()) -> str:
    """`key (name / name)`, the names in the store's languages first."""
    ordered = [dish.names.get(lang, "") for lang in languages] + list(dish.names.values())
    names = " / ".join(dict.fromkeys(n for n in ordered if n))
    return f"{dish.key} ({names})" if names else dish.key


def match_photos(folder: Path, dishes: list[Dish], progress: bool = True) -> PhotoImport:
    """Match every picture in `folder` to a dish by its file name and shrink the matched ones (in memory; nothing
    is written). A key or id wins over a name; a name several dishes share matches none of them; two files for one
    dish are both refused (which one is meant?)."""
    by_key: dict[str, Dish] = {}
    by_name: dict[str, list[Dish]] = defaultdict(list)
    for each in dishes:
        by_key[photo_key(each.key)] = each
        by_key.setdefault(str(each.id), each)
        for name in set(map(photo_key, each.names.values())):
            if name:
                by_name[name].append(each)
    found = PhotoImport()
    wanted: dict[int, list[tuple[Path, Dish]]] = defaultdict(list)
    try:
        entries = sorted(folder.iterdir(), key=lambda p: p.name)
    except OSError as exc:
        raise DomainError("invalid_image", f"cannot read the folder {folder}: {exc.strerror}") from None
    for path in entries:
        if path.name.startswith(".") or not path.is_file():
            found.ignored += 1
            continue
        stem = photo_key(path.stem)
        names = by_name.get(stem, [])
        dish = by_key.get(stem) or (names[0] if len(names) == 1 else None)
        if dish is not None:
            wanted[dish.id].append((path, dish))
        elif names:
            keys = ", ".join(d.key for d in names)
            found.unmatched.append((path, f"{len(names)} dishes have this name ({keys}): name the file by the key"))
        else:
            close = difflib.get_close_matches(stem, [*by_key, *by_name], n=3, cutoff=0.6)
            hint = f" (closest: {', '.join(close)})" if close else ""
            found.unmatched.append((path, f"no dish has this key, id or name{hint}"))
    todo = []
    for files in wanted.values():
        if len(files) > 1:
            others = ", ".join(p.name for p, _ in files)
            found.refused += [(p, f"{len(files)} files for {d.key} ({others}): keep one") for p, d in files]
        else:
            todo.append(files[0])
    todo.sort(key=lambda pair: pair[0].name)
    for n, (path, dish) in enumerate(todo, 1):
        if progress and len(todo) >= PROGRESS_MIN_FILES:
            print(f"photo import: {n}/{len(todo)} {path.name}", file=sys.stderr, flush=True)
        try:
            name, data = shrink_image(path)
        except DomainError as exc:
            found.refused.append((path, f"{dish.key}: {exc.message.replace(str(path), path.name)}"))
            continue
        found.matched.append((path, dish, name, data))
    found.refused.sort(key=lambda pair: pair[0].name)
    return found


def _report(found: PhotoImport, dishes: list[Dish], languages: Sequence[str]) -> None:
    print(f"matched {len(found.matched)}:")
    for path, dish, _, data in found.matched:
        print(f"  {path.name} -> {_dish_label(dish, languages)}, {max(1, len(data) // 1024)} KB")
    if found.unmatched:
        print(f"unmatched {len(found.unmatched)} (no dish changed):")
        for path, why in found.unmatched:
            print(f"  {path.name}: {why}")
    if found.refused:
        print(f"refused {len(found.refused)}:")
        for path, why in found.refused:
            print(f"  {path.name}: {why}")
    if found.ignored:
        print(f"ignored {found.ignored} hidden files and folders")
    having = {d.id for _, d, _, _ in found.matched}
    left = [d.key for d in dishes if d.id not in having]
    if left and len(left) < len(dishes):
        more = f", ... ({len(left)} in all)" if len(left) > 10 else ""
        print(f"dishes this folder gives no photo: {', '.join(left[:10])}{more}")


def cmd_photo_import(args: argparse.Namespace) -> int:
    """Photos for many dishes from one folder: every file matched and shrunk first, then, if none was refused (or
    with --skip-refused), the pictures written and every dish set in one transaction."""
    settings = box_settings(args)
    folder = Path(args.file)
    if not folder.is_dir():
        raise DomainError("invalid_image", f"no folder {folder}")
    with store_connection(settings) as conn:
        dishes = staff_dishes(conn)
        found = match_photos(folder, dishes)
        _report(found, dishes, load_store_settings(conn).languages)
        if args.dry_run:
            print("dry run: nothing changed")
            return 1 if found.refused else 0
        if found.refused and not args.skip_refused:
            print("nothing changed: fix or remove the refused files and run again (or add --skip-refused)")
            return 1
        for _, _, name, data in found.matched:
            store_image(settings.data_dir, name, data)
        with write_transaction(conn):
            for _, dish, name, _ in found.matched:
                set_image(conn, str(dish.id), name)
    print(
        f"set {len(found.matched)} photos" + (f", skipped {len(found.refused)} refused files" if found.refused else "")
    )
    return 0


def set_demo_photos(settings: BoxSettings) -> int:
    """`tablebox demo --photos`: the pictures appliance/demo/photos.py draws, for the demo store's dishes that have no
    photo yet (one transaction). Only in the demo store (a real store's dish keyed like a demo dish keeps its own
    photo, or its placeholder). Returns how many dishes got one."""
    from appliance.demo import demo_store_values
    from appliance.demo.photos import DISHES, draw_demo_photos

    with store_connection(settings) as conn:
        if load_store_settings(conn).store_name != demo_store_values()["store_name"]:
            raise DomainError("not_the_demo", "--photos draws the demo store's dishes: this data folder holds another")
        dishes = [d for d in staff_dishes(conn) if d.key in DISHES]
        menu = load_menu(conn)
        without = [d for d in dishes if d.id in menu.items and not menu.items[d.id].image]
        if not without:
            return 0
        with tempfile.TemporaryDirectory(prefix="tablebox-demo-photos-") as folder:
            draw_demo_photos(Path(folder), [d.key for d in without])
            found = match_photos(Path(folder), without, progress=False)
        for _, _, name, data in found.matched:
            store_image(settings.data_dir, name, data)
        with write_transaction(conn):
            for _, dish, name, _ in found.matched:
                set_image(conn, str(dish.id), name)
    return len(found.matched)
