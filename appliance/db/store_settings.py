"""The restaurant's own settings, kept in the `settings` table so every process sees the same values."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import apsw

from appliance.db.connection import dumps
from appliance.domain.errors import DomainError
from appliance.domain.menu import Window, parse_hhmm
from appliance.domain.money import Currency
from appliance.settings import STORE_SETTINGS, SettingsError


@dataclass(frozen=True)
class StoreSettings:
    store_id: str
    store_name: str
    currency: str
    languages: tuple[str, ...]
    timezone: str
    service_charge_bp: int
    tax_rate_bp: int
    auto_accept: bool
    print_on: str
    tables_need_staff_open: bool
    opening_hours: tuple[str, ...]
    day_starts_at: str
    late_after_minutes: int
    very_late_after_minutes: int
    cancel_reasons: tuple[str, ...]
    lock_after_minutes: int = 10  # the console locks itself after this long with no key (0: never)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def money(self) -> Currency:
        return Currency.of(self.currency)

    def local_now(self, now: datetime | None = None) -> datetime:
        return (now or datetime.now(self.tz)).astimezone(self.tz)

    def minute_of_day(self, now: datetime | None = None) -> int:
        local = self.local_now(now)
        return local.hour * 60 + local.minute

    def business_day(self, now: datetime | None = None) -> str:
        """The local business day: before `day_starts_at` an order belongs to the day before."""
        local = self.local_now(now) - timedelta(minutes=parse_hhmm(self.day_starts_at))
        return local.date().isoformat()

    def open_at(self, minute_of_day: int) -> bool:
        if not self.opening_hours:
            return True
        return any(_window(span).contains(minute_of_day) for span in self.opening_hours)


def _window(span: str) -> Window:
    start, _, until = span.partition("-")
    return Window.parse(start.strip(), until.strip())


def validate_store_setting(name: str, value: Any) -> Any:
    """Check a store setting's value (type, range, and meaning) before it is stored."""
    setting = STORE_SETTINGS.get(name)
    if setting is None:
        raise DomainError("unknown_setting", f"unknown store setting {name!r}", setting=name)
    try:
        value = setting.convert(value, name)
        if name == "currency":
            Currency.of(value)
        elif name == "timezone":
            ZoneInfo(value)
        elif name == "opening_hours":
            for span in value:
                _window(span)
        elif name == "day_starts_at":
            parse_hhmm(value)
        elif name == "languages" and not value:
            raise SettingsError("languages: at least one language is needed")
        elif name == "cancel_reasons" and any(len(r) > 60 for r in value):
            raise SettingsError("cancel_reasons: each reason is at most 60 characters")
    except (SettingsError, ValueError, ZoneInfoNotFoundError) as exc:
        raise DomainError("invalid_setting", str(exc), setting=name) from None
    return value


def set_store_setting(conn: apsw.Connection, name: str, value: Any) -> Any:
    value = validate_store_setting(name, value)
    conn.execute(
        "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (name, dumps(value)),
    )
    return value


def init_store_settings(conn: apsw.Connection, store_id: str, values: Mapping[str, Any]) -> None:
    conn.execute("INSERT INTO settings (key, value) VALUES ('store_id', ?)", (dumps(store_id),))
    for name, setting in STORE_SETTINGS.items():
        set_store_setting(conn, name, values.get(name, setting.default))


def load_store_settings(conn: apsw.Connection) -> StoreSettings:
    stored = {key: json.loads(value) for key, value in conn.execute("SELECT key, value FROM settings")}
    if "store_id" not in stored:
        raise DomainError("not_initialised", "this database has no store yet: run `tablebox init`")
    merged = {name: stored.get(name, setting.default) for name, setting in STORE_SETTINGS.items()}
    merged["languages"] = tuple(merged["languages"])
    merged["opening_hours"] = tuple(merged["opening_hours"])
    merged["cancel_reasons"] = tuple(merged["cancel_reasons"])
    return StoreSettings(store_id=stored["store_id"], **merged)
