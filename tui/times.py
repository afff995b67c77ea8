"""Stored UTC times as staff read them: local clock time, with the date only when it is not today."""

from __future__ import annotations

from datetime import UTC, datetime

from appliance.db.store_settings import StoreSettings


def local_time(stamp: str | None, store: StoreSettings | None, now: datetime, never: str = "never") -> str:
    """ "20:28" today, "11-20 20:28" another day, `never` for no time at all."""
    if not stamp:
        return never
    tz = store.tz if store else UTC
    local = datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone(tz)
    return local.strftime("%H:%M" if local.date() == now.astimezone(tz).date() else "%m-%d %H:%M")
