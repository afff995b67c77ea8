"""When the console last saw a person at it (a key or a click), so it can lock itself after the store's
`lock_after_minutes`: a console left logged in on a busy floor is anyone's. Diners' orders and calls arriving are
not a person here, and neither is the console's own live polling: only input counts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta


class IdleClock:
    """The time of the last input, on the console's own clock (tests move that clock, not the wall's)."""

    def __init__(self, now: Callable[[], datetime]) -> None:
        self.now = now
        self.last_input = now()

    def touched(self) -> None:
        """A key or a click: someone is here."""
        self.last_input = self.now()

    def idle_for(self) -> timedelta:
        return self.now() - self.last_input

    def due(self, lock_after_minutes: int) -> bool:
        """Whether the console has had no input for `lock_after_minutes` (0: it never locks by itself)."""
        return lock_after_minutes > 0 and self.idle_for() >= timedelta(minutes=lock_after_minutes)
