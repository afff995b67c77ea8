"""`tablebox doctor`'s off-card line: the newest backup that is not on the SD card (the USB stick labelled
TABLEBOX, mounted at backup_usb_dir by systemd/media-tablebox.mount) and how old it is.

A backup on the same card as the database dies with the card; the copy on the stick is the one that survives.
Each copy made off the card is noted in <data_dir>/offcard.json (appliance.backup.record_offcard), so the line
names it even when the stick is away (taken home at night, as it should be); a stick that is plugged in is
also read directly."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import appliance.doctor as doctor
from appliance.backup import OFFCARD_RECORD, list_backups
from appliance.settings import BoxSettings

OFFCARD_MAX_AGE = timedelta(days=7)  # a stick taken home and brought back weekly is still fine
STICK_LABEL = "TABLEBOX"


@dataclass(frozen=True)
class OffCard:
    path: str
    taken: datetime  # local time, from the backup's name
    device: str  # the stick's label when it was known


def newest_offcard(settings: BoxSettings, ismount: Callable[[str], bool] = os.path.ismount) -> OffCard | None:
    """The newest off-card backup: the one on the stick now (if mounted) or the one last noted, whichever is newer."""
    found: list[OffCard] = []
    try:
        record = json.loads((settings.data_dir / OFFCARD_RECORD).read_text(encoding="utf-8"))
        found.append(OffCard(str(record["path"]), datetime.fromisoformat(record["taken"]), str(record["device"])))
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if settings.backup_usb_dir and ismount(settings.backup_usb_dir):
        on_stick = list_backups(Path(settings.backup_usb_dir))
        if on_stick:
            found.append(OffCard(str(on_stick[0][1]), on_stick[0][0], ""))
    return max(found, key=lambda c: c.taken) if found else None


def checks(
    settings: BoxSettings, now: datetime, *, ismount: Callable[[str], bool] = os.path.ismount
) -> list[doctor.Check]:
    Check, Mark = doctor.Check, doctor.Mark
    usb = settings.backup_usb_dir
    plugged = bool(usb) and ismount(usb)
    fix = (
        f"plug in a USB stick formatted FAT32 or exFAT with the label {STICK_LABEL} (`mkfs.exfat -L {STICK_LABEL} "
        f"/dev/sdX1`): it is mounted at {usb or '/media/tablebox'} and the next backup is copied there "
        "(`tablebox backup` does it now)"
    )
    if not usb:
        return [Check("off-card backup", Mark.WARN, "backup_usb_dir is empty: every backup stays on the SD card", fix)]
    newest = newest_offcard(settings, ismount)
    where = f"a stick is mounted at {usb}" if plugged else f"no stick at {usb} now"
    if newest is None:
        return [Check("off-card backup", Mark.WARN, f"no backup was ever copied off the SD card ({where})", fix)]
    age = now.astimezone().replace(tzinfo=None) - newest.taken
    hours = max(0, int(age.total_seconds() // 3600))
    shown = f"{hours // 24} days" if hours >= 48 else f"{hours} h"
    label = f" (stick {newest.device})" if newest.device else ""
    detail = f"newest {newest.path}{label}, {shown} old; {where}"
    if age > OFFCARD_MAX_AGE:
        return [Check("off-card backup", Mark.WARN, detail, fix if not plugged else "`tablebox backup` now")]
    return [Check("off-card backup", Mark.OK, detail)]
