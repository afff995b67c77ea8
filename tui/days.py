"""Screens that show one business day at a time (Reports, Audit): `[` `]` a day back or forward, `d` a date."""

from __future__ import annotations

from datetime import date, timedelta

from textual import work

from tui.base import ConsoleScreen
from tui.dialogs import PromptScreen


def check_day(text: str, latest: str) -> str | None:
    """Why a typed day cannot be shown (None when it can)."""
    try:
        if date.fromisoformat(text).isoformat() != text:
            raise ValueError(text)
    except ValueError:
        return "a date looks like 2026-11-21"
    return f"{text} has not happened yet (today is {latest})" if text > latest else None


class DayScreen(ConsoleScreen):
    """Subclasses set DAY_WORDS ("report": "Show the report of which day?"), DAY_SAID (the message once a day is
    shown, "report for {day}") and may override shown_again() (what to do on screen once the day is read, e.g.
    scroll to its top)."""

    DAY_WORDS = "day"
    DAY_SAID = "{day}"

    def __init__(self) -> None:
        super().__init__()
        self.day: str | None = None  # None: today, following the clock past midnight

    @property
    def shown_day(self) -> str:
        return self.day or self.today()

    def shown_again(self) -> None:
        """The new day is on screen (called after its reload)."""

    async def go_to(self, day: str) -> None:
        today = self.today()
        if day > today:
            self.say(f"✗ {today} is today: there is no later day yet", error=True)
            return
        self.day = None if day == today else day
        await self.reload()
        self.shown_again()
        self.say(self.DAY_SAID.format(day=day))

    async def action_shift_day(self, step: int) -> None:
        await self.go_to((date.fromisoformat(self.shown_day) + timedelta(days=step)).isoformat())

    @work(exclusive=True, group="dialog")
    async def action_pick_day(self) -> None:
        today = self.today()
        answer = await self.app.push_screen_wait(
            PromptScreen(
                f"Show the {self.DAY_WORDS} of which day? 日期 (YYYY-MM-DD)",
                self.shown_day,
                check=lambda t: check_day(t, today),
            )
        )
        if answer is not None:
            await self.go_to(answer)
