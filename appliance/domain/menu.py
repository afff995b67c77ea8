"""The menu as immutable values: categories, items, variants, option groups, and availability windows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

Translations = Mapping[str, str]


def translate(names: Translations, lang: str, fallbacks: tuple[str, ...] = ("zh", "en")) -> str:
    """The name in `lang`, else in the first fallback language that has one, else any."""
    if names.get(lang):
        return names[lang]
    for other in fallbacks:
        if names.get(other):
            return names[other]
    return next((v for v in names.values() if v), "")


def parse_hhmm(text: str) -> int:
    """'07:30' -> 450 minutes after midnight; '24:00' allowed as the end of the day."""
    hours, _, minutes = text.partition(":")
    if not (hours.isdigit() and minutes.isdigit() and len(minutes) == 2):
        raise ValueError(f"not a time of day (HH:MM): {text!r}")
    value = int(hours) * 60 + int(minutes)
    if int(minutes) >= 60 or value > 24 * 60:
        raise ValueError(f"not a time of day (HH:MM): {text!r}")
    return value


@dataclass(frozen=True)
class Window:
    """A daily window in local minutes after midnight; `until < start` wraps past midnight."""

    start: int
    until: int

    def contains(self, minute_of_day: int) -> bool:
        if self.start == self.until:
            return True
        if self.start < self.until:
            return self.start <= minute_of_day < self.until
        return minute_of_day >= self.start or minute_of_day < self.until

    @classmethod
    def parse(cls, start: str, until: str) -> Window:
        return cls(parse_hhmm(start), parse_hhmm(until))

    def __str__(self) -> str:
        return f"{self.start // 60:02d}:{self.start % 60:02d}-{self.until // 60:02d}:{self.until % 60:02d}"


@dataclass(frozen=True)
class Option:
    id: int
    group_id: int
    names: Translations
    price_delta_minor: int
    sold_out: bool = False


@dataclass(frozen=True)
class OptionGroup:
    id: int
    names: Translations
    min_choices: int
    max_choices: int
    options: tuple[Option, ...]


@dataclass(frozen=True)
class Variant:
    id: int
    item_id: int
    names: Translations
    price_minor: int


@dataclass(frozen=True)
class Item:
    id: int
    category_id: int
    names: Translations
    descriptions: Translations
    price_minor: int | None
    variants: tuple[Variant, ...]
    option_groups: tuple[OptionGroup, ...]
    station: str
    allergens: tuple[str, ...] = ()
    image: str | None = None
    prep_minutes: int | None = None
    window: Window | None = None
    sold_out: bool = False
    hidden: bool = False

    def available_at(self, minute_of_day: int) -> bool:
        return self.window is None or self.window.contains(minute_of_day)


@dataclass(frozen=True)
class Category:
    id: int
    names: Translations
    item_ids: tuple[int, ...]


@dataclass(frozen=True)
class Menu:
    """One consistent snapshot of the menu at `version`."""

    version: int
    categories: tuple[Category, ...]
    items: Mapping[int, Item] = field(default_factory=lambda: MappingProxyType({}))

    def unavailable_at(self, minute_of_day: int) -> frozenset[int]:
        """Items whose availability window is closed at this minute (part of the menu's cache key)."""
        return frozenset(
            item.id
            for item in self.items.values()
            if item.window is not None and not item.window.contains(minute_of_day)
        )
